"""Text helpers shared by the views and the plain-text summary: palette, tasks, event lines.

Colours come from a :class:`Palette` built from the app's current theme (Textual picks error /
warning / success colours that read well on that theme's background, dark or light); the
plain-text summary uses :data:`PLAIN`, which has no styles at all.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from raceway_sdk.protocol.events import Event, format_timestamp, uuid_str
from rich.text import Text

from .source import TraceDetail


@dataclass(frozen=True)
class Palette:
    """Rich style strings by meaning (never by colour name)."""

    error: str = ""
    warning: str = ""
    success: str = ""
    accent: str = ""
    muted: str = ""
    strong: str = ""


PLAIN = Palette()


MIN_CONTRAST = 4.5  # WCAG AA for normal text


def _luminance(color: Any) -> float:
    def channel(v: int) -> float:
        c = v / 255
        return c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4

    r, g, b = color.rgb
    return 0.2126 * channel(r) + 0.7152 * channel(g) + 0.0722 * channel(b)


def contrast(a: Any, b: Any) -> float:
    """WCAG contrast ratio of two :class:`textual.color.Color`\\ s (1 to 21)."""
    la, lb = sorted((_luminance(a), _luminance(b)), reverse=True)
    return (la + 0.05) / (lb + 0.05)


def readable(color: str | None, background: Any, dark: bool, fallback: str) -> str:
    """``color`` darkened (light theme) or lightened (dark theme) until it reaches
    :data:`MIN_CONTRAST` on ``background``: theme colours such as amber warnings are made for
    dark backgrounds and wash out on light ones."""
    from textual.color import Color

    c = Color.parse(color or fallback)
    for _ in range(40):
        if contrast(c, background) >= MIN_CONTRAST:
            break
        c = c.lighten(0.025) if dark else c.darken(0.025)
    return c.hex6


def palette_from_theme(theme: Any) -> Palette:
    """A palette from a Textual theme (``App.current_theme``), every colour readable on the
    theme's background (see :func:`readable`)."""
    from textual.color import Color

    dark = bool(theme.dark)
    background = Color.parse(theme.background or ("#121212" if dark else "#efefef"))

    def fit(color: str | None, fallback: str) -> str:
        return readable(color, background, dark, fallback)

    return Palette(
        error=f"bold {fit(theme.error, '#ba3c5b')}",
        warning=fit(theme.warning, "#ffa62b"),
        success=fit(theme.success, "#4ebf71"),
        accent=f"bold {fit(theme.accent if dark else theme.primary, '#0178d4')}",
        muted="dim",
        strong="bold",
    )


SEVERITY_RANK = {"write-write": 0, "lost-update": 0, "read-write": 1}


def severity_style(severity: str, pal: Palette) -> str:
    """write-write and lost updates are errors, read-write a warning (the server's mapping)."""
    rank = SEVERITY_RANK.get(str(severity), 1)
    return pal.error if rank == 0 else pal.warning


def anomaly_style(severity: str, pal: Palette) -> str:
    return {"Critical": pal.error, "Warning": pal.warning}.get(str(severity), pal.muted)


def line(*parts: str | tuple[str, str] | Text) -> Text:
    """``Text`` from plain strings and ``(text, style)`` pairs (never parsed as markup)."""
    out = Text()
    for part in parts:
        if isinstance(part, Text):
            out.append_text(part)
        elif isinstance(part, tuple):
            out.append(part[0], style=part[1] or None)
        else:
            out.append(part)
    return out


def join_lines(lines: Iterable[Text | str]) -> Text:
    out = Text()
    for n, item in enumerate(lines):
        if n:
            out.append("\n")
        out.append_text(item if isinstance(item, Text) else Text(item))
    return out


# --- tasks and events -----------------------------------------------------------------------


def event_task(e: Event) -> str:
    """The logical task of an event: ours (``ext.task``) or the original SDKs' thread id."""
    ext = e.ext
    if ext is not None:
        task = ext.get("task")
        if isinstance(task, str):
            return task
    return e.meta.thread_id


def task_name(detail: TraceDetail, task: str) -> str:
    info = detail.tasks.get(task)
    name = info.get("name") if isinstance(info, dict) else None
    return str(name) if name and name != task else task


def task_label(detail: TraceDetail, task: str) -> str:
    """``worker-1 (p1/3)``, or just the id when the task has no name of its own."""
    name = task_name(detail, task)
    return name if name == task else f"{name} ({task})"


