"""Race/NoRace kernels: hand-off through every queue class."""

import queue
import threading


class Box:
    def __init__(self):
        self.value = 0


def handoff(q, put, get):
    box = Box()
    out = {}

    def producer():
        box.value = 11
        put(q, box)

    def consumer():
        got = get(q)
        out["v"] = got.value

    threads = [threading.Thread(target=consumer), threading.Thread(target=producer)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert out["v"] == 11


def test_norace_queue_handoff():
    handoff(queue.Queue(), lambda q, x: q.put(x), lambda q: q.get())


def test_norace_lifo_queue_handoff():
    handoff(queue.LifoQueue(), lambda q, x: q.put(x), lambda q: q.get())


def test_norace_priority_queue_handoff():
    handoff(queue.PriorityQueue(), lambda q, x: q.put((1, id(x), x)), lambda q: q.get()[2])


def test_norace_simple_queue_handoff():
    handoff(queue.SimpleQueue(), lambda q, x: q.put(x), lambda q: q.get())


def test_norace_queue_nowait_handoff():
    q = queue.Queue()
    box = Box()

    def producer():
        box.value = 5
        q.put_nowait(box)

    t = threading.Thread(target=producer)
    t.start()
    got = q.get()
    assert got.value == 5
    t.join()


def test_race_write_after_put():
    q = queue.Queue()
    box = Box()
    done = threading.Event()

    def producer():
        q.put(box)
        box.value = 2  # after the hand-off
        done.set()

    t = threading.Thread(target=producer)
    t.start()
    got = q.get()
    got.value
    done.wait()
    t.join()


def test_norace_queue_task_done_join():
    q = queue.Queue()
    results = {}

    def worker():
        while True:
            item = q.get()
            if item is None:
                q.task_done()
                return
            results[item] = item * item
            q.task_done()

    t = threading.Thread(target=worker, daemon=True)
    t.start()
    for i in range(3):
        q.put(i)
    q.join()  # every task_done() happens before join() returns
    assert results == {0: 0, 1: 1, 2: 4}
    q.put(None)
    t.join()


def test_race_two_consumers_shared_counter():
    q = queue.Queue()
    stats = Box()

    def consumer():
        q.get()
        stats.value += 1

    threads = [threading.Thread(target=consumer) for _ in range(2)]
    for t in threads:
        t.start()
    q.put(1)
    q.put(2)
    for t in threads:
        t.join()
