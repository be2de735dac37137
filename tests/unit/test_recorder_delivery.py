"""How recorded events reach a batching sink (the embedded engine), and what the recorder does
to stay cheap under threads: the outbox and its drainer thread, accesses held back until a
second task touches an object, polite lock acquisition, queue bookkeeping outside the mutex."""

from __future__ import annotations

import queue
import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from raceway_sdk import _recorder as rec
from raceway_sdk.instrument import threads
from raceway_sdk.protocol.clock import happened_before

from raceway_server.engine.core import Engine

W_SITE = rec.register_site(__file__, 20, "writer", "")
R_SITE = rec.register_site(__file__, 21, "reader", "")
K_SITE = rec.register_site(__file__, 22, "keys", "")
I_SITE = rec.register_site(__file__, 23, "items", "", kind=rec.ITEM)


class Box:
    def __init__(self) -> None:
        self.value = 0


class BatchSink:
    """A batching sink that keeps what it gets, batch by batch."""

    def __init__(self) -> None:
        self.batches: list[list[Any]] = []
        self.single: list[Any] = []

    def emit(self, event: Any) -> None:
        self.single.append(event)

    def emit_batch(self, events: list[Any]) -> None:
        self.batches.append(list(events))

    @property
    def events(self) -> list[Any]:
        return [e for b in self.batches for e in b]


@pytest.fixture
def batch_sink() -> Iterator[BatchSink]:
    sink = BatchSink()
    prev = rec.set_sink(sink)
    rec.set_trace(uuid.uuid4().int)
    threads.install()
    try:
        yield sink
    finally:
        threads.uninstall()
        rec.set_sink(prev)


@pytest.fixture
def engine_deferring() -> Iterator[tuple[Engine, int]]:
    engine = Engine()
    prev = rec.set_sink(engine)
    trace = uuid.uuid4().int
    rec.set_trace(trace)
    rec.configure(defer_private=True)
    threads.install()
    try:
        yield engine, trace
    finally:
        threads.uninstall()
        rec.configure(defer_private=False)
        rec.set_sink(prev)


def _run_threads(*targets: Any) -> None:
    """Start a thread per target, then join them all (each within 60 s)."""
    ts = [threading.Thread(target=t) for t in targets]
    for t in ts:
        t.start()
    for t in ts:
        t.join(timeout=60)
    assert not any(t.is_alive() for t in ts), "a thread did not finish"


def _box_accesses(engine: Engine, trace: int, box: Box) -> list[Any]:
    label = rec._identity.entry(box).label  # (its current name)
    return [
        e for e in engine.trace_events(trace)
        if e.kind == "StateChange" and e.ext.get("loc", "").startswith(label + ".")
    ]


# ------------------------------------------------------------------------------ the outbox


def test_batching_sink_gets_every_event_after_everything_that_happened_before_it(
    batch_sink: BatchSink,
) -> None:
    lock = threading.Lock()
    box = Box()

    def work(n: int) -> None:
        for _ in range(n):
            with lock:
                rec.access(box, "value", "Read", R_SITE)
                rec.access(box, "value", "Write", W_SITE, box.value + 1)
                box.value += 1

    _run_threads(*[lambda: work(60)] * 3)
    rec.flush()
    events = batch_sink.events
    assert not batch_sink.single  # a batching sink only ever gets batches
    kinds = {e.kind for e in events}
    assert {"StateChange", "LockAcquire", "LockRelease", "AsyncSpawn"} <= kinds
    assert sum(1 for e in events if e.kind == "StateChange") == 3 * 60 * 2
    ids = [e.id for e in events]
    assert len(set(ids)) == len(ids)  # each event delivered once
    trusted = [e for e in events if e.ext and e.ext.get("task")]
    for i, later in enumerate(trusted):
        for earlier in trusted[i + 1 :]:
            # nothing arrives before an event that happened before it
            assert not happened_before(earlier.ext["task"], earlier.vc, later.vc) or (
                earlier.vc == later.vc
            )


def test_flush_hands_over_what_waits_and_set_sink_flushes_to_the_old_sink(
    batch_sink: BatchSink,
) -> None:
    box = Box()
    for i in range(10):
        rec.access(box, f"a{i}", "Write", K_SITE, i)
    assert len(batch_sink.events) == 0  # below the drain mark: still in the outbox
    rec.flush()
    assert len(batch_sink.events) == 10
    rec.access(box, "late", "Write", K_SITE, 1)
    other = BatchSink()
    rec.set_sink(other)
    try:
        assert [e.ext["loc"].rsplit(".", 1)[1] for e in batch_sink.events[10:]] == ["late"]
        assert other.events == []
    finally:
        rec.set_sink(batch_sink)


