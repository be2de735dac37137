"""asyncio instrumentation on real event loops: fork/join, segments, primitives, behaviour."""

from __future__ import annotations

import asyncio
import builtins
import contextvars
import sys
from collections.abc import Iterator
from typing import Any

import pytest
from aio_support import Box, read, write
from raceway_sdk.instrument import aio
from raceway_sdk.protocol.events import Event
from raceway_sdk.testing import CollectingSink, concurrent, ordered, recording

PY311 = sys.version_info >= (3, 11)
PY312 = sys.version_info >= (3, 12)
TaskGroup: Any = getattr(asyncio, "TaskGroup", None)
Barrier: Any = getattr(asyncio, "Barrier", None)
timeout: Any = getattr(asyncio, "timeout", None)




@pytest.fixture
def sink() -> Iterator[CollectingSink]:
    with recording(instrument=False) as s:
        aio.install()
        try:
            yield s
        finally:
            aio.uninstall()


def acc(sink: CollectingSink, key: str = "v") -> list[Event]:
    return sink.accesses(f"Box.{key}")


def by_type(sink: CollectingSink, key: str = "v") -> tuple[list[Event], list[Event]]:
    evs = acc(sink, key)
    return [e for e in evs if e.data["access_type"] == "Read"], [
        e for e in evs if e.data["access_type"] == "Write"
    ]


# --------------------------------------------------------------------------- install / uninstall


def _patched_targets() -> list[tuple[Any, str]]:
    from asyncio import base_events, events, futures, locks, queues, tasks

    out = [
        (events.Handle, "_run"),
        (tasks, "Task"),
        (asyncio, "Task"),
        (futures, "Future"),
        (asyncio, "Future"),
        (tasks, "_GatheringFuture"),
        (tasks, "wait"),
        (asyncio, "wait"),
        (tasks, "shield"),
        (asyncio, "shield"),
        (asyncio, "to_thread"),
        (asyncio, "run_coroutine_threadsafe"),
        (base_events.BaseEventLoop, "create_task"),
        (base_events.BaseEventLoop, "run_in_executor"),
        (base_events.BaseEventLoop, "call_soon_threadsafe"),
        (locks.Lock, "acquire"),
        (locks.Lock, "release"),
        (locks.Event, "set"),
        (locks.Event, "wait"),
        (locks.Event, "is_set"),
        (locks.Condition, "wait"),
        (locks.Condition, "notify"),
        (locks.Condition, "notify_all"),
        (locks.Semaphore, "acquire"),
        (locks.Semaphore, "release"),
        (queues.Queue, "put_nowait"),
        (queues.Queue, "get_nowait"),
        (queues.Queue, "task_done"),
        (queues.Queue, "join"),
    ]
    if PY311:
        out += [(TaskGroup, "create_task"), (TaskGroup, "__aexit__")]
        out += [(getattr(locks, "Barrier"), "wait")]
    if PY312:
        out += [(asyncio, "eager_task_factory"), (tasks, "eager_task_factory")]
    return out


def test_uninstall_restores_every_attribute_identically() -> None:
    targets = _patched_targets()
    before = [vars(owner).get(name) for owner, name in targets]
    aio.install()
    try:
        assert aio.is_installed()
        changed = [(o, n) for (o, n), b in zip(targets, before, strict=True) if vars(o).get(n) is b]
        assert changed == [], f"not patched: {changed}"
        aio.install()  # idempotent
    finally:
        aio.uninstall()
    assert not aio.is_installed()
    after = [vars(owner).get(name) for owner, name in targets]
    assert all(a is b for a, b in zip(after, before, strict=True))
    aio.uninstall()  # idempotent


def test_tasks_work_after_uninstall_and_across_install() -> None:
    async def main() -> int:
        early = asyncio.ensure_future(asyncio.sleep(0, 1))  # created uninstrumented
        aio.install()
        try:
            assert isinstance(early, asyncio.Task) and isinstance(early, asyncio.Future)
            late = asyncio.create_task(asyncio.sleep(0, 2))
            both = await asyncio.gather(early, late)
        finally:
            aio.uninstall()
        assert isinstance(late, asyncio.Task)
        return sum(both) + await late

    with recording(instrument=False):
        assert asyncio.run(main()) == 5


