"""The C hot path (raceway_sdk/_speedups.c) records exactly what the Python one does.

The rest of the suite runs with the C version (the default when it is built); the Python
reference runs the recorder suites in a subprocess here, and the corpus kernels in
tests/test_corpus.py.
"""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest
from raceway_sdk import _recorder as rec
from raceway_sdk.instrument import hooks
from test_recorder_delivery import BatchSink  # batching, like the engine: through the outbox

ROOT = Path(__file__).resolve().parents[2]
BUILT = importlib.util.find_spec("raceway_sdk._speedups") is not None

W_SITE = rec.register_site(__file__, 1, "writer", "", rec.ATTR)
R_SITE = rec.register_site(__file__, 2, "reader", "", rec.ATTR)
I_SITE = rec.register_site(__file__, 3, "items", "", rec.ITEM)
N_SITE = rec.register_site(__file__, 4, "named", "{obj}.named", rec.ATTR)


class Box:
    def __init__(self) -> None:
        self.value = 0


def test_the_c_version_is_built_and_in_use_where_a_compiler_exists() -> None:
    if not BUILT:
        assert not (shutil.which("cc") or shutil.which("gcc")), (
            "a C compiler is here but raceway_sdk._speedups was not built"
        )
        pytest.skip("no C compiler: the Python hot path is the only one")
    assert rec.use_speedups(True)
    assert type(rec.hook_access).__name__ == "builtin_function_or_method"
    assert hooks._access is rec.hook_access


def test_use_speedups_switches_the_recorder_and_the_hooks() -> None:
    try:
        assert rec.use_speedups(False) is False
        assert rec.hook_access is rec.py_hook_access
        assert hooks._access is rec.py_hook_access
    finally:
        rec.use_speedups(True)
    assert (rec.hook_access is not rec.py_hook_access) is BUILT


def _scenario() -> None:
    """Held-back, shared, deduplicated, valued and fallback accesses of two tasks."""
    shared, private, d, lst = Box(), Box(), {}, []
    tick = rec.ClockSlot()
    lock, gate = threading.Lock(), Box()  # sync objects without a slot of their own
    for i in range(3):  # the main task alone: held back (defer_private)
        rec.access(shared, "value", "Write", W_SITE, i)
        rec.access(shared, "value", "Read", R_SITE)
        rec.access(shared, "value", "Read", R_SITE)  # same epoch: dropped
        rec.access(d, "k", "Write", I_SITE, "v" * 80)  # a long value: truncated
        rec.access(d, 3, "Read", I_SITE)
        rec.access(d, (1, 2), "Read", I_SITE)  # a tuple key: normalised by the slow path
        rec.access(d, True, "Write", I_SITE, 2**70)  # a bool key, a value too large to keep
        rec.access(lst, rec.ALL, "AtomicRMW", I_SITE)
        rec.access(private, "value", "Write", W_SITE, float(i))
        rec.release(tick, "test", tick)
        rec.acquire(lock, "threading.Lock")
        rec.release(lock, "threading.Lock")  # a clock it dominates: stored as it is
    child = rec.fork("thread", "child")
    token = rec.activate(child)
    try:
        for i in range(3):  # a second task: everything the main task held back goes first
            rec.access(shared, "value", "Read", R_SITE)
            rec.access(d, "k", "Read", I_SITE)
            rec.access(d, 3, "Write", I_SITE, None)
            rec.access(lst, rec.ALL, "Read", I_SITE)
            rec.access(shared, "value", "Write", N_SITE, i)  # a named site: the slow path
            rec.release(tick, "test", tick)
            rec.acquire(lock, "threading.Lock")  # the main task's releases: a new clock
            rec.release(lock, "threading.Lock")
            rec.acquire(lock, "threading.Lock", None, 0)  # nothing new: the clock stays
            rec.release(lock, "threading.Lock", slot=None, _up=0)
            rec.release(gate, "gate")
    finally:
        rec.deactivate(token)
    rec.release(gate, "gate")  # neither clock dominates: stored joined
    rec.acquire(gate, "gate")  # and the main task learns the child's
    rec.acquire(gate, "other type")  # another lock type: a payload of its own
    rec.finish(child)
    rec.join(child)
    for i in range(4):  # shared now: emitted, payloads shared while they repeat
        rec.access(shared, "value", "Write", W_SITE, i)
        rec.access(shared, "value", "Read", R_SITE)
        rec.access(d, "k", "Write", I_SITE, i % 2 == 0)
        rec.access(d, 3, "Read", I_SITE)
        rec.access(lst, rec.ALL, "AtomicRMW", I_SITE)
        rec.release(tick, "test", tick)


