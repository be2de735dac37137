"""The recorder's fast paths keep their meaning: shared payloads, clock slots, stacks, flags.

These paths exist for speed (benchmarks/overhead.py); each test checks that an optimisation
did not change what is recorded: the same edges, locations, stacks and counters.
"""

from __future__ import annotations

import gc
import inspect
import os
import queue
import textwrap
import threading
import types
import uuid
import weakref
from collections import deque

import pytest
from raceway_sdk import _identity
from raceway_sdk import _recorder as rec
from raceway_sdk.instrument import rewrite, threads
from raceway_sdk.protocol.clock import happened_before
from raceway_sdk.protocol.events import new_event_id
from raceway_sdk.testing import CollectingSink, recording

SITE = rec.register_site(__file__, 20, "test", "")


class Box:
    def __init__(self) -> None:
        self.value = 0


@pytest.fixture
def sink():
    with recording(instrument=False) as s:
        yield s


# --------------------------------------------------------------------------- clock slots


def test_clock_slot_carries_the_release_to_the_acquire(sink: CollectingSink) -> None:
    q, slot = object(), rec.ClockSlot()
    producer = rec.fork("thread", "producer")
    consumer = rec.fork("thread", "consumer")
    token = rec.activate(producer)
    rec.release(q, "test.Queue", slot)
    released_at = dict(producer.vc)
    rec.deactivate(token)
    assert slot.sync_vc is not None and slot.sync_vc[producer.id] == released_at[producer.id] - 1
    token = rec.activate(consumer)
    rec.acquire(q, "test.Queue", slot)
    rec.deactivate(token)
    assert consumer.vc[producer.id] == slot.sync_vc[producer.id]
    # the object carries no clock of its own: the slot did
    assert _identity.entry(q).sync_vc is None
    kinds = [(e.kind, e.data["lock_type"]) for e in sink.events if e.kind.startswith("Lock")]
    assert kinds == [("LockRelease", "test.Queue"), ("LockAcquire", "test.Queue")]


def test_release_keeps_the_clock_when_it_dominates(sink: CollectingSink) -> None:
    lock = object()
    rec.release(lock, "test.Lock")
    first = _identity.entry(lock).sync_vc
    rec.acquire(lock, "test.Lock")
    rec.release(lock, "test.Lock")
    stored = _identity.entry(lock).sync_vc
    # the releaser's clock dominates the stored one: it is stored as is (no merged copy)
    assert first is not None and stored is not None
    assert all(stored.get(k, 0) >= v for k, v in first.items())
    assert stored[rec.current().id] == rec.current().vc[rec.current().id] - 1


# --------------------------------------------------------------------------- shared payloads


def _lock_events(sink: CollectingSink) -> list:
    return [e for e in sink.events if e.kind in ("LockAcquire", "LockRelease")]


def test_sync_payloads_are_shared_per_site_and_direction(sink: CollectingSink) -> None:
    lock = object()
    for _ in range(3):
        rec.acquire(lock, "test.Lock")  # one call site for the three acquires
        rec.release(lock, "test.Lock")  # and one for the releases
    evs = _lock_events(sink)
    acquires = [e for e in evs if e.kind == "LockAcquire"]
    releases = [e for e in evs if e.kind == "LockRelease"]
    assert len(acquires) == len(releases) == 3
    assert len({id(e.data) for e in acquires}) == 1
    assert len({id(e.data) for e in releases}) == 1
    assert acquires[0].data is not releases[0].data
    here = __file__
    assert acquires[0].data["location"].startswith(here + ":")
    assert acquires[0].data["location"] != releases[0].data["location"]
    assert acquires[0].ext == {"sync": "acquire", "task": rec.current().id, "trusted_vc": True}
    assert len({id(e.ext) for e in acquires}) == 1
    # every event still carries the clock it was emitted with
    assert len({id(e.vc) for e in releases}) == 3


def test_sync_payload_follows_the_call_site_and_the_name(sink: CollectingSink) -> None:
    lock = object()

    def site_a() -> None:
        rec.release(lock, "test.Lock")

    def site_b() -> None:
        rec.release(lock, "test.Lock")

    site_a()
    site_b()
    _identity.name(lock, "my_lock")
    site_b()
    a, b, named = _lock_events(sink)
    line_a = inspect.getsourcelines(site_a)[1] + 1
    assert a.data["location"] == f"{__file__}:{line_a}"
    assert b.data["location"] == f"{__file__}:{line_a + 3}"
    assert named.data["lock_id"].startswith("my_lock@") and b.data["lock_id"].startswith("object@")


