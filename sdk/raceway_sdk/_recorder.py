"""The recorder: logical tasks, their vector clocks, and the events they emit.

Every logical task (thread, executor callable, asyncio/anyio/trio task) has a :class:`TaskState`
held in the ContextVar :data:`CURRENT`; its vector clock follows the rules of
``raceway_sdk.protocol.clock`` (docs/internals.md "Clocks"). Instrumentation calls :func:`fork`,
:func:`join`, :func:`release`, :func:`acquire` and :func:`access`; each emits an
:class:`~raceway_sdk.protocol.events.Event` to the installed sink (``sink.emit(event)``).

Robustness rules, in order of importance:

* the recorder takes no lock that user code can hold (only a private lock around pure dict work);
* a per-thread flag guards re-entrancy: events raised while the recorder or the sink runs (a
  ``__del__`` during recording, the sink's own locks) are dropped and counted in :func:`stats`;
* :func:`suspended` marks a thread's own activity (the transport) as ignored, also counted;
* a sink exception is counted and never reaches user code.

Threads that were not started through the patched ``Thread.start`` (C threads, threads started
before instrumentation) get their own task lazily: they are concurrent with everything they did
not synchronise with through an instrumented primitive.

Around it: :mod:`._sites` (access sites), :mod:`._stacks` (stacks, call sites),
:mod:`._outbox` (delivery to batching sinks), :mod:`._identity` (object identity).

Cost (benchmarks/recorder_micro.py, overhead.py): an emitted event is a few hundred bytecodes,
so the hot paths avoid what CPython makes dear: ``threading.local`` attributes (the busy flags
are a dict keyed by thread ident), frame objects of the recorder's own frames (callers pass how
many frames to jump with ``sys._getframe(n)``), hashing code objects, per-event dicts whose
content repeats (shared, immutable payloads: docs/internals.md "Recorder"), and identity
entries for per-item clock holders (:class:`ClockSlot`).
"""

from __future__ import annotations

import _thread
import contextvars
import itertools
import os
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from time import time_ns
from typing import Any, Protocol

from raceway_sdk import _identity, _stacks
from raceway_sdk._outbox import Outbox
from raceway_sdk._sites import ALL, ATTR, GLOBAL, ITEM, Site, register_site
from raceway_sdk._stacks import Stack, caller_location, capture_stack
from raceway_sdk._stacks import site_stack as _site_stack
from raceway_sdk._stacks import spawn_stack as _spawn_stack
from raceway_sdk.protocol.clock import vc_join
from raceway_sdk.protocol.events import Event, Metadata, new_event_id

__all__ = [
    "ALL",
    "ATTR",
    "CURRENT",
    "ClockSlot",
    "GLOBAL",
    "ITEM",
    "Sink",
    "Site",
    "TaskState",
    "access",
    "access_global",
    "access_variable",
    "acquire",
    "activate",
    "caller_location",
    "capture_stack",
    "configure",
    "current",
    "current_trace",
    "deactivate",
    "emit_custom",
    "emit_event",
    "get_sink",
    "enabled",
    "hook_access",
    "finish",
    "flush",
    "fork",
    "join",
    "new_segment",
    "register_site",
    "release",
    "reset_stats",
    "set_sink",
    "set_trace",
    "share",
    "stats",
    "suspended",
]


class Sink(Protocol):
    """Anything with ``emit(event)``: the embedded engine, the transport, a test collector."""

    def emit(self, event: Event) -> None: ...


# --------------------------------------------------------------------------- process identity

_allocate_lock = _thread.allocate_lock  # private reference: instrumentation patches threading
_INSTANCE = os.urandom(3).hex()
_PID = os.getpid()
_task_numbers = itertools.count(1)
_TASK_NS = "6f1c1e5e-7a0b-4c59-9d8e-2a6b1f0c3d47"  # uuid5 namespace of task ids
_TAGS = {"sdk_language": "python"}
_service_name = "python"
_environment = "test"
_meta_gen = 0


#: hold back the accesses of an object until a second task touches it (see _access_slow)
_defer_private = False
#: most accesses held back per object before they are emitted anyway (memory bound)
_PEND_MAX = 256
#: fields of one held-back access in ``Entry.pend``, which is flat (no tuple per access: one
#: collector-tracked object less per held-back access): trace, timestamp, clock, task, key,
#: site, access type, stack, value
_PEND_ITEM = 9


def configure(
    service_name: str | None = None,
    environment: str | None = None,
    stack_depth: int | None = None,
    defer_private: bool | None = None,
) -> None:
    """Set what every event's metadata says about this process, the stack bound, and whether
    accesses to objects only one task has touched are held back (``defer_private``).

    With ``defer_private`` an object's accesses are emitted when a second task first
    accesses it (the first task's accesses first, with the clocks they had, so each
    location still sees program order), and never if no other task does: such accesses
    cannot race, but they are then missing from the event stream (audit trails, exports).
    The pytest plugin's embedded engine uses it; a server that keeps full traces does not.
    """
    global _service_name, _environment, _meta_gen, _defer_private
    if defer_private is not None:
        _defer_private = bool(defer_private)
    if service_name is not None:
        if not isinstance(service_name, str) or not service_name:
            raise ValueError(f"service_name must be a non-empty string, got {service_name!r}")
        _service_name = service_name
    if environment is not None:
        if not isinstance(environment, str):
            raise ValueError(f"environment must be a string, got {environment!r}")
        _environment = environment
    if stack_depth is not None:
        if not isinstance(stack_depth, int) or not 0 <= stack_depth <= 256:
            raise ValueError(f"stack_depth must be an int in 0..256, got {stack_depth!r}")
        _stacks.depth = stack_depth
    _meta_gen += 1


# --------------------------------------------------------------------------- tasks


