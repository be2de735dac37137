"""Result types of the race engine: tasks, accesses and race reports (see docs/internals.md)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from raceway_sdk.protocol.events import Event, uuid_str

WRITE_TYPES = frozenset(("Write", "AtomicWrite", "AtomicRMW"))


class TaskInfo:
    """One logical task of a trace: where and by whom it was started (from ``AsyncSpawn``)."""

    __slots__ = ("id", "name", "kind", "parent", "created_at", "stack", "origin_trace", "loop")

    def __init__(
        self,
        id: str,
        name: str,
        kind: str,
        parent: str | None = None,
        created_at: str | None = None,
        stack: Sequence[Any] | None = None,
        origin_trace: int | None = None,
        loop: str | None = None,
    ) -> None:
        self.id = id
        self.name = name
        self.kind = kind
        self.parent = parent
        self.created_at = created_at
        self.stack = stack
        self.origin_trace = origin_trace
        self.loop = loop

    def describe(self) -> str:
        """``task X (thread 'worker-1', started at app.py:12)``: how explanations name a task."""
        where = f"started at {self.created_at}" if self.created_at else "started outside the trace"
        what = self.kind if self.name == self.id else f"{self.kind} {self.name!r}"
        return f"task {self.id} ({what}, {where})"

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "kind": self.kind,
            "parent": self.parent,
            "created_at": self.created_at,
            "stack": self.stack,
            "origin_trace": None if self.origin_trace is None else uuid_str(self.origin_trace),
            "loop": self.loop,
        }

    def __repr__(self) -> str:
        return f"TaskInfo({self.id!r}, {self.kind} {self.name!r})"


class Access:
    """One side of a race: the access event plus the task that made it."""

    __slots__ = (
        "event_id",
        "task",
        "task_name",
        "task_kind",
        "task_created_at",
        "task_stack",
        "origin_trace",
        "access_type",
        "location",
        "func",
        "stack",
        "value",
        "timestamp_ns",
        "vc",
        "seg",
        "loop",
    )

    def __init__(self, event: Event, task: TaskInfo, vc: dict[str, int]) -> None:
        data = event.data
        ext = event.ext or {}
        self.event_id: int = event.id
        self.task = task.id
        self.task_name = task.name
        self.task_kind = task.kind
        self.task_created_at = task.created_at
        self.task_stack = task.stack
        self.origin_trace = task.origin_trace
        self.access_type: str = data.get("access_type", "Write")
        self.location: str = data.get("location", "<unknown>:0")
        self.func: str | None = ext.get("func")
        self.stack: Sequence[Any] | None = ext.get("stack")
        self.value: Any = ext["value"] if "value" in ext else data.get("new_value")
        self.timestamp_ns: int = event.timestamp_ns
        self.vc = vc
        self.seg: int | None = ext.get("seg")
        self.loop: str | None = ext.get("loop")

    @property
    def is_write(self) -> bool:
        return self.access_type in WRITE_TYPES

    def to_dict(self) -> dict[str, Any]:
        return {
            "event_id": uuid_str(self.event_id),
            "task": self.task,
            "task_name": self.task_name,
            "task_kind": self.task_kind,
            "task_created_at": self.task_created_at,
            "task_stack": self.task_stack,
            "origin_trace": None if self.origin_trace is None else uuid_str(self.origin_trace),
            "access_type": self.access_type,
            "location": self.location,
            "func": self.func,
            "stack": self.stack,
            "value": self.value,
            "timestamp_ns": self.timestamp_ns,
            "vc": dict(self.vc),
            "seg": self.seg,
            "loop": self.loop,
        }

    def __repr__(self) -> str:
        return f"Access({self.access_type} at {self.location} by {self.task})"


class Race:
    """One reported race: one per distinct (sorted) pair of code locations per trace."""

    __slots__ = (
        "id",
        "trace_id",
        "severity",
        "variable",
        "loc",
        "first",
        "second",
        "stale_read",
        "explanation",
        "key",
    )

    def __init__(
        self,
        id: int,
        trace_id: int,
        severity: str,
        variable: str,
        loc: str,
        first: Access,
        second: Access,
        explanation: str,
        key: tuple[str, str],
        stale_read: Access | None = None,
    ) -> None:
        self.id = id
        self.trace_id = trace_id
        self.severity = severity
        self.variable = variable
        self.loc = loc
        self.first = first
        self.second = second
        self.stale_read = stale_read
        self.explanation = explanation
        self.key = key

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "trace_id": uuid_str(self.trace_id),
            "severity": self.severity,
            "variable": self.variable,
            "loc": self.loc,
            "first": self.first.to_dict(),
            "second": self.second.to_dict(),
            "stale_read": None if self.stale_read is None else self.stale_read.to_dict(),
            "explanation": self.explanation,
            "key": list(self.key),
        }

    def __repr__(self) -> str:
        return (
            f"Race#{self.id}({self.severity} on {self.variable!r}: {self.key[0]} <-> {self.key[1]})"
        )
