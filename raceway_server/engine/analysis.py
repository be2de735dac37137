"""The ``/api/traces/:id`` bundle: one trace's events plus every per-trace analysis.

A thin façade: it builds the happens-before DAG once and hands it to the critical-path and
dependency analyses, and turns the engine's race reports into the original's ``analysis`` block
(severity mapping: write-write and lost-update → CRITICAL, read-write → WARNING).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from raceway_sdk.protocol.events import Event, event_to_wire, format_timestamp, uuid_str

from .anomalies import Baselines, detect_anomalies
from .audit import as_event_id, audit_trails, race_dict
from .critical_path import ClockOf, HBGraph, critical_path
from .dependencies import trace_dependencies

SEVERITY_LABEL = {"write-write": "CRITICAL", "lost-update": "CRITICAL", "read-write": "WARNING"}


def severity_label(severity: str) -> str:
    """Our race severity as the original's CRITICAL / WARNING / INFO label."""
    try:
        return SEVERITY_LABEL[severity]
    except KeyError:
        raise ValueError(
            f"unknown race severity {severity!r} (expected one of {', '.join(SEVERITY_LABEL)})"
        ) from None


def _who(acc: dict[str, Any]) -> str:
    return str(acc.get("task_name") or acc.get("task") or "unknown")


def _value_text(acc: dict[str, Any]) -> str:
    value = acc.get("value")
    return "value not recorded" if value is None else repr(value)


def _access_lines(n: int, acc: dict[str, Any]) -> list[str]:
    eid = uuid_str(as_event_id(acc["event_id"]))
    ts = acc.get("timestamp_ns")
    when = format_timestamp(ts)[11:23] if isinstance(ts, int) else "time unknown"
    kind = str(acc.get("access_type", "?"))
    verb = "WRITE" if "Write" in kind or kind == "AtomicRMW" else "READ"
    return [
        f"   Event {n}: {eid[:8]} @ {acc.get('location', 'unknown')} [{_who(acc)}]",
        f"           @ {when}",
        f"           {verb} ({kind}): {_value_text(acc)}",
    ]


def race_lines(races: Sequence[dict[str, Any]]) -> list[str]:
    """Human-readable summary lines (the original's ``analysis.anomalies`` strings)."""
    if not races:
        return ["No potential races detected for this trace"]
    lines: list[str] = []
    for r in races:
        label = severity_label(r["severity"])
        icon = "🚨" if label == "CRITICAL" else "⚠️"
        lines.append(f"{icon} {label} RACE on {r['variable']} ({r['severity']})")
        lines += _access_lines(1, r["first"])
        lines += _access_lines(2, r["second"])
        if r.get("stale_read"):
            lines += _access_lines(3, r["stale_read"])
        if r.get("explanation"):
            lines.append(f"   {r['explanation']}")
    return lines


def race_details(races: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """The original's ``race_details`` rows, plus the race id and our severity."""
    return [
        {
            "severity": severity_label(r["severity"]),
            "variable": r["variable"],
            "event1_thread": _who(r["first"]),
            "event2_thread": _who(r["second"]),
            "event1_location": r["first"].get("location", "unknown"),
            "event2_location": r["second"].get("location", "unknown"),
            "description": r.get("explanation")
            or f"{r['severity']} race on {r['variable']} between {_who(r['first'])} and {_who(r['second'])}",
            "race_id": r.get("id"),
            "race_kind": r["severity"],
        }
        for r in races
    ]


def analyze_trace(
    trace_id: int,
    events: Sequence[Event],
    races: Iterable[Any],
    clock_of: ClockOf,
    baselines: Baselines,
) -> dict[str, Any]:
    """``GET /api/traces/:id`` data for one trace (events in wire form, original field names)."""
    rds = [race_dict(r) for r in races]
    graph = HBGraph(events, clock_of) if events else None
    return {
        "trace_id": uuid_str(trace_id),
        "events": [event_to_wire(e) for e in events],
        "audit_trails": audit_trails(events, clock_of, rds),
        "analysis": {
            "concurrent_events": len(rds),
            "potential_races": len(rds),
            "anomalies": race_lines(rds),
            "race_details": race_details(rds),
        },
        "critical_path": critical_path(trace_id, events, clock_of, graph) if graph else None,
        "anomalies": detect_anomalies(events, baselines),
        "dependencies": trace_dependencies(trace_id, events, clock_of, graph) if graph else None,
    }
