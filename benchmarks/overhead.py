"""Overhead of access instrumentation: the same module imported plain and rewritten.

Figures (last line, JSON):

* ``tight_loop_slowdown``: ``s += o.x; o.x = i`` loop, rewritten vs plain (issue target <= 8x);
* ``mixed_slowdown``: 4 worker threads fed by a queue, a lock-protected dict, list appends,
  some arithmetic, with the thread patches installed and events going to the embedded engine
  when it exists (else to an in-memory collecting sink) (target <= 2x). Process CPU time
  (every thread), median over rounds of the per-round ratio: each round runs every
  configuration once, so load from other processes on a shared machine hits them alike
  (``mixed_wall_slowdown``: the same for wall-clock time). The breakdown runs the same rounds
  with recording off (``hooks_only``), without thread patches, with the thread patches only
  (the plain module), with a sink that discards events (``recorder_only``: the SDK's
  own cost; ``mixed_engine_us_per_event`` is what the engine adds per event), and with the
  recorder's Python hot path instead of the C one (``mixed_python_hot_path_slowdown``;
  ``hot_path`` says which one the other figures used). The
  instrumented configurations mirror the pytest plugin: one engine per configuration for the
  whole run (a session's), a new trace per round (a test's) and the session's trace back after
  it, ``Engine.forget_trace`` right after the round (the plugin's after each verdict), all
  inside the timed call since the user pays it;
  the uninstrumented baseline (``plain``) is unchanged;
* ``rss_ratio``: peak RSS of the mixed workload (scaled up) in a fresh subprocess,
  instrumented vs plain (target <= 2x);
* ``ns_per_access``: hook cost per recorded access on the same-epoch fast path.

Tight loop and RSS: best of N runs. Usage: ``python benchmarks/overhead.py [--quick]``.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from typing import Any

WORKLOAD = textwrap.dedent(
    """
    import queue
    import threading


    class Obj:
        def __init__(self):
            self.x = 0


    def tight(o, n):
        s = 0
        for i in range(n):
            s += o.x
            o.x = i
        return s


    class Stats:
        def __init__(self):
            self.done = 0
            self.totals = {}
            self.log = []
            self.lock = threading.Lock()


    def work(item):
        # some I/O-free computation on the item's own data (about 30-60 us plain)
        data = [(item * 7919 + k * 104729) % 1009 for k in range(300)]
        data.sort()
        text = ",".join(str(x) for x in data[::10])
        return sum(x * x for x in data) % 65521 + len(text), data


    def worker(q, stats):
        while True:
            item = q.get()
            if item is None:
                return
            value, data = work(item)
            key = item % 64
            with stats.lock:
                stats.totals[key] = stats.totals.get(key, 0) + value
                stats.done += 1
            stats.log.append(data)


    def mixed(n_items, n_threads=4):
        q = queue.Queue()
        stats = Stats()
        threads = [threading.Thread(target=worker, args=(q, stats)) for _ in range(n_threads)]
        for t in threads:
            t.start()
        for i in range(n_items):
            q.put(i)
        for _ in threads:
            q.put(None)
        for t in threads:
            t.join()
        return stats.done, sum(stats.totals.values()), len(stats.log)
    """
)


def _prepare(tmp: str) -> None:
    for name in ("bench_plain", "bench_inst"):
        with open(os.path.join(tmp, name + ".py"), "w") as f:
            f.write(WORKLOAD)
    sys.path.insert(0, tmp)


def _sink() -> tuple[Any, str]:
    try:
        from raceway_server.engine.core import Engine  # type: ignore[import-not-found]

        return Engine(), "engine"
    except ImportError:
        from raceway_sdk.testing import CollectingSink

        return CollectingSink(), "collecting"


def _start(instrument_threads: bool) -> tuple[Any, str]:
    from raceway_sdk import _recorder

    sink, kind = _sink()
    _recorder.configure(defer_private=True)  # as the plugin's embedded mode
    _recorder.set_sink(sink)
    _recorder.set_trace(None)
    if instrument_threads:
        from raceway_sdk.instrument import threads

        threads.install()
    return sink, kind


def _stop() -> None:
    from raceway_sdk import _recorder
    from raceway_sdk.instrument import threads

    threads.uninstall()
    _recorder.set_sink(None)


def _c_hot_path() -> bool:
    from raceway_sdk import _recorder

    return _recorder.hook_access is not _recorder.py_hook_access


def _recorder_events() -> int:
    from raceway_sdk import _recorder

    return int(_recorder.stats()["events"])


class _NullSink:
    """Discards events: the recorder's own cost, without the engine's (batching, like the
    engine: the events take the same path through the outbox)."""

    def emit(self, event: Any) -> None:
        pass

    def emit_batch(self, events: Any) -> None:
        pass


def _best(fn: Any, repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def _timed(fn: Any) -> tuple[float, float]:
    """(wall, CPU of the whole process: every thread) of one call."""
    w0, c0 = time.perf_counter(), time.process_time()
    fn()
    return time.perf_counter() - w0, time.process_time() - c0


def _import_pair(tmp: str) -> tuple[Any, Any]:
    from raceway_sdk.instrument import rewrite

    hook = rewrite.install(["bench_inst"], None, [])
    try:
        import bench_inst  # type: ignore[import-not-found]
        import bench_plain  # type: ignore[import-not-found]
    finally:
        rewrite.uninstall()
    assert hook.rewritten.get("bench_inst"), "bench_inst was not rewritten"
    return bench_plain, bench_inst


def _mixed_rounds(plain: Any, inst: Any, n: int, rounds: int) -> dict[str, Any]:
    """Every configuration once per round, in a fixed order: ratios are taken within a round
    (the machine may be shared: a load change hits all configurations of the round alike)."""
    from raceway_sdk import _recorder
    from raceway_sdk.instrument import threads

    sink_kind = _sink()[1]
    _recorder.configure(defer_private=True)  # as the plugin's embedded mode
    configs: dict[str, tuple[Any, Any, bool]] = {  # one sink per configuration, like a session's
        "plain": (plain, None, False),
        "hooks_only": (inst, None, False),  # rewritten, recording off
        "no_thread_patches": (inst, _sink()[0], False),
        "thread_patches_only": (plain, _sink()[0], True),
        "recorder_null_sink": (inst, _NullSink(), True),
        "inst": (inst, _sink()[0], True),
        "inst_python_hot_path": (inst, _sink()[0], True),  # the C hot path off
    }
    rows: dict[str, list[tuple[float, float]]] = {k: [] for k in configs}
    events = 0
    trace_id = 0
    for _ in range(rounds):
        for name, (mod, sink, patched) in configs.items():
            trace_id += 1  # a trace per round and configuration, like a test's
            _recorder.set_trace(trace_id)
            _recorder.set_sink(sink)
            if patched:
                threads.install()
            _recorder.use_speedups(name != "inst_python_hot_path")
            try:
                before = _recorder_events()
                if sink is None:  # plain and hooks_only: the workload alone, as always
                    run = functools.partial(mod.mixed, n)
                else:
                    run = functools.partial(_one_test, mod, n, sink, trace_id)
                rows[name].append(_timed(run))
                if name == "inst":
                    events += _recorder_events() - before
            finally:
                _recorder.use_speedups(True)
                threads.uninstall()
                _recorder.set_sink(None)
    return {"rows": rows, "events": events / rounds, "sink": sink_kind}


def _one_test(mod: Any, n: int, sink: Any, trace_id: int) -> None:
    """One round of the workload as the plugin runs a test: its own trace, every event handed
    over before the verdict, the session's trace back (which lets go of the objects the test's
    identities kept alive), the test's events forgotten after the verdict."""
    from raceway_sdk import _recorder

    session = _recorder.current_trace()
    _recorder.set_trace(trace_id)
    mod.mixed(n)
    _recorder.flush()
    _recorder.set_trace(session)
    forget = getattr(sink, "forget_trace", None)
    if forget is not None:
        forget(trace_id)


