"""Race/NoRace kernels: containers, closures, class attributes and loop/thread bridges."""

import asyncio
import queue
import threading


class Box:
    count = 0

    def __init__(self):
        self.value = 0


def run_threads(*targets):
    threads = [threading.Thread(target=t) for t in targets]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


def test_race_list_same_index():
    slots = [0, 0]

    def a():
        slots[0] = 1

    def b():
        slots[0] = 2

    run_threads(a, b)


def test_norace_list_distinct_indexes():
    slots = [0, 0]

    def a():
        slots[0] = 1

    def b():
        slots[1] = 2

    run_threads(a, b)
    assert slots == [1, 2]


def test_race_del_vs_read():
    table = {"k": 1}
    gate = threading.Event()

    def deleter():
        del table["k"]
        gate.wait()

    t = threading.Thread(target=deleter)
    t.start()
    table.get("k")
    gate.set()
    t.join()


def test_race_class_attribute():
    def bump():
        Box.count += 1

    run_threads(bump, bump)


def test_norace_class_attribute_under_lock():
    lock = threading.Lock()

    def bump():
        with lock:
            Box.count += 1

    run_threads(bump, bump)


def test_race_nonlocal_counter():
    total = 0

    def bump():
        nonlocal total
        total += 1

    run_threads(bump, bump)


def test_norace_nonlocal_under_lock():
    total = 0
    lock = threading.Lock()

    def bump():
        nonlocal total
        with lock:
            total += 1

    run_threads(bump, bump)
    assert total == 2


def test_norace_rlock_reentrant_methods():
    class Account:
        def __init__(self):
            self.lock = threading.RLock()
            self.balance = 0

        def deposit(self, n):
            with self.lock:
                self.balance += n

        def transfer_in(self, n):
            with self.lock:
                self.deposit(n)

    account = Account()
    run_threads(lambda: account.transfer_in(1), lambda: account.deposit(2))
    assert account.balance == 3


def test_race_unlocked_reader():
    box = Box()
    lock = threading.Lock()

    def writer():
        with lock:
            box.value = 1

    def reader():
        box.value  # reads without the lock the writer holds

    run_threads(writer, reader)


def test_norace_barrier_action():
    # Barrier(action=...): the action runs after every party arrived and before any leaves.
    slots = {}
    summary = {}
    seen = []

    def combine():
        summary["total"] = slots[0] + slots[1]  # runs once, after every party arrived

    barrier = threading.Barrier(2, action=combine)

    def worker(i):
        slots[i] = i + 1
        barrier.wait()
        seen.append(summary["total"])

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert seen == [3, 3]


def test_norace_bounded_queue_backpressure():
    q = queue.Queue(maxsize=1)
    out = []

    def producer():
        for i in range(3):
            box = Box()
            box.value = i
            q.put(box)

    t = threading.Thread(target=producer)
    t.start()
    for _ in range(3):
        box = q.get()
        box.value += 1
        out.append(box.value)
    t.join()
    assert out == [1, 2, 3]


def test_norace_immutable_shared_reads():
    config = Box()
    config.value = (1, 2, 3)
    out = []

    def reader():
        out.append(sum(config.value))

    run_threads(reader, reader, reader)
    assert out == [6, 6, 6]


def test_norace_run_coroutine_threadsafe_result():
    box = Box()

    async def on_loop():
        box.value = 7

    async def main():
        loop = asyncio.get_running_loop()

        def from_thread():
            asyncio.run_coroutine_threadsafe(on_loop(), loop).result()
            return box.value

        return await asyncio.to_thread(from_thread)

    assert asyncio.run(main()) == 7


def test_race_run_coroutine_threadsafe_unwaited():
    # The coroutine's task forks from the calling thread at the call, whenever the loop runs it.
    box = Box()

    async def on_loop():
        box.value = 1

    async def main():
        loop = asyncio.get_running_loop()

        def from_thread():
            future = asyncio.run_coroutine_threadsafe(on_loop(), loop)
            box.value = 2  # before waiting for the coroutine
            future.result()

        await asyncio.to_thread(from_thread)

    asyncio.run(main())


def test_norace_asyncio_wait_for_result():
    box = Box()

    async def work():
        await asyncio.sleep(0)
        box.value = 3

    async def main():
        await asyncio.wait_for(work(), timeout=10)
        seen = box.value
        await asyncio.sleep(0)
        box.value = seen + 1

    asyncio.run(main())
    assert box.value == 4


def test_norace_asyncio_as_completed():
    results = {}

    async def work(i):
        await asyncio.sleep(0)
        results[i] = i

    async def main():
        for next_done in asyncio.as_completed([work(i) for i in range(3)]):
            await next_done
        seen = dict(results)
        await asyncio.sleep(0)
        results["all"] = len(seen)

    asyncio.run(main())
    assert results["all"] == 3


def test_race_barrier_action_vs_unsynchronised_reader():
    # The action is ordered with the parties, not with a thread that never waits on the barrier.
    summary = {}

    def combine():
        summary["total"] = 3

    barrier = threading.Barrier(2, action=combine)
    outsider = threading.Thread(target=lambda: summary.get("total"))
    outsider.start()
    threads = [threading.Thread(target=barrier.wait) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    outsider.join()
