"""Thread-world happens-before edges, with real threads: one ordering test per primitive and a
counter-test showing the accesses are concurrent without it."""

from __future__ import annotations

import _thread
import asyncio
import concurrent.futures as cf
import concurrent.futures._base as futures_base
import gc
import queue
import threading
import time

import pytest
from raceway_sdk import _identity
from raceway_sdk import _recorder as rec
from raceway_sdk.instrument import threads
from raceway_sdk.testing import CollectingSink, concurrent, ordered, recording

W = rec.register_site(__file__, 1, "writer", "")
R = rec.register_site(__file__, 2, "reader", "")


class Shared:
    def __init__(self) -> None:
        self.value = 0


def write(obj: Shared, name: str = "value") -> None:
    rec.access(obj, name, "Write", W)


def read(obj: Shared, name: str = "value") -> None:
    rec.access(obj, name, "Read", R)


@pytest.fixture
def sink():
    rec.reset_stats()
    with recording(instrument=False) as s:
        threads.install()
        try:
            yield s
        finally:
            threads.uninstall()
    assert rec.stats()["recorder_errors"] == 0


def accesses(sink: CollectingSink, obj: Shared, name: str = "value"):
    return sink.accesses(loc=f"{_identity.label(obj)}.{name}")


def run_threads(*fns) -> None:
    ts = [threading.Thread(target=f) for f in fns]
    for t in ts:
        t.start()
    for t in ts:
        t.join()


# ----------------------------------------------------------------------------- threads


def test_write_before_start_and_read_after_join_are_ordered(sink) -> None:
    s = Shared()
    write(s)
    t = threading.Thread(target=write, args=(s,), name="worker")
    t.start()
    t.join()
    read(s)
    w_main, w_thread, r_main = accesses(sink, s)
    assert w_thread.task != w_main.task
    assert sink.tasks()[w_thread.task]["kind"] == "thread"
    assert sink.tasks()[w_thread.task]["name"] == "worker"
    assert ordered(w_main, w_thread) and ordered(w_thread, r_main)


def test_access_after_start_without_join_is_concurrent(sink) -> None:
    s = Shared()
    gate = threads._raw_allocate_lock()  # raw (created before install semantics): no edge
    t = threading.Thread(target=write, args=(s,))
    t.start()
    write(s)
    t.join(timeout=5)
    w_thread, w_main = sorted(
        accesses(sink, s), key=lambda e: e.task != t.__dict__["_raceway_task"].id
    )
    assert concurrent(w_thread, w_main)
    del gate


def test_join_timeout_on_live_thread_gives_no_edge(sink) -> None:
    s = Shared()
    go = threading.Event()
    go_raw = threads._raw_allocate_lock()
    go_raw.acquire()

    def body() -> None:
        write(s)
        go_raw.acquire()  # wait for the main thread (no edge)

    t = threading.Thread(target=body)
    t.start()
    while not accesses(sink, s):
        time.sleep(0.001)
    t.join(timeout=0.01)
    assert t.is_alive()
    read(s)
    go_raw.release()
    t.join()
    w, r = accesses(sink, s)
    assert concurrent(w, r)
    del go


def test_timer_is_a_forked_task(sink) -> None:
    s = Shared()
    write(s)
    t = threading.Timer(0.001, write, args=(s,))
    t.start()
    t.join()
    read(s)
    w0, w1, r = accesses(sink, s)
    assert sink.tasks()[w1.task]["kind"] == "timer"
    assert ordered(w0, w1) and ordered(w1, r)


def test_sibling_threads_are_concurrent(sink) -> None:
    s = Shared()
    run_threads(lambda: write(s), lambda: write(s))
    a, b = accesses(sink, s)
    assert concurrent(a, b)


# ----------------------------------------------------------------------------- locks


