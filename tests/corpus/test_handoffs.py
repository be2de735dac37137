"""Race/NoRace kernels: more hand-offs (futures, conditions, shutdown) and their misuse."""

import asyncio
import collections
import concurrent.futures as cf
import threading

import anyio


class Box:
    def __init__(self):
        self.value = 0


def test_norace_future_set_result_handoff():
    box = Box()
    future = cf.Future()

    def producer():
        box.value = 1
        future.set_result(True)

    t = threading.Thread(target=producer)
    t.start()
    future.result()
    assert box.value == 1
    t.join()


def test_race_write_after_set_result():
    box = Box()
    future = cf.Future()
    done = threading.Event()

    def producer():
        future.set_result(True)
        box.value = 2
        done.set()

    t = threading.Thread(target=producer)
    t.start()
    future.result()
    box.value
    done.wait()
    t.join()


def test_norace_condition_producer_consumer():
    items = collections.deque()
    cond = threading.Condition()
    out = []

    def producer():
        for i in range(3):
            box = Box()
            box.value = i
            with cond:
                items.append(box)
                cond.notify()

    def consumer():
        for _ in range(3):
            with cond:
                cond.wait_for(lambda: items)
                box = items.popleft()
            box.value += 10
            out.append(box.value)

    threads = [threading.Thread(target=consumer), threading.Thread(target=producer)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert out == [10, 11, 12]


def test_norace_executor_shutdown_wait():
    box = Box()

    def work():
        box.value = 5

    ex = cf.ThreadPoolExecutor(2)
    ex.submit(work)
    ex.shutdown(wait=True)  # waits for every pending callable
    assert box.value == 5


def test_norace_dict_setdefault_from_threads():
    registry = {}

    def work():
        registry.setdefault("key", []).append(threading.get_ident())

    threads = [threading.Thread(target=work) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(registry["key"]) == 2


def test_norace_asyncio_semaphore_across_await():
    box = Box()

    async def work(sem):
        async with sem:
            seen = box.value
            await asyncio.sleep(0)
            box.value = seen + 1

    async def main():
        sem = asyncio.Semaphore(1)
        await asyncio.gather(work(sem), work(sem))

    asyncio.run(main())
    assert box.value == 2


def test_norace_asyncio_condition():
    box = Box()

    async def producer(cond):
        await asyncio.sleep(0)
        box.value = 1
        async with cond:
            cond.notify_all()

    async def consumer(cond):
        async with cond:
            await cond.wait_for(lambda: box.value == 1)
        seen = box.value
        await asyncio.sleep(0)
        box.value = seen + 1

    async def main():
        cond = asyncio.Condition()
        await asyncio.gather(consumer(cond), producer(cond))

    asyncio.run(main())
    assert box.value == 2


def test_race_asyncio_write_after_put():
    async def producer(q, box):
        await q.put(box)
        await asyncio.sleep(0)
        box.value = 2  # after the hand-off, while the consumer holds a stale read

    async def consumer(q):
        box = await q.get()
        seen = box.value
        await asyncio.sleep(0)
        await asyncio.sleep(0)
        box.value = seen + 1

    async def main():
        q = asyncio.Queue()
        await asyncio.gather(consumer(q), producer(q, Box()))

    asyncio.run(main())


def test_race_anyio_write_after_send():
    async def producer(send, box):
        async with send:
            await send.send(box)
            await anyio.sleep(0)
            box.value = 2

    async def consumer(receive):
        async with receive:
            box = await receive.receive()
            seen = box.value
            await anyio.sleep(0)
            await anyio.sleep(0)
            box.value = seen + 1

    async def main():
        send, receive = anyio.create_memory_object_stream(1)
        async with anyio.create_task_group() as tg:
            tg.start_soon(consumer, receive)
            tg.start_soon(producer, send, Box())

    anyio.run(main)


def test_norace_write_before_to_thread():
    box = Box()
    box.value = 4

    def blocking():
        return box.value

    async def main():
        return await asyncio.to_thread(blocking)

    assert asyncio.run(main()) == 4
