"""The in-memory view every server process keeps over the event log.

Per trace, per service, per variable and per cross-service call the catalog maintains counters
incrementally (added on ingest, subtracted on retention), so the list/aggregate routes of the
API cost O(result) or one sort instead of the original's full scans. Both backends use it; with
PostgreSQL it is rebuilt from the log at start-up and kept current by catch-up before reads.
Outputs use the original API's field names.
"""

from __future__ import annotations

import datetime as _dt
import math
import time
import uuid
from collections.abc import Callable, Iterable
from typing import Any

from raceway_sdk.protocol.events import Event

WRITES = frozenset(("Write", "AtomicWrite", "AtomicRMW"))


def rfc3339(ns: int) -> str:
    """RFC 3339 UTC with a ``Z`` and 0/3/6/9 fractional digits (one format for every route)."""
    seconds, frac = divmod(ns, 1_000_000_000)
    base = _dt.datetime.fromtimestamp(seconds, tz=_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S")
    if frac == 0:
        return base + "Z"
    digits = f"{frac:09d}"
    for width in (3, 6):
        if digits[width:] == "0" * (9 - width):
            return f"{base}.{digits[:width]}Z"
    return f"{base}.{digits}Z"


def uuid_str(value: int) -> str:
    return str(uuid.UUID(int=value))


def _bump(counter: dict[Any, int], key: Any, sign: int) -> None:
    n = counter.get(key, 0) + sign
    if n > 0:
        counter[key] = n
    else:
        counter.pop(key, None)


class TraceInfo:
    __slots__ = ("trace_id", "events", "first_ns", "last_ns", "services", "indexed")

    def __init__(self, trace_id: int, first_ns: int) -> None:
        self.trace_id = trace_id
        self.events: list[Event] = []
        self.first_ns = first_ns
        self.last_ns = first_ns
        self.services: dict[str, int] = {}
        self.indexed = 0  # events[:indexed] are counted in the aggregate indexes

    def summary(self) -> dict[str, Any]:
        if self.indexed == len(self.events):
            services = sorted(self.services)
        else:
            services = sorted({e.meta.service_name for e in self.events})
        return {
            "trace_id": uuid_str(self.trace_id),
            "event_count": len(self.events),
            "first_timestamp": rfc3339(self.first_ns),
            "last_timestamp": rfc3339(self.last_ns),
            "service_count": len(services),
            "services": services,
        }


class _Service:
    __slots__ = ("events", "traces", "dur_sum", "dur_n")

    def __init__(self) -> None:
        self.events = 0
        self.traces: dict[int, list[int]] = {}  # trace -> [event count, last ns]
        self.dur_sum = 0
        self.dur_n = 0


class _Variable:
    __slots__ = ("accesses", "traces", "services", "threads", "types")

    def __init__(self) -> None:
        self.accesses = 0
        self.traces: dict[int, int] = {}
        self.services: dict[str, int] = {}
        self.threads: dict[str, int] = {}
        self.types: dict[str, int] = {}


class Catalog:
    """Incremental indexes; not thread-safe by itself (the service serialises writers)."""

    def __init__(self) -> None:
        self.traces: dict[int, TraceInfo] = {}
        self.services: dict[str, _Service] = {}
        self.variables: dict[str, _Variable] = {}
        self.kinds: dict[str, list[int]] = {}  # kind -> [count, duration sum ns, timed count]
        self.event_count = 0
        self.version = 0  # bumped on every change: cache key for derived answers
        self._pending: dict[int, TraceInfo] = {}  # traces with events not yet indexed
        self._sorted: tuple[int, list[TraceInfo]] | None = None

    # --- maintenance ----------------------------------------------------------------------

    def add(self, events: Iterable[Event]) -> list[int]:
        """Record ``events``; returns the ids of traces seen for the first time.

        Only per-trace facts are updated here (the ingest path stays cheap); the aggregate
        indexes catch up lazily in :meth:`_index` before a query reads them.
        """
        new_traces: list[int] = []
        traces = self.traces
        pending = self._pending
        info: TraceInfo | None = None
        count = 0
        for event in events:
            count += 1
            ts = event.timestamp_ns
            if info is None or info.trace_id != event.trace_id:
                info = traces.get(event.trace_id)
                if info is None:
                    info = traces[event.trace_id] = TraceInfo(event.trace_id, ts)
                    new_traces.append(event.trace_id)
                pending[event.trace_id] = info
            if ts < info.first_ns:
                info.first_ns = ts
            elif ts > info.last_ns:
                info.last_ns = ts
            info.events.append(event)
        self.event_count += count
        self.version += 1
        return new_traces

    def _index(self) -> None:
        """Fold events recorded since the last query into the aggregate indexes."""
        if not self._pending:
            return
        for info in self._pending.values():
            account = self._account
            for event in info.events[info.indexed :]:
                account(event, 1, info)
            info.indexed = len(info.events)
        self._pending.clear()

    def remove(self, trace_ids: Iterable[int]) -> int:
        """Forget traces (retention); returns the number of events dropped from the view."""
        dropped = 0
        for trace_id in trace_ids:
            info = self.traces.pop(trace_id, None)
            if info is None:
                continue
            self._pending.pop(trace_id, None)
            for event in info.events[: info.indexed]:
                self._account(event, -1, info)
            dropped += len(info.events)
        self.event_count -= dropped
        self.version += 1
        return dropped

    def _account(self, event: Event, sign: int, trace: TraceInfo) -> None:
        meta = event.meta
        name = meta.service_name
        duration = meta.duration_ns
        service = self.services.get(name)
        if service is None:
            service = self.services[name] = _Service()
        service.events += sign
        if duration is not None:
            service.dur_sum += sign * duration
            service.dur_n += sign
        if sign > 0:
            per_trace = service.traces.get(event.trace_id)
            if per_trace is None:
                service.traces[event.trace_id] = [1, event.timestamp_ns]
            else:
                per_trace[0] += 1
                per_trace[1] = max(per_trace[1], event.timestamp_ns)
            _bump(trace.services, name, 1)
        else:
            service.traces.pop(event.trace_id, None)
        if service.events <= 0:
            del self.services[name]
        stats = self.kinds.setdefault(event.kind, [0, 0, 0])
        stats[0] += sign
        if duration is not None:
            stats[1] += sign * duration
            stats[2] += sign
        if stats[0] <= 0:
            del self.kinds[event.kind]
        if event.kind == "StateChange":
            self._account_access(event, sign)

    def _account_access(self, event: Event, sign: int) -> None:
        name = str(event.data.get("variable", ""))
        var = self.variables.get(name)
        if var is None:
            var = self.variables[name] = _Variable()
        var.accesses += sign
        _bump(var.traces, event.trace_id, sign)
        _bump(var.services, event.meta.service_name, sign)
        _bump(var.threads, event.task, sign)
        _bump(var.types, str(event.data.get("access_type", "")), sign)
        if var.accesses <= 0:
            del self.variables[name]

    # --- queries --------------------------------------------------------------------------

    def sorted_traces(self) -> list[TraceInfo]:
        """Traces newest first (by last timestamp), cached per version."""
        if self._sorted is None or self._sorted[0] != self.version:
            ordered = sorted(self.traces.values(), key=lambda t: (t.last_ns, t.trace_id), reverse=True)
            self._sorted = (self.version, ordered)
        return self._sorted[1]

    def trace_page(
        self,
        page: int,
        page_size: int,
        min_events: int = 1,
        service: str | None = None,
        race_count: Callable[[int], int] | None = None,
    ) -> tuple[int, list[dict[str, Any]]]:
        """(total matching traces, the summaries of one page).

        ``race_count(trace_id)`` adds each summary's ``race_count`` (the engine keeps the races;
        the catalog only asks for the page's traces).
        """
        self._index()
        traces = self.sorted_traces()
        if service is not None:
            owned = self.services.get(service)
            members = owned.traces if owned is not None else {}
            traces = [t for t in traces if t.trace_id in members]
        if min_events > 1:
            traces = [t for t in traces if len(t.events) >= min_events]
        start = (page - 1) * page_size
        rows = []
        for info in traces[start : start + page_size]:
            row = info.summary()
            if race_count is not None:
                row["race_count"] = race_count(info.trace_id)
            rows.append(row)
        return len(traces), rows

    def service_list(self) -> list[dict[str, Any]]:
        self._index()
        return [
            {"name": name, "event_count": s.events, "trace_count": len(s.traces)}
            for name, s in sorted(self.services.items())
        ]

    def service_health(self, window_minutes: int, now_ns: int | None = None) -> list[dict[str, Any]]:
        """Services with activity in the window; status by minutes since the last event."""
        self._index()
        now = time.time_ns() if now_ns is None else now_ns
        cutoff = now - window_minutes * 60_000_000_000
        out = []
        for name, service in sorted(self.services.items()):
            recent = [v for v in service.traces.values() if v[1] >= cutoff]
            if not recent:
                continue
            last = max(v[1] for v in recent)
            minutes = max(0.0, (now - last) / 60e9)
            status = "healthy" if minutes < 5 else "warning" if minutes < 30 else "critical"
            out.append(
                {
                    "name": name,
                    "status": status,
                    "trace_count": len(recent),
                    "last_activity": rfc3339(last),
                    "avg_events_per_trace": sum(v[0] for v in recent) / len(recent),
                    "minutes_since_last_activity": round(minutes, 3),
                }
            )
        return out

    def top_variables(self, limit: int = 10) -> list[dict[str, Any]]:
        self._index()
        top = sorted(self.variables.items(), key=lambda kv: (-kv[1].accesses, kv[0]))[:limit]
        return [
            {
                "variable": name,
                "access_count": v.accesses,
                "trace_count": len(v.traces),
                "services": sorted(v.services),
            }
            for name, v in top
        ]

    def performance(self, limit: int) -> dict[str, Any]:
        """Latency over the ``limit`` newest traces; per-kind and per-service durations; throughput."""
        self._index()
        newest = self.sorted_traces()[:limit]
        durations = sorted(
            (((t.last_ns - t.first_ns) / 1e6, t) for t in newest if t.last_ns > t.first_ns),
            key=lambda dt: (dt[0], dt[1].trace_id),
        )
        values = [d for d, _ in durations]

        def pct(p: float) -> float:
            return values[round((len(values) - 1) * p)] if values else 0.0

        slowest = sorted(durations, key=lambda dt: (-dt[0], dt[1].trace_id))[: min(10, limit)]
        by_type: list[dict[str, Any]] = [
            {
                "type": kind,
                "count": count,
                "avg_duration_ms": (dur / timed / 1e6) if timed else 0.0,
            }
            for kind, (count, dur, timed) in sorted(self.kinds.items(), key=lambda kv: -kv[1][0])
        ]
        timed_total = sum(v[2] for v in self.kinds.values())
        dur_total = sum(v[1] for v in self.kinds.values())
        if self.traces:
            first = min(t.first_ns for t in self.traces.values())
            last = max(t.last_ns for t in self.traces.values())
            span_s = max(1.0, (last - first) / 1e9)
        else:
            span_s = 0.0
        return {
            "trace_latency": {
                "avg_ms": (sum(values) / len(values)) if values else 0.0,
                "p50_ms": pct(0.5),
                "p95_ms": pct(0.95),
                "p99_ms": pct(0.99),
                "slowest_traces": [
                    {
                        "trace_id": uuid_str(t.trace_id),
                        "duration_ms": d,
                        "services": sorted(t.services),
                    }
                    for d, t in slowest
                ],
            },
            "event_performance": {
                "by_type": by_type,
                "avg_duration_ms": (dur_total / timed_total / 1e6) if timed_total else 0.0,
                "slow_operations": [row for row in by_type if row["avg_duration_ms"] > 100.0],
            },
            "service_latency": [
                {
                    "service": name,
                    "event_count": s.events,
                    "avg_duration_ms": (s.dur_sum / s.dur_n / 1e6) if s.dur_n else 0.0,
                }
                for name, s in sorted(self.services.items())
            ],
            "throughput": {
                "events_per_second": (self.event_count / span_s) if span_s else 0.0,
                "traces_per_second": (len(self.traces) / span_s) if span_s else 0.0,
                "time_range_seconds": span_s,
            },
        }

    def expired(self, max_age_ns: int | None, max_traces: int | None, now_ns: int) -> list[int]:
        """Traces retention removes: older than the age limit, then beyond the count limit."""
        ordered = self.sorted_traces()
        doomed: list[int] = []
        keep = ordered
        if max_age_ns is not None:
            cutoff = now_ns - max_age_ns
            doomed = [t.trace_id for t in ordered if t.last_ns < cutoff]
            keep = [t for t in ordered if t.last_ns >= cutoff]
        if max_traces is not None and len(keep) > max_traces:
            doomed.extend(t.trace_id for t in keep[max_traces:])
        return doomed


def finite(value: float) -> float:
    """JSON has no NaN/Infinity: clamp analysis figures before they reach a response."""
    return value if math.isfinite(value) else 0.0