@pytest.mark.parametrize("factory", [lambda: threading.Lock(), lambda: threading.RLock()])
def test_lock_orders_critical_sections(sink, factory) -> None:
    s = Shared()
    lock = factory()
    assert isinstance(lock, (threads.InstrumentedLock, threads.InstrumentedRLock))

    def body() -> None:
        with lock:
            read(s)
            write(s)

    run_threads(body, body)
    r1, w1, r2, w2 = accesses(sink, s)
    assert ordered(w1, r2) and ordered(w1, w2)
    assert sink.of_kind("LockAcquire") and sink.of_kind("LockRelease")


def test_rlock_reentrant_and_condition_methods(sink) -> None:
    lock = threading.RLock()
    with lock:
        with lock:
            assert lock._is_owned()
    assert not lock._is_owned()
    assert lock.acquire(blocking=False)
    lock.release()
    with pytest.raises(RuntimeError):
        lock.release()


def test_lock_acquire_without_blocking_and_timeout(sink) -> None:
    lock = threading.Lock()
    assert lock.acquire()
    assert not lock.acquire(blocking=False)
    assert not lock.acquire(timeout=0.01)
    assert lock.locked()
    lock.release()
    with pytest.raises(RuntimeError):
        lock.release()
    assert len(sink.of_kind("LockAcquire")) == 1 and len(sink.of_kind("LockRelease")) == 1


def test_without_lock_writes_are_concurrent(sink) -> None:
    s = Shared()
    run_threads(lambda: (read(s), write(s)), lambda: (read(s), write(s)))
    r1, w1, r2, w2 = accesses(sink, s)
    assert concurrent(w1, w2) and (concurrent(w1, r2) or concurrent(w2, r1))


def test_isinstance_checks_keep_working(sink) -> None:
    raw = threads._raw_allocate_lock()
    assert isinstance(threading.Lock(), threading.Lock)
    assert isinstance(raw, threading.Lock)
    assert isinstance(threading.RLock(), threading.RLock)
    q = queue.SimpleQueue()
    assert isinstance(q, queue.SimpleQueue) and isinstance(q, threads._raw_simple_queue)


def test_stdlib_internal_locks_stay_raw(sink) -> None:
    import logging

    q = queue.Queue()
    assert type(q.mutex) is threads._raw_lock_type
    handler = logging.StreamHandler()
    assert type(handler.lock) is threads._raw_rlock_type
    assert type(threading.Event()._cond._lock) is threads._raw_lock_type
    assert "_raceway_on" not in cf.Future()._condition.__dict__


def test_locks_created_before_install_work_and_give_no_edge() -> None:
    before = threading.Lock()
    with recording(instrument=False) as sink:
        threads.install()
        try:
            s = Shared()

            def body() -> None:
                with before:
                    write(s)

            run_threads(body, body)
        finally:
            threads.uninstall()
    a, b = sink.accesses("Shared.value")
    assert concurrent(a, b)
    assert not sink.of_kind("LockAcquire")


def test_instrumented_lock_survives_uninstall() -> None:
    with recording(instrument=False):
        threads.install()
        lock = threading.Lock()
        threads.uninstall()
    with lock:
        assert lock.locked()
    assert not lock.locked()


# ----------------------------------------------------------------------------- Condition


@pytest.mark.parametrize("lock_kind", ["default", "none", "raw"])
def test_condition_notify_wakes_in_order(lock_kind, sink) -> None:
    s = Shared()
    if lock_kind == "raw":
        cond = threading.Condition(threads._raw_allocate_lock())
    elif lock_kind == "none":
        cond = threading.Condition(None)
    else:
        cond = threading.Condition()
    if lock_kind != "raw":
        assert (
            isinstance(cond._lock, threads.InstrumentedRLock)
            and type(cond._lock) is not threads._raw_rlock_type
        )
    ready: list[bool] = []

    def consumer() -> None:
        with cond:
            cond.wait_for(lambda: ready, timeout=5)
        read(s)

    def producer() -> None:
        write(s)
        deadline = time.monotonic() + 5
        while not cond._waiters and time.monotonic() < deadline:  # the consumer waits first
            time.sleep(0.001)
        with cond:
            ready.append(True)
            cond.notify_all()

    c = threading.Thread(target=consumer)
    c.start()
    p = threading.Thread(target=producer)
    p.start()
    p.join()
    c.join()
    w, r = accesses(sink, s)
    assert ordered(w, r)


