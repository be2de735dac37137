"""Micro-benchmark of the recorder: nanoseconds per recorded operation.

Measures, with a sink that discards events (the recorder's own cost):

* ``no_sink_ns``: ``access()`` with recording off (what instrumented code pays outside tests);
* ``fast_path_ns``: a repeated access in the same epoch (deduplicated, nothing emitted);
* ``emit_ns``: an access that emits an event, stack reused (same task, site and caller);
* ``emit_batched_ns`` / ``emit_batched_python_ns``: the same with a batching sink (the
  engine's protocol), through the C hot path / its Python reference (recording thread only:
  the outbox's thread hands the events over);
* ``emit_full_stack_ns``: an emitting access that captures a fresh stack (first per site/task);
* ``stack_capture_ns``: one bounded stack capture (depth 16 available) on its own;
* ``lock_pair_ns`` / ``raw_lock_pair_ns``: acquire+release of an instrumented / raw Lock;
* ``lock_pair_batched_ns`` / ``lock_pair_batched_python_ns``: the instrumented pair with a
  batching sink, through the C ``acquire``/``release`` / their Python reference;
* ``queue_pair_ns`` / ``raw_queue_pair_ns``: ``Queue.put`` + ``get`` with the thread patches
  installed (a put -> get edge, two events) / without;
* ``fork_join_ns``: fork + finish + join of a logical task (no real thread);
* ``release_acquire_1000_components_ns``: a release + acquire pair when the clocks have 1,000
  components (sync operations are linear in the clock width; accesses are not);
* ``baseline_attr_rw_ns``: a plain attribute read + write, for scale.

Usage: ``python benchmarks/recorder_micro.py [--n 200000]``. Last line: JSON.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from typing import Any

from raceway_sdk import _recorder as rec
from raceway_sdk.instrument import threads


class NullSink:
    def emit(self, event: Any) -> None:
        pass


class BatchNullSink(NullSink):
    def emit_batch(self, events: Any) -> None:
        pass


class Box:
    def __init__(self) -> None:
        self.value = 0


SITE = rec.register_site("bench.py", 1, "bench", "")


def _best(fn: Any, n: int, repeat: int = 5) -> float:
    best = float("inf")
    for _ in range(repeat):
        t0 = time.thread_time_ns()
        fn(n)
        best = min(best, (time.thread_time_ns() - t0) / n)
    return best


def bench_baseline(n: int) -> None:
    b = Box()
    for _ in range(n):
        b.value = b.value + 1


def bench_access(n: int) -> None:
    b = Box()
    access = rec.access
    for _ in range(n):
        access(b, "value", "Read", SITE)


def bench_emit(n: int) -> None:
    b = Box()
    access = rec.access
    state = rec.current()
    seg = rec.new_segment
    for _ in range(n):
        seg(state)  # a new epoch: the next access must be emitted
        access(b, "value", "Read", SITE)


def bench_emit_full_stack(n: int) -> None:
    b = Box()
    access = rec.access
    state = rec.current()
    seg = rec.new_segment
    for _ in range(n):
        seg(state)
        state.stacks = {}
        access(b, "value", "Read", SITE)


def bench_seg_only(n: int) -> None:
    state = rec.current()
    seg = rec.new_segment
    for _ in range(n):
        seg(state)


def _deep(depth: int, fn: Any, n: int) -> float:
    if depth:
        return _deep(depth - 1, fn, n)
    return _best(fn, n)


def bench_stack(n: int) -> None:
    cap = rec.capture_stack
    for _ in range(n):
        cap()


def bench_lock(n: int) -> None:
    lock = threads.InstrumentedLock._make()
    for _ in range(n):
        lock.acquire()
        lock.release()


def bench_raw_lock(n: int) -> None:
    lock = threads._raw_allocate_lock()
    for _ in range(n):
        lock.acquire()
        lock.release()


def bench_queue(n: int) -> None:
    import queue

    q: Any = queue.Queue()
    for _ in range(n):
        q.put(1)
        q.get()


def bench_fork_join(n: int) -> None:
    # a fresh parent every 50 children: each join adds a component to the parent's clock
    for i in range(n):
        if i % 50 == 0:
            token = rec.activate(rec.TaskState("main", "bench"))
        child = rec.fork("thread", "t")
        rec.finish(child)
        rec.join(child)
        if i % 50 == 49:
            rec.deactivate(token)


def bench_acquire_big_clock(n: int, width: int = 1000) -> None:
    """acquire of a lock released by a task whose clock has ``width`` components."""
    big = {f"x/{i}": 1 for i in range(width)}
    releaser = rec.TaskState("thread", "releaser", big)
    lock = object()
    for _ in range(n):
        token = rec.activate(releaser)
        rec.release(lock, "bench")
        rec.deactivate(token)
        token = rec.activate(rec.TaskState("thread", "acquirer"))
        rec.acquire(lock, "bench")
        rec.deactivate(token)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=200_000, help="operations per measurement")
    args = parser.parse_args()
    n = args.n

    results: dict[str, Any] = {}
    results["baseline_attr_rw_ns"] = _best(bench_baseline, n)
    print("measuring...", file=sys.stderr, flush=True)
    rec.set_sink(None)
    results["no_sink_ns"] = _best(bench_access, n)
    rec.set_sink(NullSink())
    rec.set_trace(None)
    results["fast_path_ns"] = _best(bench_access, n)
    seg = _best(bench_seg_only, n)
    # emitting paths run 20 frames deep, like an access inside a test's call stack
    results["emit_ns"] = _deep(20, bench_emit, n // 10) - seg
    results["emit_full_stack_ns"] = _deep(20, bench_emit_full_stack, n // 20) - seg
    # a batching sink (the engine's protocol): events go through the outbox, and the C hot
    # path (raceway_sdk/_speedups.c) takes them; then the same with its Python reference
    rec.set_sink(BatchNullSink())
    for c_version, key in ((True, "emit_batched_ns"), (False, "emit_batched_python_ns")):
        rec.use_speedups(c_version)
        results[key] = _deep(20, bench_emit, n // 10) - seg
        results[key.replace("emit", "lock_pair")] = _best(bench_lock, n // 10)
    rec.use_speedups(True)
    rec.set_sink(NullSink())
    results["stack_capture_ns"] = _deep(20, bench_stack, n // 20)
    results["lock_pair_ns"] = _best(bench_lock, n // 10)
    results["raw_lock_pair_ns"] = _best(bench_raw_lock, n)
    results["raw_queue_pair_ns"] = _best(bench_queue, n // 10)
    threads.install()
    try:
        results["queue_pair_ns"] = _best(bench_queue, n // 10)
    finally:
        threads.uninstall()
    results["fork_join_ns"] = _best(bench_fork_join, n // 20)
    results["release_acquire_1000_components_ns"] = _best(bench_acquire_big_clock, n // 200)
    rec.set_sink(None)

    results = {k: round(v, 1) for k, v in results.items()}
    results["python"] = platform.python_version()
    results["stats"] = {k: v for k, v in rec.stats().items() if k in ("events", "dropped")}
    width = max(len(k) for k in results)
    for k, v in results.items():
        print(f"{k:<{width}}  {v}", flush=True)
    print(json.dumps(results, sort_keys=True))


if __name__ == "__main__":
    main()
