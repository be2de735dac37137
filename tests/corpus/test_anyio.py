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