def test_internal_conditions_stay_plain_and_user_subclasses_are_instrumented(sink) -> None:
    q = queue.Queue()
    assert type(q.not_empty) is threads._raw_condition  # no wrapper on a queue's notify
    assert isinstance(q.not_empty, threading.Condition)  # while threading.Condition is ours
    assert type(threading.Event()._cond) is threads._raw_condition

    class Mine(threading.Condition):
        pass

    s = Shared()
    cond = Mine()
    assert isinstance(cond, threads.InstrumentedCondition) and cond._raceway_on
    assert isinstance(cond._lock, threads.InstrumentedRLock)
    got: list[int] = []

    def consumer() -> None:
        with cond:
            cond.wait_for(lambda: got, timeout=5)
        read(s)

    def producer() -> None:
        write(s)
        with cond:
            got.append(1)
            cond.notify()

    run_threads(consumer, producer)
    w, r = accesses(sink, s)
    assert ordered(w, r)


def test_condition_timeout_without_notify_is_concurrent(sink) -> None:
    s = Shared()
    cond = threading.Condition(threads._raw_allocate_lock())  # raw lock: only notify -> wake counts

    def waiter() -> None:
        with cond:
            cond.wait(timeout=0.02)
        read(s)

    run_threads(lambda: write(s), waiter)
    w, r = sorted(accesses(sink, s), key=lambda e: e.data["access_type"] != "Write")
    assert concurrent(w, r)


# ----------------------------------------------------------------------------- semaphores


@pytest.mark.parametrize("cls", [threading.Semaphore, threading.BoundedSemaphore])
def test_semaphore_release_then_acquire_orders(sink, cls) -> None:
    s = Shared()
    sem = cls(1)
    sem.acquire()

    def first() -> None:
        write(s)
        sem.release()

    def second() -> None:
        with sem:
            read(s)

    t2 = threading.Thread(target=second)
    t2.start()
    t1 = threading.Thread(target=first)
    t1.start()
    t1.join()
    t2.join()
    w, r = accesses(sink, s)
    assert ordered(w, r)


def test_semaphore_with_free_permits_gives_no_edge(sink) -> None:
    s = Shared()
    sem = threading.Semaphore(2)
    inside = [threads._raw_allocate_lock() for _ in range(2)]  # raw: scheduling, no edges
    for lock in inside:
        lock.acquire()

    def body(me: int) -> None:
        with sem:
            write(s)
            inside[me].release()  # "I hold a permit"
            inside[1 - me].acquire(timeout=5)  # both hold one before either releases
            inside[1 - me].release()

    run_threads(lambda: body(0), lambda: body(1))
    a, b = accesses(sink, s)
    assert concurrent(a, b)


# ----------------------------------------------------------------------------- Event, Barrier


@pytest.mark.parametrize("how", ["wait", "is_set"])
def test_event_set_orders_waiter(sink, how) -> None:
    s = Shared()
    ev = threading.Event()

    def waiter() -> None:
        if how == "wait":
            assert ev.wait(5)
        else:
            while not ev.is_set():
                time.sleep(0.001)
        read(s)

    def setter() -> None:
        write(s)
        ev.set()

    run_threads(waiter, setter)
    w, r = accesses(sink, s)
    assert ordered(w, r)


def test_event_wait_timeout_gives_no_edge(sink) -> None:
    s = Shared()
    ev = threading.Event()

    def waiter() -> None:
        assert not ev.wait(0.01)
        read(s)

    run_threads(lambda: write(s), waiter)
    w, r = sorted(accesses(sink, s), key=lambda e: e.data["access_type"] != "Write")
    assert concurrent(w, r)


