"""Exports: the session JSON of docs/internals.md (input of reports and the TUI) and ShiViz logs.

ShiViz (https://bestchai.bitbucket.io/shiviz/) wants, per host, clocks whose own component counts
that host's events 1, 2, 3, ... Our clocks tick per epoch (several events can share one), so the
export renumbers: a task's events get own values 1..k in log order, and a foreign component
``t: v`` becomes the number of ``t``'s events whose original own value is at most ``v``. This
keeps exactly the happens-before order of the original clocks.
"""

from __future__ import annotations

import bisect
import re
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from raceway_sdk.protocol.events import Event, event_to_wire, uuid_str

from raceway_server.api.responses import dumps
from raceway_server.storage.catalog import rfc3339

ClockOf = Callable[[Event], "tuple[str, dict[str, int]]"]
SHIVIZ_REGEX = r"(?<host>\S*) (?<clock>{.*})\n(?<event>.*)"


def _race_dict(race: Any) -> dict[str, Any]:
    return dict(race.to_dict()) if hasattr(race, "to_dict") else dict(race)


def session_document(
    traces: Iterable[tuple[int, list[Event], list[Any]]],
    tasks: dict[str, Any],
    engine_stats: dict[str, Any],
) -> dict[str, Any]:
    """A ``raceway-session`` v1 document for server traces (one pseudo-test per trace)."""
    tests: list[dict[str, Any]] = []
    races_out: list[dict[str, Any]] = []
    trace_docs: dict[str, Any] = {}
    by_severity: dict[str, int] = {}
    events_total = 0
    for trace_id, events, races in traces:
        tid = uuid_str(trace_id)
        nodeid = f"trace:{tid}"
        ids = []
        for race in races:
            doc = _race_dict(race)
            doc.update(test=nodeid, status="new")
            races_out.append(doc)
            ids.append(doc.get("id"))
            sev = str(doc.get("severity"))
            by_severity[sev] = by_severity.get(sev, 0) + 1
        task_ids = {e.task for e in events}
        trace_tasks = {}
        for task_id in sorted(task_ids):
            info = tasks.get(task_id)
            if info is not None:
                trace_tasks[task_id] = info.to_dict() if hasattr(info, "to_dict") else info
        tests.append({"nodeid": nodeid, "trace_id": tid, "outcome": "server", "races": ids})
        trace_docs[tid] = {
            "test": nodeid,
            "events": [event_to_wire(e) for e in events],
            "tasks": trace_tasks,
        }
        events_total += len(events)
    return {
        "format": "raceway-session",
        "version": 1,
        "generated_at": rfc3339(time.time_ns()),
        "settings": {"source": "raceway-server"},
        "summary": {
            "tests": len(tests),
            "racing_tests": sum(1 for t in tests if t["races"]),
            "races": len(races_out),
            "by_severity": by_severity,
            "new": len(races_out),
            "baseline": 0,
            "suppressed": 0,
            "events": events_total,
            "dropped": int(engine_stats.get("dropped", 0) or 0),
            "not_instrumented": [],
        },
        "tests": tests,
        "races": races_out,
        "traces": trace_docs,
    }


def _describe(event: Event) -> str:
    data = event.data
    if event.kind == "StateChange":
        text = f"{data.get('access_type', '?')} {data.get('variable', '?')} @ {data.get('location', '?')}"
    elif event.kind in ("LockAcquire", "LockRelease"):
        text = f"{event.kind} {data.get('lock_type', '')} {data.get('lock_id', '')}"
    elif event.kind == "HttpRequest":
        text = f"HttpRequest {data.get('method', '')} {data.get('url', '')}"
    elif event.kind == "FunctionCall":
        text = f"FunctionCall {data.get('function_name', '')}"
    else:
        text = event.kind
    return " ".join(text.split())


def _host(task: str) -> str:
    return re.sub(r"\s+", "_", task) or "unknown"


def shiviz_log(events: Sequence[Event], clock_of: ClockOf) -> str:
    """One trace as a ShiViz log (regex line, blank delimiter line, two lines per event)."""
    clocks = [clock_of(e) for e in events]
    own_values: dict[str, list[int]] = {}
    for task, vc in clocks:
        own_values.setdefault(task, []).append(vc.get(task, 0))
    for values in own_values.values():
        values.sort()
    seen: dict[str, int] = {}
    lines = [SHIVIZ_REGEX, ""]
    for event, (task, vc) in zip(events, clocks, strict=True):
        seen[task] = seen.get(task, 0) + 1
        out = {}
        for component, value in vc.items():
            if component == task:
                continue
            history = own_values.get(component)
            if history:
                n = bisect.bisect_right(history, value)
                if n:
                    out[_host(component)] = n
        out[_host(task)] = seen[task]
        lines.append(f"{_host(task)} {dumps(out).decode()}")
        lines.append(_describe(event))
    return "\n".join(lines) + "\n"