def _record(c_version: bool) -> tuple[list[Any], int, int]:
    """The scenario's events (in a fresh trace), how often the Python access slow path ran,
    and how often the Python acquire/release did."""
    slow_calls = sync_calls = 0
    python_slow = rec._access_slow
    python_sync = rec.py_acquire, rec.py_release

    def counting(i: int) -> Any:
        def sync(obj: Any, lock_type: str, slot: Any = None, _up: int = 0) -> None:
            nonlocal sync_calls
            sync_calls += 1
            python_sync[i](obj, lock_type, slot, _up + 1)  # this frame is one more

        return sync

    def counting_slow(*args: Any) -> None:
        nonlocal slow_calls
        slow_calls += 1
        args = list(args)
        args[7] += 1  # ``up``: this frame is one more above the access site
        python_slow(*args)

    sink = BatchSink()
    rec.py_acquire, rec.py_release = counting(0), counting(1)
    rec.use_speedups(c_version)
    prev_sink = rec.set_sink(sink)
    prev_trace = rec.current_trace()
    prev_defer = rec._defer_private
    rec.configure(defer_private=True)
    rec._access_slow = counting_slow  # type: ignore[assignment]
    rec.set_trace(None)
    try:
        runner = threading.Thread(target=_scenario)  # a fresh task: its clock starts at 1
        runner.start()
        runner.join()
        rec.flush()
    finally:
        rec._access_slow = python_slow  # type: ignore[assignment]
        rec.py_acquire, rec.py_release = python_sync
        rec.configure(defer_private=prev_defer)
        rec.set_sink(prev_sink)
        rec.set_trace(prev_trace)
        rec.use_speedups(True)
    return sink.events, slow_calls, sync_calls


def _normalised(events: list[Any]) -> list[Any]:
    """Events with run-specific ids replaced by their order of appearance, and the sharing of
    payload objects between events as indexes."""
    tasks: dict[str, str] = {}
    serials: dict[str, str] = {}

    def task(t: str) -> str:
        return tasks.setdefault(t, f"T{len(tasks)}")

    def labels(v: Any) -> Any:
        """Task ids -> T0, T1...; "Box@12.value" -> "Box@S0.value": in order of sight."""
        if isinstance(v, dict):
            return {k: labels(x) for k, x in v.items()}
        if not isinstance(v, str):
            return v
        if re.fullmatch(r"[0-9a-f]{6}/\d+|[0-9a-f]{8}(-[0-9a-f]{4}){3}-[0-9a-f]{12}", v):
            return task(v)
        return re.sub(r"@(\d+)", lambda m: "@" + serials.setdefault(m[1], f"S{len(serials)}"), v)

    def same_as(objs: list[Any], i: int) -> int:
        return next(j for j in range(i + 1) if objs[j] is objs[i])

    rows = []
    datas = [e.data for e in events]
    exts = [e.ext for e in events]
    for i, e in enumerate(events):
        ext = {k: labels(v) for k, v in (e.ext or {}).items()}
        if "origin_trace" in ext:
            ext["origin_trace"] = ext["origin_trace"] == e.trace_id
        data = {k: (task(v) if k in ("task_id", "spawned_by") else labels(v))
                for k, v in e.data.items()}
        vc = sorted((task(k), n) for k, n in e.vc.items())
        rows.append((e.kind, data, ext, vc, task(e.meta.thread_id), e.trace_id == events[0].trace_id,
                     same_as(datas, i), same_as(exts, i)))
    return rows


@pytest.mark.skipif(not BUILT, reason="the C version is not built")
def test_the_c_path_records_what_the_python_path_records() -> None:
    c_events, c_slow, c_sync = _record(True)
    py_events, py_slow, py_sync = _record(False)
    accesses = [e for e in py_events if e.kind == "StateChange"]
    assert len(accesses) > 30
    assert {e.data["access_type"] for e in accesses} >= {"Read", "Write", "AtomicRMW"}
    syncs = [e for e in py_events if e.kind in ("LockAcquire", "LockRelease")]
    assert len(syncs) > 30
    assert {e.data["lock_type"] for e in syncs} == {"test", "threading.Lock", "gate", "other type"}
    assert all(e.data["location"].startswith(__file__ + ":") for e in syncs)
    assert _normalised(c_events) == _normalised(py_events)
    # the C version took the common cases itself
    assert c_slow < py_slow - 20, (c_slow, py_slow)
    assert py_sync == len(syncs) and c_sync < py_sync - 20, (c_sync, py_sync)
    # the stack of an access starts at its caller (_scenario; the counting wrapper above is
    # not raceway's code, so it shows on top when the slow path captured it)
    for e in c_events:
        if e.kind == "StateChange":
            frames = [f for f in e.ext["stack"] if not f[2].endswith("counting_slow")]
            assert frames[0][2] == "_scenario", e.ext["stack"]


@pytest.mark.skipif(not BUILT, reason="the C version is not built")
def test_the_c_path_survives_hostile_keys_and_a_concurrent_trace_switch() -> None:
    class Hostile:
        def __hash__(self) -> int:
            rec.set_trace(None)  # replaces every task's dedupe table mid-lookup
            return 1

        def __eq__(self, other: object) -> bool:
            raise RuntimeError("no")

    sink = BatchSink()
    prev_sink = rec.set_sink(sink)
    prev_trace = rec.current_trace()
    d: dict[Any, Any] = {}
    try:
        for _ in range(50):
            rec.access(d, "k", "Write", I_SITE, 1)
            rec.access(d, Hostile(), "Read", I_SITE)
        rec.flush()
    finally:
        rec.set_sink(prev_sink)
        rec.set_trace(prev_trace)
    assert sum(e.kind == "StateChange" for e in sink.events) >= 50


