"""The outbox: recorded events on their way to a batching sink, in recording order.

Recording order lists every event after every event that happened before it (a release is
recorded before the real release, an acquire after the real acquire, a fork before the child
runs, a task's end before anyone joins it), which keeps the engine on its in-order path. The
threads under test only append; a raw background thread (the *drainer*) hands the events over.
Sink work done by a thread under test could land inside one of its critical sections, and a
thread switch there makes every other thread queue up on that lock (a convoy that costs more
than the work).
"""

from __future__ import annotations

import _thread
from collections.abc import Callable
from typing import Any

__all__ = ["Outbox"]

_allocate_lock = _thread.allocate_lock  # captured before instrumentation can replace it
_get_ident = _thread.get_ident


class Outbox:
    """Events for the sink ``sink_of()`` returns, handed over in batches.

    ``events`` is appended to by the recorder (one list for the life of the process: the
    hot path binds it); ``wake()`` once it holds ``drain_at`` events. ``busy`` is the
    recorder's per-thread flag table (the drainer is marked busy while it runs sink code, so
    nothing it does is recorded); ``count_errors(n)`` counts events a failing sink lost.
    """

    drain_at = 1024

    def __init__(
        self,
        sink_of: Callable[[], Any],
        busy: dict[int, int],
        count_errors: Callable[[int], None],
    ) -> None:
        self.events: list[Any] = []
        self._sink_of = sink_of
        self._busy = busy
        self._count_errors = count_errors
        self._fresh_threading()

    def _fresh_threading(self) -> None:
        self._lock = _allocate_lock()  # one hand-over at a time keeps the order
        self._wake = _allocate_lock()
        self._wake.acquire()  # held: the drainer has nothing to do
        self._signalled = False
        self._started = False
        self._start_lock = _allocate_lock()
        self._holder: int | None = None  # the thread handing events over right now

    def wake(self) -> None:
        """Ask the drainer to hand the events over (cheap when already asked)."""
        if self._signalled:
            return
        self._signalled = True
        if not self._started:
            with self._start_lock:
                if not self._started:
                    # raw: not a threading.Thread, never in threading.enumerate()
                    _thread.start_new_thread(self._drainer, ())
                    self._started = True
        try:
            self._wake.release()
        except RuntimeError:  # already woken
            pass

    def flush(self) -> None:
        """Hand everything over now, from the calling thread; returns when the sink has it.

        From sink code run by a hand-over (an ``on_race`` callback, say) it returns at once:
        that hand-over delivers everything anyway, and waiting for itself would hang.
        """
        tid = _get_ident()
        if tid == self._holder:
            return
        flags = self._busy.get(tid, 0)
        self._busy[tid] = flags | 1
        try:
            self._drain(True)
        finally:
            if flags:
                self._busy[tid] = flags
            else:
                del self._busy[tid]

    def after_fork(self) -> None:
        """In a forked child: the parent's events are the parent's; no drainer; fresh locks."""
        del self.events[:]
        self._fresh_threading()

    def _drainer(self) -> None:
        tid = _get_ident()
        busy = self._busy
        while True:
            self._wake.acquire()
            self._signalled = False
            busy[tid] = 1  # only while it runs sink code: the flags stay clean
            try:
                self._drain(True)
            except BaseException:  # never let the thread die
                self._count_errors(1)
            finally:
                del busy[tid]

    def _drain(self, block: bool) -> None:
        if not self._lock.acquire(block):
            return
        self._holder = _get_ident()
        try:
            box = self.events
            while box:
                n = len(box)
                batch = box[:n]  # appends go on meanwhile: only the prefix taken is removed
                del box[:n]
                sink = self._sink_of()
                try:
                    emit_batch = getattr(sink, "emit_batch", None)
                    if emit_batch is not None:
                        emit_batch(batch)
                    elif sink is not None:
                        for ev in batch:
                            sink.emit(ev)
                    else:  # the sink went away under a recording thread: count, never hide
                        self._count_errors(n)
                except KeyboardInterrupt:
                    raise
                except BaseException:
                    self._count_errors(n)
        finally:
            self._holder = None
            self._lock.release()