def test_user_subclasses_defined_while_installed_keep_their_identity(sink: CollectingSink) -> None:
    class MyFuture(asyncio.Future):  # type: ignore[type-arg]
        pass

    class MyTask(asyncio.Task):  # type: ignore[type-arg]
        pass

    async def main() -> None:
        plain = asyncio.get_running_loop().create_future()
        mine = MyFuture()
        assert isinstance(mine, asyncio.Future) and isinstance(plain, asyncio.Future)
        assert isinstance(mine, MyFuture) and not isinstance(plain, MyFuture)
        assert issubclass(MyFuture, asyncio.Future) and not issubclass(asyncio.Future, MyFuture)
        t = MyTask(asyncio.sleep(0, 3))
        other = asyncio.create_task(asyncio.sleep(0))
        assert isinstance(t, MyTask) and not isinstance(other, MyTask)
        assert await t == 3 and aio.state_of(t) is not None
        await other

    asyncio.run(main())


# --------------------------------------------------------------------------- tasks: fork / join


def test_create_task_forks_and_await_joins(sink: CollectingSink) -> None:
    box = Box()

    async def child() -> None:
        read(box)
        write(box)

    async def main() -> None:
        write(box, "before")
        t = asyncio.create_task(child(), name="kid")
        await t
        read(box)
        write(box, "before")

    asyncio.run(main())
    (r_child, r_main), (w_child,) = by_type(sink)
    assert r_child.task != r_main.task
    (w_before, w_after) = acc(sink, "before")
    assert ordered(w_before, r_child)  # fork edge
    assert ordered(w_child, r_main)  # join edge
    assert not ordered(w_after, r_child)
    (joined,) = [e for e in sink.of_kind("AsyncAwait") if e.ext["child_name"] == "kid"]
    spawn = [e for e in sink.of_kind("AsyncSpawn") if e.ext["child"] == joined.ext["child"]]
    assert len(spawn) == 1 and spawn[0].ext["child_kind"] == "asyncio"
    assert joined.task == r_main.task and spawn[0].ext["child"] == r_child.task
    assert spawn[0].ext["child_loop"] == r_child.ext["loop"] == r_main.ext["loop"]


def test_unjoined_task_is_concurrent_with_its_creator(sink: CollectingSink) -> None:
    box = Box()

    async def child() -> None:
        write(box)

    async def main() -> None:
        t = asyncio.create_task(child())
        await asyncio.sleep(0.01)  # timing is not synchronisation
        write(box)
        await t

    asyncio.run(main())
    w1, w2 = acc(sink)
    assert w1.task != w2.task and concurrent(w1, w2)


def test_result_and_exception_join(sink: CollectingSink) -> None:
    box = Box()

    async def child() -> int:
        write(box)
        return 7

    async def main() -> None:
        t = asyncio.create_task(child())
        while not t.done():
            await asyncio.sleep(0)
        assert t.exception() is None
        read(box, "x")
        assert t.result() == 7
        read(box)

    asyncio.run(main())
    w, r = acc(sink)
    assert ordered(w, r)
    assert ordered(w, acc(sink, "x")[0])


def test_gather_children_distinct_concurrent_and_joined(sink: CollectingSink) -> None:
    box = Box()

    async def child(i: int) -> int:
        write(box)
        await asyncio.sleep(0)
        return i

    async def main() -> list[int]:
        res = list(await asyncio.gather(child(1), child(2), child(3)))
        read(box)
        return res

    assert asyncio.run(main()) == [1, 2, 3]
    reads, writes = by_type(sink)
    assert len({w.task for w in writes}) == 3
    assert all(concurrent(a, b) for a in writes for b in writes if a is not b)
    assert all(ordered(w, reads[0]) for w in writes)


def test_gather_outer_cancelled_children_still_joined_on_observation(sink: CollectingSink) -> None:
    box = Box()

    async def child() -> None:
        write(box)
        await asyncio.sleep(10)

    async def main() -> None:
        g = asyncio.gather(child(), child())
        await asyncio.sleep(0)
        g.cancel()
        with pytest.raises(asyncio.CancelledError):
            await g
        read(box)

    asyncio.run(main())
    reads, writes = by_type(sink)
    assert len(writes) == 2 and all(ordered(w, reads[0]) for w in writes)