def test_barrier_orders_all_before_with_all_after(sink) -> None:
    n = 3
    objs = [Shared() for _ in range(n)]
    after = Shared()
    bar = threading.Barrier(n)

    def party(i: int) -> None:
        write(objs[i])
        bar.wait()
        for o in objs:
            read(o)
        write(after)

    run_threads(*(lambda i=i: party(i) for i in range(n)))
    for o in objs:
        (w,), reads = accesses(sink, o)[:1], accesses(sink, o)[1:]
        assert len(reads) == n and all(ordered(w, r) for r in reads)
    posts = accesses(sink, after)
    assert len(posts) == n and all(concurrent(a, b) for a in posts for b in posts if a is not b)


def test_barrier_next_round_is_not_ordered_before_slow_party(sink) -> None:
    """A fast party's access before its *second* wait does not reach the slow party's first."""
    s = Shared()
    slow_out = Shared()
    bar = threading.Barrier(2)
    fast_done = threads._raw_allocate_lock()
    fast_done.acquire()

    def fast() -> None:
        bar.wait()
        write(s)  # round 2 arrival access
        fast_done.release()
        try:
            bar.wait(timeout=0.5)
        except threading.BrokenBarrierError:
            pass

    def slow() -> None:
        bar.wait()
        fast_done.acquire()  # raw lock: no edge, just scheduling
        read(slow_out)
        read(s)

    run_threads(fast, slow)
    w = accesses(sink, s)[0]
    r = [e for e in accesses(sink, s) if e.data["access_type"] == "Read"][0]
    assert concurrent(w, r)


# ----------------------------------------------------------------------------- queues


@pytest.mark.parametrize("cls", [queue.Queue, queue.LifoQueue, queue.PriorityQueue, "simple"])
def test_queue_put_orders_get(sink, cls) -> None:
    q = queue.SimpleQueue() if cls == "simple" else cls()
    s = Shared()

    def producer() -> None:
        write(s)
        q.put((1, "item"))

    def consumer() -> None:
        assert q.get(timeout=5) == (1, "item")
        read(s)

    run_threads(consumer, producer)
    w, r = accesses(sink, s)
    assert ordered(w, r)


def test_user_queue_subclass_is_labelled_by_its_stdlib_base_and_reinstall_works(sink) -> None:
    from raceway_sdk.instrument import threads

    class Jobs(queue.LifoQueue):  # type: ignore[type-arg]
        pass

    q = Jobs()
    s = Shared()

    def producer() -> None:
        write(s)
        q.put(1)
        q.put(2)

    def consumer() -> None:
        assert {q.get(timeout=5), q.get(timeout=5)} == {1, 2}
        read(s)

    run_threads(consumer, producer)
    w, r = accesses(sink, s)
    assert ordered(w, r)
    types = {e.data["lock_type"] for e in sink.events if e.kind in ("LockAcquire", "LockRelease")}
    assert types == {"queue.LifoQueue"}
    threads.uninstall()  # the label cache must not leak into what install() patches
    threads.install()
    q.put(3)
    assert q.get(timeout=5) == 3


@pytest.mark.parametrize("cls", [queue.Queue, "simple"])
def test_queue_edges_are_per_item(sink, cls) -> None:
    q = queue.SimpleQueue() if cls == "simple" else cls()
    a, b = Shared(), Shared()
    item_a, item_b = object(), object()

    def producer_a() -> None:
        write(a)
        q.put(item_a)

    def producer_b() -> None:
        write(b)
        q.put(item_b)

    run_threads(producer_a)
    run_threads(producer_b)
    got: list[object] = []

    def consumer() -> None:
        got.append(q.get())
        read(a)
        read(b)

    # the consumer is forked before the producers' joins reach the main thread? No: it is
    # forked after, so fork it from a thread that never joined them.
    t = threading.Thread(target=consumer)
    # reset the main task's knowledge: start the consumer from a fresh, unsynchronised thread
    starter_done = threads._raw_allocate_lock()
    starter_done.acquire()

    def starter() -> None:
        t.start()
        t.join()
        starter_done.release()

    _thread.start_new_thread(starter, ())
    starter_done.acquire()
    assert got == [item_a]
    wa, ra = accesses(sink, a)
    wb, rb = accesses(sink, b)
    assert ordered(wa, ra)  # got item_a: ordered after its producer
    assert concurrent(wb, rb)  # did not get item_b: no edge from producer_b