def short_value(value: Any, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def clock_text(vc: dict[str, int] | None) -> str:
    if not vc:
        return "{}"
    return "{" + ", ".join(f"{k}: {v}" for k, v in sorted(vc.items())) + "}"


def event_summary(e: Event, detail: TraceDetail | None = None) -> str:
    """One line that says what the event did, per kind (task names from ``detail``)."""
    d = e.data
    ext = e.ext or {}
    kind = e.kind
    if kind == "StateChange":
        value = ext.get("value", d.get("new_value"))
        shown = "" if value is None else f" = {short_value(value, 40)}"
        return f"{d.get('access_type', '?')} {d.get('variable', '?')}{shown} @ {d.get('location', '?')}"
    if kind in ("LockAcquire", "LockRelease"):
        verb = ext.get("sync") or ("acquire" if kind == "LockAcquire" else "release")
        return f"{verb} {d.get('lock_type', '')} {d.get('lock_id', '')}".strip()
    named = ext.get("child_name") or (
        task_name(detail, str(ext["child"])) if detail is not None and ext.get("child") else None)
    if kind == "AsyncSpawn":
        child = named or ext.get("child") or d.get("task_id", "")
        what = ext.get("child_kind") or "task"
        return f"start {what} {child}"
    if kind == "AsyncAwait":
        child = named or ext.get("child") or d.get("future_id", "")
        return f"join {child}" + (f" @ {d['awaited_at']}" if d.get("awaited_at") else "")
    if kind == "FunctionCall":
        return f"{d.get('function_name', '?')}() @ {d.get('file', '?')}:{d.get('line', '?')}"
    if kind == "HttpRequest":
        return f"{d.get('method', '')} {d.get('url', '')}".strip()
    if kind == "HttpResponse":
        return f"HTTP {d.get('status', '?')} in {d.get('duration_ms', '?')} ms"
    if kind == "DatabaseQuery":
        return f"{d.get('database', '')}: {short_value(d.get('query', ''), 50)}"
    if kind == "DatabaseResult":
        return f"{d.get('rows_affected', '?')} rows"
    if kind == "Error":
        return f"{d.get('error_type', 'Error')}: {d.get('message', '')}"
    if kind == "Custom":
        return str(d.get("name", "custom"))
    if kind == "MemoryFence":
        return str(d.get("ordering", "fence"))
    return kind


def event_time(e: Event, t0: int) -> str:
    """Offset from the trace start, in ms (wall-clock times are in the detail pane)."""
    return f"+{(e.timestamp_ns - t0) / 1e6:,.3f} ms"


def event_detail(e: Event, detail: TraceDetail, pal: Palette) -> Text:
    """Everything about one event: identity, metadata, payload, clock, extensions."""
    m = e.meta
    rows: list[Text | str] = [
        line((f"{e.kind}", pal.accent), "  ", event_summary(e, detail)),
        f"id          {uuid_str(e.id)}",
        f"time        {format_timestamp(e.timestamp_ns)}",
        f"task        {task_label(detail, event_task(e))}",
        f"service     {m.service_name} (pid {m.process_id}, {m.environment})",
    ]
    if e.parent_id is not None:
        rows.append(f"parent      {uuid_str(e.parent_id)}")
    if m.duration_ns is not None:
        rows.append(f"duration    {m.duration_ns / 1e6:,.3f} ms")
    rows.append(line(("payload", pal.strong)))
    for key, value in e.data.items():
        rows.append(f"  {key}: {short_value(value, 200)}")
    rows.append(f"clock       {clock_text(e.vc)}")
    if e.lock_set:
        rows.append(f"locks held  {', '.join(e.lock_set)}")
    ext = e.ext or {}
    stack = ext.get("stack")
    for key in sorted(k for k in ext if k not in ("stack", "task")):
        rows.append(f"  raceway.{key}: {short_value(ext[key], 120)}")
    if isinstance(stack, (list, tuple)) and stack:
        rows.append(line(("stack (innermost first)", pal.strong)))
        rows.extend(stack_lines(stack, pal))
    if m.tags:
        rows.append("tags        " + ", ".join(f"{k}={v}" for k, v in sorted(m.tags.items())))
    return join_lines(rows)


def stack_lines(stack: Sequence[Any] | None, pal: Palette, indent: str = "  ") -> list[Text]:
    """``#0 func file:line`` per frame; frames of the stdlib / site-packages are muted."""
    out: list[Text] = []
    for n, frame in enumerate(stack or []):
        if not isinstance(frame, (list, tuple)) or len(frame) < 3:
            out.append(Text(f"{indent}#{n} {frame!r}"))
            continue
        file, lineno, func = str(frame[0]), frame[1], str(frame[2])
        library = "site-packages" in file or "/lib/python" in file or file.startswith("<")
        out.append(line(f"{indent}#{n} ", (func, pal.muted if library else pal.strong),
                        (f"  {file}:{lineno}", pal.muted)))
    return out


def trace_bounds(events: list[Event]) -> tuple[int, int]:
    """(start, end) in ns, timed events covering ``[ts - duration, ts]``."""
    if not events:
        return 0, 0
    starts = [e.timestamp_ns - (e.meta.duration_ns or 0) for e in events]
    return min(starts), max(e.timestamp_ns for e in events)


__all__ = [
    "PLAIN",
    "Palette",
    "anomaly_style",
    "clock_text",
    "event_detail",
    "event_summary",
    "event_task",
    "event_time",
    "join_lines",
    "line",
    "palette_from_theme",
    "severity_style",
    "stack_lines",
    "task_label",
    "task_name",
    "trace_bounds",
]
