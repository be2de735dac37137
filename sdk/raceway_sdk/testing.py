"""Helpers for testing code with Raceway, without the engine or the pytest plugin.

>>> from raceway_sdk.testing import recording
>>> with recording() as sink:          # doctest: +SKIP
...     run_my_threads()
>>> sink.accesses("Account.balance")   # doctest: +SKIP

:class:`CollectingSink` keeps every event in memory; :func:`recording` installs the
instrumentation with such a sink for the duration of a ``with`` block and restores everything
(patches, previous sink, previous trace) afterwards.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from raceway_sdk import _recorder
from raceway_sdk.protocol.clock import happened_before
from raceway_sdk.protocol.events import Event

__all__ = ["CollectingSink", "recording", "ordered", "concurrent"]


class CollectingSink:
    """A sink that keeps the events it receives, in arrival order (thread-safe: list.append)."""

    def __init__(self) -> None:
        self.events: list[Event] = []

    def emit(self, event: Event) -> None:
        """Keep ``event``."""
        self.events.append(event)

    def clear(self) -> None:
        """Forget everything collected so far."""
        self.events.clear()

    def of_kind(self, kind: str) -> list[Event]:
        """Events of one kind (``"StateChange"``, ``"AsyncSpawn"``, ...)."""
        return [e for e in self.events if e.kind == kind]

    def accesses(self, variable: str | None = None, *, loc: str | None = None) -> list[Event]:
        """``StateChange`` events, optionally only those of one variable name or location."""
        out = []
        for e in self.events:
            if e.kind != "StateChange":
                continue
            if variable is not None and e.data.get("variable") != variable:
                continue
            if loc is not None and (e.ext or {}).get("loc") != loc:
                continue
            out.append(e)
        return out

    def tasks(self) -> dict[str, dict[str, Any]]:
        """Task id -> ``{"name", "kind", "parent"}`` from the ``AsyncSpawn`` events seen."""
        out: dict[str, dict[str, Any]] = {}
        for e in self.events:
            if e.kind == "AsyncSpawn" and e.ext:
                out[e.ext["child"]] = {
                    "name": e.ext.get("child_name"),
                    "kind": e.ext.get("child_kind"),
                    "parent": e.ext.get("task"),
                }
        return out


def ordered(a: Event, b: Event) -> bool:
    """``a`` happened before ``b`` by their vector clocks."""
    return happened_before(a.task, a.vc, b.vc)


def concurrent(a: Event, b: Event) -> bool:
    """Neither event happened before the other."""
    return not ordered(a, b) and not ordered(b, a)


@contextmanager
def recording(
    config: Any = None, *, instrument: bool = True, trace_id: int | None = None
) -> Iterator[CollectingSink]:
    """Record into a fresh :class:`CollectingSink` inside the block.

    Args:
        config: passed to :func:`raceway_sdk.instrument.install`.
        instrument: also patch threading/queue/futures (and asyncio, anyio, the import hook
            when available); False only routes the recorder's events to the sink.
        trace_id: the trace to stamp events with (default: a fresh one).
    """
    from raceway_sdk import instrument as _instrument

    sink = CollectingSink()
    prev_sink = _recorder.set_sink(sink)
    prev_trace = _recorder.current_trace()
    _recorder.set_trace(trace_id if trace_id is not None else uuid.uuid4().int)
    installed_here = False
    try:
        if instrument and not _instrument.is_installed():
            _instrument.install(config)
            installed_here = True
        yield sink
    finally:
        if installed_here:
            _instrument.uninstall()
        _recorder.set_sink(prev_sink)
        _recorder.set_trace(prev_trace)