def test_queue_task_done_orders_join(sink) -> None:
    q = queue.Queue()
    s = Shared()

    def worker() -> None:
        q.get()
        write(s)
        q.task_done()

    t = threading.Thread(target=worker, daemon=True)
    t.start()
    q.put(1)
    q.join()
    read(s)
    w, r = accesses(sink, s)
    assert ordered(w, r)
    t.join()


# ----------------------------------------------------------------------------- futures


def test_executor_callables_on_one_worker_are_concurrent(sink) -> None:
    s = Shared()
    with cf.ThreadPoolExecutor(max_workers=1) as ex:
        f1 = ex.submit(write, s)
        f2 = ex.submit(write, s)
        f1.result()
        f2.result()
    a, b = accesses(sink, s)
    assert a.task != b.task and concurrent(a, b)
    assert {sink.tasks()[e.task]["kind"] for e in (a, b)} == {"executor"}
    assert sink.tasks()[a.task]["name"] == "write"


def test_executor_submit_and_result_order(sink) -> None:
    s = Shared()
    write(s)
    with cf.ThreadPoolExecutor(max_workers=2) as ex:
        fut = ex.submit(lambda: (read(s), write(s)))
        fut.result()
        read(s)
    w0, r1, w1, r0 = accesses(sink, s)
    assert ordered(w0, r1) and ordered(w1, r0)


def test_executor_result_reraise_still_orders(sink) -> None:
    s = Shared()

    def boom() -> None:
        write(s)
        raise ValueError("x")

    with cf.ThreadPoolExecutor(max_workers=1) as ex:
        fut = ex.submit(boom)
        with pytest.raises(ValueError):
            fut.result()
        read(s)
    w, r = accesses(sink, s)
    assert ordered(w, r)


def test_executor_shutdown_wait_joins_everything(sink) -> None:
    s = Shared()
    ex = cf.ThreadPoolExecutor(max_workers=2)
    for _ in range(3):
        ex.submit(write, s, "value")
    ex.shutdown(wait=True)
    read(s)
    *ws, r = accesses(sink, s)
    assert len(ws) == 3 and all(ordered(w, r) for w in ws)


def test_executor_without_result_is_concurrent(sink) -> None:
    s = Shared()
    done = threads._raw_allocate_lock()
    done.acquire()
    ex = cf.ThreadPoolExecutor(max_workers=1)
    ex.submit(lambda: (write(s), done.release()))
    done.acquire()
    read(s)
    ex.shutdown(wait=False)
    w, r = accesses(sink, s)
    assert concurrent(w, r)


@pytest.mark.parametrize("how", ["map", "wait", "as_completed", "done", "exception", "callback"])
def test_future_completion_edges(sink, how) -> None:
    s = Shared()
    seen: list[bool] = []
    with cf.ThreadPoolExecutor(max_workers=2) as ex:
        if how == "map":
            list(ex.map(lambda _: write(s), [1]))
        else:
            fut = ex.submit(write, s)
            if how == "wait":
                cf.wait([fut])
            elif how == "as_completed":
                list(cf.as_completed([fut]))
            elif how == "done":
                while not fut.done():
                    time.sleep(0.001)
            elif how == "exception":
                assert fut.exception() is None
            else:
                cb_done = threading.Event()
                fut.add_done_callback(lambda f: (read(s), seen.append(True), cb_done.set()))
                assert cb_done.wait(5)
        if how != "callback":
            read(s)
        w, r = accesses(sink, s)
        assert ordered(w, r)
        if how == "callback":
            assert seen and sink.tasks()[r.task]["kind"] == "callback"


