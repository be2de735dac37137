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


def test_norace_asyncio_condition_handoff():
    box = Box()

    async def producer(cond):
        await asyncio.sleep(0)
        box.value = 5
        async with cond:
            cond.notify_all()

    async def consumer(cond):
        async with cond:
            await cond.wait_for(lambda: box.value == 5)
        seen = box.value
        await asyncio.sleep(0)
        box.value = seen + 1

    async def main():
        cond = asyncio.Condition()
        await asyncio.gather(consumer(cond), producer(cond))

    asyncio.run(main())
    assert box.value == 6


def test_norace_asyncio_future_handoff():
    box = Box()

    async def producer(fut):
        await asyncio.sleep(0)
        box.value = 4
        fut.set_result(None)

    async def main():
        fut = asyncio.get_running_loop().create_future()
        task = asyncio.create_task(producer(fut))
        await fut
        seen = box.value
        await asyncio.sleep(0)
        box.value = seen + 1
        await task

    asyncio.run(main())
    assert box.value == 5


def test_norace_shield_then_read():
    box = Box()

    async def work():
        await asyncio.sleep(0)
        box.value = 8

    async def main():
        await asyncio.shield(work())
        seen = box.value
        await asyncio.sleep(0)
        box.value = seen + 1

    asyncio.run(main())
    assert box.value == 9


def test_norace_as_completed_then_read():
    results = {}

    async def work(i):
        await asyncio.sleep(0)
        results[i] = i

    async def main():
        for fut in asyncio.as_completed([work(i) for i in range(3)]):
            await fut
        seen = dict(results)
        await asyncio.sleep(0)
        results.clear()
        return seen

    assert asyncio.run(main()) == {0: 0, 1: 1, 2: 2}


def test_race_wait_first_completed_leaves_the_other_running():
    box = Box()

    async def quick():
        await asyncio.sleep(0)

    async def slow():
        seen = box.value
        await asyncio.sleep(0.01)
        box.value = seen + 1

    async def main():
        tasks = [asyncio.create_task(quick()), asyncio.create_task(slow())]
        _, pending = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        box.value = 10  # slow() read before and writes after this: lost update
        await asyncio.gather(*pending)

    asyncio.run(main())


def test_norace_queue_join_task_done():
    box = Box()

    async def worker(q):
        while True:
            item = await q.get()
            await asyncio.sleep(0)
            box.value += item
            q.task_done()

    async def main():
        q = asyncio.Queue()
        task = asyncio.create_task(worker(q))
        for i in (1, 2, 3):
            q.put_nowait(i)
        await q.join()
        seen = box.value
        await asyncio.sleep(0)
        box.value = seen * 10
        task.cancel()
        return box.value

    assert asyncio.run(main()) == 60


@pytest.mark.skipif(sys.version_info < (3, 12), reason="eager_task_factory is new in 3.12")
def test_race_eager_task_lost_update():
    box = Box()

    async def work():
        seen = box.value
        await asyncio.sleep(0)
        box.value = seen + 1

    async def main():
        asyncio.get_running_loop().set_task_factory(asyncio.eager_task_factory)
        await asyncio.gather(asyncio.create_task(work()), asyncio.create_task(work()))

    asyncio.run(main())


def test_norace_call_soon_threadsafe_event_handoff():
    box = Box()

    async def main():
        loop = asyncio.get_running_loop()
        ready = asyncio.Event()

        def from_thread():
            box.value = 6
            loop.call_soon_threadsafe(ready.set)

        t = threading.Thread(target=from_thread)
        t.start()
        await ready.wait()
        seen = box.value
        await asyncio.sleep(0)
        box.value = seen + 1
        t.join()

    asyncio.run(main())
    assert box.value == 7


def test_race_call_soon_threadsafe_callback_vs_caller():
    box = Box()

    async def main():
        loop = asyncio.get_running_loop()
        done = asyncio.Event()

        def on_loop():
            box.value = 1
            done.set()

        def from_thread():
            loop.call_soon_threadsafe(on_loop)
            box.value = 2  # the callback is not ordered with this write

        t = threading.Thread(target=from_thread)
        t.start()
        await done.wait()
        t.join()

    asyncio.run(main())


def test_race_run_in_executor_unawaited_write():
    box = Box()
    gate = threading.Event()

    def blocking():
        box.value = 1
        gate.wait()

    async def main():
        fut = asyncio.get_running_loop().run_in_executor(None, blocking)
        box.value = 2  # the executor job is preemptive: unordered with its write
        gate.set()
        await fut

    asyncio.run(main())


