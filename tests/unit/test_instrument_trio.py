"""trio instrumentation on real trio runs: tasks, segments, nurseries, primitives, threads."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from typing import Any

import pytest

trio = pytest.importorskip("trio")

from aio_support import Box, read, write  # noqa: E402
from raceway_sdk.instrument import anyio_trio  # noqa: E402
from raceway_sdk.protocol.events import Event  # noqa: E402
from raceway_sdk.testing import CollectingSink, concurrent, ordered, recording  # noqa: E402


@pytest.fixture
def sink() -> Iterator[CollectingSink]:
    with recording(instrument=False) as s:
        anyio_trio.install()
        try:
            yield s
        finally:
            anyio_trio.uninstall()


def by_type(sink: CollectingSink, key: str = "v") -> tuple[list[Event], list[Event]]:
    evs = sink.accesses(f"Box.{key}")
    return [e for e in evs if e.data["access_type"] == "Read"], [
        e for e in evs if e.data["access_type"] == "Write"
    ]


def test_uninstall_restores_every_attribute_identically() -> None:
    import trio._channel as channel
    import trio._core._run as run
    import trio._sync as sync

    targets: list[tuple[Any, str]] = [
        (run.Runner, "spawn_impl"),
        (run.NurseryManager, "__aexit__"),
        (run.Nursery, "start"),
        (run._TaskStatus, "started"),
        (trio.to_thread, "run_sync"),
        (trio.lowlevel.TrioToken, "run_sync_soon"),
        (sync.Event, "set"),
        (sync.Event, "wait"),
        (sync.Event, "is_set"),
        (sync._LockImpl, "acquire"),
        (sync._LockImpl, "release"),
        (sync.Semaphore, "release"),
        (sync.CapacityLimiter, "release_on_behalf_of"),
        (sync.Condition, "notify"),
        (channel.MemorySendChannel, "send_nowait"),
        (channel.MemoryReceiveChannel, "receive"),
    ]
    before = [vars(o).get(n) for o, n in targets]
    anyio_trio.install()
    try:
        still = [(o, n) for (o, n), b in zip(targets, before, strict=True) if vars(o).get(n) is b]
        assert still == []
    finally:
        anyio_trio.uninstall()
    assert all(vars(o).get(n) is b for (o, n), b in zip(targets, before, strict=True))


def test_nursery_children_distinct_concurrent_joined(sink: CollectingSink) -> None:
    box = Box()

    async def child() -> None:
        write(box)
        await trio.sleep(0)

    async def main() -> None:
        write(box, "before")
        async with trio.open_nursery() as n:
            for _ in range(3):
                n.start_soon(child)
            await trio.sleep(0.01)
            write(box, "inside")  # children are done, but nothing ordered them
        read(box)

    trio.run(main)
    (r,), writes = by_type(sink)
    assert len({w.task for w in writes}) == 3
    assert all(ordered(w, r) for w in writes)
    assert all(concurrent(a, b) for a in writes for b in writes if a is not b)
    before, inside = sink.accesses("Box.before")[0], sink.accesses("Box.inside")[0]
    assert all(ordered(before, w) for w in writes)
    assert all(concurrent(w, inside) for w in writes)
    kinds = {sink.tasks()[w.task]["kind"] for w in writes}
    assert kinds == {"trio"}
    assert len({w.ext["loop"] for w in writes} | {r.ext["loop"]}) == 1


def test_trio_run_result_is_joined_into_the_caller(sink: CollectingSink) -> None:
    box = Box()

    async def main() -> int:
        write(box)
        return 5

    assert trio.run(main) == 5
    read(box)
    (r,), (w,) = by_type(sink)
    assert ordered(w, r) and "loop" not in r.ext


def test_segments(sink: CollectingSink) -> None:
    box = Box()

    async def no_yield() -> None:
        return None

    async def main() -> None:
        read(box, "rmw")
        write(box, "rmw")
        read(box, "split")
        await trio.sleep(0)
        write(box, "split")
        read(box, "noyield")
        await no_yield()
        write(box, "noyield")

    trio.run(main)
    (r, w) = sink.accesses("Box.rmw")
    assert r.ext["seg"] == w.ext["seg"]
    (r, w) = sink.accesses("Box.split")
    assert w.ext["seg"] > r.ext["seg"]
    (r, w) = sink.accesses("Box.noyield")
    assert r.ext["seg"] == w.ext["seg"]


def test_nursery_start_orders_started_and_joins_at_target_exit(sink: CollectingSink) -> None:
    box = Box()

    async def server(task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
        write(box, "setup")
        task_status.started(9)
        write(box, "after_started")
        await trio.sleep(0)
        write(box)

    async def main() -> None:
        async with trio.open_nursery() as n:
            assert await n.start(server) == 9
            read(box, "setup")
            read(box, "after_started")
        read(box)

    trio.run(main)
    for key, want in (("setup", True), ("after_started", False), ("v", True)):
        (r,), (w,) = by_type(sink, key)
        assert ordered(w, r) is want, key


@pytest.mark.parametrize("late", [False, True], ids=["waiting", "uncontended"])
@pytest.mark.parametrize("mode", ["event", "lock", "semaphore", "limiter", "condition", "channel"])
def test_primitives_order_and_counter(sink: CollectingSink, mode: str, late: bool) -> None:
    if mode == "condition" and late:
        pytest.skip("a notify nobody waits for is lost")
    box = Box()

    async def main() -> None:
        ev = trio.Event()
        lock = trio.Lock()
        sem = trio.Semaphore(0)
        limiter = trio.CapacityLimiter(1)
        cond = trio.Condition()
        send, receive = trio.open_memory_channel(1)
        holding = trio.Event()

        async def producer() -> None:
            if mode == "lock":
                await lock.acquire()
            elif mode == "limiter":
                await limiter.acquire()
            holding.set()
            await trio.sleep(0)
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
                await holding.wait()  # the producer holds the lock/limiter first
            if late:
                for _ in range(5):
                    await trio.sleep(0)
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

        async with trio.open_nursery() as n:
            if mode == "condition":
                n.start_soon(consumer)
                await trio.sleep(0.01)
                n.start_soon(producer)
            else:
                n.start_soon(producer)
                n.start_soon(consumer)

    trio.run(main)
    (r,), (w,) = by_type(sink)
    assert ordered(w, r), mode
    (r_late,), (w_late,) = by_type(sink, "late")
    assert concurrent(w_late, r_late), mode


def test_to_thread_is_a_thread_task(sink: CollectingSink) -> None:
    box = Box()

    def work(key: str) -> str:
        write(box, key)
        return key

    async def main() -> None:
        assert await trio.to_thread.run_sync(work, "t") == "t"
        read(box, "t")
        async with trio.open_nursery() as n:
            n.start_soon(trio.to_thread.run_sync, work, "cc")
            await trio.sleep(0.02)
            write(box, "cc")

    trio.run(main)
    (r,), (w,) = by_type(sink, "t")
    assert ordered(w, r) and "loop" not in w.ext
    assert sink.tasks()[w.task]["kind"] == "thread"
    a, b = sink.accesses("Box.cc")
    assert concurrent(a, b)


def leaf(exc: BaseException) -> BaseException:
    """The first leaf of a (possibly nested) exception group: trio versions differ here."""
    while hasattr(exc, "exceptions"):
        exc = exc.exceptions[0]
    return exc


def test_behaviour_unchanged(sink: CollectingSink) -> None:
    class Boom(Exception):
        pass

    async def fail() -> None:
        await trio.sleep(0)
        raise Boom("x")

    async def forever() -> None:
        await trio.sleep_forever()

    async def main() -> None:
        with pytest.raises(BaseException) as info:
            async with trio.open_nursery() as n:
                n.start_soon(fail, name="failing")
        assert isinstance(leaf(info.value), Boom)
        with trio.move_on_after(0.01) as scope:
            await forever()
        assert scope.cancelled_caught
        async with trio.open_nursery() as n:
            n.start_soon(forever)
            await trio.sleep(0)
            n.cancel_scope.cancel()
        names: list[str] = []

        async def named() -> None:
            names.append(trio.lowlevel.current_task().name)

        async with trio.open_nursery() as n:
            n.start_soon(named, name="custom-name")
        assert names == ["custom-name"]
        with pytest.raises(BaseException) as info:
            async with trio.open_nursery() as n:
                n.start_soon(lambda: None)  # not async
        assert isinstance(leaf(info.value), TypeError)
        with pytest.raises(ValueError):
            await trio.to_thread.run_sync(int, "nope")

    trio.run(main)
    assert len(sink.of_kind("AsyncSpawn")) >= 4


def test_token_run_sync_soon_from_a_thread_is_a_task_forked_there(sink: CollectingSink) -> None:
    box = Box()

    async def main() -> None:
        token = trio.lowlevel.current_trio_token()
        done = trio.Event()

        def on_trio() -> None:
            read(box, "before")
            read(box, "after")
            done.set()

        def in_thread() -> None:
            write(box, "before")
            token.run_sync_soon(on_trio)
            write(box, "after")

        await trio.to_thread.run_sync(in_thread)
        await done.wait()
        read(box, "before")
        token.run_sync_soon(lambda: read(box, "same"))  # from the run's thread: no new task
        await trio.sleep(0.01)

    trio.run(main)
    (rb_cb, rb_main), (wb,) = by_type(sink, "before")
    (ra,), (wa,) = by_type(sink, "after")
    assert rb_cb.task == ra.task and ra.task not in (wa.task, rb_main.task)
    assert ordered(wb, rb_cb) and ordered(wb, rb_main)  # callback -> trio.Event -> main
    assert concurrent(wa, ra)
    info = sink.tasks()[ra.task]
    assert info["parent"] == wa.task and info["kind"] == "callback"
    assert ra.ext["loop"] == rb_main.ext["loop"]
    assert len([t for t in sink.tasks().values() if t["kind"] == "callback"]) == 1


def run_fresh(code: str, timeout: float = 60) -> Any:
    """Run ``code`` in a new interpreter (trio not imported yet); it prints one JSON value."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([*sys.path, env.get("PYTHONPATH", "")])
    proc = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_trio_imported_after_the_thread_patches_still_reenters() -> None:
    out = run_fresh(
        """
        import faulthandler, json, sys
        faulthandler.dump_traceback_later(5, exit=True)  # a hang fails fast, with stacks
        from raceway_sdk import instrument
        from raceway_sdk.testing import recording

        with recording():
            assert instrument.is_installed() and "trio" not in sys.modules
            import trio

            def in_thread():
                return trio.from_thread.run_sync(lambda: 7)

            async def main():
                return [await trio.to_thread.run_sync(lambda: 5),
                        await trio.to_thread.run_sync(in_thread)]

            print(json.dumps(trio.run(main)))
        """
    )
    assert out == [5, 7]