def test_plain_future_set_result_orders_result(sink) -> None:
    s = Shared()
    fut: cf.Future = cf.Future()

    def completer() -> None:
        write(s)
        fut.set_result(7)

    def waiter() -> None:
        assert fut.result(timeout=5) == 7
        read(s)

    run_threads(waiter, completer)
    w, r = accesses(sink, s)
    assert ordered(w, r)


def test_to_thread_runs_as_its_own_executor_task(sink) -> None:
    s = Shared()
    kinds: list[str] = []

    def body() -> None:
        kinds.append(rec.current().kind)
        write(s)

    async def main() -> None:
        write(s)
        await asyncio.to_thread(body)

    asyncio.run(main())
    assert kinds == ["executor"]
    a, b = accesses(sink, s)
    assert a.task != b.task and ordered(a, b)


# ----------------------------------------------------------------------------- install/uninstall


PATCHED = [
    (threading.Thread, "start"),
    (threading.Thread, "_bootstrap_inner"),
    (threading.Thread, "join"),
    (threading, "Lock"),
    (threading, "RLock"),
    (_thread, "allocate_lock"),
    (threading, "Condition"),
    (threading.Semaphore, "__init__"),
    (threading.Semaphore, "acquire"),
    (threading.Semaphore, "__enter__"),
    (threading.Semaphore, "release"),
    (threading.BoundedSemaphore, "release"),
    (threading.Event, "__init__"),
    (threading.Event, "set"),
    (threading.Event, "wait"),
    (threading.Event, "is_set"),
    (threading.Barrier, "__init__"),
    (threading.Barrier, "wait"),
    (threading.Barrier, "reset"),
    (queue.Queue, "put"),
    (queue.Queue, "get"),
    (queue.Queue, "_put"),
    (queue.Queue, "_get"),
    (queue.LifoQueue, "_put"),
    (queue.LifoQueue, "_get"),
    (queue.PriorityQueue, "_put"),
    (queue.PriorityQueue, "_get"),
    (queue.Queue, "task_done"),
    (queue.Queue, "join"),
    (queue, "SimpleQueue"),
    (cf.ThreadPoolExecutor, "submit"),
    (cf.ThreadPoolExecutor, "shutdown"),
    (futures_base.Future, "set_result"),
    (futures_base.Future, "set_exception"),
    (futures_base.Future, "result"),
    (futures_base.Future, "exception"),
    (futures_base.Future, "done"),
    (futures_base.Future, "add_done_callback"),
    (futures_base, "wait"),
    (futures_base, "as_completed"),
    (cf, "wait"),
    (cf, "as_completed"),
]


def _get(owner, name):
    return vars(owner)[name] if isinstance(owner, type) else getattr(owner, name)


def test_uninstall_restores_every_original() -> None:
    assert not threads.is_installed()
    originals = [(_get(o, n)) for o, n in PATCHED]
    threads.install()
    try:
        assert threads.is_installed() and len(threads._patches) == len(PATCHED)
        changed = [
            (o, n) for (o, n), orig in zip(PATCHED, originals, strict=True) if _get(o, n) is orig
        ]
        assert changed == []
        threads.install()  # idempotent
        assert len(threads._patches) == len(PATCHED)
    finally:
        threads.uninstall()
    assert not threads.is_installed()
    for (o, n), orig in zip(PATCHED, originals, strict=True):
        assert _get(o, n) is orig, (o, n)


# ----------------------------------------------------------------------------- robustness


def test_raising_sink_does_not_break_threads() -> None:
    class Broken:
        def emit(self, event) -> None:
            raise RuntimeError("down")

    prev = rec.set_sink(Broken())
    rec.reset_stats()
    threads.install()
    try:
        total = [0]
        lock = threading.Lock()

        def body() -> None:
            for _ in range(100):
                with lock:
                    total[0] += 1

        run_threads(body, body, body)
        with cf.ThreadPoolExecutor(2) as ex:
            assert list(ex.map(lambda x: x * 2, range(5))) == [0, 2, 4, 6, 8]
        q: queue.Queue = queue.Queue()
        q.put(1)
        assert q.get() == 1
    finally:
        threads.uninstall()
        rec.set_sink(prev)
    assert total[0] == 300
    assert rec.stats()["sink_errors"] > 600


