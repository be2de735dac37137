"""Builders for wire events the tests post (original format plus our extensions)."""

from __future__ import annotations

import time
import uuid
from typing import Any

from raceway_sdk.protocol.events import Event, Metadata, dumps_batch, event_to_wire, new_event_id


def access(
    trace: int,
    task: str,
    vc: dict[str, int],
    variable: str = "counter",
    access_type: str = "Write",
    line: int = 10,
    service: str = "svc",
    ts: int | None = None,
    duration_ns: int | None = None,
) -> Event:
    """A StateChange from our SDK: full vector clock over task ids (``trusted_vc``)."""
    return Event(
        id=new_event_id(),
        trace_id=trace,
        parent_id=None,
        timestamp_ns=ts if ts is not None else time.time_ns(),
        kind="StateChange",
        data={
            "variable": variable,
            "old_value": None,
            "new_value": 1,
            "location": f"app.py:{line}",
            "access_type": access_type,
        },
        meta=Metadata(thread_id=task, process_id=1, service_name=service, duration_ns=duration_ns),
        vc=vc,
        ext={"task": task, "trusted_vc": True, "loc": variable, "func": "work"},
    )


def racing_trace(service: str = "svc", variable: str = "counter") -> tuple[int, list[Event]]:
    """Two tasks writing one variable with no happens-before edge: one write-write race."""
    trace = uuid.uuid4().int
    now = time.time_ns()
    return trace, [
        access(trace, "t/1", {"t/1": 1}, variable, "Write", 10, service, now),
        access(trace, "t/2", {"t/2": 1}, variable, "Write", 20, service, now + 1000),
    ]


def ordered_trace(service: str = "svc") -> tuple[int, list[Event]]:
    """The second write happened after the first (its clock includes it): no race."""
    trace = uuid.uuid4().int
    now = time.time_ns()
    return trace, [
        access(trace, "t/1", {"t/1": 1}, "counter", "Write", 10, service, now),
        access(trace, "t/2", {"t/1": 1, "t/2": 1}, "counter", "Write", 20, service, now + 1000),
    ]


def body(events: list[Event]) -> bytes:
    return dumps_batch(events)


def wire(events: list[Event]) -> list[dict[str, Any]]:
    return [event_to_wire(e) for e in events]


def bulk(n: int, traces: int = 10, service: str = "bulk") -> list[Event]:
    """``n`` accesses spread over ``traces`` traces, ordered per task (no races)."""
    ids = [uuid.uuid4().int for _ in range(traces)]
    now = time.time_ns()
    out = []
    for i in range(n):
        trace = ids[i % traces]
        out.append(
            access(trace, f"{trace:x}/main", {f"{trace:x}/main": i + 1}, f"v{i % 7}", "Write", 5, service, now + i)
        )
    return out