@pytest.mark.skipif(not PY311, reason="asyncio.TaskGroup is 3.11+")
def test_taskgroup_children_distinct_and_joined_at_exit(sink: CollectingSink) -> None:
    box = Box()

    async def child() -> None:
        write(box)

    async def main() -> None:
        async with TaskGroup() as tg:
            for _ in range(3):
                tg.create_task(child())
            await asyncio.sleep(0.01)
            write(box, "inside")  # children done by now, but nothing ordered them yet
        read(box)

    asyncio.run(main())
    reads, writes = by_type(sink)
    assert len({w.task for w in writes}) == 3
    assert all(ordered(w, reads[0]) for w in writes)
    (inside,) = acc(sink, "inside")
    # the group's done-callbacks ran before 'inside' but must not have joined anything
    assert all(concurrent(w, inside) for w in writes)


def test_wait_as_completed_wait_for_join(sink: CollectingSink) -> None:
    box = Box()

    async def child(key: str) -> str:
        await asyncio.sleep(0)
        write(box, key)
        return key

    async def main() -> None:
        done, pending = await asyncio.wait([asyncio.create_task(child("w"))])
        assert not pending
        read(box, "w")
        for fut in asyncio.as_completed([child("ac")]):
            assert await fut == "ac"
        read(box, "ac")
        assert await asyncio.wait_for(child("wf"), timeout=5) == "wf"
        read(box, "wf")

    asyncio.run(main())
    for key in ("w", "ac", "wf"):
        (r,), (w,) = by_type(sink, key)
        assert ordered(w, r), key


def test_shield_joins(sink: CollectingSink) -> None:
    box = Box()

    async def child() -> int:
        await asyncio.sleep(0)
        write(box)
        return 3

    async def main() -> None:
        assert await asyncio.shield(child()) == 3
        read(box)

    asyncio.run(main())
    w, r = acc(sink)
    assert ordered(w, r)


@pytest.mark.skipif(not PY311, reason="asyncio.timeout is 3.11+")
def test_timeout_block_keeps_joins_and_raises(sink: CollectingSink) -> None:
    box = Box()

    async def child() -> None:
        await asyncio.sleep(0)
        write(box)

    async def stuck() -> None:
        write(box, "cut")
        await asyncio.sleep(5)

    async def main() -> None:
        async with timeout(5):
            await asyncio.create_task(child())
        read(box)
        with pytest.raises(TimeoutError):
            async with timeout(0.01):
                await asyncio.sleep(5)
        t = asyncio.create_task(stuck())
        with pytest.raises(TimeoutError):
            async with timeout(0.01):
                await t  # the timeout cancels t; t ends before this task resumes
        assert t.cancelled()
        read(box, "cut")

    asyncio.run(main())
    w, r = acc(sink)
    assert ordered(w, r)
    (r,), (w,) = by_type(sink, "cut")
    assert ordered(w, r)


def test_to_thread_and_run_in_executor_are_thread_tasks(sink: CollectingSink) -> None:
    box = Box()

    def work(key: str) -> str:
        write(box, key)
        return key

    async def main() -> None:
        assert await asyncio.to_thread(work, "tt") == "tt"
        read(box, "tt")
        loop = asyncio.get_running_loop()
        assert await loop.run_in_executor(None, work, "ex") == "ex"
        read(box, "ex")
        t = asyncio.create_task(asyncio.to_thread(work, "cc"))
        await asyncio.sleep(0.02)
        write(box, "cc")
        await t

    asyncio.run(main())
    for key, kind in (("tt", "thread"), ("ex", "executor")):
        (r,), (w,) = by_type(sink, key)
        assert ordered(w, r)
        assert "loop" not in w.ext and "seg" not in w.ext  # preemptive: no loop
        assert sink.tasks()[w.task]["kind"] == kind
    w_thread, w_main = acc(sink, "cc")
    assert concurrent(w_thread, w_main)


