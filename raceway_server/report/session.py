"""Reading a ``raceway-session`` v1 document (docs/internals.md "Session JSON") for rendering.

The report must not invent or silently drop anything: structural problems raise
:class:`ReportError` naming the field; events that fail to parse are counted per trace and shown
in the report (the first message is kept) instead of aborting the whole render.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
from raceway_sdk.protocol.events import Event, EventError, parse_event

FORMAT = "raceway-session"
VERSIONS = (1,)


class ReportError(ValueError):
    """The input is not a session document the renderer understands (message names the field)."""


def load_session(path: str | Path) -> dict[str, Any]:
    """Read and validate a session JSON file."""
    p = Path(path)
    try:
        raw = p.read_bytes()
    except OSError as exc:
        raise ReportError(f"cannot read session file {p}: {exc.strerror or exc}") from None
    try:
        doc = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise ReportError(f"{p} is not JSON: {exc}") from None
    check_session(doc)
    return doc  # type: ignore[no-any-return]


def _expect(cond: bool, message: str) -> None:
    if not cond:
        raise ReportError(message)


def check_session(doc: Any) -> None:
    """Validate the parts the renderer reads; unknown keys are ignored (additive format)."""
    _expect(isinstance(doc, dict), f"session must be a JSON object, got {type(doc).__name__}")
    _expect(
        doc.get("format") == FORMAT,
        f"session.format must be {FORMAT!r}, got {doc.get('format')!r}",
    )
    _expect(
        doc.get("version") in VERSIONS,
        f"session.version {doc.get('version')!r} is not supported (expected one of {VERSIONS})",
    )
    for key, kind in (("summary", dict), ("tests", list), ("races", list), ("traces", dict)):
        value = doc.get(key, kind())
        _expect(
            isinstance(value, kind),
            f"session.{key} must be a JSON {'object' if kind is dict else 'array'}, "
            f"got {type(value).__name__}",
        )
    for i, race in enumerate(doc.get("races", [])):
        _expect(isinstance(race, dict), f"session.races[{i}] must be an object")
        for side in ("first", "second"):
            _expect(
                isinstance(race.get(side), dict),
                f"session.races[{i}].{side} must be an object (an access)",
            )
        _expect(isinstance(race.get("id"), (int, str)), f"session.races[{i}].id is missing")
    for i, test in enumerate(doc.get("tests", [])):
        _expect(isinstance(test, dict), f"session.tests[{i}] must be an object")
    for tid, trace in doc.get("traces", {}).items():
        _expect(isinstance(trace, dict), f"session.traces[{tid!r}] must be an object")
        _expect(
            isinstance(trace.get("events", []), list),
            f"session.traces[{tid!r}].events must be an array",
        )


class ParsedTrace:
    """One trace's events parsed back into :class:`Event`; bad events counted, not lost."""

    __slots__ = ("trace_id", "test", "events", "tasks", "bad", "first_error")

    def __init__(self, trace_id: str, doc: dict[str, Any]) -> None:
        self.trace_id = trace_id
        self.test = str(doc.get("test", ""))
        tasks = doc.get("tasks")
        self.tasks: dict[str, Any] = tasks if isinstance(tasks, dict) else {}
        self.events: list[Event] = []
        self.bad = 0
        self.first_error: str | None = None
        for i, wire in enumerate(doc.get("events", [])):
            try:
                self.events.append(parse_event(wire, i))
            except EventError as exc:
                self.bad += 1
                if self.first_error is None:
                    self.first_error = str(exc)


__all__ = ["FORMAT", "ParsedTrace", "ReportError", "check_session", "load_session"]
