"""Executor and queue hand-offs are ordered (no race); a check-then-act on a shared dict races."""

import concurrent.futures
import queue
import threading


class Report:
    def __init__(self):
        self.rows = {}
        self.total = 0


def test_executor_results_are_ordered():
    report = Report()

    def compute(i):
        report.rows[i] = i * i  # one key per task: no conflict
        return i * i

    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        report.total = sum(pool.map(compute, range(8)))  # after every result: ordered
    assert report.total == 140


def test_queue_hand_off():
    jobs = queue.Queue()
    report = Report()

    def producer():
        report.total = 42  # written before put(): the consumer's read is ordered after it
        jobs.put(report)

    t = threading.Thread(target=producer)
    t.start()
    assert jobs.get().total == 42
    t.join()


def test_cache_check_then_act():
    cache = {}

    def load(key):
        if key not in cache:  # two threads can both miss, then both write
            cache[key] = f"value of {key}"

    threads = [threading.Thread(target=load, args=("config",)) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert cache["config"] == "value of config"
