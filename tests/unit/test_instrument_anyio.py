"""anyio instrumentation on both backends (asyncio and trio), on real event loops."""

from __future__ import annotations

import importlib.util
import inspect
from collections.abc import Iterator
from typing import Any

import pytest

anyio = pytest.importorskip("anyio")

from raceway_sdk import _recorder as rec  # noqa: E402
from raceway_sdk.instrument import aio, anyio_trio  # noqa: E402
from raceway_sdk.protocol.events import Event  # noqa: E402
from raceway_sdk.testing import CollectingSink, concurrent, ordered, recording  # noqa: E402

SITE_R = rec.register_site(__file__, 1, "reader")
SITE_W = rec.register_site(__file__, 2, "writer")
BACKENDS = [
    "asyncio",
    pytest.param(
        "trio",
        marks=pytest.mark.skipif(importlib.util.find_spec("trio") is None, reason="no trio"),
    ),
]


def _threads_supported(backend: str) -> None:
    """anyio >= 4.x calls trio.to_thread.run_sync(abandon_on_cancel=...): trio < 0.23 lacks it."""
    if backend == "trio":
        import trio

        if "abandon_on_cancel" not in inspect.signature(trio.to_thread.run_sync).parameters:
            pytest.skip("this anyio needs a newer trio for to_thread (fails uninstrumented too)")


class Box:
    def __init__(self) -> None:
        self.v = 0


def read(box: Box, key: str = "v") -> None:
    rec.access(box, key, "Read", SITE_R)


def write(box: Box, key: str = "v") -> None:
    rec.access(box, key, "Write", SITE_W)


@pytest.fixture
def sink() -> Iterator[CollectingSink]:
    with recording(instrument=False) as s:
        aio.install()
        anyio_trio.install()
        try:
            yield s
        finally:
            anyio_trio.uninstall()
            aio.uninstall()


def by_type(sink: CollectingSink, key: str = "v") -> tuple[list[Event], list[Event]]:
    evs = sink.accesses(f"Box.{key}")
    return [e for e in evs if e.data["access_type"] == "Read"], [
        e for e in evs if e.data["access_type"] == "Write"
    ]


def leaf(exc: BaseException) -> BaseException:
    while hasattr(exc, "exceptions"):
        exc = exc.exceptions[0]
    return exc


def test_uninstall_restores_every_attribute_identically() -> None:
    import anyio.streams.memory as memory
    import anyio.to_thread
    from anyio._backends import _asyncio as backend
    from anyio._core import _synchronization as synchronization

    targets: list[tuple[Any, str]] = [
        (anyio.to_thread, "run_sync"),
        (synchronization.Condition, "notify"),
        (synchronization.Condition, "wait"),
        (memory.MemoryObjectSendStream, "send_nowait"),
        (memory.MemoryObjectReceiveStream, "receive"),
        (backend.TaskGroup, "_spawn"),
        (backend.TaskGroup, "__aexit__"),
        (backend.Lock, "release"),
        (backend.Semaphore, "acquire"),
        (backend.CapacityLimiter, "release_on_behalf_of"),
    ]
    before = [vars(o).get(n) for o, n in targets]
    anyio_trio.install()
    try:
        still = [(o, n) for (o, n), b in zip(targets, before, strict=True) if vars(o).get(n) is b]
        assert still == []
    finally:
        anyio_trio.uninstall()
    assert all(vars(o).get(n) is b for (o, n), b in zip(targets, before, strict=True))


@pytest.mark.parametrize("backend", BACKENDS)
def test_task_group_children_distinct_concurrent_joined(sink: CollectingSink, backend: str) -> None:
    box = Box()

    async def child() -> None:
        write(box)
        await anyio.sleep(0)

    async def main() -> None:
        write(box, "before")
        async with anyio.create_task_group() as tg:
            for _ in range(3):
                tg.start_soon(child)
            await anyio.sleep(0.01)
            write(box, "inside")
        read(box)

    anyio.run(main, backend=backend)
    (r,), writes = by_type(sink)
    assert len({w.task for w in writes}) == 3
    assert all(ordered(w, r) for w in writes)
    assert all(concurrent(a, b) for a in writes for b in writes if a is not b)
    (before,), (inside,) = sink.accesses("Box.before"), sink.accesses("Box.inside")
    assert all(ordered(before, w) for w in writes)
    assert all(concurrent(w, inside) for w in writes)
    assert {sink.tasks()[w.task]["kind"] for w in writes} == {"anyio"}
    assert len({w.ext["loop"] for w in writes} | {r.ext["loop"]}) == 1


@pytest.mark.parametrize("backend", BACKENDS)
def test_start_orders_started(sink: CollectingSink, backend: str) -> None:
    box = Box()

    async def server(task_status: Any = anyio.TASK_STATUS_IGNORED) -> None:
        write(box, "setup")
        task_status.started(3)
        write(box, "after")
        await anyio.sleep(0)

    async def main() -> None:
        async with anyio.create_task_group() as tg:
            assert await tg.start(server) == 3
            read(box, "setup")
            read(box, "after")

    anyio.run(main, backend=backend)
    (r,), (w,) = by_type(sink, "setup")
    assert ordered(w, r)
    (r,), (w,) = by_type(sink, "after")
    assert concurrent(w, r)


