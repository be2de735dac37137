"""Race-engine throughput, oracle speed-up, scaling and memory.

Builds realistic traces (8 tasks, 2,000 variables with Zipf-like popularity, 16 locks, mostly
lock-protected read/write sections with some unprotected accesses), stamped with vector clocks
by the recorder's rules, in batches of 1,000 as the transport delivers them. Each batch is built
(untimed) just before it is added, as in the server (parse, then add) and embedded mode; then

1. ``Engine.add_batch(batch)`` is timed;
2. the *floor* is timed on the same batch: a pure Python loop reading the fields the engine
   reads, nothing more (the batch is in the CPU cache for both).

Timing is CPU time of the process (``time.process_time``: on a shared machine wall time mostly
measures the neighbours); figures are medians over ``--runs`` runs, each a fresh engine on a
fresh trace (seeds 1..R) in a fresh interpreter: within one process every run after the first
inherits the heap the previous one freed and gets slower (about 10% per run here), which would
measure the harness rather than the engine. ``events_per_s_prebuilt_cold`` adds events built
long before (every batch comes from main memory).

The last line is JSON: ``events_per_s`` (engine alone, one core), ``engine_ns_per_event`` and
``floor_ns_per_event`` (same runs: what merely reading the events costs in Python),
``oracle_speedup_10k`` (engine vs the all-pairs oracle of tests/unit/oracle.py on a trace
with 10k accesses to one variable), ``scaling_4x`` (time for 4N events / time for their first
N within one trace, median of the runs; ``scaling_4x_separate_runs`` compares separate runs
over N events instead) and ``peak_rss_mb`` (the largest run process: mostly the events
themselves; the engine's own state is printed as frontier entries per location).
Targets (issue 2): >= 2,000,000 events/s, >= 100x, <= 4.4.

Usage: python benchmarks/engine.py [--quick] [--runs R]
(--quick: 200k events, 2k-access oracle trace)
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import random
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from itertools import accumulate
from typing import Any

from raceway_sdk.protocol.events import Event, Metadata, new_event_id

from raceway_server.engine import Engine

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "unit"))
from oracle import racing_pairs  # noqa: E402

N_TASKS = 8
N_VARS = 2000
N_LOCKS = 16


class Stamper:
    """Minimal recorder: task clocks, sync-object clocks, copy-on-write like the SDK."""

    def __init__(self, trace_id: int, n_tasks: int) -> None:
        self.trace_id = trace_id
        self.events: list[Event] = []
        self.tasks = [f"bench/{i + 1}" for i in range(n_tasks)]
        self.meta = {t: Metadata(t, 1, "bench", "test", {}, None, "bench") for t in self.tasks}
        main = self.tasks[0]
        self.vc: dict[str, dict[str, int]] = {main: {main: 1}}
        self.syncs: dict[str, dict[str, int]] = {}
        self.ts = 1_700_000_000_000_000_000
        for child in self.tasks[1:]:  # main forks the workers
            self.emit(
                main,
                "AsyncSpawn",
                {"task_id": str(child), "spawned_by": main},
                {
                    "child": child,
                    "child_name": child,
                    "child_kind": "thread",
                    "stack": [["bench.py", 1, "main"]],
                },
            )
            pv = self.vc[main]
            cv = dict(pv)
            cv[child] = 1
            self.vc[child] = cv
            pv = dict(pv)
            pv[main] += 1
            self.vc[main] = pv

    def emit(self, task: str, kind: str, data: dict[str, Any], ext: dict[str, Any]) -> None:
        ext["task"] = task
        ext["trusted_vc"] = True
        self.ts += 1000
        self.events.append(
            Event(
                new_event_id(),
                self.trace_id,
                None,
                self.ts,
                kind,
                data,
                self.meta[task],
                self.vc[task],
                [],
                ext,
            )
        )

    def acquire(self, task: str, lock: str) -> None:
        s = self.syncs.get(lock)
        if s is not None:
            vc = self.vc[task]
            new = None
            for c, n in s.items():
                if n > vc.get(c, 0):
                    if new is None:
                        new = dict(vc)
                    new[c] = n
            if new is not None:
                self.vc[task] = new
        self.emit(
            task,
            "LockAcquire",
            {"lock_id": lock, "lock_type": "threading.Lock", "location": "bench.py:2"},
            {"sync": "acquire"},
        )

    def release(self, task: str, lock: str) -> None:
        self.emit(
            task,
            "LockRelease",
            {"lock_id": lock, "lock_type": "threading.Lock", "location": "bench.py:3"},
            {"sync": "release"},
        )
        vc = self.vc[task]
        s = self.syncs.get(lock)
        if s is None:
            self.syncs[lock] = vc
        else:
            new = dict(s)
            for c, n in vc.items():
                if n > new.get(c, 0):
                    new[c] = n
            self.syncs[lock] = new
        vc = dict(vc)
        vc[task] += 1
        self.vc[task] = vc

    def access(self, task: str, var: int, access_type: str, site: str) -> None:
        loc = f"obj{var}.value"
        self.emit(
            task,
            "StateChange",
            {
                "variable": f"Account.value[{var}]",
                "old_value": None,
                "new_value": var,
                "location": site,
                "access_type": access_type,
            },
            {
                "loc": loc,
                "func": "transfer",
                "value": var,
                "stack": [[site.split(":")[0], int(site.split(":")[1]), "transfer"]],
            },
        )


def realistic_batches(n_events: int, batch: int = 1000, seed: int = 1) -> Iterator[list[Event]]:
    """Mostly lock-protected read-modify-write sections, ~5% unprotected accesses.

    Yields batches of ``batch`` events, generated lazily (the caller times each add_batch).
    """
    rng = random.Random(seed)
    st = Stamper(new_event_id(), N_TASKS)
    weights = list(accumulate(1.0 / (r + 1) ** 1.1 for r in range(N_VARS)))
    tasks = st.tasks
    sent = 0
    pool: list[int] = []
    while sent < n_events:
        while len(st.events) < batch:
            if not pool:
                pool = rng.choices(range(N_VARS), cum_weights=weights, k=4096)
            var = pool.pop()
            task = tasks[rng.randrange(N_TASKS)]
            mod = f"svc/mod{var % 40}.py"
            if rng.random() < 0.95:
                lock = f"lock-{var % N_LOCKS}"
                st.acquire(task, lock)
                st.access(task, var, "Read", f"{mod}:{10 + var % 5}")
                if rng.random() < 0.7:
                    st.access(task, var, "Write", f"{mod}:{11 + var % 5}")
                st.release(task, lock)
            else:
                st.access(task, var, rng.choice(("Read", "Write")), f"{mod}:{90 + var % 3}")
        out = st.events[: min(batch, n_events - sent)]
        del st.events[:batch]
        sent += len(out)
        yield out


def one_variable_trace(n_accesses: int, seed: int = 2) -> list[Event]:
    """``n_accesses`` accesses to one variable by 8 tasks (locked, a few unprotected)."""
    rng = random.Random(seed)
    st = Stamper(new_event_id(), N_TASKS)
    tasks = st.tasks
    n = 0
    while n < n_accesses:
        task = tasks[rng.randrange(N_TASKS)]
        if rng.random() < 0.98:
            st.acquire(task, "lock-0")
            st.access(task, 0, "Read", "acct.py:10")
            st.access(task, 0, "Write", "acct.py:11")
            st.release(task, "lock-0")
            n += 2
        else:
            st.access(task, 0, "Write", f"acct.py:{50 + rng.randrange(4)}")
            n += 1
    return st.events


def floor_pass(batch: list[Event]) -> int:
    """Read what ``Engine.add_batch`` reads from every event, and nothing more."""
    n = 0
    last_tid: Any = None
    last_meta: Any = None
    for e in batch:
        tid = e.trace_id
        if tid != last_tid:
            last_tid = tid
        ext = e.ext
        if ext is None or ext.get("trusted_vc") is not True:
            continue
        if e.kind != "StateChange":
            meta = e.meta
            if meta is not last_meta:
                last_meta = meta
            continue
        task = ext.get("task")
        data = e.data
        access_type = data.get("access_type")
        site = data.get("location")
        loc = ext.get("loc") or data.get("variable")
        if e.vc.get(task, 0) and access_type and site and loc and ext.get("loop") is None:
            n += 1
    return n


def run_built(n: int, seed: int) -> tuple[float, float, list[float], int, Engine]:
    """One run over a fresh trace of ``n`` events, each batch built just before its add.

    Returns (engine CPU s, floor CPU s, cumulative engine time after each batch, events, engine).
    """
    engine = Engine()
    clock = time.process_time
    t_engine = t_floor = 0.0
    marks: list[float] = []
    n_events = 0
    for batch in realistic_batches(n, seed=seed):
        t0 = clock()
        engine.add_batch(batch)
        t1 = clock()
        floor_pass(batch)
        t2 = clock()
        t_engine += t1 - t0
        t_floor += t2 - t1
        marks.append(t_engine)
        n_events += len(batch)
    return t_engine, t_floor, marks, n_events, engine


def run_prebuilt(events: list[Event], batch: int = 1000) -> tuple[float, Engine]:
    """CPU seconds for ``add_batch`` over events as they lie in memory (no warming pass)."""
    engine = Engine()
    t0 = time.process_time()
    for i in range(0, len(events), batch):
        engine.add_batch(events[i : i + batch])
    return time.process_time() - t0, engine


def worker(mode: str, n: int, seed: int) -> None:
    """One measured run in this (fresh) process; prints its figures as one JSON line."""
    gc.disable()  # as in the parent; Engine.add_batch pauses the collector by itself anyway
    out: dict[str, Any]
    if mode == "cold":
        cold = [e for b in realistic_batches(n, seed=seed) for e in b]
        dt, _ = run_prebuilt(cold)
        out = {"events": len(cold), "engine_s": dt}
    else:
        dt, df, marks, n_events, engine = run_built(n, seed)
        out = {
            "events": n_events,
            "engine_s": dt,
            "floor_s": df,
            "growth": dt / marks[len(marks) // 4 - 1],  # all 4N events / the first N of them
            "stats": engine.stats(),
            "sizes": next(iter(engine._traces.values())).state.sizes(),
        }
    out["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps(out), flush=True)
    os._exit(0)  # skip freeing millions of objects at exit


def measure(mode: str, n: int, seed: int) -> dict[str, Any]:
    """Run ``worker`` in a fresh interpreter: every run starts from the same, unfragmented heap."""
    cmd = [sys.executable, os.path.abspath(__file__), "--worker", mode, str(n), str(seed)]
    done = subprocess.run(cmd, capture_output=True, text=True, check=True)
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="200k events, 2k-access oracle trace")
    ap.add_argument("--runs", type=int, default=5, help="timed runs (median), 1 or more")
    ap.add_argument("--worker", nargs=3, metavar=("MODE", "N", "SEED"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        worker(args.worker[0], int(args.worker[1]), int(args.worker[2]))
        return
    n = 200_000 if args.quick else 1_000_000
    k = 2_000 if args.quick else 10_000
    runs = max(1, args.runs)
    wall = time.perf_counter()
    # The harness builds many long-lived dicts: without this, collections over the growing
    # heap would dominate the (untimed) building. Engine.add_batch pauses the collector for
    # large batches by itself, so the timed sections behave as in production.
    gc.disable()

    cold = measure("cold", n // 4, 99)
    eps_cold = cold["events"] / cold["engine_s"]
    full = [measure("run", n, seed) for seed in range(1, runs + 1)]
    quarter = [measure("run", n // 4, seed) for seed in range(1, runs + 1)]
    n_events = full[0]["events"]
    n_quarter = quarter[0]["events"]
    t_eng = [r["engine_s"] for r in full]
    s, sizes = full[0]["stats"], full[0]["sizes"]

    med = statistics.median(t_eng)
    med_floor = statistics.median(r["floor_s"] for r in full)
    med_quarter = statistics.median(r["engine_s"] for r in quarter)
    eps = n_events / med
    ns = med / n_events * 1e9
    ns_floor = med_floor / n_events * 1e9
    runs_txt = ", ".join(f"{n_events / t / 1e6:.2f}" for t in t_eng)
    print(
        f"engine: {n_events:,} events, median of {runs} runs {med:.3f} CPU s = {eps:,.0f} events/s "
        f"({ns:.0f} ns/event; runs: {runs_txt} M events/s)"
    )
    print(
        f"floor (pure Python loop reading the same fields, same runs): {ns_floor:.0f} ns/event "
        f"-> engine work beyond reading the events: {ns - ns_floor:.0f} ns/event"
    )
    print(f"prebuilt long before (batches from main memory): {eps_cold:,.0f} events/s")
    print(
        f"paths: {s['accesses']:,} accesses, {s['fast_path_hits']:,} same-epoch + "
        f"{s['ordered_hits']:,} ordered hits, {s['races']} races, {s['locations']:,} locations, "
        f"rebuilds {s['rebuilds']}"
    )
    print(
        f"state: {sizes['entries']:,} frontier entries over {sizes['locations']:,} locations "
        f"({sizes['entries'] / max(1, sizes['locations']):.2f} per location)"
    )
    growth = [r["growth"] for r in full]
    scaling = statistics.median(growth)
    separate = med / med_quarter
    ratios = " / ".join(f"{g:.2f}" for g in growth)
    print(
        f"scaling within one trace: 4N events / their first N = {ratios} -> median {scaling:.2f}x"
    )
    print(
        f"scaling across runs: N={n_quarter:,} median {med_quarter:.3f}s, "
        f"4N={n_events:,} median {med:.3f}s -> {separate:.2f}x"
    )

    one = one_variable_trace(k)
    t_one = []
    for _ in range(runs):
        dt_one, eng = run_prebuilt(one)
        t_one.append(dt_one)
    dt_eng = statistics.median(t_one)
    t0 = time.process_time()
    oracle = racing_pairs(one)
    dt_oracle = time.process_time() - t0
    assert {tuple(r.key) for r in eng.races()} == set(oracle), "engine and oracle disagree"
    speedup = dt_oracle / dt_eng
    print(
        f"oracle on {k:,} accesses to one variable ({len(one):,} events): "
        f"oracle {dt_oracle:.2f}s, engine {dt_eng * 1000:.1f}ms -> {speedup:,.0f}x "
        f"(same {len(oracle)} racing site pairs)"
    )

    peak = max(
        resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        *(r["peak_rss_mb"] for r in full),
    )
    print(f"total wall time {time.perf_counter() - wall:.1f}s")
    print(
        json.dumps(
            {
                "events": n_events,
                "runs": runs,
                "events_per_s": round(eps),
                "engine_ns_per_event": round(ns, 1),
                "floor_ns_per_event": round(ns_floor, 1),
                "events_per_s_prebuilt_cold": round(eps_cold),
                "oracle_accesses": k,
                "oracle_speedup_10k": round(speedup, 1),
                "scaling_4x": round(scaling, 2),
                "scaling_4x_separate_runs": round(separate, 2),
                "peak_rss_mb": round(peak, 1),
                "quick": args.quick,
            }
        )
    )


if __name__ == "__main__":
    main()
