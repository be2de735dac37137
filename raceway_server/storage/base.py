"""The storage contract: a durable, deduplicating, totally ordered event log.

Storage does not answer API queries itself. Every process keeps an in-memory view (the engine
plus :class:`~raceway_server.storage.catalog.Catalog`) that it feeds from the log in log order,
so two processes sharing one PostgreSQL database analyse the same events in the same order and
give the same answers. The log's operations are:

* :meth:`Storage.append` commits a batch (duplicates by event id skipped) and returns, in log
  order, everything other writers committed since this process last looked, then the new events.
* :meth:`Storage.catch_up` returns what other writers committed since (for reads).
* :meth:`Storage.load` streams the whole log at start-up (the engine is rebuilt from it).
* :meth:`Storage.delete_traces` removes traces (retention) and leaves tombstones so that other
  processes drop them too.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from typing import Protocol

from raceway_sdk.protocol.events import Event


class StorageUnavailable(RuntimeError):
    """The backend cannot be reached right now; the caller should retry (HTTP 503)."""


@dataclasses.dataclass
class Deletion:
    """Traces removed from the log (retention); applied after the events before it."""

    trace_ids: list[int]


@dataclasses.dataclass
class AppendResult:
    """Outcome of one committed append."""

    foreign: list[Event | Deletion]  # other writers' operations, in log order, before ours
    new: list[Event]  # our events that were not stored before, in log order
    duplicates: int  # events skipped because their id was already stored


class Storage(Protocol):
    """What the service needs from a backend (memory, PostgreSQL)."""

    name: str

    def open(self) -> None:
        """Connect and migrate; raises :class:`StorageUnavailable` if unreachable."""

    def close(self) -> None:
        """Flush and release connections (graceful shutdown)."""

    def load(self) -> Iterator[list[Event]]:
        """The whole log in order, in chunks, and position this reader at its end."""

    def append(self, events: list[Event]) -> AppendResult:
        """Commit ``events`` (deduplicated by id); returns only once they are durable."""

    def catch_up(self) -> list[Event | Deletion]:
        """Operations other writers committed since this process last looked."""

    def delete_traces(self, trace_ids: list[int]) -> list[Event | Deletion]:
        """Remove traces; returns foreign operations committed before the deletion."""

    def healthy(self) -> bool:
        """Cheap liveness probe."""