def test_norace_cancelled_task_then_write():
    box = Box()

    async def work():
        box.value = 1
        await asyncio.sleep(10)

    async def main():
        task = asyncio.create_task(work())
        await asyncio.sleep(0)
        task.cancel()
        try:
            await task
        except asyncio.CancelledError:
            pass
        seen = box.value
        await asyncio.sleep(0)
        box.value = seen + 1

    asyncio.run(main())
    assert box.value == 2


def test_norace_gather_return_exceptions_then_read():
    box = Box()

    async def fail():
        await asyncio.sleep(0)
        box.value = 3
        raise ValueError("expected")

    async def main():
        (err,) = await asyncio.gather(fail(), return_exceptions=True)
        assert isinstance(err, ValueError)
        seen = box.value
        await asyncio.sleep(0)
        box.value = seen + 1

    asyncio.run(main())
    assert box.value == 4


@pytest.mark.skipif(sys.version_info < (3, 11), reason="asyncio.TaskGroup is new in 3.11")
def test_norace_taskgroup_failure_joins_every_child():
    box = Box()

    async def fail():
        await asyncio.sleep(0)
        raise ValueError("expected")

    async def slow():
        try:
            await asyncio.sleep(10)
        finally:
            box.value = 5  # runs when the group cancels it

    async def main():
        try:
            async with asyncio.TaskGroup() as tg:
                tg.create_task(slow())
                tg.create_task(fail())
        except Exception as exc:  # an ExceptionGroup (no except* before 3.11)
            assert type(exc).__name__ == "ExceptionGroup"
        seen = box.value
        await asyncio.sleep(0)
        box.value = seen + 1

    asyncio.run(main())
    assert box.value == 6


def test_race_two_loops_in_two_threads():
    box = Box()

    async def work():
        box.value += 1  # await-free, but the other loop runs in another thread

    def run_loop():
        asyncio.run(work())

    threads = [threading.Thread(target=run_loop) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


def _receive_then_increment(box):
    """A consumer for :func:`_over_a_socketpair`: one byte in, then ``box.value += 1`` across
    an await."""

    async def consumer(reader):
        await reader.readexactly(1)
        seen = box.value
        await asyncio.sleep(0)
        box.value = seen + 1

    return consumer


def _over_a_socketpair(producer, consumer):
    """Run ``producer(writer)`` and ``consumer(reader)`` on the two ends of a socket pair."""
    import socket

    async def main():
        a, b = socket.socketpair()
        _, writer_a = await asyncio.open_connection(sock=a)
        reader_b, writer_b = await asyncio.open_connection(sock=b)
        await asyncio.gather(consumer(reader_b), producer(writer_a))
        for w in (writer_a, writer_b):
            w.close()
            await w.wait_closed()

    asyncio.run(main())


def test_norace_stream_handoff_over_socketpair():
    # The bytes are the hand-off: the producer's write is ordered before the consumer's
    # read-modify-write by the send -> receive edge of the socket pair.
    box = Box()

    async def producer(writer):
        await asyncio.sleep(0)
        box.value = 2
        writer.write(b"x")
        await writer.drain()

    _over_a_socketpair(producer, _receive_then_increment(box))
    assert box.value == 3


class BackgroundLoop:
    """An event loop running in its own thread (the usual sync-to-async bridge)."""

    def __enter__(self):
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever)
        self.thread.start()
        return self.loop

    def __exit__(self, *exc):
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join()
        self.loop.close()


def test_norace_background_loop_run_coroutine_threadsafe():
    box = Box()

    async def on_loop():
        seen = box.value
        await asyncio.sleep(0)
        box.value = seen + 1

    with BackgroundLoop() as loop:
        box.value = 1
        asyncio.run_coroutine_threadsafe(on_loop(), loop).result(5)
        box.value = box.value * 10
    assert box.value == 20


def test_race_background_loop_call_soon_threadsafe_unwaited():
    box = Box()

    def on_loop():
        box.value = 1

    with BackgroundLoop() as loop:
        loop.call_soon_threadsafe(on_loop)
        box.value = 2  # nothing orders this with the callback


def test_race_write_after_send_over_socketpair():
    # Only what the producer did before it sent is ordered before the consumer's receive: its
    # write after the send races with the consumer's read-modify-write.
    box = Box()

    async def producer(writer):
        await asyncio.sleep(0)
        writer.write(b"x")
        await writer.drain()
        box.value = 2

    _over_a_socketpair(producer, _receive_then_increment(box))