def test_the_drainer_delivers_without_a_flush_and_is_not_a_threading_thread(
    batch_sink: BatchSink,
) -> None:
    before = threading.active_count()
    names = {t.name for t in threading.enumerate()}
    box = Box()
    n = rec._DRAIN_AT + 50
    for i in range(n):
        rec.access(box, f"k{i}", "Write", K_SITE, i)
    deadline = time.monotonic() + 10
    while len(batch_sink.events) < rec._DRAIN_AT and time.monotonic() < deadline:
        time.sleep(0.01)
    assert len(batch_sink.events) >= rec._DRAIN_AT
    assert threading.active_count() == before
    assert {t.name for t in threading.enumerate()} == names
    rec.flush()
    assert len(batch_sink.events) == n


def test_a_failing_batch_is_counted_and_recording_goes_on() -> None:
    class Broken(BatchSink):
        def emit_batch(self, events: list[Any]) -> None:
            raise RuntimeError("sink down")

    sink = Broken()
    prev = rec.set_sink(sink)
    try:
        before = rec.stats()["sink_errors"]
        box = Box()
        for i in range(7):
            rec.access(box, f"e{i}", "Write", K_SITE, i)
        rec.flush()
        assert rec.stats()["sink_errors"] == before + 7
        ok = BatchSink()
        rec.set_sink(ok)
        rec.access(box, "after", "Write", K_SITE, 1)
        rec.flush()
        assert len(ok.events) == 1
    finally:
        rec.set_sink(prev)


# ------------------------------------------------------------------------------ held back


def test_an_object_only_one_task_touches_sends_nothing(
    engine_deferring: tuple[Engine, int],
) -> None:
    engine, trace = engine_deferring
    box = Box()
    lock = threading.Lock()

    def private() -> None:
        for i in range(5):
            with lock:  # a new epoch each time: nothing is deduplicated
                rec.access(box, "value", "Write", W_SITE, i)
                rec.access(box, "value", "Read", R_SITE)

    t = threading.Thread(target=private)
    t.start()
    t.join()
    rec.flush()
    assert _box_accesses(engine, trace, box) == []
    assert any(e.kind == "LockRelease" for e in engine.trace_events(trace))


def test_a_second_task_brings_the_first_tasks_accesses_and_the_race_is_found(
    engine_deferring: tuple[Engine, int],
) -> None:
    engine, trace = engine_deferring
    box = Box()
    go = threads._raw_allocate_lock()  # raw: no happens-before between the two threads
    go.acquire()

    def writer() -> None:
        rec.access(box, "value", "Write", W_SITE, 1)
        box.value = 1
        go.release()

    def reader() -> None:
        go.acquire()
        rec.access(box, "value", "Read", R_SITE)

    _run_threads(writer, reader)
    rec.flush()
    got = _box_accesses(engine, trace, box)
    assert [e.data["access_type"] for e in got] == ["Write", "Read"]  # first task's go first
    assert got[0].ext["value"] == 1 and got[0].ext["task"] != got[1].ext["task"]
    keys = {r.key for r in engine.races(trace)}
    assert (f"{__file__}:20", f"{__file__}:21") in keys


class _CountingKey:
    """An item key whose __hash__ records an access of its own (cachetools' _HashedTuple
    caches its hash in an attribute): run by the recorder when it names a held-back access."""

    def __init__(self) -> None:
        self.hashed = 0

    def __hash__(self) -> int:
        rec.access(self, "hashed", "Read", R_SITE)
        return 11

    def __repr__(self) -> str:
        return "CountingKey"