class TaskState:
    """One logical task: its id, its clock, and the same-epoch dedupe table."""

    __slots__ = (
        "id",
        "name",
        "kind",
        "vc",
        "loop",
        "seg",
        "parent",
        "origin_trace",
        "stack",
        "done_vc",
        "seen",
        "meta",
        "meta_gen",
        "quiet",
        "stacks",
        "uuid",
        "sync_ext",
        "datas",
        "__weakref__",
    )

    def __init__(
        self,
        kind: str,
        name: str,
        vc: dict[str, int] | None = None,
        parent: str | None = None,
        loop: str | None = None,
    ) -> None:
        self.id = f"{_INSTANCE}/{next(_task_numbers)}"
        self.name = name
        self.kind = kind
        base = vc if vc is not None else {}
        new = dict(base)
        new[self.id] = 1
        self.vc: dict[str, int] = new
        self.loop = loop
        self.seg = 0
        self.parent = parent
        self.origin_trace: int | None = _trace_id
        self.stack: Stack | None = None
        self.done_vc: dict[str, int] | None = None
        #: same-epoch dedupe table; REPLACED (never cleared in place) whenever the clock, the
        #: segment or the trace changes, so ``x is state.seen`` means "same epoch" (hooks.py)
        self.seen: dict[Any, bool] = {}
        self.meta: Metadata | None = None
        self.meta_gen = -1
        #: started while its parent was suspended (the transport's own threads): stays ignored
        self.quiet = False
        #: site -> (site's code, caller's code, caller's f_lasti, stack): see _site_stack
        self.stacks: dict[Site, tuple[Any, Any, int, Stack]] = {}
        self.uuid: str | None = None  # wire form of the id (AsyncSpawn task_id), made once
        #: (release ext, acquire ext) shared by the task's sync events, made on first use
        self.sync_ext: tuple[dict[str, Any], dict[str, Any]] | None = None
        #: site -> ((loc, variable), access type, data, stack, ext): the last value-less
        #: access payload
        self.datas: dict[Site, tuple[Any, ...]] = {}
        _states.add(self)
        _bump("tasks")

    def __repr__(self) -> str:
        return f"TaskState({self.id!r}, {self.kind}, {self.name!r})"


CURRENT: contextvars.ContextVar[TaskState | None] = contextvars.ContextVar(
    "raceway_task", default=None
)


class _ThreadState(threading.local):
    #: the lazily created task of a thread not started through the patched Thread.start
    state: TaskState | None = None


_tls = _ThreadState()
#: thread ident -> flags (bit 0 = the recorder/sink runs on this thread; +2 per suspended()
#: level); absent = 0. A dict keyed by ident costs a fraction of a threading.local attribute.
_busy: dict[int, int] = {}
_get_ident = _thread.get_ident


def current() -> TaskState:
    """The running logical task, created lazily for the main thread and unpatched threads."""
    state = CURRENT.get()
    if state is None:
        state = _lazy_state()
    return state


def _lazy_state() -> TaskState:
    state = _tls.state
    if state is None:
        t = threading.current_thread()
        if t is threading.main_thread():
            state = TaskState("main", t.name)
        else:
            state = TaskState("thread", t.name)
        state.stack = ()
        _tls.state = state
    CURRENT.set(state)
    return state


def activate(state: TaskState) -> contextvars.Token[TaskState | None]:
    """Make ``state`` the running task of the current context; returns the reset token."""
    return CURRENT.set(state)


def deactivate(token: contextvars.Token[TaskState | None]) -> None:
    """Undo :func:`activate` (must run in the same context)."""
    CURRENT.reset(token)


# --------------------------------------------------------------------------- sink, trace, stats

_sink: Sink | None = None
#: the sink takes batches (``emit_batch``): events wait in the outbox (see _deliver)
_batched = False


def _random_trace() -> int:
    # a UUIDv4 bit pattern without importing uuid (import cost)
    n = int.from_bytes(os.urandom(16), "big")
    return (n & ~(0xF << 76) | (0x4 << 76)) & ~(0x3 << 62) | (0x2 << 62)


_trace_id: int = _random_trace()
_states: Any = None  # weakref.WeakSet[TaskState], created below (needs TaskState defined)
_stat_lock = _allocate_lock()
_stats: dict[str, int] = {
    "dropped_reentrant": 0,
    "ignored_suspended": 0,
    "ignored_key_methods": 0,
    "sink_errors": 0,
    "recorder_errors": 0,
    "tasks": 0,
}
_emitted = itertools.count()
_sync_lock = _allocate_lock()
_pend_lock = _allocate_lock()  # taking a held-back access out of Entry.pend (_emit_items)


def _bump(name: str) -> None:
    with _stat_lock:
        _stats[name] += 1


def _internal_error() -> None:
    # A recorder bug or a hostile __hash__/__eq__: never propagate into the program under test.
    _bump("recorder_errors")


def _count_sink_errors(n: int) -> None:
    with _stat_lock:
        _stats["sink_errors"] += n


#: events on their way to a batching sink, in recording order (see raceway_sdk._outbox)
_box = Outbox(lambda: _sink, _busy, _count_sink_errors)
_outbox = _box.events  # the hot paths append here (one list for the life of the process)
_DRAIN_AT = Outbox.drain_at


def flush() -> None:
    """Hand every recorded event to the sink; call it before reading results from the sink.

    A sink with ``emit_batch(events)`` gets events in batches, in recording order (which
    lists every event after every event that happened before it), from the outbox's own
    thread; this hands over what is left and returns when the sink has it.
    """
    _box.flush()


#: busy flag of a thread on which the recorder calls the program's own ``__hash__``/``__eq__``/
#: ``__repr__`` of an item key: what those do is the recorder's activity, not the program's
_OWN_CALLS = 1 | 1 << 20


def _refused(flags: int) -> None:
    if flags & _OWN_CALLS == _OWN_CALLS:
        _bump("ignored_key_methods")
    else:
        _bump("dropped_reentrant" if flags & 1 else "ignored_suspended")


