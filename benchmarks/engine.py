"""Race-engine throughput, oracle speed-up, scaling and memory.

Builds realistic traces before timing (8 tasks, 2,000 variables with Zipf-like popularity,
16 locks, mostly lock-protected read/write sections with some unprotected accesses), stamps
them with vector clocks by the recorder's rules, then times ``Engine.add_batch`` alone: one
thread, CPU time of the process (``time.process_time``: on a shared machine wall time mostly
measures the neighbours), batches of 1,000 as the transport delivers them, each batch built
(untimed) just before its ``add_batch`` as in the server (parse, then add) and embedded mode.
A second figure times events that were all built beforehand (cold in the CPU cache).

Prints the figures and, as the last line, JSON with ``events_per_s``, ``oracle_speedup_10k``
(engine vs the all-pairs oracle of tests/unit/oracle.py on a trace with 10k accesses to one
variable), ``scaling_4x`` (time for 4N events / time for N: within one 1M-event trace, the
whole trace against its first quarter, mean of the runs; ``scaling_4x_separate_runs`` compares
separate runs instead and is noisier on a shared machine) and ``peak_rss_mb`` (mostly the
stored events themselves; the engine's own state is printed as frontier entries per location).
Targets (issue 2): >= 2,000,000 events/s, >= 100x, <= 4.4.

Usage: python benchmarks/engine.py [--quick]   (--quick: 200k events, 2k-access oracle trace)
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import random
import resource
import sys
import time
from collections.abc import Iterable, Iterator
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


def run_batches(
    batches: Iterable[list[Event]], marks: list[float] | None = None
) -> tuple[float, int, Engine]:
    """CPU seconds spent inside ``add_batch`` (each batch built, untimed, just before).

    ``marks`` receives the cumulative time after each batch (if given).
    """
    engine = Engine()
    clock = time.process_time
    total = 0.0
    n = 0
    for batch in batches:
        t0 = clock()
        engine.add_batch(batch)
        total += clock() - t0
        n += len(batch)
        if marks is not None:
            marks.append(total)
    return total, n, engine


def _keep(batches: Iterable[list[Event]], into: list[list[Event]]) -> Iterator[list[Event]]:
    for b in batches:
        into.append(b)
        yield b


def run_prebuilt(events: list[Event], batch: int = 1000) -> tuple[float, Engine]:
    """CPU seconds for ``add_batch`` over events all built beforehand (cold in the cache)."""
    engine = Engine()
    t0 = time.process_time()
    for i in range(0, len(events), batch):
        engine.add_batch(events[i : i + batch])
    return time.process_time() - t0, engine


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="200k events, 2k-access oracle trace")
    args = ap.parse_args()
    n = 200_000 if args.quick else 1_000_000
    k = 2_000 if args.quick else 10_000
    wall = time.perf_counter()
    # The harness builds millions of long-lived dicts: without this, full collections over the
    # growing heap would dominate the (untimed) building. Engine.add_batch pauses the collector
    # for large batches by itself, so the timed sections behave as in production.
    gc.disable()

    kept: list[list[Event]] = []
    dt_small, n_small, _ = run_batches(_keep(realistic_batches(n // 4), kept))
    gc.collect()
    pre = [e for b in kept for e in b]  # the same N events again, now out of the CPU cache
    del kept
    dt_pre, _ = run_prebuilt(pre)
    eps_pre = len(pre) / dt_pre
    print(f"prebuilt (cold cache): {len(pre):,} events in {dt_pre:.3f}s = {eps_pre:,.0f} events/s")
    del pre
    gc.collect()

    big_runs = 1 if args.quick else 2
    best: tuple[float, int, dict[str, Any], dict[str, Any]] | None = None
    growth: list[float] = []
    for seed in (1, 4)[:big_runs]:
        marks: list[float] = []
        dt, n_run, engine = run_batches(realistic_batches(n, seed=seed), marks)
        growth.append(dt / marks[len(marks) // 4 - 1])  # all 4N events / the first N of them
        info = (dt, n_run, engine.stats(), next(iter(engine._traces.values())).state.sizes())
        del engine
        gc.collect()
        if best is None or dt < best[0]:
            best = info
    assert best is not None
    dt_big, n_big, s, sizes = best
    eps = n_big / dt_big
    print(
        f"engine: {n_big:,} events in {dt_big:.3f} CPU s = {eps:,.0f} events/s "
        f"({s['accesses']:,} accesses, {s['fast_path_hits']:,} fast-path + {s['ordered_hits']:,} ordered hits, "
        f"{s['races']} races, {s['locations']:,} locations, rebuilds {s['rebuilds']})",
        flush=True,
    )
    print(
        f"state: {sizes['entries']:,} frontier entries over {sizes['locations']:,} locations "
        f"({sizes['entries'] / max(1, sizes['locations']):.2f} per location)"
    )
    dt_small2, _, _ = run_batches(realistic_batches(n // 4, seed=3))
    gc.collect()
    dt_n = min(dt_small, dt_small2)
    separate = dt_big / dt_n
    scaling = sum(growth) / len(growth)
    ratios = " / ".join(f"{g:.2f}" for g in growth)
    print(f"scaling within one trace: 4N events / their first N = {ratios} -> {scaling:.2f}x")
    print(
        f"scaling across runs: N={n_small:,} best of {dt_small:.3f}s / {dt_small2:.3f}s, "
        f"4N={n_big:,} best of {big_runs} runs {dt_big:.3f}s -> {separate:.2f}x"
    )

    one = one_variable_trace(k)
    dt_eng, eng = run_prebuilt(one)
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

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"total wall time {time.perf_counter() - wall:.1f}s")
    print(
        json.dumps(
            {
                "events": n_big,
                "events_per_s": round(eps),
                "events_per_s_prebuilt_cold": round(eps_pre),
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
