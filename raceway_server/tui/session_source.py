"""The TUI's view of a saved session (``pytest --raceway --raceway-json=FILE``).

The file holds the tests, the races (full reports) and, for racing traces, every event. The
per-trace analyses (critical path, audit trails, dependencies, anomalies) are not in the file;
they are computed here with the server's own functions, on clocks from a private
:class:`~raceway_server.engine.core.Engine` fed with the session's events (needed for events of
the original SDKs, whose clocks the engine derives). Races are the session's, not recomputed, so
their ids, status (new / baseline / suppressed) and anchors match the terminal and HTML reports.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

from raceway_sdk.protocol.events import parse_uuid

from raceway_server.engine.anomalies import Baselines, detect_anomalies
from raceway_server.engine.audit import audit_trails
from raceway_server.engine.core import Engine
from raceway_server.engine.critical_path import HBGraph, critical_path
from raceway_server.engine.dependencies import trace_dependencies
from raceway_server.report.session import ParsedTrace, ReportError, load_session

from .source import Snapshot, SourceError, TraceDetail, TraceRow, race_sort_key

HOTSPOTS = 10


class SessionSource:
    """See the module docstring. Reading is done once; :meth:`snapshot` re-reads the file so a
    session rewritten by a new pytest run shows up on refresh."""

    live = False

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.label = str(self.path)
        self._lock = threading.Lock()
        self._load()

    def _load(self) -> None:
        try:
            doc = load_session(self.path)
        except ReportError as exc:
            raise SourceError(str(exc)) from None
        self.doc = doc
        self._mtime = self._stamp()
        self.parsed = {tid: ParsedTrace(tid, t) for tid, t in doc.get("traces", {}).items()}
        self._engine: Engine | None = None
        self._baselines: Baselines | None = None
        self._details: dict[str, TraceDetail] = {}
        self._snapshot: Snapshot | None = None

    def _stamp(self) -> tuple[int, int] | None:
        try:
            st = self.path.stat()
        except OSError:
            return None
        return st.st_mtime_ns, st.st_size

    def close(self) -> None:
        pass

    def _analysis_state(self) -> tuple[Engine, Baselines]:
        """Engine (clocks) and baselines (anomalies) over every stored event, built once."""
        with self._lock:
            if self._engine is None or self._baselines is None:
                engine = Engine()
                baselines = Baselines()
                for parsed in self.parsed.values():
                    engine.add_batch(parsed.events)
                    baselines.observe_many(parsed.events)
                self._engine, self._baselines = engine, baselines
            return self._engine, self._baselines

    def races_of(self, trace_id: str) -> list[dict[str, Any]]:
        return [r for r in self.doc.get("races", []) if str(r.get("trace_id")) == trace_id]

    # --- Source ---------------------------------------------------------------------------

    def snapshot(self) -> Snapshot:
        if self._stamp() != self._mtime:
            self._load()  # the session file was rewritten since it was read
        if self._snapshot is None:
            self._snapshot = self._build_snapshot()
        return self._snapshot

    def _build_snapshot(self) -> Snapshot:
        doc = self.doc
        races: list[dict[str, Any]] = list(doc.get("races", []))
        reported: dict[str, int] = {}
        for race in races:
            if race.get("status") != "suppressed":
                tid = str(race.get("trace_id"))
                reported[tid] = reported.get(tid, 0) + 1
        rows: list[TraceRow] = []
        listed: set[str] = set()
        for test in doc.get("tests", []):
            tid = test.get("trace_id")
            if not tid or tid in listed:
                continue
            listed.add(tid)
            rows.append(self._row(str(tid), str(test.get("nodeid", "")), str(test.get("outcome", "")), reported))
        for tid, parsed in self.parsed.items():
            if tid not in listed:  # e.g. races outside any test ("<session>")
                rows.append(self._row(tid, parsed.test or "<session>", "", reported))
        rows.sort(key=lambda r: (r.race_count == 0, r.label))
        summary = dict(doc.get("summary") or {})
        totals = {
            "traces": len(rows),
            "tests": summary.get("tests", len(rows)),
            "events": summary.get("events", sum(len(p.events) for p in self.parsed.values())),
            "races": summary.get("races", sum(reported.values())),
            "racing_traces": sum(1 for r in rows if r.race_count),
            "by_severity": summary.get("by_severity", {}),
            "dropped": summary.get("dropped", 0),
            "new": summary.get("new"),
            "baseline": summary.get("baseline"),
            "suppressed": summary.get("suppressed"),
            "failing": summary.get("failing"),
            "generated_at": doc.get("generated_at"),
        }
        notes = [str(n) for n in summary.get("notes") or []]
        for item in summary.get("not_instrumented") or []:
            if isinstance(item, dict):
                notes.append(f"not instrumented: {item.get('module')} ({item.get('reason')})")
        bad = sum(p.bad for p in self.parsed.values())
        if bad:
            first = next(p.first_error for p in self.parsed.values() if p.first_error)
            notes.append(f"{bad} stored events could not be read; first: {first}")
        truncated = (summary.get("counts") or {}).get("trace_events_truncated")
        if truncated:
            notes.append(f"{truncated} events were not stored (per-trace cap)")
        races.sort(key=race_sort_key, reverse=True)
        return Snapshot(rows, totals, races, self._hotspots(races), notes)

    def _row(self, tid: str, label: str, outcome: str, reported: dict[str, int]) -> TraceRow:
        parsed = self.parsed.get(tid)
        events = parsed.events if parsed is not None else []
        return TraceRow(
            trace_id=tid,
            event_count=len(events),
            race_count=reported.get(tid, 0),
            label=label,
            last_timestamp="",
            outcome=outcome,
            services=sorted({e.meta.service_name for e in events}),
            has_events=parsed is not None,
        )

    def _hotspots(self, races: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Variables by races, then accesses, over the stored traces."""
        stats: dict[str, dict[str, Any]] = {}
        for tid, parsed in self.parsed.items():
            for e in parsed.events:
                if e.kind != "StateChange":
                    continue
                name = str(e.data.get("variable"))
                s = stats.setdefault(name, {"variable": name, "access_count": 0, "traces": set(), "races": 0})
                s["access_count"] += 1
                s["traces"].add(tid)
        for race in races:
            name = str(race.get("variable"))
            s = stats.setdefault(name, {"variable": name, "access_count": 0, "traces": set(), "races": 0})
            s["races"] += 1
        rows = [
            {"variable": s["variable"], "access_count": s["access_count"],
             "trace_count": len(s["traces"]), "races": s["races"]}
            for s in stats.values()
        ]
        rows.sort(key=lambda r: (-r["races"], -r["access_count"], r["variable"]))
        return rows[:HOTSPOTS]

    def trace(self, trace_id: str) -> TraceDetail:
        cached = self._details.get(trace_id)
        if cached is not None:
            return cached
        parsed = self.parsed.get(trace_id)
        races = self.races_of(trace_id)
        test = next(
            (str(t.get("nodeid")) for t in self.doc.get("tests", []) if t.get("trace_id") == trace_id),
            parsed.test if parsed is not None else "",
        )
        if parsed is None:
            known = any(t.get("trace_id") == trace_id for t in self.doc.get("tests", []))
            if not known:
                raise SourceError(f"trace {trace_id} is not in {self.path}")
            return TraceDetail(
                trace_id, [], {}, races, None, {}, None, [], title=test,
                notes=["the session stores events only for traces with races; this one had none"],
            )
        engine, baselines = self._analysis_state()
        events = parsed.events
        graph = HBGraph(events, engine.clock_of) if events else None
        try:
            tid_int = parse_uuid(trace_id)
        except ValueError:
            raise SourceError(f"{self.path}: trace id {trace_id!r} is not a UUID") from None
        notes = []
        if parsed.bad:
            notes.append(f"{parsed.bad} events could not be read; first: {parsed.first_error}")
        detail = TraceDetail(
            trace_id=trace_id,
            events=events,
            tasks=dict(parsed.tasks),
            races=races,
            critical_path=critical_path(tid_int, events, engine.clock_of, graph) if graph else None,
            audit_trails=audit_trails(events, engine.clock_of, races),
            dependencies=trace_dependencies(tid_int, events, engine.clock_of, graph) if graph else None,
            anomalies=detect_anomalies(events, baselines),
            title=test,
            notes=notes,
        )
        self._details[trace_id] = detail
        return detail


__all__ = ["SessionSource"]