class LockInDel:
    lock: threading.Lock | None = None

    def __del__(self) -> None:
        # a finaliser using an instrumented lock, possibly while the recorder runs
        lock = LockInDel.lock
        if lock is not None:
            with lock:
                pass


def test_finaliser_using_instrumented_lock_during_recording(sink) -> None:
    LockInDel.lock = threading.Lock()
    rec.reset_stats()

    class GcInSink(CollectingSink):
        def emit(self, event) -> None:
            super().emit(event)
            x = LockInDel()
            x.me = x
            del x
            gc.collect()

    inner = GcInSink()
    prev = rec.set_sink(inner)
    other = threading.Lock()  # the finaliser takes LockInDel.lock while `other` is recorded
    try:
        with other:
            pass
    finally:
        rec.set_sink(prev)
        LockInDel.lock = None
    assert len(inner.of_kind("LockAcquire")) == 1 and len(inner.of_kind("LockRelease")) == 1
    assert rec.stats()["dropped_reentrant"] >= 4  # acquire + release in each finaliser run


def test_thread_started_while_suspended_is_quiet(sink) -> None:
    s = Shared()
    with rec.suspended():
        t = threading.Thread(target=write, args=(s,))
        t.start()
    t.join()
    assert accesses(sink, s) == []


def _lock_created_in(path: str) -> object:
    ns: dict = {}
    exec(compile("import threading\nlock = threading.Lock()\n", path, "exec"), ns)
    return ns["lock"]


def test_library_and_raceway_locks_stay_raw_unless_asked() -> None:
    import os
    import sysconfig

    site = os.path.join(sysconfig.get_paths()["purelib"], "fake_lib", "pool.py")
    own = os.path.join(threads._OWN[-1], "engine_like.py")
    user = os.path.join(os.path.dirname(__file__), "user_code.py")
    threads.install()
    try:
        assert type(_lock_created_in(site)) is threads._raw_lock_type
        assert type(_lock_created_in(own)) is threads._raw_lock_type
        assert type(_lock_created_in(user)) is threads.InstrumentedLock
    finally:
        threads.uninstall()
    threads.install(third_party_sync=True)
    try:
        assert type(_lock_created_in(site)) is threads.InstrumentedLock
        assert type(_lock_created_in(own)) is threads._raw_lock_type
    finally:
        threads.uninstall()
        threads.install()  # back to the default classification
        threads.uninstall()


def test_to_thread_with_asyncio_patches_forks_once() -> None:
    from raceway_sdk.testing import recording as full_recording

    s = Shared()

    def body() -> None:
        write(s)

    async def main() -> None:
        write(s)
        await asyncio.to_thread(body)
        read(s)

    with full_recording() as sink:  # threads + asyncio patches
        asyncio.run(main())
    w0, w1, r = accesses(sink, s)
    assert ordered(w0, w1) and ordered(w1, r)
    spawned_for_body = [
        e
        for e in sink.of_kind("AsyncSpawn")
        if e.ext["child_name"] == "test_to_thread_with_asyncio_patches_forks_once.<locals>.body"
    ]
    assert len(spawned_for_body) == 1


def test_thread_start_errors_are_unchanged(sink) -> None:
    t = threading.Thread(target=lambda: None)
    t.start()
    t.join()
    with pytest.raises(RuntimeError, match="once"):
        t.start()

    class NoInit(threading.Thread):
        def __init__(self) -> None:  # forgets Thread.__init__
            pass

    with pytest.raises(RuntimeError):
        NoInit().start()
    assert len(sink.of_kind("AsyncSpawn")) == 1