def test_run_coroutine_threadsafe_behaves() -> None:
    import threading

    results: list[Any] = []
    with recording(instrument=False):
        aio.install()
        try:

            async def double(x: int) -> int:
                await asyncio.sleep(0)
                return 2 * x

            async def main() -> None:
                loop = asyncio.get_running_loop()

                def from_thread() -> None:
                    results.append(asyncio.run_coroutine_threadsafe(double(21), loop).result(5))

                th = threading.Thread(target=from_thread)
                th.start()
                while th.is_alive():
                    await asyncio.sleep(0.005)

            asyncio.run(main())
            with pytest.raises(TypeError):
                asyncio.run_coroutine_threadsafe(object(), asyncio.new_event_loop())  # type: ignore[arg-type]
        finally:
            aio.uninstall()
    assert results == [42]


def _factory(kind: str | None) -> Any:
    if kind == "ours":
        return lambda loop, coro, **kw: asyncio.Task(coro, loop=loop, **kw)
    if kind == "foreign":  # a Task class the instrumentation does not know
        return lambda loop, coro, **kw: getattr(aio, "_ORIG_TASK")(coro, loop=loop)
    return None


@pytest.mark.parametrize("factory", [None, "ours", "foreign"])
def test_run_coroutine_threadsafe_forks_from_the_caller_at_the_call(
    sink: CollectingSink, factory: str | None
) -> None:
    """The loop runs the creating callback only after the caller's later write: still concurrent."""
    import threading

    box = Box()

    async def on_loop() -> int:
        read(box, "before")
        await asyncio.sleep(0)
        read(box, "after")
        return 1

    async def main() -> None:
        loop = asyncio.get_running_loop()
        loop.set_task_factory(_factory(factory))
        gate = threading.Event()  # not instrumented here: no edge through it
        results: list[int] = []

        def from_thread() -> None:
            write(box, "before")
            fut = asyncio.run_coroutine_threadsafe(on_loop(), loop)
            write(box, "after")
            gate.set()
            results.append(fut.result(5))

        th = threading.Thread(target=from_thread)
        th.start()
        gate.wait(5)  # blocks the loop until the thread has written "after"
        while th.is_alive():
            await asyncio.sleep(0.005)
        assert results == [1]

    asyncio.run(main())
    (rb,), (wb,) = by_type(sink, "before")
    (ra,), (wa,) = by_type(sink, "after")
    assert rb.task == ra.task != wb.task == wa.task
    assert ordered(wb, rb)
    assert concurrent(wa, ra)
    info = sink.tasks()[rb.task]
    assert info["parent"] == wb.task and info["kind"] == "asyncio"
    assert info["name"].endswith("on_loop")
    assert rb.ext["loop"] and ra.ext["seg"] > rb.ext["seg"]  # a real task with segments


@pytest.mark.parametrize("via_context", [False, True])
def test_call_soon_threadsafe_callback_is_a_task_forked_by_the_caller(
    sink: CollectingSink, via_context: bool
) -> None:
    import threading

    box = Box()

    async def main() -> None:
        loop = asyncio.get_running_loop()
        ev = asyncio.Event()
        gate = threading.Event()

        def on_loop() -> None:
            read(box, "before")
            read(box, "after")
            ev.set()

        def from_thread() -> None:
            write(box, "before")
            if via_context:  # anyio's run_sync_soon: the callback enters a copied context
                ctx = contextvars.copy_context()
                loop.call_soon_threadsafe(ctx.run, on_loop)
            else:
                loop.call_soon_threadsafe(on_loop)
            write(box, "after")
            gate.set()

        th = threading.Thread(target=from_thread)
        th.start()
        gate.wait(5)  # the loop runs the callback only after the thread's later write
        await ev.wait()
        read(box, "before")
        th.join()

    asyncio.run(main())
    (rb_cb, rb_main), (wb,) = by_type(sink, "before")
    (ra,), (wa,) = by_type(sink, "after")
    assert rb_cb.task == ra.task and ra.task not in (wa.task, rb_main.task)
    assert ordered(wb, rb_cb) and ordered(wb, rb_main)  # callback -> Event -> main task
    assert concurrent(wa, ra)
    info = sink.tasks()[ra.task]
    assert info["parent"] == wa.task and info["kind"] == "callback"
    assert info["name"].endswith("on_loop")
    assert ra.ext.get("loop") == rb_main.ext.get("loop") is not None


