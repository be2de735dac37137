"""anyio instrumentation on both backends (asyncio and trio), on real event loops."""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import json
import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

anyio = pytest.importorskip("anyio")

from aio_support import Box, read, write  # noqa: E402
from raceway_sdk import instrument  # noqa: E402
from raceway_sdk.instrument import aio, anyio_trio  # noqa: E402
from raceway_sdk.protocol.events import Event  # noqa: E402
from raceway_sdk.testing import CollectingSink, concurrent, ordered, recording  # noqa: E402

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


@pytest.mark.parametrize("backend", BACKENDS)
def test_task_creation_site_is_the_first_frame_outside_anyio(
    sink: CollectingSink, backend: str
) -> None:
    async def child() -> None:
        await anyio.sleep(0)

    async def main() -> None:
        async with anyio.create_task_group() as tg:
            tg.start_soon(child)
            tg.start_soon(child)

    anyio.run(main, backend=backend)
    spawns = [e for e in sink.of_kind("AsyncSpawn") if e.ext["child_kind"] == "anyio"]
    assert len(spawns) == 2
    for e in spawns:
        top = e.ext["stack"][0]
        qualified = "test_task_creation_site_is_the_first_frame_outside_anyio.<locals>.main"
        # frames name their function by qualified name where the code object has one (3.11+)
        assert (top[0], top[2]) == (
            __file__,
            qualified if sys.version_info >= (3, 11) else "main",
        ), e.ext["stack"][:3]


# --------------------------------------------------------------------------- patching at import


def run_fresh(code: str) -> Any:
    """Run ``code`` in a new interpreter (nothing imported yet); it prints one JSON value."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([*sys.path, env.get("PYTHONPATH", "")])
    proc = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_anyio_is_patched_at_first_import_not_at_install() -> None:
    out = run_fresh(
        """
        import json, sys
        from raceway_sdk.instrument import ImportWatch, aio, anyio_trio
        from raceway_sdk.testing import recording

        def loaded():
            return sorted(m for m in sys.modules if m.split(".")[0] in ("anyio", "trio"))

        def hooks():
            return sum(isinstance(f, ImportWatch) for f in sys.meta_path)

        res = {}
        anyio_trio.install()
        res["cycle"] = [loaded(), anyio_trio.deferred(), hooks()]
        anyio_trio.uninstall()
        res["cycle"].append(hooks())
        with recording(instrument=False) as sink:
            aio.install()
            anyio_trio.install()
            import anyio

            async def child():
                await anyio.sleep(0)

            async def main():
                async with anyio.create_task_group() as tg:
                    tg.start_soon(child)
                    tg.start_soon(child)
                return await anyio.to_thread.run_sync(lambda: 1)

            res["result"] = anyio.run(main)
            res["kinds"] = sorted(t["kind"] for t in sink.tasks().values())
            res["deferred"] = anyio_trio.deferred()
            anyio_trio.uninstall()
            aio.uninstall()
        from anyio._backends import _asyncio as backend
        res["after"] = [hasattr(vars(backend.TaskGroup)["_spawn"], "__wrapped__"), hooks()]
        print(json.dumps(res))
        """
    )
    assert out["cycle"][0] == []  # install imported neither anyio nor trio
    assert "anyio._backends._asyncio" in out["cycle"][1] and "trio" in out["cycle"][1]
    assert out["cycle"][2:] == [1, 0]  # one hook while installed, none after uninstall
    assert out["result"] == 1
    kinds = out["kinds"]
    assert kinds.count("anyio") == 2 and kinds.count("thread") == 1  # patched when imported
    assert "anyio._backends._asyncio" not in out["deferred"]
    assert out["after"] == [False, 0]  # restored, hook gone


def _make_module(tmp_path: Path, name: str, body: str) -> None:
    (tmp_path / f"{name}.py").write_text(textwrap.dedent(body))


@pytest.fixture
def tmp_modules(tmp_path: Path) -> Iterator[Path]:
    sys.path.insert(0, str(tmp_path))
    importlib.invalidate_caches()
    try:
        yield tmp_path
    finally:
        sys.path.remove(str(tmp_path))
        for name in [m for m in sys.modules if m.startswith("rw_watched_")]:
            del sys.modules[name]


def test_when_imported_runs_once_after_the_module_body(tmp_modules: Path) -> None:
    _make_module(tmp_modules, "rw_watched_a", "FIRST = 1\nLAST = 2\n")
    seen: list[Any] = []
    watch = instrument.when_imported({"rw_watched_a": lambda m: seen.append((m, m.LAST))})
    assert watch is not None and watch in sys.meta_path and seen == []
    import rw_watched_a  # type: ignore[import-not-found]

    assert seen == [(rw_watched_a, 2)]
    assert watch not in sys.meta_path  # its last callback ran: the hook left
    assert type(rw_watched_a.__loader__).__name__ == "SourceFileLoader"  # the real loader
    assert rw_watched_a.__spec__.loader is rw_watched_a.__loader__
    importlib.reload(rw_watched_a)
    assert len(seen) == 1
    # already imported: the callback runs at once, no hook
    assert instrument.when_imported({"rw_watched_a": lambda m: seen.append(m)}) is None
    assert seen[-1] is rw_watched_a


def test_when_imported_never_breaks_the_import(tmp_modules: Path) -> None:
    _make_module(tmp_modules, "rw_watched_bad", "VALUE = 3\n")
    _make_module(tmp_modules, "rw_watched_broken", "raise ImportError('broken on purpose')\n")
    calls: list[str] = []

    def fail(module: Any) -> None:
        raise RuntimeError("patch failed on purpose")

    watch = instrument.when_imported(
        {"rw_watched_bad": fail, "rw_watched_broken": lambda m: calls.append(m.__name__)}
    )
    assert watch is not None
    try:
        import rw_watched_bad  # type: ignore[import-not-found]

        assert rw_watched_bad.VALUE == 3
        assert instrument.status()["failed"] == {
            "rw_watched_bad": "RuntimeError: patch failed on purpose"
        }
        assert (
            "rw_watched_bad",
            "patching at import failed: RuntimeError: patch failed on purpose",
        ) in instrument.not_instrumented()
        with pytest.raises(ImportError, match="broken on purpose"):
            import rw_watched_broken  # type: ignore[import-not-found]  # noqa: F401
        assert calls == [] and watch.pending() == ["rw_watched_broken"]  # still watched
        watch.remove()
        assert watch not in sys.meta_path
    finally:
        watch.remove()
        getattr(instrument, "_failed").clear()
