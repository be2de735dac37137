"""Race/NoRace kernels: anyio on asyncio and trio, and trio directly."""

import anyio
import trio


class Box:
    def __init__(self):
        self.value = 0


async def lost_update(box):
    seen = box.value
    await anyio.sleep(0)
    box.value = seen + 1


def test_norace_anyio_task_group_then_read():
    results = {}

    async def work(i):
        await anyio.sleep(0)
        results[i] = i

    async def main():
        async with anyio.create_task_group() as tg:
            for i in range(3):
                tg.start_soon(work, i)
        return dict(results)

    assert anyio.run(main) == {0: 0, 1: 1, 2: 2}


def test_race_anyio_lost_update():
    box = Box()

    async def main():
        async with anyio.create_task_group() as tg:
            tg.start_soon(lost_update, box)
            tg.start_soon(lost_update, box)

    anyio.run(main)


def test_norace_anyio_lock():
    box = Box()

    async def work(lock):
        async with lock:
            await lost_update(box)

    async def main():
        lock = anyio.Lock()
        async with anyio.create_task_group() as tg:
            tg.start_soon(work, lock)
            tg.start_soon(work, lock)

    anyio.run(main)
    assert box.value == 2


def test_norace_anyio_event_handoff():
    box = Box()

    async def producer(ready):
        await anyio.sleep(0)
        box.value = 3
        await anyio.sleep(0)
        ready.set()

    async def consumer(ready):
        await ready.wait()
        await lost_update(box)

    async def main():
        ready = anyio.Event()
        async with anyio.create_task_group() as tg:
            tg.start_soon(consumer, ready)
            tg.start_soon(producer, ready)

    anyio.run(main)
    assert box.value == 4


def test_norace_anyio_memory_stream_handoff():
    async def producer(send):
        box = Box()
        box.value = 1
        await anyio.sleep(0)
        box.value = 2
        async with send:
            await send.send(box)

    async def consumer(receive, out):
        async with receive:
            async for box in receive:
                await lost_update(box)
                out.append(box.value)

    async def main():
        out = []
        send, receive = anyio.create_memory_object_stream(1)
        async with anyio.create_task_group() as tg:
            tg.start_soon(consumer, receive, out)
            tg.start_soon(producer, send)
        return out

    assert anyio.run(main) == [3]


def test_race_anyio_to_thread_concurrent_write():
    box = Box()

    def blocking():
        box.value = 1

    async def main():
        async with anyio.create_task_group() as tg:
            tg.start_soon(anyio.to_thread.run_sync, blocking)
            box.value = 2

    anyio.run(main)


def test_race_anyio_trio_backend_lost_update():
    box = Box()

    async def main():
        async with anyio.create_task_group() as tg:
            tg.start_soon(lost_update, box)
            tg.start_soon(lost_update, box)

    anyio.run(main, backend="trio")


def test_norace_trio_nursery_then_read():
    results = {}

    async def work(i):
        await trio.sleep(0)
        results[i] = i

    async def main():
        async with trio.open_nursery() as nursery:
            for i in range(3):
                nursery.start_soon(work, i)
        return dict(results)

    assert trio.run(main) == {0: 0, 1: 1, 2: 2}


def test_norace_trio_lock():
    box = Box()

    async def work(lock):
        async with lock:
            seen = box.value
            await trio.sleep(0)
            box.value = seen + 1

    async def main():
        lock = trio.Lock()
        async with trio.open_nursery() as nursery:
            nursery.start_soon(work, lock)
            nursery.start_soon(work, lock)

    trio.run(main)
    assert box.value == 2


def test_race_trio_lost_update():
    box = Box()

    async def work():
        seen = box.value
        await trio.sleep(0)
        box.value = seen + 1

    async def main():
        async with trio.open_nursery() as nursery:
            nursery.start_soon(work)
            nursery.start_soon(work)

    trio.run(main)


def test_norace_anyio_from_thread_run_then_read():
    box = Box()

    async def on_loop():
        await anyio.sleep(0)
        box.value = 2

    def in_thread():
        anyio.from_thread.run(on_loop)
        return box.value

    async def main():
        return await anyio.to_thread.run_sync(in_thread)

    assert anyio.run(main) == 2


def test_race_anyio_from_thread_run_sync_vs_thread():
    box = Box()

    def on_loop():
        box.value = 1

    def in_thread():
        anyio.from_thread.run_sync(on_loop)
        box.value = 2  # ordered after on_loop (run_sync waits for it) ...

    async def main():
        async with anyio.create_task_group() as tg:
            tg.start_soon(anyio.to_thread.run_sync, in_thread)
            await anyio.sleep(0)
            box.value = 3  # ... but this task write is ordered with neither

    anyio.run(main)


def test_norace_anyio_capacity_limiter():
    box = Box()

    async def work(limiter):
        async with limiter:
            await lost_update(box)

    async def main():
        limiter = anyio.CapacityLimiter(1)
        async with anyio.create_task_group() as tg:
            tg.start_soon(work, limiter)
            tg.start_soon(work, limiter)

    anyio.run(main)
    assert box.value == 2


def test_norace_anyio_condition_handoff():
    box = Box()

    async def producer(cond):
        await anyio.sleep(0)
        box.value = 5
        async with cond:
            cond.notify_all()

    async def consumer(cond, started):
        async with cond:
            started.set()
            await cond.wait()
        await lost_update(box)

    async def main():
        cond = anyio.Condition()
        started = anyio.Event()
        async with anyio.create_task_group() as tg:
            tg.start_soon(consumer, cond, started)
            await started.wait()
            tg.start_soon(producer, cond)

    anyio.run(main)
    assert box.value == 6


