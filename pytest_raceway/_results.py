"""The session's results: tests, races, racing traces; merged across xdist workers; the JSON.

A worker ships :meth:`Results.fragment` through ``workeroutput``; the controller merges every
fragment (:meth:`Results.merge`) and writes the one session document (format in
docs/internals.md, "Session JSON").
"""

from __future__ import annotations

import datetime
import json
import os
from pathlib import Path
from typing import Any

COUNTERS = ("events", "accesses", "dropped", "engine_dropped", "recorder_dropped",
            "remote_sent", "remote_dropped", "listener_events", "listener_rejected",
            "late_events")


class Results:
    """Accumulates what the session found; JSON-able throughout."""

    def __init__(self) -> None:
        self.tests: dict[str, dict[str, Any]] = {}
        self.races: list[dict[str, Any]] = []
        self.traces: dict[str, dict[str, Any]] = {}
        self.counts: dict[str, int] = dict.fromkeys(COUNTERS, 0)
        self.not_instrumented: list[dict[str, str]] = []
        self.notes: list[str] = []
        self.suppressions_used: dict[str, int] = {}
        self.workers_missing: list[str] = []

    # -- per test -------------------------------------------------------------------------
    def test(self, nodeid: str, trace_id: str | None = None) -> dict[str, Any]:
        entry = self.tests.setdefault(
            nodeid, {"nodeid": nodeid, "trace_id": trace_id, "outcome": "passed",
                     "race_failure": False, "races": []})
        if trace_id is not None:
            entry["trace_id"] = trace_id
        return entry

    def record_outcome(self, nodeid: str, when: str, outcome: str, info: dict[str, Any] | None
                       ) -> None:
        """Fold one phase's report into the test's outcome (an error outside call wins)."""
        entry = self.test(nodeid, (info or {}).get("trace_id"))
        if outcome == "failed":
            entry["outcome"] = "failed" if when == "call" else "error"
        elif outcome == "skipped" and entry["outcome"] == "passed":
            entry["outcome"] = "skipped"
        if (info or {}).get("race_failure") and outcome == "failed":
            entry["race_failure"] = True
        for anchor in (info or {}).get("races", []):
            if anchor not in entry["races"]:
                entry["races"].append(anchor)

    # -- xdist ----------------------------------------------------------------------------
    def fragment(self) -> str:
        import orjson

        return orjson.dumps({
            "races": self.races, "traces": self.traces, "counts": self.counts,
            "not_instrumented": self.not_instrumented, "notes": self.notes,
            "suppressions_used": self.suppressions_used,
        }, default=_default, option=orjson.OPT_NON_STR_KEYS).decode()

    def merge(self, text: str) -> None:
        doc = json.loads(text)
        self.races.extend(doc["races"])
        self.traces.update(doc["traces"])
        for key, value in doc["counts"].items():
            self.counts[key] = self.counts.get(key, 0) + int(value)
        for item in doc["not_instrumented"]:
            if item not in self.not_instrumented:
                self.not_instrumented.append(item)
        for note in doc["notes"]:
            if note not in self.notes:
                self.notes.append(note)
        for key, hits in doc["suppressions_used"].items():
            self.suppressions_used[key] = self.suppressions_used.get(key, 0) + hits

    # -- views ----------------------------------------------------------------------------
    def by_status(self, status: str) -> list[dict[str, Any]]:
        return [r for r in self.races if r.get("status") == status]

    def summary(self) -> dict[str, Any]:
        reported = [r for r in self.races if r.get("status") != "suppressed"]
        by_severity: dict[str, int] = {}
        for race in reported:
            by_severity[race["severity"]] = by_severity.get(race["severity"], 0) + 1
        racing = {r["test"] for r in reported if not str(r.get("test", "<")).startswith("<")}
        return {
            "tests": len(self.tests),
            "racing_tests": len(racing),
            "races": len(reported),
            "by_severity": by_severity,
            "new": len(self.by_status("new")),
            "baseline": len(self.by_status("baseline")),
            "suppressed": len(self.by_status("suppressed")),
            "failing": sum(1 for r in self.races if r.get("fails")),
            "events": self.counts["events"],
            "dropped": self.counts["dropped"],
            "counts": dict(self.counts, trace_events_truncated=sum(
                int(t.get("truncated", 0)) for t in self.traces.values())),
            "not_instrumented": self.not_instrumented,
            "notes": self.notes,
        }

    def document(self, settings: dict[str, Any]) -> dict[str, Any]:
        """The session JSON; race ids are renumbered 1..n across workers, anchors kept."""
        ids = {race["anchor"]: n for n, race in enumerate(self.races, 1)}
        races = [dict(race, id=ids[race["anchor"]]) for race in self.races]
        tests = [dict(t, races=[ids[a] for a in t["races"] if a in ids])
                 for t in self.tests.values()]
        now = datetime.datetime.now(datetime.timezone.utc)
        return {
            "format": "raceway-session",
            "version": 1,
            "generated_at": now.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "settings": settings,
            "summary": self.summary(),
            "tests": tests,
            "races": races,
            "traces": self.traces,
        }


def write_json(path: str, doc: dict[str, Any]) -> None:
    """Write atomically (a reader never sees half a file)."""
    import orjson

    file = Path(path)
    file.parent.mkdir(parents=True, exist_ok=True)
    tmp = file.with_name(file.name + ".tmp")
    tmp.write_bytes(orjson.dumps(doc, default=_default, option=orjson.OPT_NON_STR_KEYS))
    os.replace(tmp, file)


def _default(obj: Any) -> Any:
    if isinstance(obj, (set, frozenset, tuple)):
        return list(obj)
    if hasattr(obj, "to_dict"):
        return obj.to_dict()
    return repr(obj)