def test_call_soon_threadsafe_before_the_loop_runs(sink: CollectingSink) -> None:
    """Another thread: a forked task (the background-loop start window); same thread: plain."""
    import threading

    box = Box()
    loop = asyncio.new_event_loop()
    try:

        def on_loop(*keys: str) -> None:
            for key in keys:
                read(box, key)

        def from_thread() -> None:
            write(box, "other")
            loop.call_soon_threadsafe(on_loop, "other", "other_after")
            write(box, "other_after")

        th = threading.Thread(target=from_thread)
        th.start()
        th.join()
        loop.call_soon_threadsafe(on_loop, "same")
        write(box, "same")  # before the loop runs the callback, in this thread's program order
        loop.run_until_complete(asyncio.sleep(0.01))
    finally:
        loop.close()
    (r_other,), (w_other,) = by_type(sink, "other")
    assert r_other.task != w_other.task and ordered(w_other, r_other)
    assert sink.tasks()[r_other.task]["kind"] == "callback"
    (r_after,), (w_after,) = by_type(sink, "other_after")
    assert r_after.task == r_other.task and concurrent(w_after, r_after)
    (r_same,), (w_same,) = by_type(sink, "same")
    assert r_same.task == w_same.task  # ran as this thread's own task, after its write


def test_run_coroutine_threadsafe_before_the_loop_runs(sink: CollectingSink) -> None:
    import threading

    box = Box()
    loop = asyncio.new_event_loop()
    futs = []
    try:

        async def on_loop(*keys: str) -> None:
            for key in keys:
                read(box, key)

        def from_thread() -> None:
            futs.append(asyncio.run_coroutine_threadsafe(on_loop("other"), loop))
            write(box, "other")

        th = threading.Thread(target=from_thread)
        th.start()
        th.join()
        futs.append(asyncio.run_coroutine_threadsafe(on_loop("same"), loop))
        write(box, "same")  # the loop runs later in this thread: the task comes after this
        loop.run_until_complete(asyncio.sleep(0.01))
        assert [f.result(0) for f in futs] == [None, None]
    finally:
        loop.close()
    (r_other,), (w_other,) = by_type(sink, "other")
    assert concurrent(w_other, r_other)
    (r_same,), (w_same,) = by_type(sink, "same")
    assert r_same.task != w_same.task and ordered(w_same, r_same)


def test_call_soon_threadsafe_from_the_loop_thread_is_a_plain_callback(
    sink: CollectingSink,
) -> None:
    box = Box()

    async def main() -> None:
        loop = asyncio.get_running_loop()
        done = loop.create_future()
        write(box)

        def on_loop() -> None:
            read(box)
            done.set_result(None)

        loop.call_soon_threadsafe(on_loop)
        await done

    asyncio.run(main())
    (r,), (w,) = by_type(sink)
    assert r.task == w.task  # same thread: runs as the task whose context it copied
    assert not [t for t in sink.tasks().values() if t["kind"] == "callback"]



def user_spawns(sink: CollectingSink) -> list[Event]:
    """AsyncSpawn events of tasks the test created (asyncio.run's own shutdown tasks excluded)."""
    return [
        e
        for e in sink.of_kind("AsyncSpawn")
        if not str(e.ext["child_name"]).startswith("BaseEventLoop.")
    ]


def test_task_creation_site_is_the_first_frame_outside_asyncio(sink: CollectingSink) -> None:
    async def work() -> None:
        await asyncio.sleep(0)

    async def main() -> None:
        await asyncio.create_task(work())
        await asyncio.gather(work(), work())
        await asyncio.ensure_future(work())
        if TaskGroup is not None:
            async with TaskGroup() as tg:
                tg.create_task(work())

    asyncio.run(main())
    spawns = user_spawns(sink)
    assert len(spawns) == (6 if TaskGroup is not None else 5)  # main + its children
    for e in spawns:
        top = e.ext["stack"][0]
        assert top[0] == __file__, (e.ext["child_name"], e.ext["stack"][:3])
        assert top[2].endswith(
            ("main", "test_task_creation_site_is_the_first_frame_outside_asyncio")
        )
        assert len(e.ext["stack"]) > 1  # the bounded stack is kept beyond the site


# --------------------------------------------------------------------------- segments


def test_await_free_read_modify_write_is_one_segment(sink: CollectingSink) -> None:
    box = Box()

    async def main() -> None:
        read(box)
        write(box)

    asyncio.run(main())
    r, w = acc(sink)
    assert r.ext["seg"] == w.ext["seg"] and r.ext["loop"] == w.ext["loop"]