def set_sink(sink: Sink | None) -> Sink | None:
    """Install the sink (None disables recording); returns the previous one.

    Events still buffered for the previous sink are handed to it first.
    """
    global _sink, _batched
    if sink is not None and not callable(getattr(sink, "emit", None)):
        raise TypeError(f"a sink needs an emit(event) method, got {type(sink).__name__}")
    flush()
    old, _sink = _sink, sink
    _batched = callable(getattr(sink, "emit_batch", None))
    return old


def _deliver(state: TaskState, sink: Any, ev: Event) -> None:
    """Hand one event over: to the outbox (batching sink) or straight to the sink."""
    if _batched:
        _outbox.append(ev)
        next(_emitted)
        if len(_outbox) >= _DRAIN_AT:
            _box.wake()
        return
    try:
        sink.emit(ev)
    except KeyboardInterrupt:
        raise
    except BaseException:
        _bump("sink_errors")
        return
    next(_emitted)


def get_sink() -> Sink | None:
    """The installed sink (or None)."""
    return _sink


def set_trace(trace_id: int | None) -> None:
    """Start a new trace (one test); ``None`` starts an anonymous one.

    Identity strong references are dropped and every task's dedupe table is cleared, so the
    first access of the new trace is always emitted.
    """
    global _trace_id
    if trace_id is None:
        trace_id = _random_trace()
    if not isinstance(trace_id, int) or isinstance(trace_id, bool) or not 0 <= trace_id < 1 << 128:
        raise ValueError(f"trace_id must be a 128-bit non-negative int, got {trace_id!r}")
    _trace_id = trace_id
    states = list(_states)
    for state in states:
        state.seen = {}
    _identity.reset()
    _forget_finished_components(states)


def _forget_finished_components(states: list[TaskState]) -> None:
    """Drop finished tasks from the calling task's clock at a trace boundary.

    A session's main thread joins every task of every test, so its clock would grow with the
    whole session (and every event and sync operation with it). A finished task emits nothing
    more, and all it did is in earlier traces, which are analysed apart: its component can no
    longer order anything. Only the caller's own clock is touched (no other thread writes it).
    """
    live = {s.id for s in states if s.done_vc is None}
    _prune_sync_clocks(live)
    me = CURRENT.get()
    if me is None or me.quiet:
        return
    vc = me.vc
    if len(vc) <= 1:
        return
    live.add(me.id)
    if len(live) < len(vc):
        me.vc = {task: n for task, n in vc.items() if task in live}
        me.seen = {}


#: ids of objects whose identity entry got a clock from a release (locks, events, ...)
_synced: set[int] = set()


def _prune_sync_clocks(live: set[str]) -> None:
    """The same for the clocks that synchronisation objects keep: a lock used by every test
    would otherwise carry a component of every task that ever released it, and hand them all
    to whoever acquires it next (every later clock, event and sync operation as wide)."""
    table = _identity._table
    for key in list(_synced):
        ent = table.get(key)
        vc = ent.sync_vc if ent is not None else None
        if vc is None:
            _synced.discard(key)
            continue
        if len(vc) > 1 and not live.issuperset(vc):
            pruned = {task: n for task, n in vc.items() if task in live} or None
            with _sync_lock:  # a leaked thread may be releasing it right now: compare-and-set
                if ent.sync_vc is vc:  # type: ignore[union-attr]
                    ent.sync_vc = pruned  # type: ignore[union-attr]


def current_trace() -> int:
    """The trace events are currently stamped with."""
    return _trace_id


def enabled() -> bool:
    """True when events of the calling thread are recorded (a sink is set, not suspended)."""
    return _sink is not None and _get_ident() not in _busy


@contextmanager
def suspended() -> Iterator[None]:
    """Ignore the calling thread's activity (the recorder's and the transport's own work)."""
    tid = _get_ident()
    _busy[tid] = _busy.get(tid, 0) + 2
    try:
        yield
    finally:
        left = _busy[tid] - 2
        if left:
            _busy[tid] = left
        else:
            del _busy[tid]


def stats() -> dict[str, int]:
    """Counters: emitted events, drops by cause, tasks created, identity strong references."""
    with _stat_lock:
        out = dict(_stats)
    out["events"] = int(repr(_emitted)[6:-1])
    out["dropped"] = out["dropped_reentrant"] + out["sink_errors"] + out["recorder_errors"]
    out["identity_strong_refs"] = _identity.strong_count()
    return out


def reset_stats() -> None:
    """Zero the counters (the plugin does this per session)."""
    global _emitted
    with _stat_lock:
        for k in _stats:
            _stats[k] = 0
    _emitted = itertools.count()


# --------------------------------------------------------------------------- emission


#: The ``lock_set`` of every event the recorder emits: one shared empty list (the recorder
#: never knows held locks; consumers treat it as immutable, like ``vc`` and ``meta``).
_NO_LOCKS: list[str] = []


def _meta(state: TaskState) -> Metadata:
    meta = state.meta
    if meta is None or state.meta_gen != _meta_gen:
        meta = Metadata(
            state.id, _PID, _service_name, _environment, _TAGS, None, _INSTANCE, None, None
        )
        state.meta = meta
        state.meta_gen = _meta_gen
    return meta


def _send(state: TaskState, kind: str, data: dict[str, Any], ext: dict[str, Any]) -> None:
    """Hand one event to the sink. ``ext`` already holds ``task`` and ``trusted_vc``.

    The hot paths (accesses, sync operations) build their complete ``ext`` in one literal
    (no resize) and come here; the caller holds the per-thread busy flag.
    """
    sink = _sink
    if sink is None:
        return
    meta = state.meta
    if meta is None or state.meta_gen != _meta_gen:
        meta = _meta(state)
    _deliver(
        state,
        sink,
        Event(new_event_id(), _trace_id, None, time_ns(), kind, data, meta, state.vc, _NO_LOCKS, ext),
    )


