"""Race/NoRace kernels: concurrent.futures executors (every submitted callable is a task)."""

import concurrent.futures as cf
import threading


class Box:
    def __init__(self):
        self.value = 0


def test_norace_submit_result():
    box = Box()

    def work():
        box.value = 1
        return 1

    with cf.ThreadPoolExecutor(2) as ex:
        assert ex.submit(work).result() == 1
    assert box.value == 1


def test_norace_write_before_submit():
    box = Box()
    box.value = 4

    def work():
        return box.value

    with cf.ThreadPoolExecutor(2) as ex:
        assert ex.submit(work).result() == 4


def test_race_two_submits_same_var():
    box = Box()

    def work():
        box.value += 1

    with cf.ThreadPoolExecutor(2) as ex:
        futures = [ex.submit(work), ex.submit(work)]
        for f in futures:
            f.result()


def test_race_single_worker_pool_siblings():
    # One worker thread runs both callables one after the other, but nothing orders them:
    # the verdict must not depend on the pool size.
    box = Box()

    def work():
        box.value += 1

    with cf.ThreadPoolExecutor(1) as ex:
        futures = [ex.submit(work), ex.submit(work)]
        for f in futures:
            f.result()


def test_norace_map_disjoint_keys():
    results = {}

    def work(i):
        results[i] = i + 1

    with cf.ThreadPoolExecutor(2) as ex:
        list(ex.map(work, range(4)))
    assert results == {0: 1, 1: 2, 2: 3, 3: 4}


def test_race_map_shared_counter():
    box = Box()

    def work(i):
        box.value += i

    with cf.ThreadPoolExecutor(2) as ex:
        list(ex.map(work, range(4)))


def test_norace_wait_then_read():
    box = Box()

    def work():
        box.value = 8

    with cf.ThreadPoolExecutor(2) as ex:
        done, _ = cf.wait([ex.submit(work)])
        assert len(done) == 1
        assert box.value == 8


def test_norace_as_completed_then_read():
    results = {}

    def work(i):
        results[i] = i

    with cf.ThreadPoolExecutor(2) as ex:
        futures = [ex.submit(work, i) for i in range(3)]
        for f in cf.as_completed(futures):
            f.result()
        assert results == {0: 0, 1: 1, 2: 2}


def test_norace_done_callback():
    box = Box()
    seen = {}
    called = threading.Event()

    def work():
        box.value = 6

    def callback(future):
        seen["v"] = box.value
        called.set()

    with cf.ThreadPoolExecutor(1) as ex:
        ex.submit(work).add_done_callback(callback)
    called.wait()
    assert seen["v"] == 6


def test_race_read_before_result():
    box = Box()
    gate = threading.Event()

    def work():
        box.value = 1
        gate.wait()

    with cf.ThreadPoolExecutor(1) as ex:
        future = ex.submit(work)
        box.value  # concurrent with work()
        gate.set()
        future.result()