@pytest.mark.parametrize("backend", BACKENDS)
def test_segments(sink: CollectingSink, backend: str) -> None:
    box = Box()

    async def no_yield() -> None:
        return None

    async def main() -> None:
        read(box, "rmw")
        write(box, "rmw")
        read(box, "split")
        await anyio.sleep(0)
        write(box, "split")
        read(box, "noyield")
        await no_yield()
        write(box, "noyield")

    anyio.run(main, backend=backend)
    r, w = sink.accesses("Box.rmw")
    assert r.ext["seg"] == w.ext["seg"]
    r, w = sink.accesses("Box.split")
    assert w.ext["seg"] > r.ext["seg"]
    r, w = sink.accesses("Box.noyield")
    assert r.ext["seg"] == w.ext["seg"]


@pytest.mark.parametrize("late", [False, True], ids=["waiting", "uncontended"])
@pytest.mark.parametrize("mode", ["event", "lock", "semaphore", "limiter", "condition", "stream"])
@pytest.mark.parametrize("backend", BACKENDS)
def test_primitives_order_and_counter(
    sink: CollectingSink, backend: str, mode: str, late: bool
) -> None:
    if mode == "condition" and late:
        pytest.skip("a notify nobody waits for is lost")
    box = Box()

    async def main() -> None:
        ev = anyio.Event()
        lock = anyio.Lock()
        sem = anyio.Semaphore(1)
        limiter = anyio.CapacityLimiter(1)
        cond = anyio.Condition()
        send, receive = anyio.create_memory_object_stream[int](1)
        holding = anyio.Event()

        async def producer() -> None:
            if mode == "lock":
                await lock.acquire()
            elif mode == "semaphore":
                await sem.acquire()
            elif mode == "limiter":
                await limiter.acquire()
            holding.set()
            await anyio.sleep(0)
            write(box)
            if mode == "event":
                ev.set()
            elif mode == "lock":
                lock.release()
            elif mode == "semaphore":
                sem.release()
            elif mode == "limiter":
                limiter.release()
            elif mode == "condition":
                async with cond:
                    cond.notify_all()
            else:
                await send.send(1)
            write(box, "late")

        async def consumer() -> None:
            if mode != "condition":
                await holding.wait()
            if late:
                for _ in range(5):
                    await anyio.sleep(0)
            if mode == "event":
                await ev.wait()
            elif mode == "lock":
                await lock.acquire()
            elif mode == "semaphore":
                await sem.acquire()
            elif mode == "limiter":
                await limiter.acquire()
            elif mode == "condition":
                async with cond:
                    await cond.wait()
            else:
                assert await receive.receive() == 1
            read(box)
            read(box, "late")

        async with anyio.create_task_group() as tg:
            if mode == "condition":
                tg.start_soon(consumer)
                await anyio.sleep(0.01)
                tg.start_soon(producer)
            else:
                tg.start_soon(producer)
                tg.start_soon(consumer)
        send.close()
        receive.close()

    anyio.run(main, backend=backend)
    (r,), (w,) = by_type(sink)
    assert ordered(w, r), mode
    (r_late,), (w_late,) = by_type(sink, "late")
    assert concurrent(w_late, r_late), mode


@pytest.mark.parametrize("backend", BACKENDS)
def test_to_thread_is_a_thread_task(sink: CollectingSink, backend: str) -> None:
    _threads_supported(backend)
    box = Box()

    def work(key: str) -> str:
        write(box, key)
        return key

    async def main() -> None:
        assert await anyio.to_thread.run_sync(work, "t") == "t"
        read(box, "t")
        async with anyio.create_task_group() as tg:
            tg.start_soon(anyio.to_thread.run_sync, work, "cc")
            await anyio.sleep(0.02)
            write(box, "cc")

    anyio.run(main, backend=backend)
    (r,), (w,) = by_type(sink, "t")
    assert ordered(w, r) and "loop" not in w.ext
    assert sink.tasks()[w.task]["kind"] == "thread"
    assert [t["kind"] for t in sink.tasks().values()].count("thread") == 2  # no double fork
    a, b = sink.accesses("Box.cc")
    assert concurrent(a, b)


@pytest.mark.parametrize("backend", BACKENDS)
def test_behaviour_unchanged(sink: CollectingSink, backend: str) -> None:
    class Boom(Exception):
        pass

    async def fail() -> None:
        await anyio.sleep(0)
        raise Boom("x")

    async def main() -> None:
        with pytest.raises(BaseException) as info:
            async with anyio.create_task_group() as tg:
                tg.start_soon(fail)
                tg.start_soon(anyio.sleep_forever)
        assert isinstance(leaf(info.value), Boom)
        with anyio.move_on_after(0.01) as scope:
            await anyio.sleep_forever()
        assert scope.cancelled_caught
        with pytest.raises(TimeoutError):
            with anyio.fail_after(0.01):
                await anyio.sleep_forever()
        if backend == "asyncio":  # see _threads_supported; the trio backend is covered there
            with pytest.raises(ValueError):
                await anyio.to_thread.run_sync(int, "nope")
        send, receive = anyio.create_memory_object_stream[int](0)
        with pytest.raises(anyio.WouldBlock):
            send.send_nowait(1)
        send.close()
        with pytest.raises(anyio.EndOfStream):
            await receive.receive()
        receive.close()

    anyio.run(main, backend=backend)


@pytest.mark.parametrize("backend", BACKENDS)
def test_from_thread_callbacks_keep_their_edges(sink: CollectingSink, backend: str) -> None:
    _threads_supported(backend)
    box = Box()

    async def main() -> None:
        ev = anyio.Event()

        def work() -> None:
            write(box)
            anyio.from_thread.run_sync(ev.set)  # user code run by a loop callback

        async with anyio.create_task_group() as tg:
            tg.start_soon(anyio.to_thread.run_sync, work)
            await ev.wait()
            read(box)

    anyio.run(main, backend=backend)
    (r,), (w,) = by_type(sink)
    assert r.task != w.task and ordered(w, r)