@pytest.mark.skipif(not BUILT, reason="the C version is not built")
def test_a_c_release_waits_for_a_python_releaser_inside_its_compare_and_set() -> None:
    # A Python releaser sets the stored clock under _sync_lock after comparing it; the C
    # release must not write in between: while the lock is held it takes the Python path,
    # which waits for the lock.
    sink = BatchSink()
    prev_sink = rec.set_sink(sink)
    obj, ready, go, done = Box(), threading.Event(), threading.Event(), threading.Event()

    def other() -> None:
        rec.release(obj, "test")  # the entry and the task's payloads exist: C applies next
        ready.set()
        go.wait(10)
        rec.release(obj, "test")
        done.set()

    try:
        t = threading.Thread(target=other)
        t.start()
        assert ready.wait(10)
        stored = rec._entry(obj).sync_vc
        with rec._sync_lock:
            go.set()
            assert not done.wait(0.3), "the release went ahead while _sync_lock was held"
            assert rec._entry(obj).sync_vc is stored
        assert done.wait(10)
        t.join(10)
        assert rec._entry(obj).sync_vc is not stored
    finally:
        rec.flush()
        rec.set_sink(prev_sink)


def test_the_recorder_suites_pass_on_the_python_path() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RACEWAY")}
    env["RACEWAY_PURE_PYTHON"] = "1"
    files = [
        "tests/unit/test_recorder.py",
        "tests/unit/test_recorder_delivery.py",
        "tests/unit/test_recorder_hotpaths.py",
        "tests/unit/test_rewrite.py",
        "tests/unit/test_rewrite_containers.py",
        "tests/unit/test_proxy.py",
        "tests/unit/test_instrument_threads.py",
    ]
    probe = (
        "from raceway_sdk import _recorder as r; assert r.hook_access is r.py_hook_access;"
        "assert (r.acquire, r.release) == (r.py_acquire, r.py_release)"
    )
    check = subprocess.run([sys.executable, "-c", probe], env=env, cwd=ROOT, timeout=60)
    assert check.returncode == 0, "RACEWAY_PURE_PYTHON=1 did not select the Python hot path"
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-x", *files],
        env=env, cwd=ROOT, capture_output=True, text=True, timeout=600,
    )
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]


STRESS = r"""
import gc, sys, threading, uuid
from raceway_server.engine.core import Engine
from raceway_sdk import _recorder as rec
from raceway_sdk.instrument import threads

engine = Engine()
rec.set_sink(engine)
threads.install()
assert type(rec.release).__name__ == "builtin_function_or_method"
lock, side = threading.Lock(), threading.Lock()
q = __import__("queue").Queue()
counter = [0]
stop = threading.Event()
R = rec.register_site("stress.py", 1, "worker", "", rec.ATTR)
W = rec.register_site("stress.py", 2, "worker", "", rec.ATTR)
U = rec.register_site("stress.py", 3, "worker", "", rec.ATTR)


class Safe:
    n = 0


class Unsafe:
    n = 0


safe, unsafe = Safe(), Unsafe()


class Noisy:
    # a finalizer that takes a lock: the collector runs it inside whatever allocates
    def __init__(self):
        self.me = self  # a cycle: only the collector frees it

    def __del__(self):
        with side:
            pass


def worker():
    rec.access(unsafe, "n", "Write", U, 0)  # before any lock: races with the other workers
    for i in range(2000):
        Noisy()
        with lock:
            counter[0] += 1
            rec.access(safe, "n", "Read", R)
            rec.access(safe, "n", "Write", W, i)
        q.put(i)
        q.get()
        if i % 500 == 0:
            gc.collect()


def switcher():
    while not stop.is_set():
        rec.set_trace(None)  # a new trace: prunes stored clocks, resets every task's table
        stop.wait(0.001)


def run(switching):
    stop.clear()
    s = threading.Thread(target=switcher) if switching else None
    if s:
        s.start()
    ws = [threading.Thread(target=worker) for _ in range(4)]
    for t in ws:
        t.start()
    for t in ws:
        t.join()
    stop.set()
    if s:
        s.join()
    rec.flush()


gc.set_threshold(50, 5, 5)
run(True)  # trace switches in the middle of everything: robustness only
trace = uuid.uuid4().int
rec.set_trace(trace)
run(False)  # one trace: the verdicts must be exact
threads.uninstall()
assert counter[0] == 16000, counter
races = {r.variable for r in engine.races(trace)}
print("events", rec.stats()["events"], "errors", rec.stats()["recorder_errors"], "races", races)
assert rec.stats()["recorder_errors"] == 0
assert races == {"Unsafe.n"}, races
"""


@pytest.mark.skipif(not BUILT, reason="the C version is not built")
def test_sync_fast_path_survives_finalizers_collections_and_trace_switches() -> None:
    # In a subprocess: a crash there fails this test instead of the run.
    proc = subprocess.run(
        [sys.executable, "-c", STRESS], cwd=ROOT, capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-4000:]
    assert "events" in proc.stdout
