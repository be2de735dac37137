"""Race/NoRace kernels: asyncio tasks (atomic between awaits) and their hand-offs to threads."""

import asyncio
import sys
import threading

import pytest


class Box:
    def __init__(self):
        self.value = 0


def test_norace_await_free_rmw():
    box = Box()

    async def work():
        box.value += 1  # no await inside: atomic with respect to the other task
        await asyncio.sleep(0)

    async def main():
        await asyncio.gather(work(), work())

    asyncio.run(main())
    assert box.value == 2


def test_race_lost_update_across_await():
    box = Box()

    async def work():
        seen = box.value
        await asyncio.sleep(0)
        box.value = seen + 1

    async def main():
        await asyncio.gather(work(), work())

    asyncio.run(main())


def test_race_check_then_act_across_await():
    cache = {}

    async def fetch(key):
        if key not in cache:
            await asyncio.sleep(0)
            cache[key] = object()
        return cache[key]

    async def main():
        await asyncio.gather(fetch("k"), fetch("k"))

    asyncio.run(main())


def test_norace_asyncio_lock_across_await():
    box = Box()

    async def work(lock):
        async with lock:
            seen = box.value
            await asyncio.sleep(0)
            box.value = seen + 1

    async def main():
        lock = asyncio.Lock()
        await asyncio.gather(work(lock), work(lock))

    asyncio.run(main())
    assert box.value == 2


def test_norace_asyncio_event_handoff():
    box = Box()

    async def producer(ready):
        await asyncio.sleep(0)
        box.value = 3
        await asyncio.sleep(0)
        ready.set()

    async def consumer(ready):
        await ready.wait()
        await asyncio.sleep(0)
        box.value = box.value + 1

    async def main():
        ready = asyncio.Event()
        await asyncio.gather(consumer(ready), producer(ready))

    asyncio.run(main())
    assert box.value == 4


def test_norace_asyncio_queue_handoff():
    async def producer(q):
        box = Box()
        box.value = 1
        await asyncio.sleep(0)
        box.value = 2
        await q.put(box)

    async def consumer(q):
        box = await q.get()
        seen = box.value
        await asyncio.sleep(0)
        box.value = seen + 1
        return box.value

    async def main():
        q = asyncio.Queue()
        _, result = await asyncio.gather(producer(q), consumer(q))
        return result

    assert asyncio.run(main()) == 3


def test_norace_gather_then_read():
    box = Box()

    async def work():
        await asyncio.sleep(0)
        box.value = 5

    async def main():
        await asyncio.gather(work())
        seen = box.value
        await asyncio.sleep(0)
        box.value = seen + 1

    asyncio.run(main())
    assert box.value == 6


@pytest.mark.skipif(sys.version_info < (3, 11), reason="asyncio.TaskGroup is new in 3.11")
def test_norace_taskgroup_then_read():
    results = {}

    async def work(i):
        await asyncio.sleep(0)
        results[i] = i

    async def main():
        async with asyncio.TaskGroup() as tg:
            for i in range(3):
                tg.create_task(work(i))
        return dict(results)

    assert asyncio.run(main()) == {0: 0, 1: 1, 2: 2}


def test_norace_create_task_await():
    box = Box()

    async def work():
        seen = box.value
        await asyncio.sleep(0)
        box.value = seen + 1

    async def main():
        await asyncio.create_task(work())
        await asyncio.create_task(work())

    asyncio.run(main())
    assert box.value == 2


def test_norace_to_thread_then_read():
    box = Box()

    def blocking():
        box.value = 9

    async def main():
        await asyncio.to_thread(blocking)
        return box.value

    assert asyncio.run(main()) == 9


def test_race_to_thread_concurrent_write():
    box = Box()
    gate = threading.Event()

    def blocking():
        box.value = 1
        gate.wait()

    async def main():
        task = asyncio.ensure_future(asyncio.to_thread(blocking))
        await asyncio.sleep(0)
        box.value = 2  # the thread runs preemptively: unordered with its write
        gate.set()
        await task

    asyncio.run(main())


def test_norace_run_in_executor_then_read():
    box = Box()

    def blocking():
        box.value = 10

    async def main():
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(None, blocking)
        return box.value

    assert asyncio.run(main()) == 10


def test_race_task_vs_thread_started_in_loop():
    box = Box()

    def thread_body():
        box.value = 1

    async def main():
        t = threading.Thread(target=thread_body)
        t.start()
        box.value = 2
        while t.is_alive():
            await asyncio.sleep(0.001)

    asyncio.run(main())


def test_race_lost_update_create_task():
    box = Box()

    async def work():
        seen = box.value
        await asyncio.sleep(0)
        box.value = seen + 1

    async def main():
        a = asyncio.create_task(work())
        b = asyncio.create_task(work())
        await a
        await b

    asyncio.run(main())
