"""The plain-text summary printed instead of the app on a dumb terminal or into a pipe.

Same data and the same wording as the dashboard, trace list and race views, without colour or
cursor control, so ``raceway tui ... | less`` and CI logs stay readable.
"""

from __future__ import annotations

from typing import TextIO

from . import render
from .source import Source
from .text import PLAIN

MAX_TRACES = 50
MAX_RACES = 20


def plain_summary(source: Source, out: TextIO, max_traces: int = MAX_TRACES,
                  max_races: int = MAX_RACES) -> None:
    """Write the summary of ``source`` to ``out`` (raises :class:`~.source.SourceError`)."""
    snap = source.snapshot()
    write = out.write
    write(f"Raceway — {source.label}\n\n")
    write(render.dashboard_header(snap, PLAIN).plain.replace("\nRecent races  (Enter opens the race)", ""))
    write("\n\n")
    rows = render.trace_rows(snap, PLAIN)
    write(f"Traces ({len(rows)}; ! = races, ? = not known yet)\n")
    def full(row: render.Row) -> str:  # the whole test id: a pipe has no width limit
        t = row.data
        tag = f" [{t.outcome}]" if t.outcome and t.outcome != "passed" else ""
        return f"{t.label or t.trace_id[:8]}{tag}"

    width = max((len(full(r)) for r in rows[:max_traces]), default=5)
    for row in rows[:max_traces]:
        flag, count, events = (c.plain for c in row.cells[:3])
        label = full(row)
        write(f"  {flag or ' '} {label:<{width}}  {events:>7} events  {count:>3} races  {row.key}\n")
    if len(rows) > max_traces:
        write(f"  … {len(rows) - max_traces} more traces\n")
    recent = snap.recent_races
    if recent:
        shown = recent[:max_races]
        write(f"\nRaces ({len(shown)} of {len(recent)}, newest first)\n")
        for race in shown:
            write("\n" + render.race_detail(race, PLAIN).plain + "\n")
    else:
        write("\nNo races.\n")


__all__ = ["plain_summary"]