def _emit(
    state: TaskState,
    kind: str,
    data: dict[str, Any],
    ext: dict[str, Any],
    duration_ns: int | None = None,
) -> None:
    # Caller holds the per-thread busy flag.
    sink = _sink
    if sink is None:
        return
    ext["task"] = state.id
    ext["trusted_vc"] = True
    meta = _meta(state)
    if duration_ns is not None:
        meta = Metadata(
            meta.thread_id,
            meta.process_id,
            meta.service_name,
            meta.environment,
            meta.tags,
            duration_ns,
            meta.instance_id,
            None,
            None,
        )
    _deliver(
        state,
        sink,
        Event(new_event_id(), _trace_id, None, time_ns(), kind, data, meta, state.vc, _NO_LOCKS, ext),
    )


_TASK_NS_BYTES = bytes.fromhex(_TASK_NS.replace("-", ""))


def _task_uuid(state: TaskState) -> str:
    """``str(uuid.uuid5(_TASK_NS, state.id))``, made once per task (sha1 + bit layout, ~1 us)."""
    u = state.uuid
    if u is None:
        from hashlib import sha1  # lazily: importing hashlib at startup costs milliseconds

        h = bytearray(sha1(_TASK_NS_BYTES + state.id.encode()).digest()[:16])
        h[6] = (h[6] & 0x0F) | 0x50  # version 5
        h[8] = (h[8] & 0x3F) | 0x80  # RFC 4122 variant
        x = h.hex()
        u = state.uuid = f"{x[:8]}-{x[8:12]}-{x[12:16]}-{x[16:20]}-{x[20:]}"
    return u


def _guarded(fn: Any, *args: Any) -> None:
    """``fn(*args)`` as the recorder: under the per-thread busy flag, errors counted."""
    tid = _get_ident()
    if tid in _busy:
        _refused(_busy[tid])
        return
    _busy[tid] = 1
    try:
        fn(*args)
    except Exception:
        _internal_error()
    finally:
        del _busy[tid]


def emit_custom(name: str, data: Any = None) -> None:
    """Emit ``Custom{name, data}`` from the running task (manual API, task markers)."""
    if _sink is not None:
        _guarded(lambda: _emit(current(), "Custom", {"name": name, "data": data}, {}))


def emit_event(
    kind: str,
    data: dict[str, Any],
    ext: dict[str, Any] | None = None,
    duration_ns: int | None = None,
) -> None:
    """Emit an event of any kind from the running task (HTTP, database, function calls)."""
    if _sink is not None:
        _guarded(lambda: _emit(current(), kind, data, dict(ext) if ext else {}, duration_ns))


# --------------------------------------------------------------------------- fork / join


def fork(kind: str, name: str, loop: str | None = None) -> TaskState:
    """Create a child of the running task (emits ``AsyncSpawn``); the parent ticks.

    The caller activates the child where it runs (:func:`activate`) and calls :func:`finish`.
    """
    tid = _get_ident()
    flags = _busy.get(tid, 0)
    parent = current()
    if flags:
        # Our own or the transport's activity: the child is a quiet, unrelated task.
        child = TaskState(kind, name, None, parent.id, loop)
        child.quiet = True
        _refused(flags)
        return child
    _busy[tid] = 1
    try:
        child = TaskState(kind, name, parent.vc, parent.id, loop)
        stack = _spawn_stack()
        child.stack = stack
        if _sink is not None:
            ext: dict[str, Any] = {
                "child": child.id,
                "child_name": name,
                "child_kind": kind,
                "origin_trace": child.origin_trace,
                "stack": stack,
            }
            if loop is not None:
                ext["child_loop"] = loop
            if parent.loop is not None:
                ext["loop"] = parent.loop
            _emit(
                parent, "AsyncSpawn", {"task_id": _task_uuid(child), "spawned_by": parent.id}, ext
            )
        _tick(parent)
        return child
    except Exception:
        _internal_error()
        child = TaskState(kind, name, None, parent.id, loop)
        child.quiet = True
        return child
    finally:
        del _busy[tid]


def _tick(state: TaskState) -> None:
    vc = dict(state.vc)
    vc[state.id] = vc.get(state.id, 0) + 1
    state.vc = vc
    state.seen = {}


def finish(state: TaskState) -> None:
    """The task ended: freeze its final clock for joiners, emit ``Custom raceway.task_end``."""
    state.done_vc = state.vc
    if state.quiet or _sink is None:
        return
    tid = _get_ident()
    if tid in _busy:
        _refused(_busy[tid])
        return
    _busy[tid] = 1
    try:
        _emit(state, "Custom", {"name": "raceway.task_end", "data": {"task": state.id}}, {})
    except Exception:
        _internal_error()
    finally:
        del _busy[tid]


def join(child: TaskState) -> None:
    """The running task waited for ``child`` to end (emits ``AsyncAwait``); it then ticks."""
    done = child.done_vc
    if done is None or child.quiet:
        return
    tid = _get_ident()
    if tid in _busy:
        _refused(_busy[tid])
        return
    _busy[tid] = 1
    try:
        state = current()
        # O(1) when already joined: the child ticks after every release/fork, so no clock it
        # published before ending carries its final component; holding that component means
        # having merged done_vc itself (a second join, Future.result() polled again, ...)
        cid = child.id
        if done.get(cid, 0) > state.vc.get(cid, 0):
            joined = vc_join(state.vc, done)  # the same dict when nothing is new
            if joined is not state.vc:
                state.vc = joined
        if _sink is not None:
            ext = {"child": child.id, "child_name": child.name, "child_kind": child.kind}
            if child.loop is not None:
                ext["child_loop"] = child.loop
            data = {"future_id": _task_uuid(child), "awaited_at": caller_location()}
            _emit(state, "AsyncAwait", data, ext)
        _tick(state)
    except Exception:
        _internal_error()
    finally:
        del _busy[tid]


