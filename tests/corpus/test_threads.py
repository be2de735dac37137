"""Race/NoRace kernels: threads and every threading primitive.

Each kernel is labelled by its name (``test_race_*`` must be reported, ``test_norace_*`` must
not). Race kernels do not depend on the schedule: the racing accesses are unordered by any
happens-before edge, whatever interleaving the run happens to take.
"""

import gc
import threading
import time


class Box:
    def __init__(self, value=0):
        self.value = value
        self.other = 0


counter = 0


def run_threads(*targets):
    threads = [threading.Thread(target=t) for t in targets]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


def wait_unsynchronised(thread):
    # Polling is_alive() gives no happens-before edge (unlike join()).
    while thread.is_alive():
        time.sleep(0.001)


def test_race_two_threads_increment():
    box = Box()

    def work():
        box.value += 1

    run_threads(work, work)


def test_norace_lock_increment():
    box = Box()
    lock = threading.Lock()

    def work():
        with lock:
            box.value += 1

    run_threads(work, work)
    assert box.value == 2


def test_norace_lock_acquire_release_explicit():
    box = Box()
    lock = threading.Lock()

    def work():
        lock.acquire()
        try:
            box.value += 1
        finally:
            lock.release()

    run_threads(work, work)
    assert box.value == 2


def test_race_lock_in_one_thread_only():
    box = Box()
    lock = threading.Lock()

    def locked():
        with lock:
            box.value += 1

    def unlocked():
        box.value += 1

    run_threads(locked, unlocked)


def test_race_different_locks():
    box = Box()
    lock_a, lock_b = threading.Lock(), threading.Lock()

    def a():
        with lock_a:
            box.value += 1

    def b():
        with lock_b:
            box.value += 1

    run_threads(a, b)


def test_norace_rlock_reentrant():
    box = Box()
    lock = threading.RLock()

    def work():
        with lock:
            with lock:
                box.value += 1

    run_threads(work, work)
    assert box.value == 2


def test_norace_condition_wait_notify():
    box = Box()
    cond = threading.Condition()
    state = {"ready": False}

    def producer():
        box.value = 42
        with cond:
            state["ready"] = True
            cond.notify_all()

    def consumer():
        with cond:
            cond.wait_for(lambda: state["ready"])
        assert box.value == 42

    run_threads(consumer, producer)


def test_race_condition_write_after_notify():
    box = Box()
    cond = threading.Condition()
    state = {"ready": False}

    def producer():
        with cond:
            state["ready"] = True
            cond.notify_all()
        box.value = 2  # after the notification: unordered with the consumer's read

    def consumer():
        with cond:
            cond.wait_for(lambda: state["ready"])
        box.value

    run_threads(consumer, producer)


def test_norace_semaphore_as_lock():
    box = Box()
    sem = threading.Semaphore(1)

    def work():
        with sem:
            box.value += 1

    run_threads(work, work)
    assert box.value == 2


def test_norace_bounded_semaphore_as_lock():
    box = Box()
    sem = threading.BoundedSemaphore(1)

    def work():
        with sem:
            box.value += 1

    run_threads(work, work)
    assert box.value == 2


def test_norace_semaphore_signal():
    box = Box()
    sem = threading.Semaphore(0)

    def producer():
        box.value = 7
        sem.release()

    t = threading.Thread(target=producer)
    t.start()
    sem.acquire()
    assert box.value == 7
    t.join()


def test_norace_event_handoff():
    box = Box()
    ready = threading.Event()

    def producer():
        box.value = 1
        ready.set()

    t = threading.Thread(target=producer)
    t.start()
    ready.wait()
    assert box.value == 1
    t.join()


def test_race_write_after_event_set():
    box = Box()
    ready = threading.Event()
    done = threading.Event()

    def producer():
        ready.set()
        box.value = 2
        done.set()

    t = threading.Thread(target=producer)
    t.start()
    ready.wait()
    box.value  # the write after set() is not ordered with this read
    done.wait()
    t.join()


def test_norace_barrier_publish():
    slots = [0, 0]
    seen = [None, None]
    barrier = threading.Barrier(2)

    def worker(i):
        slots[i] = i + 1
        barrier.wait()
        seen[i] = slots[1 - i]

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert seen == [2, 1]


