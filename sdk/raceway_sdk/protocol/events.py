"""The event model shared by the SDK, the plugin and the server.

One in-memory type (:class:`Event`) for every event, produced in-process or parsed from the wire.
The wire format is the original Raceway batch ``{"events": [...]}`` (13 ``kind`` variants,
``causality_vector`` as ``[[component, n], ...]``, RFC 3339 timestamps); our additions travel in
one extra top-level object ``"raceway"`` that the original server ignores. See docs/internals.md.
"""

from __future__ import annotations

import itertools
import os
import threading
from typing import Any

KINDS: tuple[str, ...] = (
    "FunctionCall",
    "AsyncSpawn",
    "AsyncAwait",
    "StateChange",
    "LockAcquire",
    "LockRelease",
    "MemoryFence",
    "HttpRequest",
    "HttpResponse",
    "DatabaseQuery",
    "DatabaseResult",
    "Error",
    "Custom",
)
ACCESS_TYPES: tuple[str, ...] = ("Read", "Write", "AtomicRead", "AtomicWrite", "AtomicRMW")
WRITE_TYPES = frozenset(("Write", "AtomicWrite", "AtomicRMW"))
ATOMIC_TYPES = frozenset(("AtomicRead", "AtomicWrite", "AtomicRMW"))


class Metadata:
    """Who emitted an event: the original ``metadata`` object."""

    __slots__ = (
        "thread_id",
        "process_id",
        "service_name",
        "environment",
        "tags",
        "duration_ns",
        "instance_id",
        "distributed_span_id",
        "upstream_span_id",
    )

    def __init__(
        self,
        thread_id: str,
        process_id: int,
        service_name: str,
        environment: str = "test",
        tags: dict[str, str] | None = None,
        duration_ns: int | None = None,
        instance_id: str | None = None,
        distributed_span_id: str | None = None,
        upstream_span_id: str | None = None,
    ) -> None:
        self.thread_id = thread_id
        self.process_id = process_id
        self.service_name = service_name
        self.environment = environment
        self.tags = tags if tags is not None else {}
        self.duration_ns = duration_ns
        self.instance_id = instance_id
        self.distributed_span_id = distributed_span_id
        self.upstream_span_id = upstream_span_id

    def __repr__(self) -> str:
        return f"Metadata(thread_id={self.thread_id!r}, service_name={self.service_name!r})"


class Event:
    """One event. Plain attributes, no validation here (parsing validates)."""

    __slots__ = (
        "id",
        "trace_id",
        "parent_id",
        "timestamp_ns",
        "kind",
        "data",
        "meta",
        "vc",
        "lock_set",
        "ext",
    )

    def __init__(
        self,
        id: int,
        trace_id: int,
        parent_id: int | None,
        timestamp_ns: int,
        kind: str,
        data: dict[str, Any],
        meta: Metadata,
        vc: dict[str, int],
        lock_set: list[str] | None = None,
        ext: dict[str, Any] | None = None,
    ) -> None:
        self.id = id
        self.trace_id = trace_id
        self.parent_id = parent_id
        self.timestamp_ns = timestamp_ns
        self.kind = kind
        self.data = data
        self.meta = meta
        self.vc = vc
        self.lock_set = lock_set if lock_set is not None else []
        self.ext = ext

    @property
    def task(self) -> str:
        """Logical task of the event: ours from ``ext``, else the original ``thread_id``."""
        ext = self.ext
        if ext is not None:
            task = ext.get("task")
            if task is not None:
                return str(task)
        return self.meta.thread_id

    def __repr__(self) -> str:
        return f"Event({self.kind}, task={self.task!r}, data={self.data!r})"


_PREFIX = int.from_bytes(os.urandom(8), "big")
_counter = itertools.count(1)
_pid_seen = os.getpid()
_prefix_lock = threading.Lock()


def new_event_id() -> int:
    """A cheap unique 128-bit id laid out as a valid UUIDv4 (random prefix + counter)."""
    global _PREFIX, _pid_seen
    if os.getpid() != _pid_seen:  # forked child: never share ids with the parent
        with _prefix_lock:
            if os.getpid() != _pid_seen:
                _PREFIX = int.from_bytes(os.urandom(8), "big")
                _pid_seen = os.getpid()
    n = next(_counter) & ((1 << 62) - 1)
    high = (_PREFIX & ~(0xF << 12)) | (0x4 << 12)  # version 4 nibble in time_hi
    return (high << 64) | (0b10 << 62) | n