def test_sleep0_between_read_and_write_splits_segments(sink: CollectingSink) -> None:
    box = Box()

    async def main() -> None:
        read(box)
        await asyncio.sleep(0)
        write(box)

    asyncio.run(main())
    r, w = acc(sink)
    assert w.ext["seg"] > r.ext["seg"]


def test_non_yielding_awaits_do_not_split_segments(sink: CollectingSink) -> None:
    box = Box()

    async def no_yield() -> int:
        return 1

    async def main() -> None:
        loop = asyncio.get_running_loop()
        done = loop.create_future()
        done.set_result(5)
        finished = asyncio.create_task(no_yield())
        await asyncio.sleep(0)
        await asyncio.sleep(0)
        read(box)
        await done
        await no_yield()
        await finished
        write(box)

    asyncio.run(main())
    r, w = acc(sink)
    assert r.ext["seg"] == w.ext["seg"]


def test_lost_update_shape_across_tasks(sink: CollectingSink) -> None:
    box = Box()

    async def bump() -> None:
        read(box)
        await asyncio.sleep(0)
        write(box)

    async def main() -> None:
        await asyncio.gather(bump(), bump())

    asyncio.run(main())
    reads, writes = by_type(sink)
    assert len({e.task for e in reads}) == 2
    for r in reads:
        (own_w,) = [w for w in writes if w.task == r.task]
        (other_w,) = [w for w in writes if w.task != r.task]
        assert own_w.ext["seg"] > r.ext["seg"] and concurrent(r, other_w)


# --------------------------------------------------------------------------- primitives


@pytest.mark.parametrize("late", [False, True], ids=["waiting", "uncontended"])
def test_lock_orders_critical_sections(sink: CollectingSink, late: bool) -> None:
    box = Box()
    starts = iter([0, 5 if late else 0])

    async def worker(lock: asyncio.Lock) -> None:
        await _spins(next(starts))
        async with lock:
            read(box)
            await asyncio.sleep(0)
            write(box)

    async def main() -> None:
        lock = asyncio.Lock()
        await asyncio.gather(worker(lock), worker(lock))

    asyncio.run(main())
    reads, writes = by_type(sink)
    first_w = next(w for w in writes if w.task == reads[0].task)
    second_r = next(r for r in reads if r.task != reads[0].task)
    assert ordered(first_w, second_r)
    assert any(e.ext.get("sync") for e in sink.of_kind("LockAcquire"))


def test_unlocked_sections_are_concurrent(sink: CollectingSink) -> None:
    box = Box()

    async def worker(lock: asyncio.Lock) -> None:
        async with lock:
            await asyncio.sleep(0)
        write(box)  # outside the lock

    async def main() -> None:
        lock = asyncio.Lock()
        await asyncio.gather(worker(lock), worker(lock))

    asyncio.run(main())
    w1, w2 = acc(sink)
    # the second task's write follows the first's release only if it wrote after it: here
    # the first task writes after releasing, so the pair is unordered
    assert concurrent(w1, w2)


async def _spins(n: int) -> None:
    for _ in range(n):
        await asyncio.sleep(0)


@pytest.mark.parametrize("late", [False, True], ids=["waiting", "uncontended"])
@pytest.mark.parametrize("mode", ["event", "condition", "semaphore", "bounded", "barrier"])
def test_signal_primitives_order_and_counter(sink: CollectingSink, mode: str, late: bool) -> None:
    if mode == "barrier" and not PY311:
        pytest.skip("asyncio.Barrier is 3.11+")
    if mode == "condition" and late:
        pytest.skip("a notify nobody waits for is lost")
    box = Box()

    async def main() -> None:
        ev = asyncio.Event()
        cond = asyncio.Condition()
        sem = asyncio.Semaphore(0) if mode == "semaphore" else asyncio.BoundedSemaphore(1)
        barrier = Barrier(2) if mode == "barrier" else None
        if mode == "bounded":
            await sem.acquire()

        async def producer() -> None:
            await asyncio.sleep(0)
            write(box)
            if mode == "event":
                ev.set()
            elif mode == "condition":
                async with cond:
                    cond.notify_all()
            elif mode in ("semaphore", "bounded"):
                sem.release()
            else:
                await barrier.wait()  # type: ignore[union-attr]
            write(box, "late")

        async def consumer() -> None:
            if late:
                await _spins(5)  # the producer has signalled already: no waiter future
            if mode == "event":
                assert not late or ev.is_set()
                await ev.wait()
            elif mode == "condition":
                async with cond:
                    await cond.wait()
            elif mode in ("semaphore", "bounded"):
                await sem.acquire()
            else:
                await barrier.wait()  # type: ignore[union-attr]
            read(box)
            read(box, "late")

        await asyncio.gather(consumer(), producer())

    asyncio.run(main())
    (r,), (w,) = by_type(sink)
    assert ordered(w, r), mode
    (r_late,), (w_late,) = by_type(sink, "late")
    assert concurrent(w_late, r_late), mode