def new_segment(state: TaskState) -> None:
    """An asyncio/trio step boundary of ``state``: later accesses belong to a new segment."""
    state.seg += 1
    state.seen = {}


# --------------------------------------------------------------------------- sync objects


class ClockSlot:
    """A bare clock holder for ``slot=`` (per-item queue tokens, barrier cycles).

    It carries the clock itself, like an identity entry does, without one: no weak reference,
    label or table entry per item. Any other ``slot`` object gets an identity entry.
    """

    __slots__ = ("sync_vc", "__weakref__")

    def __init__(self) -> None:
        self.sync_vc: dict[str, int] | None = None


def _entry(obj: object) -> _identity.Entry:
    # _identity.entry with its hit path inlined (sync objects are looked up on every operation)
    ent = _table.get(id(obj))
    if ent is not None:
        ref = ent.ref
        if (ref() if ref is not None else ent.strong) is obj:
            return ent
    return _identity.entry(obj)


def _sync_data(ent: _identity.Entry, lock_type: str, up: int, i: int) -> dict[str, Any]:
    """``data`` of a sync event: shared by consecutive events of one object, type, direction
    (``i``: 0 release, 1 acquire) and call site.

    Like ``vc`` and ``meta``, recorder-made sync payloads are immutable once emitted; a lock
    taken in a loop costs no new dict per event (memory: the engine keeps every event).
    """
    location = caller_location(up + 1)
    pair = ent.sync_data
    if pair is None:
        pair = ent.sync_data = [None, None]
    data = pair[i]
    if (
        data is None
        or data["location"] != location
        or data["lock_type"] != lock_type
        or data["lock_id"] is not ent.label
    ):
        data = pair[i] = {"lock_id": ent.label, "lock_type": lock_type, "location": location}
    return data


def _sync_ext(state: TaskState, i: int) -> dict[str, Any]:
    """``ext`` of a sync event (0: release, 1: acquire): one per task and direction."""
    pair = state.sync_ext
    if pair is None:
        pair = state.sync_ext = (
            {"sync": "release", "task": state.id, "trusted_vc": True},
            {"sync": "acquire", "task": state.id, "trusted_vc": True},
        )
    return pair[i]


def release(obj: object, lock_type: str, slot: object | None = None, _up: int = 0) -> None:
    """Release-like operation on ``obj``: it stores the running task's clock; the task ticks.

    Call it before the real release so no acquirer can get ahead of the stored clock.
    ``slot`` (default ``obj``) is the object that carries the clock, e.g. a per-item token
    of a queue (a :class:`ClockSlot` is cheapest); the event still names ``obj``.
    ``_up`` (instrumentation only): frames above the caller that are surely not the user's
    code, skipped without a walk when locating the call site.
    """
    tid = _get_ident()
    if tid in _busy:
        _refused(_busy[tid])
        return
    _busy[tid] = 1
    try:
        state = CURRENT.get()
        if state is None:
            state = _lazy_state()
        ent = _table.get(id(obj))  # _entry(obj), hit path inlined
        if ent is None or (ent.strong if ent.ref is None else ent.ref()) is not obj:
            ent = _identity.entry(obj)
        if slot is None:
            holder: Any = ent
            _synced.add(id(obj))
        elif type(slot) is ClockSlot or isinstance(slot, ClockSlot):
            holder = slot
        else:
            holder = _entry(slot)
        vc = state.vc
        while True:
            old = holder.sync_vc
            # vc_join(vc, old) is vc itself when it dominates (the releaser acquired this
            # object before, the usual case for locks): no copy of the clock
            new = vc if old is None or old is vc else vc_join(vc, old)
            # Compare-and-set, never a call while holding the private lock: a thread that
            # the GIL switch catches inside it would make every other releaser block and
            # hand the lock over by context switch (a lock convoy).
            with _sync_lock:
                if holder.sync_vc is old:
                    holder.sync_vc = new
                    break
        if _sink is not None:
            _send(state, "LockRelease", _sync_data(ent, lock_type, _up + 1, 0), _sync_ext(state, 0))
        # _tick(state), inlined
        vc = dict(state.vc)
        vc[state.id] = vc.get(state.id, 0) + 1
        state.vc = vc
        state.seen = {}
    except Exception:
        _internal_error()
    finally:
        del _busy[tid]


def acquire(obj: object, lock_type: str, slot: object | None = None, _up: int = 0) -> None:
    """Acquire-like operation on ``obj``: the running task joins the clock stored there.

    Call it after the real acquire succeeded. ``slot``, ``_up``: see :func:`release`.
    """
    tid = _get_ident()
    if tid in _busy:
        _refused(_busy[tid])
        return
    _busy[tid] = 1
    try:
        state = CURRENT.get()
        if state is None:
            state = _lazy_state()
        ent = _table.get(id(obj))  # _entry(obj), hit path inlined
        if ent is None or (ent.strong if ent.ref is None else ent.ref()) is not obj:
            ent = _identity.entry(obj)
        if slot is None:
            svc = ent.sync_vc
        elif type(slot) is ClockSlot or isinstance(slot, ClockSlot):
            svc = slot.sync_vc  # type: ignore[attr-defined]
        else:
            svc = _entry(slot).sync_vc
        if svc is not None:
            vc = state.vc
            joined = vc_join(vc, svc)  # the same dict when nothing is new
            if joined is not vc:
                state.vc = joined
                state.seen = {}
        if _sink is not None:
            _send(state, "LockAcquire", _sync_data(ent, lock_type, _up + 1, 1), _sync_ext(state, 1))
    except Exception:
        _internal_error()
    finally:
        del _busy[tid]


# --------------------------------------------------------------------------- accesses

