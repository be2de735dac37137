"""In-memory storage (the default): deduplication only; events live in the service's view."""

from __future__ import annotations

import threading
from collections.abc import Iterator

from raceway_sdk.protocol.events import Event

from raceway_server.storage.base import AppendResult, Deletion


class MemoryStorage:
    """A log that never leaves the process. Nothing persists across restarts."""

    name = "memory"

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._ids: set[int] = set()
        self._by_trace: dict[int, list[int]] = {}

    def open(self) -> None:
        """Nothing to connect to."""

    def close(self) -> None:
        """Nothing to flush: every append is applied before it is acknowledged."""

    def load(self) -> Iterator[list[Event]]:
        return iter(())

    def append(self, events: list[Event]) -> AppendResult:
        new: list[Event] = []
        with self._lock:
            ids = self._ids
            for event in events:
                if event.id in ids:
                    continue
                ids.add(event.id)
                self._by_trace.setdefault(event.trace_id, []).append(event.id)
                new.append(event)
        return AppendResult(foreign=[], new=new, duplicates=len(events) - len(new))

    def catch_up(self) -> list[Event | Deletion]:
        return []

    def delete_traces(self, trace_ids: list[int]) -> list[Event | Deletion]:
        with self._lock:
            for trace_id in trace_ids:
                for event_id in self._by_trace.pop(trace_id, ()):
                    self._ids.discard(event_id)
        return []

    def healthy(self) -> bool:
        return True
