"""Wire events for the TUI tests: our SDK's format (full vector clocks over task ids).

Clocks follow the rules of docs/internals.md so the real engine derives exactly the intended
happens-before order: a two-service HTTP call (one dependency edge), a write-write race between
two request handlers, and timed operations for the anomaly baselines.
"""

from __future__ import annotations

import itertools
import time
import uuid
from typing import Any

from raceway_sdk.protocol.events import Event, Metadata, dumps_batch, new_event_id

_n = itertools.count(1)


class Trace:
    def __init__(self, service: str = "frontend") -> None:
        self.trace_id = uuid.uuid4().int
        self.tag = f"{next(_n)}x{self.trace_id % 10_000}"
        self.events: list[Event] = []
        self.ts = time.time_ns()
        self.service = service

    @property
    def id(self) -> str:
        return str(uuid.UUID(int=self.trace_id))

    def task(self, name: str) -> str:
        return f"{self.tag}/{name}"

    def emit(self, task: str, vc: dict[str, int], kind: str, data: dict[str, Any],
             service: str | None = None, duration_ns: int | None = None, **ext: Any) -> Event:
        self.ts += 1_000_000
        e = Event(
            id=new_event_id(), trace_id=self.trace_id, parent_id=None, timestamp_ns=self.ts,
            kind=kind, data=data,
            meta=Metadata(thread_id=task, process_id=1, service_name=service or self.service,
                          duration_ns=duration_ns),
            vc=dict(vc), ext={"task": task, "trusted_vc": True, **ext},
        )
        self.events.append(e)
        return e

    def write(self, task: str, vc: dict[str, int], variable: str, line: int,
              service: str | None = None, access: str = "Write", value: Any = 1) -> Event:
        return self.emit(task, vc, "StateChange",
                         {"variable": variable, "old_value": None, "new_value": value,
                          "location": f"shop/orders.py:{line}", "access_type": access},
                         service=service, loc=variable, func="place_order",
                         stack=[["shop/orders.py", line, "place_order"], ["shop/app.py", 7, "handle"]])

    def call(self, task: str, vc: dict[str, int], name: str, ms: float, service: str) -> Event:
        return self.emit(task, vc, "FunctionCall",
                         {"function_name": name, "module": "shop", "args": None,
                          "file": "shop/db.py", "line": 3},
                         service=service, duration_ns=int(ms * 1e6))


def shop_trace(query_ms: float = 1.0) -> Trace:
    """frontend calls backend over HTTP (one dependency); two backend handlers race on
    ``orders`` (write-write); backend runs a timed ``query``."""
    t = Trace()
    fe, h1, h2 = t.task("frontend"), t.task("handler-1"), t.task("handler-2")
    t.emit(fe, {fe: 1}, "HttpRequest", {"method": "POST", "url": "http://backend/orders",
                                        "headers": {}, "body": None})
    t.write(h1, {fe: 1, h1: 1}, "orders", 20, service="backend")
    t.call(h1, {fe: 1, h1: 1}, "query", query_ms, service="backend")
    t.write(h2, {h2: 1}, "orders", 31, service="backend")
    t.emit(fe, {fe: 2, h1: 1}, "HttpResponse", {"status": 201, "headers": {}, "body": None,
                                                "duration_ms": 3})
    return t


def quiet_trace(query_ms: float = 1.0) -> Trace:
    """No race: one backend task, one timed query (feeds the baselines)."""
    t = Trace("backend")
    w = t.task("worker")
    t.write(w, {w: 1}, "stock", 5)
    t.call(w, {w: 1}, "query", query_ms, service="backend")
    return t


def body(traces: list[Trace]) -> bytes:
    return dumps_batch([e for t in traces for e in t.events])