def test_valueless_access_payload_shared_only_while_it_repeats(sink: CollectingSink) -> None:
    a, b = Box(), Box()
    state = rec.current()
    for _ in range(2):
        rec.access(a, "value", "Read", SITE)
        rec.new_segment(state)  # new epoch: the same access is emitted again
    rec.access(b, "value", "Read", SITE)
    rec.access(a, "value", "Write", SITE, 7)
    r1, r2, rb, w = sink.accesses()
    assert r1.data is r2.data and r1.ext is not r2.ext
    assert rb.data is not r1.data and rb.data["variable"] == "Box.value"
    assert rb.ext["loc"] != r1.ext["loc"]
    assert w.data["new_value"] == 7 and w.ext["value"] == 7 and r1.data["new_value"] is None


def test_events_share_one_empty_lock_set(sink: CollectingSink) -> None:
    rec.access(Box(), "value", "Read", SITE)
    rec.release(object(), "test.Lock")
    assert [e.lock_set for e in sink.events] == [[], []]
    assert sink.events[0].lock_set is sink.events[1].lock_set


# --------------------------------------------------------------------------- locations, stacks

SNIPPET = textwrap.dedent(
    """
    def through_helpers(holder, d):
        holder.items.append(1)
        d["k"] = 2
        return d.get("k")

    class Holder:
        def __init__(self):
            self.items = []
    """
)


@pytest.fixture(scope="module")
def snippet() -> types.ModuleType:
    m = types.ModuleType("hotpaths_snippet")
    m.__file__ = "/snippets/hotpaths.py"
    exec(rewrite.rewrite_source(SNIPPET, m.__file__), vars(m))
    return m


def test_stacks_start_at_the_access_site_through_every_hook_depth(snippet) -> None:
    with recording(instrument=False) as sink:
        holder = snippet.Holder()

        def caller() -> object:
            return snippet.through_helpers(holder, {})

        caller()
    rows = {(e.data["variable"], e.data["access_type"]): e.ext["stack"] for e in sink.accesses()}
    # list.append (call hook -> container op), d[k] = v (+ structural write), d.get (call hook)
    for key in (("list[*]", "AtomicRMW"), ("dict['k']", "Write"), ("dict[*]", "AtomicWrite"),
                ("dict['k']", "Read")):
        stack = rows[key]
        assert stack[0][0] == "/snippets/hotpaths.py" and stack[0][2] == "through_helpers"
        assert stack[1][0] == __file__ and stack[1][2].endswith("caller")


def test_caller_location_per_code_object(sink: CollectingSink) -> None:
    def one() -> str:
        return rec.caller_location()

    def two() -> str:
        return rec.caller_location()

    first = [one() for _ in range(3)]
    second = two()
    line = inspect.getsourcelines(one)[1] + 1
    assert first == [f"{__file__}:{line}"] * 3 and first[0] is first[1]
    assert second == f"{__file__}:{line + 3}"


def test_instrumented_lock_events_name_the_user_line() -> None:
    with recording(instrument=True) as sink:
        lock = threading.Lock()
        q: queue.Queue[int] = queue.Queue()
        sq: queue.SimpleQueue[int] = queue.SimpleQueue()
        base = inspect.currentframe().f_lineno  # type: ignore[union-attr]
        with lock:
            q.put(1)
        q.get()
        sq.put_nowait(2)
        sq.get()
    got = [(e.kind, e.data["lock_type"], int(e.data["location"].rsplit(":", 1)[1]) - base)
           for e in _lock_events(sink)]
    assert got == [
        ("LockAcquire", "threading.Lock", 1),
        ("LockRelease", "queue.Queue", 2),
        ("LockRelease", "threading.Lock", 1),
        ("LockAcquire", "queue.Queue", 3),
        ("LockRelease", "queue.SimpleQueue", 4),
        ("LockAcquire", "queue.SimpleQueue", 5),
    ]
    assert all(e.data["location"].startswith(__file__) for e in _lock_events(sink))


# --------------------------------------------------------------------------- patches


def test_method_patches_keep_name_signature_and_restore_exactly() -> None:
    original = vars(queue.Queue)["_put"], vars(threading.Semaphore)["release"]
    condition = threading.Condition
    signature = inspect.signature(queue.Queue.put)
    threads.install()
    try:
        patched = vars(queue.Queue)["_put"]
        assert patched is not original[0] and patched.__wrapped__ is original[0]
        assert patched.__name__ == "_put" and inspect.signature(queue.Queue.put) == signature
        assert vars(threading.Semaphore)["release"].__wrapped__ is original[1]
        assert threading.Condition is threads.InstrumentedCondition
    finally:
        threads.uninstall()
    assert (vars(queue.Queue)["_put"], vars(threading.Semaphore)["release"]) == original
    assert threading.Condition is condition