_NOVALUE: Any = object()
_SIMPLE = (int, float, bool, type(None))
_table = _identity._table


def _cheap_value(value: Any) -> tuple[bool, Any]:
    t = type(value)
    if t is str:
        return True, value if len(value) <= 64 else value[:64] + "…"
    if t is bool or t is float or value is None:
        return True, value
    if t is int:
        return (True, value) if -(1 << 63) <= value < 1 << 64 else (False, None)
    return False, None


def _key_repr(key: Any) -> str:
    t = type(key)
    if t is str or t is int or t is bool or t is float or t is bytes or key is None:
        r = repr(key)
    elif t is tuple and all(type(k) in (str, int, bool, float, bytes, type(None)) for k in key):
        r = repr(key)
    else:
        try:
            return f"<{t.__name__}#{hash(key) & 0xFFFFFFFF:x}>"
        except Exception:
            return f"<{t.__name__}>"
    if len(r) > 60:
        r = f"{r[:40]}…#{hash(key) & 0xFFFFFFFF:x}"
    return r


def _normalise_item_key(key: Any) -> Any:
    if key is ALL or type(key) is slice:
        return ALL  # a slice touches a range: approximated as the whole container
    try:
        hash(key)
    except Exception:
        return ALL  # unhashable (fancy) index or a failing __hash__: the whole container
    return key


def access(obj: object, key: Any, access_type: str, site: Site, value: Any = _NOVALUE) -> None:
    """Record an access of ``obj``'s attribute (site.kind ``attr``) or item ``key``.

    ``key`` may be :data:`ALL` for the whole container. ``value`` (the value read or written)
    is kept only when cheap. Repeats with the same clock and segment are dropped here.
    """
    if _sink is not None:  # recording off: no call at all
        hook_access(obj, key, access_type, site, value, 3)  # 3: like a hook, one frame


def hook_access(
    obj: object, key: Any, access_type: str, site: Site, value: Any = _NOVALUE, up: int = 3
) -> None:
    """:func:`access` for the rewriter's hooks (not public API).

    ``up``: frames between this function's caller's caller and the access site that are
    raceway's own, counted from ``_access_slow`` (3 = the site called the hook that called
    this; 4 = through one more helper); a lower bound, see ``_site_stack``.
    """
    if _sink is None:
        return
    state = CURRENT.get()
    if state is None:
        state = _lazy_state()
    ent = _table.get(id(obj))
    skey = None
    if ent is not None:
        ref = ent.ref
        if (ref() if ref is not None else ent.strong) is obj:
            if ent.skip:
                return
            try:
                skey = (ent.serial, key, site, access_type)
                if skey in state.seen:
                    return
            except Exception:  # unhashable or hostile key: the slow path normalises it
                skey = None
        else:
            ent = None  # a dead object's entry: _identity.entry replaces it
    _access_slow(state, obj, ent, key, access_type, site, value, up, skey)


def _access_slow(
    state: TaskState,
    obj: object,
    ent: _identity.Entry | None,
    key: Any,
    access_type: str,
    site: Site,
    value: Any,
    up: int = 2,
    checked: tuple[Any, ...] | None = None,
) -> None:
    # checked: the dedupe key hook_access already looked up in state.seen (not found), for a
    # key that needs no normalising.
    # up: frames above this one that are surely raceway's (2: access(); 3: hook_access()).
    # The hot path of recording: the common case (a thread task, default variable name, a
    # stack already captured for this caller) inlines _site_stack and _send.
    tid = _get_ident()
    if tid in _busy:
        _refused(_busy[tid])
        return
    if state.quiet:
        return
    _busy[tid] = 1
    try:
        if ent is None:
            ent = _identity.entry(obj, state if _defer_private else None)
            if ent.skip:
                return
        seen = state.seen
        if checked is not None and type(key) is str:
            skey = checked  # attribute names and str item keys need no normalising
        else:
            if site.kind == ITEM:
                tk = type(key)
                if tk is not str and tk is not int and key is not ALL:
                    # from here on the key's own methods may run (hash, eq, repr): whatever
                    # they record is refused and counted apart, not as the program's loss
                    _busy[tid] = _OWN_CALLS
                    key = _normalise_item_key(key)
            elif type(key) is not str:
                key = str(key)
            skey = (ent.serial, key, site, access_type)
            if skey in seen:
                return
        sink = _sink
        owner = ent.owner
        if owner is not None and (
            owner is not state or site.name or state.loop is not None or not _defer_private
        ):
            # a second task (or an access that is never held back): what the first task held
            # back goes first, in its program order
            if owner is not state or not _defer_private:
                ent.owner = None
            pend = ent.pend
            if pend:
                _emit_pending(ent, pend)
            owner = None
        if owner is None:  # named when emitted: held-back accesses are named then
            cached = ent.locs.get(key)
            if cached is None:
                cached = _new_loc(ent, key, site)
        if site.name or state.loop is not None:
            _record(state, cached[0], cached[1], key, ent.name, access_type, site, value, up=up)
        elif sink is not None:
            # _site_stack's cache hit, inlined. A hit was stored from the site's own frame,
            # which is never raceway's: when the frame ``up`` levels above is that code, it
            # is the site's frame and needs no prefix test (else: the full walk)
            stack = None
            hit = state.stacks.get(site)
            if hit is not None:
                f: Any = sys._getframe(up)
                if f.f_code is hit[0]:
                    caller = f.f_back
                    if (
                        caller is not None
                        and caller.f_code is hit[1]
                        and caller.f_lasti == hit[2]
                    ):
                        stack = hit[3]
            if stack is None:
                stack = _site_stack(state, site, up)
            if owner is not None:  # only this task has touched the object: hold it back
                if value is not _NOVALUE:
                    ok, value = _cheap_value(value)
                    if not ok:
                        value = _NOVALUE
                pend = ent.pend
                if pend is not None:
                    # one extend: atomic, so an emitting task takes all nine fields or none
                    pend += (_trace_id, time_ns(), state.vc, state, key, site, access_type,
                             stack, value)
                    if ent.owner is not state or len(pend) >= _PEND_MAX * _PEND_ITEM:
                        _emit_pending(ent, pend)  # shared meanwhile, or too many: emit now
                    seen[skey] = True
                    return
                cached = ent.locs.get(key) or _new_loc(ent, key, site)  # (never: no list)
            ok, new_value = (False, None) if value is _NOVALUE else _cheap_value(value)
            if ok and not _batched:
                ext: dict[str, Any] = {
                    "loc": cached[0],
                    "func": site.func,
                    "stack": stack,
                    "value": new_value,
                    "task": state.id,
                    "trusted_vc": True,
                }
            else:
                # a batching sink (the engine) never rewrites an event: an access shares its
                # ``ext`` with the task's previous one at this site and location (the value,
                # if any, is ``data["new_value"]``, which the engine reads when ``ext`` has none)
                last = state.datas.get(site) if _batched else None
                if last is not None and last[0] is cached and last[3] is stack:
                    ext = last[4]
                else:
                    ext = {
                        "loc": cached[0],
                        "func": site.func,
                        "stack": stack,
                        "task": state.id,
                        "trusted_vc": True,
                    }
            if value is _NOVALUE:
                # a value-less payload only depends on (loc, site, access type): the task's
                # last one at this site is shared while they repeat (immutable once emitted)
                last = state.datas.get(site)
                if last is not None and last[0] is cached and last[1] is access_type:
                    data = last[2]
                else:
                    data = {
                        "variable": cached[1],
                        "old_value": None,
                        "new_value": None,
                        "location": site.location,
                        "access_type": access_type,
                    }
                state.datas[site] = (cached, access_type, data, stack, ext)
            else:
                data = {
                    "variable": cached[1],
                    "old_value": None,
                    "new_value": new_value,
                    "location": site.location,
                    "access_type": access_type,
                }
                if _batched:  # the ext to share; no data to share (None never matches)
                    state.datas[site] = (cached, None, None, stack, ext)
            # _send, inlined
            meta = state.meta
            if meta is None or state.meta_gen != _meta_gen:
                meta = _meta(state)
            ev = Event(
                new_event_id(),
                _trace_id,
                None,
                time_ns(),
                "StateChange",
                data,
                meta,
                state.vc,
                _NO_LOCKS,
                ext,
            )
            if _batched:  # _deliver, inlined
                _outbox.append(ev)
                next(_emitted)
                if len(_outbox) >= _DRAIN_AT:
                    _box.wake()
            else:
                _deliver(state, sink, ev)
        seen[skey] = True
    except Exception:
        _internal_error()
    finally:
        del _busy[tid]


