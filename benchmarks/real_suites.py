"""``pytest --raceway`` on real third-party test suites: slowdown, memory and every race reported.

Each suite's released sdist is downloaded from PyPI into a temporary directory (never copied into
this repository), installed from that sdist into a throwaway venv together with raceway (``-e``)
and the suite's test dependencies, and its own test directory is run twice from the unpacked
sdist: plain, then ``--raceway --raceway-include=<package>`` (``--raceway-fail-on=none``, so
races are recorded without changing outcomes). Wall time and peak RSS come from
``os.wait4`` on the pytest process; races come from the ``raceway`` terminal summary (one line
per race under ``-q``). ``--raceway-json`` is not used for the timed runs: on suites with
thousands of tasks the session JSON repeats every event's full vector clock and its cost
would swamp the measurement (see docs/validation.md). Every run is capped at
``--max-memory-mb`` of address space so that a blow-up fails the run instead of the machine.

Prints a line per suite and, last, a JSON object: per suite ``seconds_off/on``, ``slowdown``,
``rss_off_kb/on_kb``, ``rss_ratio``, ``outcomes_off/on``, ``races`` (count) and ``race_list``
(variable, severity, both sites, test); then ``median_slowdown`` and ``median_rss_ratio``.
Usage: ``python benchmarks/real_suites.py [--venv DIR] [--keep-venv] [--only NAME] [--repeat N]``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import resource
import statistics
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _venv import Venv, VenvError  # noqa: E402

#: name, PyPI requirement, import package, test dependencies, pytest arguments (in the sdist).
SUITES: list[dict[str, Any]] = [
    {"name": "pykka", "req": "pykka==4.1.1", "package": "pykka",
     "deps": ["pytest-mock", "pydantic"], "args": ["tests"],
     "uses": "threads (actors, futures)"},
    {"name": "janus", "req": "janus==1.0.0", "package": "janus",
     "deps": ["pytest-asyncio<0.24"], "args": ["tests", "-p", "asyncio"],
     "uses": "asyncio + threads (mixed queue)"},
    {"name": "filelock", "req": "filelock==3.16.1", "package": "filelock",
     "deps": ["pytest-asyncio<0.24", "pytest-mock", "pytest-timeout"],
     "args": ["tests", "--ignore=tests/test_virtualenv.py"],
     "uses": "threads + asyncio (file locks)"},
    {"name": "tenacity", "req": "tenacity==9.0.0", "package": "tenacity",
     "deps": ["tornado", "typeguard"], "args": ["tests"], "uses": "threads + asyncio (retries)"},
]

_OUTCOME = re.compile(r"(\d+) (passed|failed|errors?|skipped|xfailed|xpassed|deselected)")


_RACE_LINE = re.compile(r"^  (\S+::\S+|<session>): RACE on (.+) \[([\w-]+)\] (\S+) <-> (\S+)  #")


def run_measured(cmd: list[str], cwd: Path, env: dict[str, str], timeout: float,
                 log: Path, max_memory_mb: int) -> dict[str, Any]:
    """Run ``cmd``; wall seconds, peak RSS (kB, ``os.wait4``), outcomes and race lines."""
    limit = max_memory_mb * 1024 * 1024

    def cap() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))

    with log.open("w") as out:
        start = time.perf_counter()
        proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT,
                                preexec_fn=cap)
        killer = threading.Timer(timeout, proc.kill)
        killer.start()
        try:
            _, status, usage = os.wait4(proc.pid, 0)
        finally:
            killer.cancel()
        seconds = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)  # reaped by wait4: tell Popen
    text = log.read_text(errors="replace").strip().splitlines()
    last = text[-1] if text else ""
    outcomes = {("error" if k.startswith("error") else k): int(n)
                for n, k in _OUTCOME.findall(last)}
    races = []
    for line in text:
        m = _RACE_LINE.match(line)
        if m:
            test, variable, severity, a, b = m.groups()
            races.append({"test": test, "variable": variable, "severity": severity,
                          "first": a.split("site-packages/")[-1],
                          "second": b.split("site-packages/")[-1]})
    return {"seconds": seconds, "rss_kb": usage.ru_maxrss, "exit_code": proc.returncode,
            "timed_out": seconds >= timeout, "outcomes": outcomes, "last_line": last,
            "races": races, "memory_error": any("MemoryError" in line for line in text)}


def fetch_sdist(venv: Venv, req: str, dest: Path) -> Path:
    """Download the release's sdist (no wheels, no dependencies) and unpack it."""
    venv.pip("download", "-q", "--no-deps", "--no-binary", ":all:", "-d", str(dest), req,
             step=f"download the sdist of {req}")
    name, _, version = req.partition("==")
    archive = next(p for p in dest.iterdir()
                   if p.name.lower().startswith(name.lower()) and version in p.name)
    with tarfile.open(archive) as tar:
        tar.extractall(dest, filter="data")
    return archive