def _median_ratio(rows: dict[str, list[tuple[float, float]]], name: str, cpu: bool) -> float:
    i = 1 if cpu else 0
    return statistics.median(r[i] / p[i] for r, p in zip(rows[name], rows["plain"], strict=True))


def measure(quick: bool) -> dict[str, Any]:
    tmp = tempfile.mkdtemp(prefix="raceway-bench-")
    _prepare(tmp)
    plain, inst = _import_pair(tmp)
    n_tight = 80_000 if quick else 160_000
    n_mixed = 300 if quick else 1_000
    repeat = 5 if quick else 7

    # The machine may be shared: equal-length chunks, interleaved, best chunk of each wins.
    _start(False)
    try:
        tight_plain = tight_inst = float("inf")
        for _ in range(repeat * 4):
            tight_plain = min(tight_plain, _best(lambda: plain.tight(plain.Obj(), n_tight), 1))
            tight_inst = min(tight_inst, _best(lambda: inst.tight(inst.Obj(), n_tight // 8), 1) * 8)
    finally:
        _stop()
    mixed = _mixed_rounds(plain, inst, n_mixed, repeat * 2 + 1)
    rows, events = mixed["rows"], mixed["events"]
    rss_plain = _rss_run(tmp, "plain", n_mixed * 5)
    rss_inst = _rss_run(tmp, "inst", n_mixed * 5)
    per_access = (tight_inst - tight_plain) / (2 * n_tight) * 1e9
    plain_cpu = statistics.median(r[1] for r in rows["plain"])
    inst_cpu = statistics.median(r[1] for r in rows["inst"])
    patches_cpu = statistics.median(r[1] for r in rows["thread_patches_only"])
    null_cpu = statistics.median(r[1] for r in rows["recorder_null_sink"])
    return {
        "tight_loop_slowdown": round(tight_inst / tight_plain, 2),
        # median over rounds of (instrumented / plain) process CPU time, every thread counted
        "mixed_slowdown": round(_median_ratio(rows, "inst", True), 2),
        "rss_ratio": round(rss_inst / rss_plain, 2),
        "ns_per_access": round(per_access, 1),
        "tight_plain_ns_per_iter": round(tight_plain / n_tight * 1e9, 1),
        "tight_inst_ns_per_iter": round(tight_inst / n_tight * 1e9, 1),
        "mixed_wall_slowdown": round(_median_ratio(rows, "inst", False), 2),
        # the same with the recorder's Python hot path instead of raceway_sdk/_speedups.c
        "mixed_python_hot_path_slowdown": round(
            _median_ratio(rows, "inst_python_hot_path", True), 2
        ),
        "mixed_best_wall_slowdown": round(
            min(r[0] for r in rows["inst"]) / min(r[0] for r in rows["plain"]), 2
        ),
        "mixed_plain_s": round(min(r[0] for r in rows["plain"]), 4),
        "mixed_hooks_only_slowdown": round(_median_ratio(rows, "hooks_only", True), 2),
        "mixed_recording_no_thread_patches_slowdown": round(
            _median_ratio(rows, "no_thread_patches", True), 2
        ),
        "mixed_thread_patches_only_slowdown": round(
            _median_ratio(rows, "thread_patches_only", True), 2
        ),
        # the same instrumented run with a sink that discards events: the SDK's own share
        "mixed_recorder_only_slowdown": round(_median_ratio(rows, "recorder_null_sink", True), 2),
        "mixed_events_per_run": int(events),
        # CPU per event: hooks + patches + recorder (null sink), and the engine on top of that
        "mixed_recorder_us_per_event": round((null_cpu - plain_cpu) / max(events, 1) * 1e6, 2),
        "mixed_engine_us_per_event": round((inst_cpu - null_cpu) / max(events, 1) * 1e6, 2),
        "mixed_us_per_event": round((inst_cpu - patches_cpu) / max(events, 1) * 1e6, 2),
        "mixed_inst_s": round(min(r[0] for r in rows["inst"]), 4),
        "rss_plain_kb": rss_plain,
        "rss_inst_kb": rss_inst,
        "sink": mixed["sink"],
        "hot_path": "c" if _c_hot_path() else "python",
        "python": sys.version.split()[0],
    }


def _rss_run(tmp: str, mode: str, n: int) -> int:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([tmp, env.get("PYTHONPATH", "")])
    out = subprocess.run(
        [sys.executable, __file__, "--rss-child", mode, str(n), tmp],
        capture_output=True,
        text=True,
        env=env,
        check=True,
        timeout=120,
    )
    return int(out.stdout.strip().splitlines()[-1])


def _rss_child(mode: str, n: int, tmp: str) -> None:
    import resource

    sys.path.insert(0, tmp)
    if mode == "inst":
        plain, inst = _import_pair(tmp)
        _start(True)
        inst.mixed(n)
        _stop()
    else:
        import bench_plain

        bench_plain.mixed(n)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    try:  # ru_maxrss survives exec on Linux (it would report the parent's peak): prefer VmHWM
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    peak = int(line.split()[1])
    except OSError:
        pass
    print(peak)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="smaller sizes, fewer repeats")
    ap.add_argument("--rss-child", nargs=3, metavar=("MODE", "N", "DIR"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.rss_child:
        mode, n, tmp = args.rss_child
        _rss_child(mode, int(n), tmp)
        return
    result = measure(args.quick)
    for k, v in result.items():
        print(f"{k:>26}: {v}")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