@pytest.mark.parametrize("late", [False, True], ids=["waiting", "uncontended"])
@pytest.mark.parametrize("cls", [asyncio.Queue, asyncio.LifoQueue, asyncio.PriorityQueue])
def test_queue_put_orders_get(sink: CollectingSink, cls: type, late: bool) -> None:
    box = Box()

    async def main() -> None:
        q = cls()

        async def producer() -> None:
            write(box)
            await q.put(1)
            write(box, "late")

        async def consumer() -> None:
            if late:
                await _spins(5)
                assert q.get_nowait() == 1
            else:
                assert await q.get() == 1
            read(box)
            read(box, "late")

        await asyncio.gather(consumer(), producer())

    asyncio.run(main())
    (r,), (w,) = by_type(sink)
    assert ordered(w, r)
    (r_late,), (w_late,) = by_type(sink, "late")
    assert concurrent(w_late, r_late)


def test_queue_task_done_orders_join(sink: CollectingSink) -> None:
    box = Box()

    async def main() -> None:
        q: asyncio.Queue[int] = asyncio.Queue()

        async def worker() -> None:
            while True:
                await q.get()
                write(box)
                q.task_done()

        w = asyncio.create_task(worker())
        q.put_nowait(1)
        await q.join()
        read(box)
        w.cancel()
        with pytest.raises(asyncio.CancelledError):
            await w

    asyncio.run(main())
    (r,), (w,) = by_type(sink)
    assert ordered(w, r)


def test_future_set_result_orders_await_and_result(sink: CollectingSink) -> None:
    box = Box()

    async def main() -> None:
        loop = asyncio.get_running_loop()
        fut = loop.create_future()
        fut2: asyncio.Future[int] = asyncio.Future()

        async def setter() -> None:
            await asyncio.sleep(0)
            write(box)
            fut.set_result(1)
            fut2.set_exception(ValueError("x"))
            write(box, "late")

        async def waiter() -> None:
            assert await fut == 1
            read(box)
            with pytest.raises(ValueError):
                fut2.result()
            read(box, "late")

        await asyncio.gather(waiter(), setter())

    asyncio.run(main())
    (r,), (w,) = by_type(sink)
    assert ordered(w, r)
    (r_late,), (w_late,) = by_type(sink, "late")
    assert concurrent(w_late, r_late)


def test_sleep_timers_create_no_edges(sink: CollectingSink) -> None:
    box = Box()

    async def a() -> None:
        write(box)
        await asyncio.sleep(0.01)

    async def b() -> None:
        await asyncio.sleep(0.03)
        read(box)

    async def main() -> None:
        await asyncio.gather(a(), b())

    asyncio.run(main())
    w, r = acc(sink)
    assert concurrent(w, r)


# --------------------------------------------------------------------------- unchanged behaviour