def share(ent: _identity.Entry) -> None:
    """The object of ``ent`` is shared from now on: no access of it is held back any more, and
    the ones held back are emitted now (``api.mark_shared``)."""
    ent.owner = None
    pend = ent.pend
    if pend:
        _guarded(_emit_pending, ent, pend)


def _emit_pending(ent: _identity.Entry, pend: list[Any]) -> None:
    """Emit the accesses held back on ``ent`` (caller holds the busy flag), oldest first.

    Accesses are taken out one by one: a task that appended just as another task took the
    object over may emit alongside, and each access still goes out exactly once. Locations are named
    now (``mark_shared`` may have renamed the object since).
    """
    sink = _sink
    tid = _get_ident()
    flags = _busy.get(tid)
    _busy[tid] = _OWN_CALLS  # keys held back may be the program's objects (hash, eq, repr)
    try:
        _emit_items(ent, pend, sink)
    finally:
        if flags is None:
            _busy.pop(tid, None)
        else:
            _busy[tid] = flags


def _emit_items(ent: _identity.Entry, pend: list[Any], sink: Any) -> None:
    n = _PEND_ITEM
    while True:
        with _pend_lock:  # one access's fields taken whole, even with two emitting tasks
            item = pend[:n]
            del pend[:n]
        if len(item) < n:
            return
        trace, ts, vc, state, key, site, access_type, stack, value = item
        if sink is None or trace != _trace_id:
            continue  # recorded for a trace that is over
        cached = ent.locs.get(key)
        if cached is None:
            cached = _new_loc(ent, key, site)
        if value is _NOVALUE:
            value = None
            ext = {"loc": cached[0], "func": site.func, "stack": stack, "task": state.id,
                   "trusted_vc": True}
        else:
            ext = {"loc": cached[0], "func": site.func, "stack": stack, "value": value,
                   "task": state.id, "trusted_vc": True}
        data = {
            "variable": cached[1],
            "old_value": None,
            "new_value": value,
            "location": site.location,
            "access_type": access_type,
        }
        ev = Event(
            new_event_id(), trace, None, ts, "StateChange", data, _meta(state), vc, _NO_LOCKS,
            ext,
        )
        _deliver(state, sink, ev)


def _new_loc(ent: _identity.Entry, key: Any, site: Site) -> tuple[str, str]:
    """``(loc, variable)`` of ``key`` on the object of ``ent``, cached on the entry."""
    if ent.module:
        loc = f"{ent.label}.{key}"
        var = loc
    elif site.kind == ITEM:
        kr = "*" if key is ALL else _key_repr(key)
        loc = f"{ent.label}[{kr}]"
        var = f"{ent.name}[{kr}]"
    else:
        loc = f"{ent.label}.{key}"
        var = f"{ent.name}.{key}"
    locs = ent.locs
    if locs is _identity.NO_LOCS:
        locs = ent.locs = {}
    cached = locs[key] = (loc, var)
    return cached


