"""The view widgets: a table of :class:`~.render.Row` over a scrollable detail pane.

Every view has the same shape (summary line, table, detail of the highlighted row), so the app's
keys (j/k/g/G, search, h/l between panes) work identically everywhere; a view only says how to
build its rows and what Enter does.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical, VerticalScroll
from textual.widgets import DataTable, Static

from . import render
from .render import Row
from .text import Palette, line

if TYPE_CHECKING:
    from .source import Snapshot, TraceDetail


WINDOW = 1000  # rows in the DataTable at once; a 50,000-event trace stays instant


class RowTable(DataTable[Any]):
    """A row-cursor table of :class:`Row` that keeps the cursor on the same key across reloads.

    Only a window of :data:`WINDOW` rows around the cursor is put into the DataTable (adding
    rows is what costs time); moving past its edge slides the window, so navigation and search
    cover every row. ``index`` is the cursor's position in ``rows_data``.
    """

    def __init__(self, columns: tuple[str, ...], **kw: Any) -> None:
        super().__init__(cursor_type="row", zebra_stripes=False, **kw)
        self._columns = columns
        self.rows_data: list[Row] = []
        self.window_start = 0

    def on_mount(self) -> None:
        self.add_columns(*self._columns)

    def set_rows(self, rows: list[Row], keep: str | None = None) -> None:
        """Replace the rows; the cursor stays on ``keep`` (default: the current key)."""
        if keep is None:
            current = self.current
            keep = current.key if current is not None else None
        self.rows_data = rows
        self._show(next((i for i, r in enumerate(rows) if r.key == keep), 0))

    def _show(self, index: int) -> None:
        n = len(self.rows_data)
        start = 0 if n <= WINDOW else max(0, min(index - WINDOW // 2, n - WINDOW))
        self.window_start = start
        self.clear()
        for row in self.rows_data[start : start + WINDOW]:
            self.add_row(*row.cells, key=row.key)
        if n:
            self.move_cursor(row=index - start, animate=False)

    @property
    def index(self) -> int:
        return self.window_start + self.cursor_row

    def go(self, index: int) -> None:
        """Put the cursor on ``rows_data[index]`` (clamped), sliding the window if needed."""
        if not self.rows_data:
            return
        index = max(0, min(len(self.rows_data) - 1, index))
        if self.window_start <= index < self.window_start + self.row_count:
            self.move_cursor(row=index - self.window_start)
        else:
            self._show(index)

    def action_cursor_down(self) -> None:
        if self.row_count and self.cursor_row >= self.row_count - 1:
            self.go(self.index + 1)
        else:
            super().action_cursor_down()

    def action_cursor_up(self) -> None:
        if self.row_count and self.cursor_row == 0 and self.window_start:
            self.go(self.index - 1)
        else:
            super().action_cursor_up()

    @property
    def current(self) -> Row | None:
        i = self.index
        if not self.rows_data or not 0 <= i < len(self.rows_data) or not self.row_count:
            return None
        return self.rows_data[i]

    def find(self, needle: str, forward: bool = True) -> int | None:
        """Move to the next (or previous) row whose text contains ``needle``; returns its index."""
        needle = needle.lower()
        n = len(self.rows_data)
        for step in range(1, n + 1):
            i = (self.index + (step if forward else -step)) % n
            if needle in self.rows_data[i].search.lower():
                self.go(i)
                return i
        return None


class View(Vertical):
    """One tab: summary, table, detail. Subclasses set ``TITLE``/``COLUMNS`` and ``rows()``."""

    TITLE = ""
    TAB = ""  # short tab label (default: TITLE)
    # the view's own keys: the app routes them to the current view wherever the focus is
    KEYS: dict[str, tuple[str, ...]] = {}
    COLUMNS: tuple[str, ...] = ()
    PER_TRACE = True
    HINT = ""

    DEFAULT_CSS = """
    View { height: 1fr; }
    View > .summary { height: auto; max-height: 14; padding: 0 1; }
    View > RowTable { height: 1fr; min-height: 4; }
    View > .detail-pane { height: 1fr; min-height: 4; border-top: solid $primary-muted; padding: 0 1; }
    View > .detail-pane:focus { border-top: solid $accent; }
    """

    def __init__(self, **kw: Any) -> None:
        super().__init__(**kw)
        self.summary = Static("", classes="summary", markup=False)
        self.table = RowTable(self.COLUMNS)
        self.detail = Static("", markup=False)
        self.detail_pane = VerticalScroll(self.detail, classes="detail-pane")

    def compose(self) -> ComposeResult:
        yield self.summary
        yield self.table
        yield self.detail_pane

    # data -------------------------------------------------------------------------------------

    @property
    def pal(self) -> Palette:
        return self.app.palette  # type: ignore[attr-defined, no-any-return]

    def rows(self) -> list[Row]:
        raise NotImplementedError

    def header(self) -> Text:
        return Text("")

    def refresh_view(self, keep: str | None = None) -> None:
        """Rebuild from the app's current data (snapshot or trace detail)."""
        detail: TraceDetail | None = getattr(self.app, "detail", None)
        if self.PER_TRACE and detail is None:
            message = getattr(self.app, "trace_message", "") or "Select a trace in the list (h, then j/k)."
            self.summary.update(Text(message, self.pal.muted))
            self.table.set_rows([])
            self.show_detail(None)
            return
        self.summary.update(self.header())
        self.table.set_rows(self.rows(), keep)
        self.show_detail(self.table.current)

    def show_detail(self, row: Row | None) -> None:
        if row is None or row.detail is None:
            self.detail.update(Text("(nothing selected)" if row is None else "", self.pal.muted))
        else:
            self.detail.update(row.detail())
        self.detail_pane.scroll_home(animate=False)

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        event.stop()
        self.show_detail(self.table.current)

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        event.stop()
        row = self.table.current
        if row is not None:
            self.activate(row)

    def activate(self, row: Row) -> None:
        """Enter on a row (default: focus the detail pane to read it)."""
        self.detail_pane.focus()

    @property
    def trace(self) -> TraceDetail:
        detail = self.app.detail  # type: ignore[attr-defined]
        assert detail is not None
        return detail  # type: ignore[no-any-return]

    @property
    def snap(self) -> Snapshot | None:
        return self.app.snapshot  # type: ignore[attr-defined, no-any-return]