def test_exceptions_cancellation_names_and_types_unchanged(sink: CollectingSink) -> None:
    class Boom(Exception):
        pass

    err = Boom("x")

    async def fail() -> None:
        await asyncio.sleep(0)
        raise err

    async def forever() -> None:
        await asyncio.sleep(10)

    async def main() -> None:
        t = asyncio.create_task(fail(), name="failing")
        assert t.get_name() == "failing"
        assert type(t) is asyncio.Task and isinstance(t, asyncio.Future)
        with pytest.raises(Boom) as info:
            await t
        assert info.value is err and t.exception() is err
        c = asyncio.create_task(forever())
        await asyncio.sleep(0)
        assert c.cancel()
        with pytest.raises(asyncio.CancelledError):
            await c
        assert c.cancelled()
        res = await asyncio.gather(fail(), asyncio.sleep(0, 4), return_exceptions=True)
        assert res == [err, 4]
        with pytest.raises(asyncio.TimeoutError):
            await asyncio.wait_for(forever(), 0.01)
        outer = asyncio.create_task(asyncio.wait_for(forever(), 10))
        await asyncio.sleep(0)
        outer.cancel()
        with pytest.raises(asyncio.CancelledError):
            await outer
        with pytest.raises(TypeError):
            asyncio.create_task(object())  # type: ignore[arg-type]
        f = asyncio.get_running_loop().create_future()
        with pytest.raises(asyncio.InvalidStateError):
            f.result()
        f.set_result(1)
        with pytest.raises(asyncio.InvalidStateError):
            f.set_result(2)

    asyncio.run(main())


@pytest.mark.skipif(not PY311, reason="TaskGroup and create_task(context=) are 3.11+")
def test_taskgroup_errors_and_explicit_context(sink: CollectingSink) -> None:
    var: contextvars.ContextVar[str] = contextvars.ContextVar("var", default="unset")

    async def fail() -> None:
        raise KeyError("k")

    async def see() -> str:
        return var.get()

    async def main() -> None:
        with pytest.raises(getattr(builtins, "BaseExceptionGroup")) as info:
            async with TaskGroup() as tg:
                tg.create_task(fail())
                tg.create_task(asyncio.sleep(10))
        assert isinstance(info.value.exceptions[0], KeyError)
        ctx = contextvars.copy_context()
        ctx.run(var.set, "given")
        assert await asyncio.create_task(see(), context=ctx) == "given"  # type: ignore[call-arg]
        var.set("mine")
        assert await asyncio.create_task(see()) == "mine"

    asyncio.run(main())
    tasks = [e for e in sink.of_kind("AsyncSpawn")]
    assert len({e.ext["child"] for e in tasks}) == len(tasks)


@pytest.mark.skipif(not PY312, reason="eager tasks are 3.12+")
def test_eager_tasks_are_forked_finished_and_joined(sink: CollectingSink) -> None:
    box = Box()

    async def quick() -> int:
        write(box)
        return 1

    async def slow() -> int:
        await asyncio.sleep(0)
        write(box, "slow")
        return 2

    async def main() -> None:
        asyncio.get_running_loop().set_task_factory(getattr(asyncio, "eager_task_factory"))
        read(box, "parent")
        t = asyncio.create_task(quick())
        assert t.done()
        write(box, "parent")
        s = asyncio.create_task(slow())
        assert await t == 1 and await s == 2
        read(box)
        read(box, "slow")

    asyncio.run(main())
    (w, r) = acc(sink)
    assert w.task != r.task and ordered(w, r)
    (ws, rs) = acc(sink, "slow")
    assert ordered(ws, rs)
    pr, pw = acc(sink, "parent")
    assert pw.ext["seg"] > pr.ext["seg"]  # the eager child ran in between


def test_with_thread_patches_executor_and_run_coroutine_threadsafe() -> None:
    """Together with instrument.threads: loop <-> thread edges in both directions."""
    import threading

    threads = pytest.importorskip("raceway_sdk.instrument.threads")
    box = Box()

    def work() -> None:
        write(box, "ex")

    async def coro() -> int:
        read(box, "rct")
        await asyncio.sleep(0)
        write(box, "rct_back")
        return 1

    async def main() -> None:
        await asyncio.get_running_loop().run_in_executor(None, work)
        read(box, "ex")
        loop = asyncio.get_running_loop()

        def from_thread() -> None:
            write(box, "rct")
            assert asyncio.run_coroutine_threadsafe(coro(), loop).result(5) == 1
            read(box, "rct_back")

        th = threading.Thread(target=from_thread)
        th.start()
        while th.is_alive():
            await asyncio.sleep(0.005)

    with recording(instrument=False) as sink:
        threads.install()
        aio.install()
        try:
            asyncio.run(main())
        finally:
            aio.uninstall()
            threads.uninstall()
    for key in ("ex", "rct", "rct_back"):
        (r,), (w,) = by_type(sink, key)
        assert r.task != w.task and ordered(w, r), key