def test_a_held_back_keys_own_methods_are_the_recorders_activity_not_lost_events(
    engine_deferring: tuple[Engine, int],
) -> None:
    engine, trace = engine_deferring
    rec.reset_stats()
    d: dict[object, int] = {}
    key = _CountingKey()
    done = threads._raw_allocate_lock()
    done.acquire()

    def first() -> None:  # holds its write back: only it has touched d
        rec.access(d, key, "Write", I_SITE)
        done.release()

    def second() -> None:  # a second task reads d whole: the held-back write is named now
        done.acquire()
        rec.access(d, rec.ALL, "Read", I_SITE)

    _run_threads(first, second)
    rec.flush()
    mine = [e for e in engine.trace_events(trace)
            if e.kind == "StateChange" and e.data["variable"].startswith("dict[")]
    assert [(e.data["variable"], e.data["access_type"]) for e in mine] == [
        ("dict[<_CountingKey#b>]", "Write"), ("dict[*]", "Read"),
    ]
    stats = rec.stats()
    assert stats["ignored_key_methods"] >= 1 and stats["dropped"] == 0


def test_held_back_accesses_keep_their_clocks_so_ordered_tasks_do_not_race(
    engine_deferring: tuple[Engine, int],
) -> None:
    engine, trace = engine_deferring
    box = Box()

    def writer() -> None:
        rec.access(box, "value", "Write", W_SITE, 2)

    def reader() -> None:
        rec.access(box, "value", "Read", R_SITE)

    first = threading.Thread(target=writer)
    first.start()
    first.join()  # the join orders the writer before the reader starts
    second = threading.Thread(target=reader)
    second.start()
    second.join()
    rec.flush()
    assert len(_box_accesses(engine, trace, box)) == 2
    assert engine.races(trace) == []


def test_held_back_accesses_are_bounded_per_object(
    engine_deferring: tuple[Engine, int],
) -> None:
    engine, trace = engine_deferring
    box = Box()
    lock = threading.Lock()
    n = rec._PEND_MAX + 10
    for i in range(n):
        with lock:
            rec.access(box, "value", "Write", W_SITE, i)
    rec.flush()
    # the first _PEND_MAX went out when the bound was reached; the rest still waits
    assert len(_box_accesses(engine, trace, box)) == rec._PEND_MAX
    held = rec._identity.entry(box).pend or []
    assert len(held) == (n - rec._PEND_MAX) * rec._PEND_ITEM


def test_without_deferral_every_access_is_sent(batch_sink: BatchSink) -> None:
    box = Box()
    lock = threading.Lock()
    for i in range(4):
        with lock:
            rec.access(box, "value", "Write", W_SITE, i)
    rec.flush()
    assert sum(1 for e in batch_sink.events if e.kind == "StateChange") == 4


# ------------------------------------------------------------------------------ locks, queues


def test_contended_instrumented_locks_stay_exclusive_and_keep_their_timeouts(
    batch_sink: BatchSink,
) -> None:
    lock, rlock = threading.Lock(), threading.RLock()
    assert isinstance(lock, threads.InstrumentedLock)
    counts = {"with": 0, "acquire": 0, "rlock": 0}

    def hammer() -> None:
        for _ in range(500):
            with lock:
                v = counts["with"]
                time.sleep(0) if v % 50 == 0 else None  # let the others queue up now and then
                counts["with"] = v + 1
            lock.acquire()
            try:
                counts["acquire"] += 1
            finally:
                lock.release()
            with rlock, rlock:
                counts["rlock"] += 1

    _run_threads(*[hammer] * 4)
    assert counts == {"with": 2000, "acquire": 2000, "rlock": 2000}

    held = threading.Event()
    done = threading.Event()

    def holder() -> None:
        with lock:
            held.set()
            done.wait(10)

    h = threading.Thread(target=holder)
    h.start()
    assert held.wait(10)
    t0 = time.monotonic()
    assert lock.acquire(timeout=0.05) is False
    assert time.monotonic() - t0 < 5
    assert lock.acquire(False) is False
    done.set()
    h.join()
    assert lock.acquire() is True
    lock.release()


def test_a_put_that_fails_leaves_no_token_behind(batch_sink: BatchSink) -> None:
    q: queue.Queue[int] = queue.Queue(maxsize=1)
    q.put(1)
    with pytest.raises(queue.Full):
        q.put_nowait(2)
    with pytest.raises(queue.Full):
        q.put(3, timeout=0.01)
    assert not threads._put_tokens and not threads._got_tokens
    assert q.get() == 1
    with pytest.raises(queue.Empty):
        q.get_nowait()
    assert not threads._got_tokens
    assert q.__dict__.get("_raceway_items") == {}