class DashboardView(View):
    TITLE = "Dashboard"
    COLUMNS = render.DASHBOARD_COLUMNS
    PER_TRACE = False
    HINT = "Enter: open race"

    def header(self) -> Text:
        snap = self.snap
        if snap is None:
            return Text(getattr(self.app, "snapshot_message", "") or "Loading…", self.pal.muted)
        return render.dashboard_header(snap, self.pal)

    def rows(self) -> list[Row]:
        return render.dashboard_rows(self.snap, self.pal) if self.snap else []

    def activate(self, row: Row) -> None:
        race = row.data or {}
        self.app.open_race(str(race.get("trace_id")), race.get("id"))  # type: ignore[attr-defined]


class EventsView(View):
    TITLE = "Events"
    COLUMNS = render.EVENT_COLUMNS
    HINT = "f: filter kind  c: clear filter"
    KEYS = {"next_kind": ("f",), "clear_kind": ("c",)}

    kind: str | None = None

    def header(self) -> Text:
        counts = render.kind_counts(self.trace)
        parts = [(f"{k} {n}", self.pal.accent if k == self.kind else "") for k, n in counts]
        shown = self.kind or "all kinds"
        out = line((f"{len(self.trace.events)} events", self.pal.strong), f" — showing {shown}: ")
        for n, part in enumerate(parts):
            out.append_text(line(", " if n else "", part))
        for note in self.trace.notes:
            out.append_text(line("\n", ("note: ", self.pal.warning), note))
        return out

    def rows(self) -> list[Row]:
        detail, pal, kind = self.trace, self.pal, self.kind
        return render.cached(detail, ("events", kind, pal), lambda: render.event_rows(detail, pal, kind))

    def action_next_kind(self) -> None:
        if self.app.detail is None:  # type: ignore[attr-defined]
            return
        kinds = [k for k, _ in render.kind_counts(self.trace)]
        if not kinds:
            return
        self.kind = kinds[(kinds.index(self.kind) + 1) % len(kinds)] if self.kind in kinds else kinds[0]
        self.refresh_view()

    def action_clear_kind(self) -> None:
        self.kind = None
        if self.app.detail is not None:  # type: ignore[attr-defined]
            self.refresh_view()


