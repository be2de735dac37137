"""Rows and detail texts of every view, as pure functions of the source data.

Every list view is a table of :class:`Row` (cells, a search text and a lazily built detail), so
navigation, search and the plain-text summary work the same way for all of them.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from typing import Any

from raceway_sdk.protocol.events import Event, uuid_str
from rich.text import Text

from .source import Snapshot, TraceDetail
from .text import (
    Palette,
    anomaly_style,
    clock_text,
    event_detail,
    event_summary,
    event_task,
    event_time,
    join_lines,
    line,
    severity_style,
    short_value,
    stack_lines,
    task_label,
    task_name,
    trace_bounds,
)


class Row:
    """One table row. ``cells`` may be built lazily by ``make`` (only rows the table actually
    shows pay for their rich text); ``search`` is the plain text that ``/`` matches."""

    __slots__ = ("key", "_cells", "make", "search", "detail", "data", "children")

    def __init__(self, key: str, cells: list[Text] | None = None, search: str = "",
                 detail: Callable[[], Text] | None = None, data: Any = None, children: int = 0,
                 make: Callable[[], list[Text]] | None = None) -> None:
        self.key = key
        self._cells = cells
        self.make = make
        self.search = search
        self.detail = detail
        self.data = data
        self.children = children  # tree rows: how many nodes fold under this one

    @property
    def cells(self) -> list[Text]:
        if self._cells is None:
            self._cells = self.make() if self.make is not None else []
        return self._cells

    def __repr__(self) -> str:
        return f"Row({self.key!r}, {self.search!r})"


def _row(key: str, cells: list[str | Text], **kw: Any) -> Row:
    texts = [c if isinstance(c, Text) else Text(str(c)) for c in cells]
    kw.setdefault("search", " ".join(t.plain for t in texts))
    return Row(key, texts, **kw)


# --- trace list and dashboard ---------------------------------------------------------------

TRACE_COLUMNS = ("", "races", "events", "trace")  # counts first: long labels clip last


def trace_rows(snap: Snapshot, pal: Palette) -> list[Row]:
    rows = []
    for t in snap.traces:
        if t.race_count is None:
            flag, count, style = Text("?", pal.muted), Text("?", pal.muted), ""
        elif t.race_count:
            flag, count, style = Text("!", pal.error), Text(str(t.race_count), pal.error), pal.error
        else:
            flag, count, style = Text(" "), Text("0", pal.muted), ""
        label = short_nodeid(t.label) or t.trace_id[:8]
        if t.outcome and t.outcome != "passed":
            label = f"{label} [{t.outcome}]"
        name = Text(label, style=style)
        events = Text(str(t.event_count) if t.has_events else "-", pal.muted if not t.has_events else "")
        rows.append(_row(t.trace_id, [flag, count, events, name],
                         search=f"{t.trace_id} {t.label} {t.outcome} {' '.join(t.services)}", data=t))
    return rows


def short_nodeid(label: str) -> str:
    """``tests/unit/test_x.py::test_y`` -> ``test_x.py::test_y`` (the list is narrow; the full id
    is in the status line and searchable)."""
    path, sep, rest = label.partition("::")
    return path.rsplit("/", 1)[-1] + sep + rest if sep else label


def dashboard_header(snap: Snapshot, pal: Palette) -> Text:
    t = snap.totals
    sev = t.get("by_severity") or {}
    parts: list[Text | str] = [
        line(("Totals  ", pal.strong),
             f"traces {t.get('traces', 0)}   events {t.get('events', 0)}   ",
             (f"races {t.get('races', 0)}", pal.error if t.get("races") else pal.success),
             f"   racing traces {t.get('racing_traces', 0)}   dropped {t.get('dropped', 0)}"),
    ]
    if sev:
        parts.append(line("        by severity: ", ", ".join(
            f"{k} {v}" for k, v in sorted(sev.items(), key=lambda kv: SEV_ORDER.get(kv[0], 9)))))
    if t.get("new") is not None:
        parts.append(f"        new {t.get('new')}, baseline {t.get('baseline')}, "
                     f"suppressed {t.get('suppressed')}, failing {t.get('failing')}")
    if snap.hotspots:
        parts.append(line(("Hotspots", pal.strong), ("  (variable: accesses / traces / races)", pal.muted)))
        for h in snap.hotspots[:6]:
            races = int(h.get("races") or 0)
            parts.append(line(
                "  ", (str(h.get("variable")), pal.error if races else ""),
                f": {h.get('access_count', 0)} / {h.get('trace_count', 0)} / {races}"))
    for note in snap.notes:
        parts.append(line(("note: ", pal.warning), note))
    parts.append(line(("Recent races", pal.strong), ("  (Enter opens the race)", pal.muted)))
    return join_lines(parts)


SEV_ORDER = {"write-write": 0, "lost-update": 1, "read-write": 2}
DASHBOARD_COLUMNS = ("severity", "variable", "tasks", "where", "test / trace")


def dashboard_rows(snap: Snapshot, pal: Palette) -> list[Row]:
    rows = []
    for r in snap.recent_races:
        a, b = r.get("first") or {}, r.get("second") or {}
        where = _site(a) if _site(a) == _site(b) else f"{_site(a)} / {_site(b)}"
        who = f"{a.get('task_name') or a.get('task')} / {b.get('task_name') or b.get('task')}"
        rows.append(_row(
            f"{r.get('trace_id')}#{r.get('id')}",
            [Text(str(r.get("severity")), severity_style(str(r.get("severity")), pal)),
             str(r.get("variable")), who, where, str(r.get("test") or r.get("trace_id"))],
            detail=_race_detail(r, pal), data=r))
    return rows


def _site(acc: dict[str, Any]) -> str:
    return str(acc.get("location") or "?")


# --- events, tree, timeline -----------------------------------------------------------------

EVENT_COLUMNS = ("#", "time", "task", "kind", "what")


def race_event_ids(detail: TraceDetail) -> set[str]:
    ids = set()
    for r in detail.races:
        for side in ("first", "second", "stale_read"):
            acc = r.get(side)
            if isinstance(acc, dict) and acc.get("event_id"):
                ids.add(str(acc["event_id"]))
    return ids


def event_rows(detail: TraceDetail, pal: Palette, kind: str | None = None) -> list[Row]:
    t0 = trace_bounds(detail.events)[0]
    racing = race_event_ids(detail)
    rows = []
    for n, e in enumerate(detail.events, 1):
        if kind is not None and e.kind != kind:
            continue
        eid = uuid_str(e.id)
        what = event_summary(e, detail) + ("  [RACE]" if eid in racing else "")
        task = task_name(detail, event_task(e))
        rows.append(Row(eid, search=f"{n} {task} {e.kind} {what}",
                        make=_event_cells(n, e, t0, task, what, pal.error if eid in racing else "", pal),
                        detail=_event_detail(e, detail, pal), data=e))
    return rows


def _event_cells(n: int, e: Event, t0: int, task: str, what: str, style: str, pal: Palette
                 ) -> Callable[[], list[Text]]:
    return lambda: [Text(str(n)), Text(event_time(e, t0)), Text(task),
                    Text(e.kind, style or pal.accent), Text(what, style)]


def _event_detail(e: Event, detail: TraceDetail, pal: Palette) -> Callable[[], Text]:
    return lambda: event_detail(e, detail, pal)


def kind_counts(detail: TraceDetail) -> list[tuple[str, int]]:
    return sorted(Counter(e.kind for e in detail.events).items())


def _task_parents(detail: TraceDetail) -> tuple[dict[str, str | None], dict[str, str]]:
    """Parent of every task, and the task each AsyncSpawn event started (event id -> task)."""
    parents: dict[str, str | None] = {}
    spawned: dict[str, str] = {}
    for tid, info in detail.tasks.items():
        parents[tid] = info.get("parent") if isinstance(info, dict) else None
    for e in detail.events:
        parents.setdefault(event_task(e), None)
        child = (e.ext or {}).get("child")
        if e.kind == "AsyncSpawn" and isinstance(child, str):
            spawned[uuid_str(e.id)] = child
            if parents.get(child) is None:
                parents[child] = event_task(e)
    return parents, spawned


TREE_COLUMNS = ("tree", "what")


def tree_rows(detail: TraceDetail, pal: Palette, collapsed: set[str]) -> list[Row]:
    """Task fork tree: each task's events in order, a spawn nests the started task, an event
    with a ``parent_id`` in the trace nests under that event (original SDKs)."""
    parents, spawned = _task_parents(detail)
    by_task: dict[str, list[Event]] = {}
    nested: dict[str, list[Event]] = {}
    ids = {uuid_str(e.id) for e in detail.events}
    for e in detail.events:
        pid = uuid_str(e.parent_id) if e.parent_id is not None else None
        if pid is not None and pid in ids:
            nested.setdefault(pid, []).append(e)
        else:
            by_task.setdefault(event_task(e), []).append(e)
    started = set(spawned.values())
    roots = [t for t, p in parents.items() if (p is None or p not in parents) and t not in started]
    roots += [t for t in parents if t not in roots and parents[t] not in parents and t in started]
    racing = race_event_ids(detail)
    totals = Counter(event_task(e) for e in detail.events)
    rows: list[Row] = []
    placed: set[str] = set()
    t0 = trace_bounds(detail.events)[0]

    def hide_below(task: str) -> None:
        """A folded node hides its tasks: mark them placed so they are not shown as roots."""
        todo = [task]
        while todo:
            current = todo.pop()
            placed.add(current)
            todo.extend(t for t, p in parents.items() if p == current and t not in placed)

    def add_task(task: str, depth: int) -> None:
        if task in placed:
            return
        placed.add(task)
        key = f"task:{task}"
        info = detail.tasks.get(task) or {}
        kind = info.get("kind") or "task"
        where = f" started at {info['created_at']}" if info.get("created_at") else ""
        n = totals.get(task, 0)
        folded = key in collapsed
        glyph = "▸ " if folded else "▾ "
        rows.append(_row(key, [
            Text("  " * depth + glyph + task_label(detail, task), pal.strong),
            Text(f"{kind}{where}, {n} events", pal.muted)], children=n,
            detail=_lane_detail(task, by_task.get(task, []), detail, pal)))
        if folded:
            hide_below(task)
            return
        for e in by_task.get(task, []):
            add_event(e, depth + 1)

    def add_event(e: Event, depth: int) -> None:
        eid = uuid_str(e.id)
        key = f"ev:{eid}"
        kids = nested.get(eid, [])
        child = spawned.get(eid)
        has_kids = bool(kids) or bool(child and child not in placed)
        folded = key in collapsed
        glyph = ("▸ " if folded else "▾ ") if has_kids else "  "
        style = pal.error if eid in racing else ""
        rows.append(_row(key, [
            Text("  " * depth + glyph + e.kind, style or pal.accent),
            Text(f"{event_summary(e, detail)}  {event_time(e, t0)}", style)],
            detail=_event_detail(e, detail, pal), data=e, children=len(kids) + (1 if child else 0)))
        if folded:
            if child:
                hide_below(child)
            return
        for kid in kids:
            add_event(kid, depth + 1)
        if child:
            add_task(child, depth + 1)

    for task in roots:
        add_task(task, 0)
    for task in parents:  # tasks whose parent chain never reaches a root (cycles, gaps)
        add_task(task, 0)
    return rows


TIMELINE_COLUMNS = ("task", "lane")
_GLYPH_RANK = {"!": 9, "W": 8, "r": 7, "+": 6, "<": 5, "L": 4, "U": 4, "H": 3, "•": 2, "─": 1, " ": 0}


def _glyph(e: Event) -> str:
    if e.kind == "StateChange":
        return "W" if str(e.data.get("access_type", "")).endswith(("Write", "RMW")) else "r"
    return {"AsyncSpawn": "+", "AsyncAwait": "<", "LockAcquire": "L", "LockRelease": "U",
            "HttpRequest": "H", "HttpResponse": "H"}.get(e.kind, "•")


def timeline_rows(detail: TraceDetail, pal: Palette, width: int, zoom: int = 1, pan: float = 0.0
                  ) -> tuple[Text, list[Row]]:
    """One lane per task across ``width`` columns; ``zoom``× magnification starting at ``pan``
    (fraction of the trace). Returns a legend/scale line and the lanes."""
    width = max(10, width)
    start, end = trace_bounds(detail.events)
    total = max(1, end - start)
    window = total / max(1, zoom)
    lo = start + min(max(0.0, pan), 1.0 - 1.0 / max(1, zoom)) * total
    racing = race_event_ids(detail)
    lanes: dict[str, list[str]] = {}
    marks: dict[str, set[int]] = {}
    per_task: dict[str, list[Event]] = {}
    for e in detail.events:
        per_task.setdefault(event_task(e), []).append(e)

    def col(ns: float) -> int | None:
        c = int((ns - lo) * (width - 1) / window) if window else 0
        return c if 0 <= c < width else None

    for task, evs in per_task.items():
        cells = [" "] * width
        first = evs[0].timestamp_ns - (evs[0].meta.duration_ns or 0)
        a = col(max(first, lo))
        b = col(min(evs[-1].timestamp_ns, lo + window))
        if a is not None and b is not None:
            for i in range(a, b + 1):
                cells[i] = "─"
        for e in evs:
            c = col(e.timestamp_ns)
            if c is None:
                continue
            g = "!" if uuid_str(e.id) in racing else _glyph(e)
            if _GLYPH_RANK[g] >= _GLYPH_RANK[cells[c]]:
                cells[c] = g
                if g == "!":
                    marks.setdefault(task, set()).add(c)
        lanes[task] = cells
    names = Counter(task_name(detail, task) for task in lanes)
    rows = []
    for task, cells in lanes.items():
        label = task_name(detail, task)
        if names[label] > 1:  # two tasks with one name: tell them apart by id
            label = task_label(detail, task)
        bar = Text()
        for g in cells:
            style = pal.error if g == "!" else pal.muted if g == "─" else pal.accent if g in "+<" else ""
            bar.append(g, style or None)
        evs = per_task[task]
        rows.append(_row(f"lane:{task}", [Text(label, pal.error if task in marks else ""), bar],
                         search=f"{task} {task_name(detail, task)}",
                         detail=_lane_detail(task, evs, detail, pal), data=task))
    span_ms = window / 1e6
    legend = line((f"{span_ms:,.3f} ms across {width} columns", pal.strong),
                  f" (zoom {zoom}x; + - zoom, < > pan)   ",
                  ("!", pal.error), " race  W write  r read  ", ("+", pal.accent), " start  ",
                  ("<", pal.accent), " join  L/U lock  H http  • other  ", ("─", pal.muted), " alive")
    return legend, rows


def _lane_detail(task: str, evs: list[Event], detail: TraceDetail, pal: Palette) -> Callable[[], Text]:
    def build() -> Text:
        t0 = trace_bounds(detail.events)[0]
        info = detail.tasks.get(task) or {}
        head: list[Text | str] = [line((task_label(detail, task), pal.strong), f"  {info.get('kind', 'task')}")]
        if info.get("created_at"):
            head.append(f"started at {info['created_at']}")
        head.append(f"{len(evs)} events:")
        racing = race_event_ids(detail)
        for e in evs:
            style = pal.error if uuid_str(e.id) in racing else ""
            head.append(line(f"  {event_time(e, t0):>14}  ", (f"{e.kind:<12} {event_summary(e, detail)}", style)))
        return join_lines(head)
    return build


# --- races ----------------------------------------------------------------------------------

RACE_COLUMNS = ("id", "severity", "variable", "tasks", "status")


def race_rows(detail: TraceDetail, pal: Palette) -> list[Row]:
    rows = []
    for r in detail.races:
        a, b = r.get("first") or {}, r.get("second") or {}
        sev = str(r.get("severity"))
        rows.append(_row(f"race:{r.get('id')}", [
            str(r.get("id")), Text(sev, severity_style(sev, pal)), str(r.get("variable")),
            f"{a.get('task_name') or a.get('task')} ↔ {b.get('task_name') or b.get('task')}",
            Text(str(r.get("status") or "reported"), pal.muted if r.get("status") == "suppressed" else ""),
        ], detail=_race_detail(r, pal), data=r))
    return rows


def _race_detail(race: dict[str, Any], pal: Palette) -> Callable[[], Text]:
    return lambda: race_detail(race, pal)


def _access_block(title: str, acc: dict[str, Any], pal: Palette) -> list[Text | str]:
    who = acc.get("task_name") or acc.get("task")
    kind = acc.get("task_kind") or "task"
    ident = f" ({acc.get('task')})" if who != acc.get("task") else ""
    out: list[Text | str] = [
        line((title, pal.strong), f"  {acc.get('access_type', '?')} by {kind} ",
             (f"{who!s}", pal.accent), ident),
        f"  at {acc.get('location', '?')}" + (f" in {acc['func']}()" if acc.get("func") else ""),
    ]
    if acc.get("value") is not None:
        out.append(f"  value {short_value(acc.get('value'), 120)}")
    out.append(f"  clock {clock_text(acc.get('vc'))}")
    stack = acc.get("stack")
    if stack:
        out.append("  stack:")
        out.extend(stack_lines(stack, pal, "    "))
    where = acc.get("task_created_at")
    out.append(f"  {kind} {who!s} was started " + (f"at {where}" if where else "outside this trace"))
    if acc.get("task_stack"):
        out.extend(stack_lines(acc["task_stack"], pal, "    "))
    if acc.get("origin_test") or (acc.get("origin_trace") and acc.get("origin_trace") != acc.get("trace_id")):
        origin = acc.get("origin_test") or acc.get("origin_trace")
        out.append(line(("  leaked from ", pal.warning), str(origin)))
    return out


def missing_edge(race: dict[str, Any]) -> list[str]:
    """Why neither access happened before the other, read off their vector clocks."""
    a, b = race.get("first") or {}, race.get("second") or {}
    ta, tb = str(a.get("task")), str(b.get("task"))
    va, vb = a.get("vc") or {}, b.get("vc") or {}
    ea, eb = int(va.get(ta, 0)), int(vb.get(tb, 0))
    return [
        f"  {ta} made its access at its step {ea}; {tb}'s clock had seen {ta} only up to "
        f"{vb.get(ta, 0)}, so the first access is not ordered before the second.",
        f"  {tb} made its access at its step {eb}; {ta}'s clock had seen {tb} only up to "
        f"{va.get(tb, 0)}, so the second is not ordered before the first.",
        f"  Missing edge: a join, lock, queue, event or other hand-off from {ta} (after its "
        f"access) to {tb} (before its access), or the reverse.",
    ]


def race_detail(race: dict[str, Any], pal: Palette) -> Text:
    sev = str(race.get("severity"))
    out: list[Text | str] = [
        line((f"RACE #{race.get('id')} ", pal.strong), (sev, severity_style(sev, pal)),
             f" on {race.get('variable')}",
             (f"   [{race.get('status')}]" if race.get("status") else "", pal.muted)),
    ]
    if race.get("test"):
        out.append(f"test {race['test']}")
    if race.get("reason"):
        out.append(line(("suppressed: ", pal.muted), str(race["reason"])))
    out += _access_block("First access ", race.get("first") or {}, pal)
    out += _access_block("Second access", race.get("second") or {}, pal)
    if race.get("stale_read"):
        out += _access_block("Stale read   ", race["stale_read"], pal)
    out.append(line(("Missing happens-before edge", pal.error)))
    if race.get("explanation"):
        out.append(f"  {race['explanation']}")
    out += missing_edge(race)
    return join_lines(out)


# --- critical path, audit, dependencies, anomalies ------------------------------------------

PATH_COLUMNS = ("#", "kind", "location", "task", "ms")


def critical_header(detail: TraceDetail, pal: Palette) -> Text:
    cp = detail.critical_path
    if not cp:
        return Text("No critical path: the trace has no events.", pal.muted)
    parts: list[Text | str] = [line(
        ("Critical path ", pal.strong),
        f"{cp.get('path_events', 0)} events, {float(cp.get('total_duration_ms', 0)):,.3f} ms = "
        f"{float(cp.get('percentage_of_total', 0)):.1f}% of the trace's "
        f"{float(cp.get('trace_total_duration_ms', 0)):,.3f} ms")]
    if cp.get("approximate_waits"):
        parts.append(Text("waits were approximated (walk budget reached)", pal.warning))
    return join_lines(parts)


def critical_rows(detail: TraceDetail, pal: Palette) -> list[Row]:
    cp = detail.critical_path or {}
    total = float(cp.get("total_duration_ms") or 0)
    rows = []
    for n, step in enumerate(cp.get("path") or [], 1):
        ms = float(step.get("duration_ms") or 0)
        heavy = total > 0 and ms / total >= 0.2
        rows.append(_row(f"cp:{n}:{step.get('id')}", [
            str(n), Text(str(step.get("kind")), pal.accent), str(step.get("location")),
            task_name(detail, str(step.get("task"))) if step.get("task") else "",
            Text(f"{ms:,.3f}", pal.warning if heavy else ""),
        ], detail=_json_detail(step), data=step))
    return rows


def _json_detail(obj: dict[str, Any]) -> Callable[[], Text]:
    return lambda: join_lines(f"{k}: {short_value(v, 200)}" for k, v in obj.items())


AUDIT_COLUMNS = ("variable", "accesses", "writes", "tasks", "races")


def audit_rows(detail: TraceDetail, pal: Palette) -> list[Row]:
    rows = []
    for var, trail in sorted(detail.audit_trails.items(),
                             key=lambda kv: (-sum(1 for a in kv[1] if a.get("is_race")), kv[0])):
        races = sum(1 for a in trail if a.get("is_race"))
        writes = sum(1 for a in trail if "Write" in str(a.get("access_type")) or a.get("access_type") == "AtomicRMW")
        tasks = len({a.get("task") or a.get("thread_id") for a in trail})
        rows.append(_row(f"var:{var}", [
            Text(var, pal.error if races else ""), str(len(trail)), str(writes), str(tasks),
            Text(str(races), pal.error if races else pal.muted)],
            detail=_trail_detail(var, trail, detail, pal), data=var))
    return rows


def _trail_detail(var: str, trail: list[dict[str, Any]], detail: TraceDetail, pal: Palette
                  ) -> Callable[[], Text]:
    def build() -> Text:
        out: list[Text | str] = [line((f"Audit trail of {var}", pal.strong),
                                      ("  (happens-before order; ✓ ordered after the previous "
                                       "access, ✗ concurrent with it)", pal.muted))]
        for n, a in enumerate(trail, 1):
            linked = a.get("has_causal_link_to_previous")
            mark = ("✓", pal.success) if linked else ("✗", pal.error)
            value = "" if a.get("new_value") is None else f" = {short_value(a.get('new_value'), 40)}"
            task = task_name(detail, str(a.get("task") or a.get("thread_id")))
            race = (f"  RACE {','.join(map(str, a.get('race_ids') or []))}", pal.error) if a.get("is_race") else ""
            out.append(line(f"{n:>4} ", mark, f" {str(a.get('timestamp', ''))[11:26]}  {task:<16} "
                            f"{a.get('access_type', '?'):<10}{value} @ {a.get('location', '?')}", race))
        return join_lines(out)
    return build


DEP_COLUMNS = ("from", "to", "calls", "links")


def dependency_header(detail: TraceDetail, pal: Palette) -> Text:
    deps = detail.dependencies
    if not deps:
        return Text("No dependencies: the trace has no events.", pal.muted)
    services = ", ".join(f"{s.get('name')} ({s.get('event_count')} events)" for s in deps.get("services", []))
    parts: list[Text | str] = [line(("Services ", pal.strong), services or "none")]
    if not deps.get("dependencies"):
        parts.append(Text("No calls between services in this trace.", pal.muted))
    if deps.get("unresolved_upstream_spans"):
        parts.append(Text(f"{deps['unresolved_upstream_spans']} upstream spans not in this trace", pal.warning))
    return join_lines(parts)


def dependency_rows(detail: TraceDetail, pal: Palette) -> list[Row]:
    deps = detail.dependencies or {}
    return [
        _row(f"dep:{d.get('from')}>{d.get('to')}", [
            str(d.get("from")), str(d.get("to")), str(d.get("call_count")),
            ", ".join(f"{k} {v}" for k, v in (d.get("link_types") or {}).items())],
            detail=_json_detail(d), data=d)
        for d in deps.get("dependencies", [])
    ]


ANOMALY_COLUMNS = ("severity", "kind", "actual ms", "expected ms", "σ", "location")


def anomaly_header(detail: TraceDetail, pal: Palette) -> Text:
    if not detail.anomalies:
        return Text("No anomalies: no timed event is an outlier for its operation.", pal.muted)
    counts = Counter(str(a.get("severity")) for a in detail.anomalies)
    return line(("Anomalies ", pal.strong), ", ".join(f"{k} {v}" for k, v in sorted(counts.items())))


def anomaly_rows(detail: TraceDetail, pal: Palette) -> list[Row]:
    rows = []
    for n, a in enumerate(detail.anomalies):
        sev = str(a.get("severity"))
        rows.append(_row(f"an:{n}:{a.get('event_id')}", [
            Text(sev, anomaly_style(sev, pal)), str(a.get("event_kind")),
            f"{float(a.get('actual_duration_ms') or 0):,.2f}",
            f"{float(a.get('expected_duration_ms') or 0):,.2f}",
            f"{float(a.get('std_dev_from_mean') or 0):.1f}", str(a.get("location"))],
            detail=_json_detail(a), data=a))
    return rows


def cached(detail: TraceDetail, key: Any, build: Callable[[], list[Row]]) -> list[Row]:
    """Rows memoised on the trace (rebuilt only when the trace or the key changes)."""
    rows = detail.cache.get(key)
    if rows is None:
        rows = detail.cache[key] = build()
    return rows  # type: ignore[no-any-return]


def warm(detail: TraceDetail, pal: Palette) -> None:
    """Build the rows of the views that grow with the trace (call from a worker thread)."""
    cached(detail, ("events", None, pal), lambda: event_rows(detail, pal))
    cached(detail, ("tree", frozenset(), pal), lambda: tree_rows(detail, pal, set()))