def test_race_barrier_write_after():
    box = Box()
    barrier = threading.Barrier(2)

    def worker():
        barrier.wait()
        box.value += 1

    run_threads(worker, worker)


def test_norace_timer_join():
    box = Box()

    def fire():
        box.value = 3

    timer = threading.Timer(0.001, fire)
    timer.start()
    timer.join()
    assert box.value == 3


def test_race_timer_unjoined():
    box = Box()

    def fire():
        box.value = 3

    timer = threading.Timer(0.001, fire)
    timer.start()
    wait_unsynchronised(timer)
    box.value = 4


def test_norace_write_before_start():
    box = Box()
    box.value = 5
    out = {}

    def reader():
        out["v"] = box.value

    run_threads(reader)
    assert out["v"] == 5


def test_norace_read_after_join():
    box = Box()

    def writer():
        box.value = 9

    run_threads(writer)
    assert box.value == 9


def test_race_read_before_join():
    box = Box()
    release = threading.Event()

    def writer():
        box.value = 9
        release.wait()

    t = threading.Thread(target=writer)
    t.start()
    box.value  # concurrent with the writer
    release.set()
    t.join()


def test_norace_sequential_threads():
    box = Box()

    def work():
        box.value += 1

    run_threads(work)
    run_threads(work)
    assert box.value == 2


def test_race_global_counter():
    def work():
        global counter
        counter += 1

    run_threads(work, work)


def test_norace_global_under_lock():
    lock = threading.Lock()

    def work():
        global counter
        with lock:
            counter += 1

    run_threads(work, work)


def test_norace_thread_local():
    local = threading.local()

    def work():
        local.value = threading.get_ident()
        assert local.value == threading.get_ident()

    run_threads(work, work)


def test_norace_id_reuse():
    def write(obj):
        obj.value = 1

    first = Box()
    t = threading.Thread(target=write, args=(first,))
    t.start()
    wait_unsynchronised(t)  # no happens-before with the thread
    del first
    gc.collect()
    for _ in range(50):  # likely to reuse the freed object's id
        second = Box()
        second.value = 2


def test_race_check_then_act_dict():
    cache = {}

    def work():
        if "key" not in cache:
            cache["key"] = object()

    run_threads(work, work)


def test_norace_check_then_act_under_lock():
    cache = {}
    lock = threading.Lock()

    def work():
        with lock:
            if "key" not in cache:
                cache["key"] = object()

    run_threads(work, work)


def test_norace_atomic_list_append():
    box = Box()
    box.items = []

    def work():
        for i in range(3):
            box.items.append(i)

    run_threads(work, work)
    assert len(box.items) == 6


def test_race_iterate_while_append():
    box = Box()
    box.items = [1, 2, 3]

    def appender():
        box.items.append(4)

    def iterator():
        total = 0
        for x in box.items:
            total += x

    run_threads(appender, iterator)


def test_norace_disjoint_keys():
    results = {}

    def work(key):
        results[key] = key * 2

    threads = [threading.Thread(target=work, args=(k,)) for k in (1, 2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == {1: 2, 2: 4}


def test_race_same_dict_key():
    results = {}

    def work(value):
        results["shared"] = value

    threads = [threading.Thread(target=work, args=(k,)) for k in (1, 2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


def test_norace_disjoint_attributes():
    box = Box()

    def a():
        box.value = 1

    def b():
        box.other = 2

    run_threads(a, b)
    assert (box.value, box.other) == (1, 2)


def test_norace_read_read():
    box = Box(3)
    out = []

    def reader():
        out.append(box.value)

    run_threads(reader, reader)
    assert out == [3, 3]


def test_race_grandchild_vs_main():
    box = Box()
    spawned = []

    def grandchild():
        box.value = 1

    def child():
        t = threading.Thread(target=grandchild)
        spawned.append(t)
        t.start()

    run_threads(child)  # the child is joined, its grandchild is not
    wait_unsynchronised(spawned[0])
    box.value = 2


def test_norace_nested_join():
    box = Box()

    def grandchild():
        box.value = 1

    def child():
        t = threading.Thread(target=grandchild)
        t.start()
        t.join()

    run_threads(child)
    assert box.value == 1
