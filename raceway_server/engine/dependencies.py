"""Service dependency graph: calls between services, counted once per call.

A call is found two ways:

* **Clock hand-off.** A cross-task edge of the happens-before DAG (see ``critical_path.HBGraph``)
  whose two events belong to different ``service_name``\\ s. A request/response exchange yields two
  such edges (A→B when B's handler starts with A's clock, B→A when A's response carries B's clock);
  edges are paired per ordered task pair in causal order, so an edge that answers an earlier edge
  in the opposite direction is the reply of that call and is not counted again. One-way
  hand-offs (a queue message) count once each.
* **Original span ids.** Events of the original SDKs carry ``distributed_span_id`` (the callee's
  span) and ``upstream_span_id`` (the caller's): each distinct ``(upstream, span)`` pair whose
  services differ is one call. A clock edge into an event that carries ``upstream_span_id`` is left
  to this rule, so a call seen both ways is counted once.

``ServiceGraph`` aggregates per-trace results for the global views (``/api/distributed/edges``,
``/api/services/:name/dependencies``); re-submitting a trace replaces its earlier contribution.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Sequence
from typing import Any

from raceway_sdk.protocol.events import Event, uuid_str

from .critical_path import ClockOf, HBGraph


def _link_type(*events: Event) -> str:
    """``HttpCall | MessageQueue | DatabaseQuery | Custom`` from the events of one hand-off."""
    for e in events:
        if e.kind in ("HttpRequest", "HttpResponse"):
            return "HttpCall"
        lock_type = (
            str(e.data.get("lock_type", "")).lower()
            if e.kind in ("LockAcquire", "LockRelease")
            else ""
        )
        if lock_type == "http" or (e.ext is not None and e.ext.get("child_kind") == "http"):
            return "HttpCall"
        if "queue" in lock_type or "stream" in lock_type:
            return "MessageQueue"
        if e.kind in ("DatabaseQuery", "DatabaseResult"):
            return "DatabaseQuery"
    return "Custom"


def service_calls(
    events: Sequence[Event], clock_of: ClockOf, graph: HBGraph | None = None
) -> tuple[list[tuple[str, str, str]], int]:
    """Every call of the trace as ``(from_service, to_service, link_type)``, plus the number of
    upstream spans that name no span of this trace (calls whose caller is unknown here)."""
    g = graph if graph is not None else HBGraph(events, clock_of)
    calls: list[tuple[str, str, str]] = []
    order, _ = g.topological()
    outstanding: Counter[tuple[str, str]] = Counter()
    for i in order:
        preds = g.cross_preds[i]
        if not preds:
            continue
        e = events[i]
        for q in preds:
            src = events[q]
            if src.meta.service_name == e.meta.service_name:
                continue
            a, b = g.tasks[q], g.tasks[i]
            if outstanding[(b, a)] > 0:
                outstanding[(b, a)] -= 1  # the reply of an earlier call b -> a
                continue
            outstanding[(a, b)] += 1
            if e.meta.upstream_span_id is None:
                calls.append((src.meta.service_name, e.meta.service_name, _link_type(src, e)))
    # Original SDK span pairs.
    span_service: dict[str, str] = {}
    span_events: dict[str, list[Event]] = {}
    for e in sorted(events, key=lambda ev: (ev.timestamp_ns, ev.id)):
        span = e.meta.distributed_span_id
        if span is not None:
            span_service.setdefault(span, e.meta.service_name)
            span_events.setdefault(span, []).append(e)
    pairs: set[tuple[str, str]] = set()
    for e in events:
        up, span = e.meta.upstream_span_id, e.meta.distributed_span_id
        if up is not None and span is not None and up != span:
            pairs.add((up, span))
    unresolved = 0
    for up, span in sorted(pairs):
        caller = span_service.get(up)
        if caller is None:
            unresolved += 1
            continue
        callee = span_service[span]
        if caller != callee:
            calls.append((caller, callee, _link_type(*span_events[span])))
    return calls, unresolved


def trace_dependencies(
    trace_id: int, events: Sequence[Event], clock_of: ClockOf, graph: HBGraph | None = None
) -> dict[str, Any]:
    """``GET /api/traces/:id/dependencies`` data (plus per-link-type counts)."""
    counts = Counter(e.meta.service_name for e in events)
    calls, unresolved = service_calls(events, clock_of, graph)
    per_pair: dict[tuple[str, str], Counter[str]] = {}
    for frm, to, link in calls:
        per_pair.setdefault((frm, to), Counter())[link] += 1
    deps = [
        {
            "from": frm,
            "to": to,
            "call_count": sum(links.values()),
            "link_types": dict(sorted(links.items())),
        }
        for (frm, to), links in sorted(per_pair.items())
    ]
    out: dict[str, Any] = {
        "trace_id": uuid_str(trace_id),
        "services": [{"name": name, "event_count": n} for name, n in sorted(counts.items())],
        "dependencies": deps,
    }
    if unresolved:
        out["unresolved_upstream_spans"] = unresolved
    return out


class ServiceGraph:
    """Cross-trace aggregate of per-trace dependencies (thread-safe; a trace can be replaced)."""

    def __init__(self) -> None:
        self._traces: dict[int, dict[str, Any]] = {}
        self._edges: Counter[tuple[str, str, str]] = Counter()
        self._pair_traces: Counter[tuple[str, str]] = Counter()
        self._service_events: Counter[str] = Counter()
        self._service_traces: Counter[str] = Counter()
        self._lock = threading.Lock()

    def set_trace(self, trace_id: int, deps: dict[str, Any]) -> None:
        """Record (or replace) one trace's ``trace_dependencies`` result."""
        with self._lock:
            old = self._traces.pop(trace_id, None)
            if old is not None:
                self._apply(old, -1)
            self._traces[trace_id] = deps
            self._apply(deps, +1)

    def remove_trace(self, trace_id: int) -> None:
        with self._lock:
            old = self._traces.pop(trace_id, None)
            if old is not None:
                self._apply(old, -1)

    def _apply(self, deps: dict[str, Any], sign: int) -> None:
        for svc in deps["services"]:
            self._service_events[svc["name"]] += sign * svc["event_count"]
            self._service_traces[svc["name"]] += sign
        for d in deps["dependencies"]:
            self._pair_traces[(d["from"], d["to"])] += sign
            for link, n in d["link_types"].items():
                self._edges[(d["from"], d["to"], link)] += sign * n
        for c in (self._edges, self._pair_traces, self._service_events, self._service_traces):
            for k in [k for k, v in c.items() if v <= 0]:
                del c[k]

    def edges(self) -> dict[str, Any]:
        """``/api/distributed/edges`` data: one row per (from, to, link type)."""
        with self._lock:
            rows = sorted(self._edges.items(), key=lambda kv: (-kv[1], kv[0]))
        return {
            "total_edges": len(rows),
            "edges": [
                {"from_service": f, "to_service": t, "link_type": link, "call_count": n}
                for (f, t, link), n in rows
            ],
        }

    def service_dependencies(self, service: str) -> dict[str, Any]:
        """``/api/services/:name/dependencies`` data. ``called_by`` rows name the caller in ``to``
        (the original's field name) and in ``from``."""
        with self._lock:
            totals: Counter[tuple[str, str]] = Counter()
            for (f, t, _link), n in self._edges.items():
                totals[(f, t)] += n
            calls_to: list[dict[str, Any]] = [
                {"to": t, "total_calls": n, "trace_count": self._pair_traces[(f, t)]}
                for (f, t), n in totals.items()
                if f == service
            ]
            called_by: list[dict[str, Any]] = [
                {"to": f, "from": f, "total_calls": n, "trace_count": self._pair_traces[(f, t)]}
                for (f, t), n in totals.items()
                if t == service
            ]
        calls_to.sort(key=lambda r: (-r["total_calls"], r["to"]))
        called_by.sort(key=lambda r: (-r["total_calls"], r["to"]))
        return {"service_name": service, "calls_to": calls_to, "called_by": called_by}

    def services(self) -> dict[str, Any]:
        """``/api/services`` data from every recorded trace (not only distributed ones)."""
        with self._lock:
            rows = [
                {"name": s, "event_count": n, "trace_count": self._service_traces[s]}
                for s, n in sorted(self._service_events.items())
            ]
        return {"total_services": len(rows), "services": rows}

    def top_calls(self, limit: int = 10) -> list[dict[str, Any]]:
        """Hotspots' ``top_service_calls``."""
        with self._lock:
            totals: Counter[tuple[str, str]] = Counter()
            for (f, t, _link), n in self._edges.items():
                totals[(f, t)] += n
        rows = sorted(totals.items(), key=lambda kv: (-kv[1], kv[0]))[:limit]
        return [{"from_service": f, "to_service": t, "call_count": n} for (f, t), n in rows]
