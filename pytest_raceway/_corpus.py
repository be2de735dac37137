"""The Race/NoRace corpus harness (the Go race detector's scheme).

Kernels are ordinary pytest tests named ``test_race_*`` (must be reported) or ``test_norace_*``
(must not be). The harness runs them under ``pytest --raceway`` in a subprocess, reads the
per-test outcome from the session JSON, and prints::

    Passed N of M (false positives F, false negatives N)

As in Go's harness, a kernel named ``test_race_failing_*`` / ``test_norace_failing_*`` is a
*known* miss of the detector: it is run and listed on its own line, not counted in M; when the
detector starts classifying it right, the harness says so (drop ``failing_`` from its name).

A race kernel passes when Raceway failed it for a race; a norace kernel passes when it passed
without any race. A kernel that breaks in another way (an exception, an error) counts as neither
a false positive nor a false negative, but not as passed either.

Run: ``python -m pytest_raceway._corpus [PATH ...] [-- extra pytest args]``.
"""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

DEFAULT_PATH = "tests/corpus"


@dataclasses.dataclass
class Verdict:
    nodeid: str
    label: str  # "race" | "norace"
    outcome: str
    races: int
    race_failure: bool
    known_failing: bool = False

    @property
    def passed(self) -> bool:
        if self.label == "race":
            return self.races > 0 and self.race_failure and self.outcome == "failed"
        return self.races == 0 and self.outcome == "passed"

    @property
    def false_positive(self) -> bool:
        return self.label == "norace" and self.races > 0

    @property
    def false_negative(self) -> bool:
        return self.label == "race" and self.races == 0


@dataclasses.dataclass
class CorpusResult:
    all_verdicts: list[Verdict]
    returncode: int
    output: str

    @property
    def verdicts(self) -> list[Verdict]:
        """The counted kernels (known-failing and skipped ones excluded)."""
        return [v for v in self.all_verdicts if not v.known_failing and v.outcome != "skipped"]

    @property
    def skipped(self) -> list[Verdict]:
        return [v for v in self.all_verdicts if not v.known_failing and v.outcome == "skipped"]

    @property
    def known_failing(self) -> list[Verdict]:
        return [v for v in self.all_verdicts if v.known_failing]

    @property
    def total(self) -> int:
        return len(self.verdicts)

    @property
    def passed(self) -> int:
        return sum(v.passed for v in self.verdicts)

    @property
    def false_positives(self) -> list[Verdict]:
        return [v for v in self.verdicts if v.false_positive]

    @property
    def false_negatives(self) -> list[Verdict]:
        return [v for v in self.verdicts if v.false_negative]

    def line(self) -> str:
        return (f"Passed {self.passed} of {self.total} (false positives "
                f"{len(self.false_positives)}, false negatives {len(self.false_negatives)})")

    def details(self) -> list[str]:
        out = []
        for v in self.verdicts:
            if not v.passed:
                why = ("false positive" if v.false_positive else
                       "false negative" if v.false_negative else f"broken ({v.outcome})")
                out.append(f"  {why}: {v.nodeid} (outcome {v.outcome}, {v.races} race(s))")
        for v in self.skipped:
            out.append(f"  skipped (not counted): {v.nodeid}")
        for v in self.known_failing:
            state = ("now classified right: drop 'failing_' from its name" if v.passed
                     else f"still failing (outcome {v.outcome}, {v.races} race(s))")
            out.append(f"  known failing: {v.nodeid}: {state}")
        return out


def label_of(nodeid: str) -> str | None:
    name = _name(nodeid)
    if name.startswith("test_race_"):
        return "race"
    if name.startswith("test_norace_"):
        return "norace"
    return None


def _name(nodeid: str) -> str:
    return nodeid.rsplit("::", 1)[-1].split("[", 1)[0]


def verdicts(doc: dict[str, Any]) -> list[Verdict]:
    """Per-kernel verdicts from a session JSON document."""
    by_id = {r["id"]: r for r in doc["races"]}
    out = []
    for test in doc["tests"]:
        label = label_of(test["nodeid"])
        if label is None:
            continue
        races = [by_id[i] for i in test["races"] if i in by_id]
        reported = [r for r in races if r["status"] != "suppressed"]
        known = _name(test["nodeid"]).startswith(f"test_{label}_failing_")
        out.append(Verdict(test["nodeid"], label, test["outcome"], len(reported),
                           bool(test.get("race_failure")), known))
    return sorted(out, key=lambda v: v.nodeid)


def run(paths: list[str] | None = None, extra: list[str] | None = None,
        cwd: str | None = None, timeout: float = 600, autoload: bool = True,
        env: dict[str, str] | None = None) -> CorpusResult:
    """Run the corpus under ``pytest --raceway`` in a subprocess and score it.

    ``autoload=False`` starts pytest without the installed plugins (Raceway and, for ``-n``,
    xdist are loaded explicitly): about three times faster to start. ``env``: variables set
    for the run (``RACEWAY_*`` ones of this process are not passed on).
    """
    extra = list(extra or [])
    with tempfile.TemporaryDirectory(prefix="raceway-corpus-") as tmp:
        out_json = os.path.join(tmp, "session.json")
        cmd = [sys.executable, "-m", "pytest", "--raceway", "-p", "no:cacheprovider",
               f"--raceway-json={out_json}", "-q", "--no-header", "-rN",
               *(paths or [DEFAULT_PATH]), *extra]
        child_env = {k: v for k, v in os.environ.items() if not k.startswith("RACEWAY")}
        child_env.update(env or {})
        if not autoload:
            child_env["PYTEST_DISABLE_PLUGIN_AUTOLOAD"] = "1"
            cmd[3:3] = ["-p", "pytest_raceway.plugin"]
            if any(a.startswith(("-n", "--numprocesses", "--dist", "--tx")) for a in extra):
                cmd[3:3] = ["-p", "xdist.plugin"]
        proc = subprocess.run(cmd, cwd=cwd, env=child_env, capture_output=True, text=True,
                              timeout=timeout)
        output = proc.stdout + proc.stderr
        if not Path(out_json).exists():
            raise RuntimeError(f"the corpus run wrote no session JSON (exit {proc.returncode}):\n"
                               f"{output[-4000:]}")
        doc = json.loads(Path(out_json).read_text(encoding="utf-8"))
    return CorpusResult(verdicts(doc), proc.returncode, output)


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    extra: list[str] = []
    if "--" in args:
        cut = args.index("--")
        args, extra = args[:cut], args[cut + 1:]
    result = run(args or None, extra)
    for line in result.details():
        print(line)
    if result.known_failing:
        print(f"Known failing (not counted): {len(result.known_failing)}")
    print(result.line())
    ok = result.passed == result.total and result.total > 0
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