def run_suite(venv: Venv, suite: dict[str, Any], work: Path, repeat: int,
              timeout: float, max_memory_mb: int) -> dict[str, Any]:
    src_dir = next(p for p in work.iterdir() if p.is_dir() and p.name.lower().startswith(
        suite["name"].lower()))
    env = venv.env(PYTHONDONTWRITEBYTECODE="1")
    base = [venv.python, "-m", "pytest", "-q", "-p", "no:cacheprovider", *suite["args"]]
    on = base + ["--raceway", f"--raceway-include={suite['package']}", "--raceway-fail-on=none"]
    # One warm-up of each mode (bytecode and rewritten-module caches), then N rounds that
    # alternate off/on so that a load spike on the (shared) machine hits both modes alike.
    runs: dict[str, list[dict[str, Any]]] = {"off": [], "on": []}
    modes = (("off", base), ("on", on))
    for mode, cmd in modes:
        run_measured(cmd, src_dir, env, timeout, work / f"{suite['name']}-{mode}-warm.log",
                     max_memory_mb)
    for i in range(repeat):
        for mode, cmd in modes:
            runs[mode].append(run_measured(cmd, src_dir, env, timeout,
                                           work / f"{suite['name']}-{mode}-{i}.log",
                                           max_memory_mb))
    off = min(runs["off"], key=lambda r: r["seconds"])
    on_ = min(runs["on"], key=lambda r: r["seconds"])
    races = on_["races"]
    return {
        "suite": suite["name"], "requirement": suite["req"], "uses": suite["uses"],
        "seconds_off": round(off["seconds"], 2), "seconds_on": round(on_["seconds"], 2),
        "slowdown": round(on_["seconds"] / off["seconds"], 2),
        "rss_off_kb": off["rss_kb"], "rss_on_kb": on_["rss_kb"],
        "rss_ratio": round(on_["rss_kb"] / off["rss_kb"], 2),
        "outcomes_off": off["outcomes"], "outcomes_on": on_["outcomes"],
        "timed_out": off["timed_out"] or on_["timed_out"],
        "memory_error": off["memory_error"] or on_["memory_error"],
        "races": len(races), "race_list": races,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--venv", help="reuse (or create and keep) the venv at this path")
    parser.add_argument("--keep-venv", action="store_true")
    parser.add_argument("--only", action="append", help="suite name (repeatable)")
    parser.add_argument("--repeat", type=int, default=3, help="timed runs per mode (best of)")
    parser.add_argument("--timeout", type=float, default=120.0, help="seconds per pytest run")
    parser.add_argument("--max-memory-mb", type=int, default=3000,
                        help="address-space cap of each pytest run (MiB)")
    args = parser.parse_args(argv)
    suites = [s for s in SUITES if not args.only or s["name"] in args.only]
    if not suites:
        parser.error(f"--only: no suite named {args.only}; known: {[s['name'] for s in SUITES]}")
    results = []
    try:
        with Venv(args.venv, keep=args.keep_venv) as venv, \
                tempfile.TemporaryDirectory(prefix="raceway-suites-") as tmp:
            work = Path(tmp)
            archives = [fetch_sdist(venv, s["req"], work) for s in suites]
            venv.pip("install", "-q", *map(str, archives),
                     *[d for s in suites for d in s["deps"]],
                     step="install the sdists and their test dependencies")
            for suite in suites:
                result = run_suite(venv, suite, work, args.repeat, args.timeout,
                                   args.max_memory_mb)
                results.append(result)
                print(f"{suite['name']:<10} off {result['seconds_off']:6.2f}s "
                      f"on {result['seconds_on']:6.2f}s  x{result['slowdown']:<5} "
                      f"rss x{result['rss_ratio']:<5} races={result['races']:<3} "
                      f"off={result['outcomes_off']} on={result['outcomes_on']}", flush=True)
                for race in result["race_list"]:
                    print(f"    {race['severity']:<11} {race['variable']}: {race['first']} <-> "
                          f"{race['second']}  [{race['test']}]")
    except VenvError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(json.dumps({
        "suites": results, "python": platform.python_version(),
        "median_slowdown": statistics.median(r["slowdown"] for r in results),
        "median_rss_ratio": statistics.median(r["rss_ratio"] for r in results),
        "races_total": sum(r["races"] for r in results)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
