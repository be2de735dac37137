"""Peak memory of a ``pytest --raceway`` session as the number of (race-free) tests grows.

Writes a test module into a temporary directory. ``--kernel threads`` (default): each test
starts two threads that do ``--increments`` lock-protected read-modify-writes of one attribute
(no race). ``--kernel tasks``: each test runs 200 asyncio tasks that each do 20 increments under
an ``asyncio.Lock`` (many short tasks per test, as janus's suite has). Runs it with
``pytest --raceway`` for each ``--tests`` count and records the peak RSS of the pytest process
(``os.wait4``), plain and with Raceway. If Raceway released a test's events after its verdict,
the peak would stay flat as tests are added; growth per test shows what is retained.

Last line, JSON: ``kernel``; per count ``tests``, ``rss_plain_kb``, ``rss_raceway_kb``, ``events``, and
``kb_per_extra_test`` (slope between the smallest and largest count).
Usage: ``python benchmarks/session_memory.py [--tests 10 40] [--increments 5000]
[--kernel threads|tasks]``.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path
from typing import Any

MODULE = textwrap.dedent(
    """
    import threading

    import pytest


    class Counter:
        def __init__(self):
            self.value = 0
            self.lock = threading.Lock()


    @pytest.mark.parametrize("i", range({tests}))
    def test_locked_increments(i):
        counter = Counter()

        def work():
            for n in range({increments}):
                with counter.lock:
                    counter.value = counter.value + 1

        threads = [threading.Thread(target=work) for _ in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert counter.value == 2 * {increments}
    """
)

TASKS_MODULE = textwrap.dedent(
    """
    import asyncio

    import pytest


    class Counter:
        def __init__(self):
            self.value = 0


    @pytest.mark.parametrize("i", range({tests}))
    def test_locked_increments_in_tasks(i):
        async def main():
            counter = Counter()
            lock = asyncio.Lock()

            async def work():
                for n in range(20):
                    async with lock:
                        counter.value = counter.value + 1

            await asyncio.gather(*(work() for _ in range(200)))
            assert counter.value == 4000

        asyncio.run(main())
    """
)


def run(directory: Path, raceway: bool) -> dict[str, Any]:
    cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:randomly",
           str(directory / "test_memory_kernel.py")]
    if raceway:
        cmd.insert(3, "--raceway")
    env = {k: v for k, v in os.environ.items() if not k.startswith("RACEWAY")}
    log = directory / "out.log"
    with log.open("w") as out:
        proc = subprocess.Popen(cmd, cwd=directory, env=env, stdout=out, stderr=subprocess.STDOUT)
        _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    text = log.read_text()
    if proc.returncode != 0:
        raise SystemExit(f"pytest failed (exit {proc.returncode}):\n{text[-2000:]}")
    events = re.search(r"events recorded: (\d+)", text)
    return {"rss_kb": usage.ru_maxrss, "events": int(events.group(1)) if events else None}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tests", type=int, nargs="+", default=[10, 40])
    parser.add_argument("--increments", type=int, default=5000,
                        help="per thread (threads kernel only)")
    parser.add_argument("--kernel", choices=("threads", "tasks"), default="threads")
    args = parser.parse_args(argv)
    if min(args.tests) < 1 or args.increments < 1:
        parser.error("--tests and --increments must be >= 1")
    rows = []
    for count in sorted(set(args.tests)):
        with tempfile.TemporaryDirectory(prefix="raceway-memory-") as tmp:
            directory = Path(tmp)
            (directory / "test_memory_kernel.py").write_text(
                (MODULE if args.kernel == "threads" else TASKS_MODULE).format(
                    tests=count, increments=args.increments))
            plain = run(directory, raceway=False)
            on = run(directory, raceway=True)
        rows.append({"tests": count, "rss_plain_kb": plain["rss_kb"],
                     "rss_raceway_kb": on["rss_kb"], "events": on["events"]})
        print(f"{count:>4} tests: plain {plain['rss_kb'] / 1024:7.1f} MB, "
              f"raceway {on['rss_kb'] / 1024:7.1f} MB, {on['events']} events", flush=True)
    slope = None
    if len(rows) > 1:
        first, last = rows[0], rows[-1]
        slope = round((last["rss_raceway_kb"] - first["rss_raceway_kb"])
                      / (last["tests"] - first["tests"]), 1)
    print(json.dumps({"kernel": args.kernel, "runs": rows, "increments": args.increments, "kb_per_extra_test": slope,
                      "python": sys.version.split()[0]}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
