"""What every TUI view reads: one small interface over a live server or a saved session.

A source answers two questions: :meth:`Source.snapshot` (the trace list plus dashboard totals,
cheap enough to poll) and :meth:`Source.trace` (one trace with every per-trace analysis). Both
calls block (network or analysis work); the app runs them in worker threads, the plain-text
summary calls them directly. Failures the user can act on (unreachable server, wrong key,
unreadable file) raise :class:`SourceError` with a message that says what to do.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

from raceway_sdk.protocol.events import Event


class SourceError(Exception):
    """A failure to show the user as-is (never a traceback)."""


@dataclass
class TraceRow:
    """One line of the trace list. ``race_count`` is None while it is not known yet."""

    trace_id: str
    event_count: int
    race_count: int | None
    label: str = ""  # the test node id (session) or the services (server)
    last_timestamp: str = ""
    outcome: str = ""  # passed / failed / error / skipped (session); "" on a server
    services: list[str] = field(default_factory=list)
    has_events: bool = True  # a session stores events only for traces with races


@dataclass
class Snapshot:
    """Trace list and dashboard data at one moment."""

    traces: list[TraceRow]
    totals: dict[str, Any]  # traces, events, races, racing_traces, by_severity, dropped, ...
    recent_races: list[dict[str, Any]]  # Race.to_dict() (+ test/status), newest first
    hotspots: list[dict[str, Any]]  # {"variable", "access_count", "trace_count", "races"}
    notes: list[str] = field(default_factory=list)  # things the user should know (truncation, ...)


@dataclass
class TraceDetail:
    """One trace and its analyses, in the server API's shapes (reference §1.3)."""

    trace_id: str
    events: list[Event]
    tasks: dict[str, dict[str, Any]]  # task id -> TaskInfo.to_dict()
    races: list[dict[str, Any]]  # Race.to_dict() (+ status/test in a session)
    critical_path: dict[str, Any] | None
    audit_trails: dict[str, list[dict[str, Any]]]
    dependencies: dict[str, Any] | None
    anomalies: list[dict[str, Any]]
    title: str = ""
    notes: list[str] = field(default_factory=list)
    cache: dict[Any, Any] = field(default_factory=dict, repr=False, compare=False)  # view rows


class Source(Protocol):
    """The data behind the TUI (see the module docstring)."""

    label: str  # shown in the header: the server URL or the session path
    live: bool  # True when refreshing can bring new data

    def snapshot(self) -> Snapshot: ...

    def trace(self, trace_id: str) -> TraceDetail: ...

    def close(self) -> None: ...


def race_sort_key(race: dict[str, Any]) -> int:
    """Newest-first ordering of races: the later of the two accesses."""
    stamps = [
        side.get("timestamp_ns") or 0
        for side in (race.get("first"), race.get("second"))
        if isinstance(side, dict)
    ]
    return max((s for s in stamps if isinstance(s, int)), default=0)


__all__ = ["Snapshot", "Source", "SourceError", "TraceDetail", "TraceRow", "race_sort_key"]