def test_the_same_object_put_by_two_threads_pairs_each_get_with_a_put(
    batch_sink: BatchSink,
) -> None:
    q: queue.Queue[Any] = queue.Queue()
    item = ("shared", "item")
    _run_threads(*[lambda: q.put(item)] * 2)
    assert q.get() is item and q.get() is item
    rec.flush()
    acquires = [e for e in batch_sink.events
                if e.kind == "LockAcquire" and e.data["lock_type"] == "queue.Queue"]
    releases = [e for e in batch_sink.events
                if e.kind == "LockRelease" and e.data["lock_type"] == "queue.Queue"]
    assert len(acquires) == 2 and len(releases) == 2
    for rel in releases:  # each put's clock reached the getter
        assert any(happened_before(rel.ext["task"], rel.vc, acq.vc) for acq in acquires)


# ------------------------------------------------------------------------------ identity memory


def test_temporary_containers_are_not_kept_alive_for_the_whole_trace(
    batch_sink: BatchSink,
) -> None:
    from raceway_sdk import _identity

    kept = [[i] for i in range(5)]
    for k in kept:
        rec.access(k, 0, "Write", rec.register_site(__file__, 30, "t", "", kind=rec.ITEM))
    labels = [_identity.entry(k).label for k in kept]
    before = _identity.strong_count()
    n = 3 * _identity._SWEEP_MIN
    site = rec.register_site(__file__, 31, "t", "", kind=rec.ITEM)
    for i in range(n):
        rec.access([i], 0, "Read", site)  # a fresh list that dies right after
    # swept whenever the count doubled: far fewer than one entry per temporary list
    assert _identity.strong_count() - before < n // 2
    assert [_identity.entry(k).label for k in kept] == labels  # live objects keep their serial


def test_mark_shared_sends_what_was_held_back_and_holds_nothing_back_after(
    engine_deferring: tuple[Engine, int],
) -> None:
    from raceway_sdk import api

    engine, trace = engine_deferring
    box = Box()
    lock = threading.Lock()
    with lock:
        rec.access(box, "value", "Write", W_SITE, 1)
    rec.flush()
    assert _box_accesses(engine, trace, box) == []
    api.mark_shared(box, "the_box")
    with lock:
        rec.access(box, "value", "Read", R_SITE)
    rec.flush()
    got = _box_accesses(engine, trace, box)
    assert [e.data["access_type"] for e in got] == ["Write", "Read"]
    assert got[0].data["variable"].startswith("the_box")


def test_a_lock_every_test_uses_forgets_the_tasks_of_earlier_tests(batch_sink: BatchSink) -> None:
    lock = threading.Lock()  # as a module-level lock would be
    stop = threading.Event()

    def use() -> None:
        with lock:
            pass

    def leaked() -> None:
        with lock:
            pass
        stop.wait(10)

    for _ in range(3):  # three earlier "tests", each with its own threads
        _run_threads(*[use] * 4)
    left = threading.Thread(target=leaked)
    left.start()
    try:
        while not lock.locked() and not left.is_alive():
            time.sleep(0.001)
        time.sleep(0.05)
        ent = rec._identity.entry(lock)
        assert ent.sync_vc is not None and len(ent.sync_vc) >= 12
        rec.set_trace(uuid.uuid4().int)  # the next test
        kept = set(ent.sync_vc or {})
        live = {s.id for s in list(rec._states) if s.done_vc is None}
        assert kept <= live and len(kept) <= 3  # the main task and the leaked thread's
        with lock:  # the next test's acquisition joins no dead task
            assert len(rec.current().vc) <= 3
    finally:
        stop.set()
        left.join()


def test_flush_from_sink_code_on_the_drainer_does_not_hang() -> None:
    flushed: list[int] = []

    class Reentrant(BatchSink):
        def emit_batch(self, events: list[Any]) -> None:
            super().emit_batch(events)
            rec.flush()  # e.g. an on_race callback that reads results
            flushed.append(len(events))

    sink = Reentrant()
    prev = rec.set_sink(sink)
    try:
        box = Box()
        for i in range(rec._DRAIN_AT + 5):
            rec.access(box, f"r{i}", "Write", K_SITE, i)
        deadline = time.monotonic() + 10
        while not flushed and time.monotonic() < deadline:
            time.sleep(0.01)
        assert flushed  # the drainer came back from its own flush()
        rec.access(box, "last", "Write", K_SITE, 1)
        rec.flush()  # this thread hands over, and the sink flushes from it again
        assert len(sink.events) == rec._DRAIN_AT + 6
    finally:
        rec.set_sink(prev)
