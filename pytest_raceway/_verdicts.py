"""Per-test runs and the classification of each race: suppressed, baseline or new, failing or not.

Order of the rules (the first that applies wins): Raceway switched off for the test by a marker
-> an ``ignore`` glob on the variable or location (ini ``raceway_ignore`` + the marker's) -> a
suppression from the TSan-format file -> the baseline -> new. A new race fails its test when
``fail_on`` covers its severity, unless the run updates the baseline.
"""

from __future__ import annotations

import fnmatch
import uuid
from collections.abc import Callable
from typing import Any

from pytest_raceway import _baseline, _settings, _suppress

SESSION_TEST = "<session>"


class TestRun:
    """One trace being judged: a test, the session (outside tests), or an orphan trace."""

    __test__ = False  # not a pytest test class
    __slots__ = ("nodeid", "trace_id", "enabled", "fail_on", "ignore", "seen", "anchors",
                 "failing", "failed_with", "ended")

    def __init__(self, nodeid: str, trace_id: int, overrides: dict[str, Any],
                 settings: _settings.Settings) -> None:
        self.nodeid = nodeid
        self.trace_id = trace_id
        self.enabled = overrides.get("enabled", True)
        self.fail_on = overrides.get("fail_on", settings.fail_on)
        self.ignore = list(settings.ignore) + list(overrides.get("ignore", []))
        self.seen: set[int] = set()  # engine race ids already classified
        self.anchors: list[str] = []
        self.failing: list[dict[str, Any]] = []
        self.failed_with = 0  # how many of ``failing`` a phase has already failed for
        self.ended = nodeid.startswith("<")  # races found once ended fail the session


def severity_fails(fail_on: str, severity: str) -> bool:
    """``write-write`` covers lost updates too (both sides write)."""
    if fail_on == "none":
        return False
    if fail_on == "write-write":
        return severity in ("write-write", "lost-update")
    return True


class Classifier:
    """Turns an engine ``Race.to_dict()`` into the session's race record."""

    def __init__(self, settings: _settings.Settings, worker: str | None,
                 test_of: Callable[[Any], str | None]) -> None:
        self.settings = settings
        self.prefix = f"{worker}-" if worker else ""
        self.test_of = test_of
        self.suppressions = (_suppress.load(settings.suppressions)
                             if settings.suppressions else [])
        self.baseline: dict[str, dict[str, Any]] = {}
        if settings.baseline and not (settings.baseline_update and not _exists(settings.baseline)):
            self.baseline = _baseline.load(settings.baseline, settings.sources["baseline"])
        self.suppressions_used: dict[str, int] = {}
        self.engine: Any = None  # set when armed: names tasks a race's trace did not see start
        self.count = 0

    def classify(self, race: dict[str, Any], run: TestRun) -> dict[str, Any]:
        self.count += 1
        race["anchor"] = f"race-{self.prefix}{self.count}"
        race["test"] = run.nodeid
        race["trace_id"] = str(uuid.UUID(int=run.trace_id))
        race["late"] = run.ended
        for name in ("first", "second", "stale_read"):
            access = race.get(name)
            if isinstance(access, dict):
                if not access.get("task_created_at"):
                    self._fill_task(access)
                origin = access.get("origin_trace")
                if isinstance(origin, int):
                    access["origin_trace"] = origin = str(uuid.UUID(int=origin))
                access["origin_test"] = self.test_of(origin)
        root = self.settings.rootdir
        race["sites"] = _baseline.race_sites(race, root)
        race["baseline_key"] = _baseline.race_key(race, root)
        race["status"], race["reason"] = self._status(race, run)
        race["fails"] = (race["status"] == "new" and not self.settings.baseline_update
                         and severity_fails(run.fail_on, str(race.get("severity"))))
        return race

    def _status(self, race: dict[str, Any], run: TestRun) -> tuple[str, str | None]:
        if not run.enabled:
            return "suppressed", "raceway disabled for this test by a marker"
        names = [str(race.get("variable") or ""), str(race.get("loc") or "")]
        for glob in run.ignore:
            if any(fnmatch.fnmatchcase(n, glob) for n in names):
                return "suppressed", f"ignore pattern {glob!r}"
        supp = _suppress.match(self.suppressions, race)
        if supp is not None:
            self.suppressions_used[str(supp)] = self.suppressions_used.get(str(supp), 0) + 1
            return "suppressed", f"suppression {supp} (line {supp.line})"
        if race["baseline_key"] in self.baseline:
            return "baseline", None
        return "new", None

    def _fill_task(self, access: dict[str, Any]) -> None:
        """Name a task the race's trace did not see start.

        A thread leaked from an earlier test was spawned in that test's trace: take its creation
        site from there. The main thread and threads started before instrumentation have no
        spawn event at all: the recorder of this process still knows their name and kind.
        """
        from pytest_raceway import _spine

        task = access.get("task")
        if self.engine is not None:
            for trace_id in self.engine.trace_ids():
                info = self.engine.tasks(trace_id).get(task)
                if info is not None and getattr(info, "created_at", None):
                    access["task_created_at"] = info.created_at
                    access["task_stack"] = info.stack
                    access["task_name"], access["task_kind"] = info.name, info.kind
                    if getattr(info, "origin_trace", None) is not None:
                        access["origin_trace"] = info.origin_trace
                    return
        state = _spine.live_task(task)
        if state is not None:
            access["task_name"], access["task_kind"] = state.name, state.kind


def _exists(path: str) -> bool:
    from pathlib import Path

    return Path(path).exists()
