"""One trace of a session as the compact view document the report's JS draws from.

Wire events are ~600 bytes each; a 100k-event session would be a 60 MB page. The report embeds
instead, per trace, a string table and one short row per event::

    [id, dt_ns, task, kind, name, op, loc, value, dur_ns, vc, child, service, lock]

(``task``/``kind``/``name``/``op``/``loc``/``child``/``service``/``lock`` index ``strings``,
0 = none; ``vc`` indexes ``vcs``, each a flat ``[task_string, count, ...]``; events of one task
epoch share one clock, so clocks are stored once). The JS decoder (``Raceway.fromCompact``) yields
the same records as its wire decoder (``Raceway.fromWire``, used by the web UI), so every view has
one code path. The analyses (critical path, audit trails, dependencies, anomalies) run here with
the server's own functions and refer to events by index.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import orjson
from raceway_sdk.protocol.events import Event, format_timestamp, uuid_str

from raceway_server.engine.anomalies import Baselines, detect_anomalies
from raceway_server.engine.audit import audit_trails
from raceway_server.engine.core import Engine
from raceway_server.engine.critical_path import HBGraph, critical_path, duration_ns
from raceway_server.engine.dependencies import trace_dependencies

from .session import ParsedTrace

MAX_VALUE_CHARS = 200
ClockOf = Callable[[Event], "tuple[str, dict[str, int]]"]


def bounded(value: Any) -> Any:
    """A value small enough to embed: scalars as they are, long or nested ones as short text."""
    if value is None or isinstance(value, (bool, int, float)):
        return value
    if isinstance(value, str):
        return value if len(value) <= MAX_VALUE_CHARS else value[:MAX_VALUE_CHARS] + "…"
    text = orjson.dumps(value, default=repr).decode()
    return text if len(text) <= MAX_VALUE_CHARS else text[:MAX_VALUE_CHARS] + "…"


def fields(e: Event) -> tuple[str, str, str, Any, str, str]:
    """``(name, op, loc, value, child, lock)`` of an event, per kind (mirrors ``fromWire``)."""
    d = e.data
    ext = e.ext or {}
    kind = e.kind
    child = str(ext.get("child") or "")
    loc = str(d.get("location") or "")
    if kind == "StateChange":
        value = ext["value"] if "value" in ext else d.get("new_value")
        return str(d.get("variable", "")), str(d.get("access_type", "")), loc, value, "", ""
    if kind in ("LockAcquire", "LockRelease"):
        op = str(ext.get("sync") or ("acquire" if kind == "LockAcquire" else "release"))
        return str(d.get("lock_type", "")), op, loc, None, "", str(d.get("lock_id", ""))
    if kind == "AsyncSpawn":
        name = ext.get("child_name") or d.get("task_id", "")
        return str(name), str(ext.get("child_kind") or "spawn"), loc, None, child, ""
    if kind == "AsyncAwait":
        return str(ext.get("child") or d.get("future_id", "")), "join", str(d.get("awaited_at") or ""), None, child, ""
    if kind == "FunctionCall":
        file = d.get("file")
        where = f"{file}:{d.get('line', 0)}" if file else ""
        return str(d.get("function_name", "")), str(d.get("module", "")), where, None, "", ""
    if kind == "HttpRequest":
        return str(d.get("url", "")), str(d.get("method", "")), loc, None, "", ""
    if kind == "HttpResponse":
        return str(d.get("status", "")), "", loc, None, "", ""
    if kind == "DatabaseQuery":
        return str(d.get("query", "")), str(d.get("database", "")), loc, None, "", ""
    if kind == "DatabaseResult":
        return str(d.get("rows_affected", "")), "", loc, None, "", ""
    if kind == "Error":
        return str(d.get("error_type", "")), str(d.get("message", "")), loc, None, "", ""
    if kind == "Custom":
        return str(d.get("name", "")), "", loc, None, "", ""
    if kind == "MemoryFence":
        return str(d.get("ordering", "")), "", loc, None, "", ""
    return "", "", loc, None, "", ""


class _Strings:
    def __init__(self) -> None:
        self.items: list[str] = [""]
        self.index: dict[str, int] = {"": 0}

    def __call__(self, s: str) -> int:
        n = self.index.get(s)
        if n is None:
            n = self.index[s] = len(self.items)
            self.items.append(s)
        return n


def clock_function(events: Sequence[Event]) -> ClockOf:
    """The engine's effective clocks (original-SDK events get the engine's reconstruction)."""
    if all(
        e.ext is not None and e.ext.get("trusted_vc") is True and type(e.ext.get("task")) is str
        for e in events
    ):
        return lambda e: (e.ext["task"], e.vc)  # type: ignore[index]  # our SDK: full clocks
    engine = Engine()
    engine.add_batch(events)

    def clock_of(e: Event) -> tuple[str, dict[str, int]]:
        try:
            return engine.clock_of(e)
        except KeyError:  # not accepted by the engine (e.g. a duplicate id): its own stamp
            return e.task, e.vc

    return clock_of


def encode_trace(
    parsed: ParsedTrace, races: Sequence[dict[str, Any]], baselines: Baselines
) -> dict[str, Any]:
    """The compact view document of one trace (see the module docstring)."""
    events = parsed.events
    clock_of = clock_function(events)
    clocks = [clock_of(e) for e in events]
    strings = _Strings()
    vc_index: dict[int, int] = {}
    vc_content: dict[tuple[tuple[str, int], ...], int] = {}
    vcs: list[list[Any]] = []
    durs = [duration_ns(e) for e in events]
    t0 = min((e.timestamp_ns - d for e, d in zip(events, durs, strict=True)), default=0)
    rows: list[list[Any]] = []
    index_of: dict[str, int] = {}
    for i, (e, (task, vc), dur) in enumerate(zip(events, clocks, durs, strict=True)):
        n = vc_index.get(id(vc))
        if n is None:
            key = tuple(sorted(vc.items()))
            n = vc_content.get(key)
            if n is None:
                n = vc_content[key] = len(vcs)
                flat: list[Any] = []
                for comp, count in key:
                    flat += [strings(comp), count]
                vcs.append(flat)
            vc_index[id(vc)] = n
        name, op, loc, value, child, lock = fields(e)
        eid = uuid_str(e.id)
        index_of[eid] = i
        rows.append(
            [
                eid,
                e.timestamp_ns - t0,
                strings(task),
                strings(e.kind),
                strings(name),
                strings(op),
                strings(loc),
                bounded(value),
                dur,
                n,
                strings(child),
                strings(e.meta.service_name),
                strings(lock),
            ]
        )
    doc: dict[str, Any] = {
        "trace_id": parsed.trace_id,
        "test": parsed.test,
        "t0": format_timestamp(t0) if events else None,
        "t0_ns": str(t0),
        "strings": strings.items,
        "vcs": vcs,
        "events": rows,
        "tasks": parsed.tasks,
        "bad_events": parsed.bad,
        "first_error": parsed.first_error,
        "races": [r.get("id") for r in races],
    }
    if not events:
        doc.update(critical_path=None, dependencies=None, anomalies=[], audit={})
        return doc
    graph = HBGraph(events, clock_of)
    trace_int = events[0].trace_id
    cp = critical_path(trace_int, events, clock_of, graph)
    path = [[index_of[p["id"]], p["duration_ms"]] for p in cp.pop("path")]
    cp["path"] = path
    doc["critical_path"] = cp
    doc["dependencies"] = trace_dependencies(trace_int, events, clock_of, graph)
    anomalies = detect_anomalies(events, baselines)
    for a in anomalies:
        a["i"] = index_of.get(a["event_id"])
    doc["anomalies"] = anomalies
    doc["audit"] = {
        var: [
            [index_of[a["event_id"]], 1 if a["has_causal_link_to_previous"] else 0, a["race_ids"], bounded(a["old_value"])]
            for a in trail
        ]
        for var, trail in audit_trails(events, clock_of, races).items()
    }
    return doc


__all__ = ["bounded", "clock_function", "encode_trace", "fields"]