class TreeView(View):
    TITLE = "Tree"
    COLUMNS = render.TREE_COLUMNS
    HINT = "Enter/space: fold"
    KEYS = {"fold": ("space",)}

    def __init__(self, **kw: Any) -> None:
        super().__init__(**kw)
        self.collapsed: set[str] = set()

    def header(self) -> Text:
        return line(("Tasks and their events", self.pal.strong),
                    ("  (a start nests the started task; Enter folds)", self.pal.muted))

    def rows(self) -> list[Row]:
        detail, pal, folded = self.trace, self.pal, set(self.collapsed)
        if folded:  # fold states are not worth memoising
            return render.tree_rows(detail, pal, folded)
        return render.cached(detail, ("tree", frozenset(), pal), lambda: render.tree_rows(detail, pal, folded))

    def activate(self, row: Row) -> None:
        if row.children:
            self.collapsed ^= {row.key}
            self.refresh_view(keep=row.key)

    def action_fold(self) -> None:
        row = self.table.current
        if row is not None:
            self.activate(row)


class TimelineView(View):
    TITLE = "Timeline"
    COLUMNS = render.TIMELINE_COLUMNS
    HINT = "+/-: zoom  </>: pan"
    KEYS = {"zoom_in": ("plus", "equals_sign"), "zoom_out": ("minus",),
            "pan_left": ("less_than_sign", "comma"), "pan_right": ("greater_than_sign", "full_stop")}

    zoom = 1
    pan = 0.0

    def _lanes(self) -> tuple[Text, list[Row]]:
        width = max(20, (self.size.width or 100) - 26)
        return render.timeline_rows(self.trace, self.pal, width, self.zoom, self.pan)

    def header(self) -> Text:
        return self._lanes()[0]

    def rows(self) -> list[Row]:
        return self._lanes()[1]

    def on_resize(self) -> None:
        if self.app.detail is not None:  # type: ignore[attr-defined]
            self.refresh_view()

    def action_zoom_in(self) -> None:
        self.action_zoom(2)

    def action_zoom_out(self) -> None:
        self.action_zoom(0.5)

    def action_pan_left(self) -> None:
        self.action_pan(-1)

    def action_pan_right(self) -> None:
        self.action_pan(1)

    def action_zoom(self, factor: float) -> None:
        self.zoom = int(min(1024, max(1, self.zoom * factor)))
        self.pan = min(self.pan, 1 - 1 / self.zoom)
        if self.app.detail is not None:  # type: ignore[attr-defined]
            self.refresh_view()

    def action_pan(self, direction: int) -> None:
        step = 0.5 / self.zoom
        self.pan = min(max(0.0, self.pan + direction * step), 1 - 1 / self.zoom)
        if self.app.detail is not None:  # type: ignore[attr-defined]
            self.refresh_view()


class RacesView(View):
    TITLE = "Races"
    COLUMNS = render.RACE_COLUMNS
    HINT = "Enter: read the pair"

    def header(self) -> Text:
        races = self.trace.races
        if not races:
            return Text("No races in this trace.", self.pal.success)
        return line((f"{len(races)} races", self.pal.error),
                    "  — both accesses, both stacks, where each task started, and the missing edge")

    def rows(self) -> list[Row]:
        return render.race_rows(self.trace, self.pal)


class CriticalPathView(View):
    TITLE = "Critical path"
    TAB = "Critical"
    COLUMNS = render.PATH_COLUMNS

    def header(self) -> Text:
        return render.critical_header(self.trace, self.pal)

    def rows(self) -> list[Row]:
        return render.critical_rows(self.trace, self.pal)


class AuditView(View):
    TITLE = "Audit trail"
    TAB = "Audit"
    COLUMNS = render.AUDIT_COLUMNS
    HINT = "Enter: read the trail"

    def header(self) -> Text:
        n = len(self.trace.audit_trails)
        return line((f"{n} variables", self.pal.strong), ("  (racing variables first)", self.pal.muted))

    def rows(self) -> list[Row]:
        return render.audit_rows(self.trace, self.pal)


class DependenciesView(View):
    TITLE = "Dependencies"
    TAB = "Deps"
    COLUMNS = render.DEP_COLUMNS

    def header(self) -> Text:
        return render.dependency_header(self.trace, self.pal)

    def rows(self) -> list[Row]:
        return render.dependency_rows(self.trace, self.pal)


class AnomaliesView(View):
    TITLE = "Anomalies"
    COLUMNS = render.ANOMALY_COLUMNS

    def header(self) -> Text:
        return render.anomaly_header(self.trace, self.pal)

    def rows(self) -> list[Row]:
        return render.anomaly_rows(self.trace, self.pal)


VIEWS: tuple[tuple[str, type[View]], ...] = (
    ("dashboard", DashboardView),
    ("events", EventsView),
    ("tree", TreeView),
    ("timeline", TimelineView),
    ("races", RacesView),
    ("critical", CriticalPathView),
    ("audit", AuditView),
    ("deps", DependenciesView),
    ("anomalies", AnomaliesView),
)
