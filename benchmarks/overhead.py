"""Overhead of access instrumentation: the same module imported plain and rewritten.

Figures (last line, JSON):

* ``tight_loop_slowdown``: ``s += o.x; o.x = i`` loop, rewritten vs plain (issue target <= 8x);
* ``mixed_slowdown``: 4 worker threads fed by a queue, a lock-protected dict, list appends,
  some arithmetic, with the thread patches installed and events going to the embedded engine
  when it exists (else to an in-memory collecting sink) (target <= 2x);
* ``rss_ratio``: peak RSS of the mixed workload (scaled up) in a fresh subprocess,
  instrumented vs plain (target <= 2x);
* ``ns_per_access``: hook cost per recorded access on the same-epoch fast path.

Best of N runs per figure. Usage: ``python benchmarks/overhead.py [--quick]``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import textwrap
import time
from typing import Any

WORKLOAD = textwrap.dedent(
    '''
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
    '''
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


def _recorder_events() -> int:
    from raceway_sdk import _recorder

    return int(_recorder.stats()["events"])


def _best(fn: Any, repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


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


def measure(quick: bool) -> dict[str, Any]:
    tmp = tempfile.mkdtemp(prefix="raceway-bench-")
    _prepare(tmp)
    plain, inst = _import_pair(tmp)
    n_tight = 80_000 if quick else 160_000
    n_mixed = 300 if quick else 1_000
    repeat = 5 if quick else 7

    # The machine may be shared: equal-length chunks, interleaved, best chunk of each wins.
    _, sink_kind = _start(False)
    try:
        tight_plain = tight_inst = float("inf")
        for _ in range(repeat * 4):
            tight_plain = min(tight_plain, _best(lambda: plain.tight(plain.Obj(), n_tight), 1))
            tight_inst = min(tight_inst, _best(lambda: inst.tight(inst.Obj(), n_tight // 8), 1) * 8)
    finally:
        _stop()
    mixed_plain = _best(lambda: plain.mixed(n_mixed), repeat)
    mixed_hooks_only = _best(lambda: inst.mixed(n_mixed), repeat)  # rewritten, no sink
    _start(False)
    try:
        mixed_no_patches = _best(lambda: inst.mixed(n_mixed), repeat)
    finally:
        _stop()
    _start(True)
    try:
        mixed_patches_only = _best(lambda: plain.mixed(n_mixed), repeat)
        events_before = _recorder_events()
        mixed_inst = _best(lambda: inst.mixed(n_mixed), repeat)
        events = (_recorder_events() - events_before) / repeat
    finally:
        _stop()
    rss_plain = _rss_run(tmp, "plain", n_mixed * 5)
    rss_inst = _rss_run(tmp, "inst", n_mixed * 5)
    per_access = (tight_inst - tight_plain) / (2 * n_tight) * 1e9
    return {
        "tight_loop_slowdown": round(tight_inst / tight_plain, 2),
        "mixed_slowdown": round(mixed_inst / mixed_plain, 2),
        "rss_ratio": round(rss_inst / rss_plain, 2),
        "ns_per_access": round(per_access, 1),
        "tight_plain_ns_per_iter": round(tight_plain / n_tight * 1e9, 1),
        "tight_inst_ns_per_iter": round(tight_inst / n_tight * 1e9, 1),
        "mixed_plain_s": round(mixed_plain, 4),
        "mixed_hooks_only_slowdown": round(mixed_hooks_only / mixed_plain, 2),
        "mixed_recording_no_thread_patches_slowdown": round(mixed_no_patches / mixed_plain, 2),
        "mixed_thread_patches_only_slowdown": round(mixed_patches_only / mixed_plain, 2),
        "mixed_events_per_run": int(events),
        "mixed_us_per_event": round((mixed_inst - mixed_patches_only) / max(events, 1) * 1e6, 2),
        "mixed_inst_s": round(mixed_inst, 4),
        "rss_plain_kb": rss_plain,
        "rss_inst_kb": rss_inst,
        "sink": sink_kind,
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