def access_global(
    module: Any, name: str, access_type: str, site: Site, value: Any = _NOVALUE
) -> None:
    """Record an access of the module global ``module.name`` (``module``: name or module)."""
    if _sink is None:
        return
    state = CURRENT.get()
    if state is None:
        state = _lazy_state()
    modname = module if type(module) is str else getattr(module, "__name__", str(module))
    skey = (modname, name, site, access_type)
    if skey in state.seen:
        return
    tid = _get_ident()
    if tid in _busy:
        _refused(_busy[tid])
        return
    if state.quiet:
        return
    _busy[tid] = 1
    try:
        loc = f"{modname}.{name}"
        _record(state, loc, loc, name, modname, access_type, site, value)
        state.seen[skey] = True
    except Exception:
        _internal_error()
    finally:
        del _busy[tid]


def access_variable(
    variable: str,
    access_type: str,
    site: Site,
    value: Any = _NOVALUE,
    old_value: Any = _NOVALUE,
) -> None:
    """Record an access of a variable known only by name (manual API): ``loc`` = the name."""
    if _sink is None:
        return
    state = current()
    skey = ("", variable, site, access_type)
    if old_value is _NOVALUE and skey in state.seen:
        return
    tid = _get_ident()
    if tid in _busy:
        _refused(_busy[tid])
        return
    if state.quiet:
        return
    _busy[tid] = 1
    try:
        _record(state, variable, variable, variable, "", access_type, site, value, old_value)
        state.seen[skey] = True
    except Exception:
        _internal_error()
    finally:
        del _busy[tid]


def _record(
    state: TaskState,
    loc: str,
    var: str,
    key: Any,
    objname: str,
    access_type: str,
    site: Site,
    value: Any,
    old_value: Any = _NOVALUE,
    up: int = 1,
) -> None:
    # up: frames above the caller that are surely raceway's (see _site_stack)
    template = site.name
    if template:
        if "{" in template:
            try:
                var = template.format(obj=objname, key="*" if key is ALL else _key_repr(key))
            except (KeyError, IndexError, ValueError, AttributeError):
                pass
        else:
            var = template
    ext: dict[str, Any] = {
        "loc": loc,
        "func": site.func,
        "stack": _site_stack(state, site, up + 1),
    }
    new_value = None
    if value is not _NOVALUE:
        ok, v = _cheap_value(value)
        if ok:
            ext["value"] = v
            new_value = v
    if state.loop is not None:
        ext["loop"] = state.loop
        ext["seg"] = state.seg
    ext["task"] = state.id
    ext["trusted_vc"] = True
    old = None
    if old_value is not _NOVALUE:
        ok, v = _cheap_value(old_value)
        old = v if ok else None
    data = {
        "variable": var,
        "old_value": old,
        "new_value": new_value,
        "location": site.location,
        "access_type": access_type,
    }
    _send(state, "StateChange", data, ext)


# --------------------------------------------------------------------------- process fork


def _after_fork_in_child() -> None:
    # Task ids must stay globally unique: the child process continues as a new task.
    global _INSTANCE, _PID, _sync_lock, _pend_lock
    _INSTANCE = os.urandom(3).hex()
    _PID = os.getpid()
    # a thread that held one at fork time does not exist in the child
    _sync_lock = _allocate_lock()
    _pend_lock = _allocate_lock()
    # only the forking thread survives: other threads' flags must not stick to a reused ident
    mine = _busy.get(_get_ident())
    _busy.clear()
    if mine:
        _busy[_get_ident()] = mine
    _box.after_fork()  # the parent's recorded events are the parent's to deliver
    parent = CURRENT.get() or _tls.state
    child = TaskState(
        "process", f"pid {_PID}", parent.vc if parent else None, parent.id if parent else None
    )
    child.stack = ()
    _tls.state = child
    CURRENT.set(child)


def _init() -> None:
    global _states
    import weakref

    _states = weakref.WeakSet()
    if hasattr(os, "register_at_fork"):
        os.register_at_fork(after_in_child=_after_fork_in_child)


_init()


# --------------------------------------------------------------------------- C hot path

#: hook_access written in Python: the reference, and the fallback when the C version
#: (raceway_sdk/_speedups.c) is not built, is disabled, or the build has no GIL
py_hook_access = hook_access
#: the same for the sync events' acquire / release
py_acquire = acquire
py_release = release
_speedups: Any = None


def use_speedups(enable: bool = True) -> bool:
    """Route accesses and sync events through the C ``hook_access``/``acquire``/``release``
    (``enable``) or the Python ones; returns whether the C versions are in use now.
    ``RACEWAY_PURE_PYTHON=1`` makes the default Python.

    The C versions handle the common cases (same-epoch repeats, emitting an access of a
    shared object, holding back an access of a private one; a sync event of an object and task
    seen before) and hand the rest to ``_access_slow`` / ``py_acquire`` / ``py_release``; both
    produce the same events (the recorder tests run both ways).
    """
    global hook_access, acquire, release, _speedups
    if enable and _speedups is None:
        try:
            import sysconfig

            if sysconfig.get_config_var("Py_GIL_DISABLED"):
                return False  # its fast paths rely on the GIL for atomicity
            from raceway_sdk import _speedups as module  # type: ignore[attr-defined]
            from raceway_sdk.protocol import events

            module.bind(
                globals(), vars(events), _identity.Entry, TaskState, Site, vars(_stacks), ClockSlot
            )
        except ImportError:  # not built (no compiler at install time): Python it is
            return False
        _speedups = module
    fast = enable and _speedups is not None
    hook_access = _speedups.hook_access if fast else py_hook_access
    acquire = _speedups.acquire if fast else py_acquire
    release = _speedups.release if fast else py_release
    hooks = sys.modules.get("raceway_sdk.instrument.hooks")
    if hooks is not None:
        hooks._access = hook_access  # type: ignore[attr-defined]
    return hook_access is not py_hook_access


use_speedups(os.environ.get("RACEWAY_PURE_PYTHON", "") in ("", "0"))