def test_norace_anyio_start_handoff():
    box = Box()

    async def service(*, task_status=anyio.TASK_STATUS_IGNORED):
        box.value = 1
        await anyio.sleep(0)
        box.value = 2
        task_status.started()

    async def main():
        async with anyio.create_task_group() as tg:
            await tg.start(service)
            await lost_update(box)

    anyio.run(main)
    assert box.value == 3


def test_norace_trio_memory_channel_handoff():
    async def producer(send):
        box = Box()
        box.value = 1
        await trio.sleep(0)
        box.value = 2
        async with send:
            await send.send(box)

    async def consumer(receive, out):
        async with receive:
            async for box in receive:
                await lost_update_trio(box)
                out.append(box.value)

    async def main():
        out = []
        send, receive = trio.open_memory_channel(0)
        async with trio.open_nursery() as nursery:
            nursery.start_soon(consumer, receive, out)
            nursery.start_soon(producer, send)
        return out

    assert trio.run(main) == [3]


async def lost_update_trio(box):
    seen = box.value
    await trio.sleep(0)
    box.value = seen + 1


def test_norace_trio_to_thread_then_read():
    box = Box()

    def blocking():
        box.value = 9

    async def main():
        await trio.to_thread.run_sync(blocking)
        await lost_update_trio(box)

    trio.run(main)
    assert box.value == 10


def test_race_trio_to_thread_concurrent_write():
    box = Box()

    def blocking():
        box.value = 1

    async def main():
        async with trio.open_nursery() as nursery:
            nursery.start_soon(trio.to_thread.run_sync, blocking)
            box.value = 2

    trio.run(main)


def test_norace_trio_event_handoff():
    box = Box()

    async def producer(ready):
        await trio.sleep(0)
        box.value = 3
        ready.set()

    async def consumer(ready):
        await ready.wait()
        await lost_update_trio(box)

    async def main():
        ready = trio.Event()
        async with trio.open_nursery() as nursery:
            nursery.start_soon(consumer, ready)
            nursery.start_soon(producer, ready)

    trio.run(main)
    assert box.value == 4


def test_race_anyio_trio_backend_to_thread_concurrent_write():
    box = Box()

    def blocking():
        box.value = 1

    async def main():
        async with anyio.create_task_group() as tg:
            tg.start_soon(anyio.to_thread.run_sync, blocking)
            box.value = 2

    anyio.run(main, backend="trio")


def test_norace_trio_from_thread_run_sync_after_write():
    box = Box()

    def on_trio():
        box.value = box.value + 1

    def in_thread():
        box.value = 1
        trio.from_thread.run_sync(on_trio)  # waits for it: the thread's writes come before
        return box.value

    async def main():
        return await trio.to_thread.run_sync(in_thread)

    assert trio.run(main) == 2


def test_norace_trio_from_thread_run_after_write():
    box = Box()

    async def on_trio():
        await trio.sleep(0)
        box.value = box.value + 1

    def in_thread():
        box.value = 1
        trio.from_thread.run(on_trio)
        return box.value

    async def main():
        return await trio.to_thread.run_sync(in_thread)

    assert trio.run(main) == 2


def test_norace_anyio_from_thread_run_sync_after_write():
    box = Box()

    def on_loop():
        box.value = box.value + 1

    def in_thread():
        box.value = 1
        anyio.from_thread.run_sync(on_loop)
        return box.value

    async def main():
        return await anyio.to_thread.run_sync(in_thread)

    assert anyio.run(main) == 2
    assert anyio.run(main, backend="trio") == 2


def test_race_trio_token_run_sync_soon_vs_caller():
    box = Box()

    def on_trio():
        box.value = 1

    async def main():
        token = trio.lowlevel.current_trio_token()
        done = trio.Event()

        def in_thread():
            token.run_sync_soon(lambda: (on_trio(), done.set()))
            box.value = 2  # not ordered with on_trio

        await trio.to_thread.run_sync(in_thread)
        await done.wait()

    trio.run(main)


def test_norace_trio_token_run_sync_soon_after_write():
    box = Box()

    async def main():
        token = trio.lowlevel.current_trio_token()
        done = trio.Event()

        def on_trio():
            box.value = box.value + 1
            done.set()

        def in_thread():
            box.value = 1
            token.run_sync_soon(on_trio)

        await trio.to_thread.run_sync(in_thread)
        await done.wait()
        return box.value

    assert trio.run(main) == 2


def portal_call(backend):
    box = Box()

    async def on_loop():
        seen = box.value
        await anyio.sleep(0)
        box.value = seen + 1

    with anyio.from_thread.start_blocking_portal(backend) as portal:
        box.value = 1
        portal.call(on_loop)
        box.value = box.value * 10
    assert box.value == 20


def test_norace_anyio_blocking_portal_call():
    portal_call("asyncio")


def test_norace_anyio_trio_backend_blocking_portal_call():
    portal_call("trio")


def portal_unwaited(backend):
    box = Box()

    async def on_loop():
        await anyio.sleep(0)
        box.value = 1

    with anyio.from_thread.start_blocking_portal(backend) as portal:
        future = portal.start_task_soon(on_loop)
        box.value = 2  # before waiting for the task
        future.result()


def test_race_anyio_blocking_portal_start_task_soon_unwaited():
    portal_unwaited("asyncio")


def test_race_anyio_trio_backend_blocking_portal_start_task_soon_unwaited():
    portal_unwaited("trio")
