"""Stress repetition against happens-before: how often does a textbook race show up?

The kernel is ``examples/test_bank.py``'s lost update: two threads each do
``self.balance = self.balance + amount`` once on a shared account. Without Raceway the test is
repeated ``--runs`` times in one process (what pytest-repeat / pytest-flakefinder /
pytest-run-parallel rely on) and every run whose final balance is wrong is counted. Then the
same test runs ONCE under ``pytest --raceway`` in a subprocess, and we record whether the race
was reported.

Last line, JSON: ``runs``, ``manifested`` (runs with a lost update), ``manifest_rate``,
``stress_seconds``, ``raceway_runs`` (1), ``raceway_reported`` (bool), ``raceway_seconds``,
``switch_interval`` (``sys.getswitchinterval()`` used).
Usage: ``python benchmarks/stress_vs_hb.py [--runs N] [--switch-interval S]``.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


class Account:
    def __init__(self) -> None:
        self.balance = 0

    def deposit(self, amount: int) -> None:
        self.balance = self.balance + amount


def one_run() -> bool:
    """True when the lost update manifested (balance != 20)."""
    account = Account()
    threads = [threading.Thread(target=account.deposit, args=(10,)) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return account.balance != 20


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=2000)
    parser.add_argument("--switch-interval", type=float, default=None,
                        help="sys.setswitchinterval for the stress runs (default: unchanged)")
    args = parser.parse_args(argv)
    if args.runs < 1:
        parser.error("--runs must be >= 1")
    if args.switch_interval is not None:
        sys.setswitchinterval(args.switch_interval)
    start = time.perf_counter()
    manifested = sum(one_run() for _ in range(args.runs))
    stress_seconds = time.perf_counter() - start
    print(f"stress: {manifested} of {args.runs} runs lost an update "
          f"({stress_seconds:.2f}s, switch interval {sys.getswitchinterval()}s)")

    start = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "--raceway", "-q", "-p", "no:cacheprovider",
         str(ROOT / "examples" / "test_bank.py") + "::test_deposit_races"],
        capture_output=True, text=True, timeout=120, cwd=ROOT)
    raceway_seconds = time.perf_counter() - start
    reported = "RACE on Account.balance" in proc.stdout
    print(f"pytest --raceway, one run: race {'reported' if reported else 'NOT reported'} "
          f"({raceway_seconds:.2f}s including interpreter start-up)")
    print(json.dumps({
        "runs": args.runs, "manifested": manifested,
        "manifest_rate": manifested / args.runs, "stress_seconds": round(stress_seconds, 2),
        "raceway_runs": 1, "raceway_reported": reported,
        "raceway_seconds": round(raceway_seconds, 2),
        "switch_interval": sys.getswitchinterval(), "python": sys.version.split()[0]}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