def test_trio_is_patched_at_first_import_not_at_install() -> None:
    code = """
        import json, sys
        from raceway_sdk.instrument import anyio_trio
        from raceway_sdk.testing import recording

        with recording(instrument=False) as sink:
            anyio_trio.install()
            res = {"at_install": "trio" in sys.modules, "deferred": anyio_trio.deferred()}
            import trio

            async def child():
                await trio.sleep(0)

            async def main():
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(child)
                    nursery.start_soon(child)

            trio.run(main)
            res["kinds"] = sorted(t["kind"] for t in sink.tasks().values())
            res["still"] = "trio" in anyio_trio.deferred()
            anyio_trio.uninstall()
        import trio._core._run as run
        res["restored"] = not hasattr(vars(run.Runner)["spawn_impl"], "__wrapped__")
        print(json.dumps(res))
    """
    out = run_fresh(code)
    assert out["at_install"] is False and "trio" in out["deferred"]
    assert out["kinds"] == ["trio", "trio", "trio"]  # main task and both children: patched
    assert out["still"] is False and out["restored"] is True


def test_task_creation_site_is_the_first_frame_outside_trio(sink: CollectingSink) -> None:
    async def child() -> None:
        await trio.sleep(0)

    async def main() -> None:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(child)
            await nursery.start(_started)

    trio.run(main)
    spawns = sink.of_kind("AsyncSpawn")
    assert len(spawns) == 3  # main, child, _started
    for e in spawns:
        assert e.ext["stack"][0][0] == __file__, (e.ext["child_name"], e.ext["stack"][:3])


async def _started(task_status: Any = None) -> None:
    assert task_status is not None
    task_status.started()