def test_site_cache_holds_weakrefable_containers_weakly(snippet) -> None:
    src = "def touch(x):\n    return x[0]\n"
    m = types.ModuleType("hotpaths_weak")
    m.__file__ = "/snippets/hotpaths_weak.py"
    exec(rewrite.rewrite_source(src, m.__file__), vars(m))
    rec.reset_stats()  # counters are process-wide: start from zero whatever ran before
    with recording(instrument=False) as sink:
        dq = deque([1])
        m.touch(dq)
        ref = weakref.ref(dq)
        del dq
        gc.collect()
        assert ref() is None  # the per-site cache did not keep the deque alive
        lst = [5]
        assert m.touch(lst) == 5  # lists cannot be weakly referenced: held, no error
    assert [e.data["variable"] for e in sink.accesses()] == ["deque[0]", "list[0]"]
    assert rec.stats()["recorder_errors"] == 0


# --------------------------------------------------------------------------- flags, forks


def test_busy_flags_are_per_thread_and_cleared(sink: CollectingSink) -> None:
    class Reentrant:
        def __init__(self, inner: CollectingSink) -> None:
            self.inner = inner

        def emit(self, event: object) -> None:
            rec.access(Box(), "value", "Read", SITE)  # raised while the sink runs: dropped
            self.inner.emit(event)

    rec.reset_stats()
    rec.set_sink(Reentrant(sink))
    rec.access(Box(), "value", "Write", SITE)
    with rec.suspended():
        with rec.suspended():
            rec.access(Box(), "value", "Write", SITE)
        assert not rec.enabled()
    assert rec.enabled()
    seen: list[bool] = []
    t = threading.Thread(target=lambda: seen.append(rec.enabled()))
    with rec.suspended():
        t.start()
        t.join()
    stats = rec.stats()
    assert seen == [True]  # suspending one thread does not silence another
    assert stats["dropped_reentrant"] == 1 and stats["ignored_suspended"] == 1
    assert len(sink.accesses()) == 1 and rec._busy == {}


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_forked_child_gets_new_id_prefix_and_clean_flags() -> None:
    parent_id = new_event_id()
    r, w = os.pipe()
    with rec.suspended():
        pid = os.fork()
        if pid == 0:  # pragma: no cover - child process
            try:
                child_id = new_event_id()
                clean = rec._busy.get(threading.get_ident()) == 2 and len(rec._busy) == 1
                os.write(w, f"{child_id} {int(clean)}".encode())
            finally:
                os._exit(0)
    os.close(w)  # the child's copy stays open until it exits: read() then sees EOF
    got = os.read(r, 200).decode().split()
    os.close(r)
    os.waitpid(pid, 0)
    assert len(got) == 2, "the child reported nothing"
    child_id, clean = got
    child = int(child_id)
    assert child >> 64 != parent_id >> 64
    u = uuid.UUID(int=child)
    assert u.version == 4 and u.variant == uuid.RFC_4122
    assert clean == "1"  # the forking thread keeps its own suspended() level, nothing else
    assert rec._busy == {}


def test_hb_still_orders_a_queue_handoff_between_real_threads() -> None:
    with recording(instrument=True) as sink:
        q: queue.Queue[Box] = queue.Queue()
        box = Box()

        def producer() -> None:
            rec.access(box, "value", "Write", SITE, 1)
            q.put(box)

        def consumer() -> None:
            rec.access(q.get(), "value", "Read", SITE)

        threads_ = [threading.Thread(target=producer), threading.Thread(target=consumer)]
        for t in threads_:
            t.start()
        for t in threads_:
            t.join()
    write, read = sink.accesses("Box.value")
    assert happened_before(write.ext["task"], write.vc, read.vc)


def test_repeated_join_keeps_the_edge_and_still_ticks(sink: CollectingSink) -> None:
    child = rec.fork("thread", "worker")
    token = rec.activate(child)
    other = object()
    rec.acquire(other, "test.Lock")  # nothing stored: the clock is unchanged
    rec.release(other, "test.Lock")  # publishes, then the child ticks
    rec.access(Box(), "value", "Write", SITE, 1)
    rec.deactivate(token)
    rec.finish(child)
    me = rec.current()
    rec.join(child)
    after_first = dict(me.vc)
    rec.join(child)  # already covered: no merge needed, still an event and a tick
    assert all(me.vc.get(k, 0) >= v for k, v in child.done_vc.items())
    assert me.vc[me.id] == after_first[me.id] + 1
    assert {k: v for k, v in me.vc.items() if k != me.id} == {
        k: v for k, v in after_first.items() if k != me.id
    }
    (write,) = sink.accesses("Box.value")
    assert happened_before(write.ext["task"], write.vc, me.vc)
    assert [e.kind for e in sink.events].count("AsyncAwait") == 2
