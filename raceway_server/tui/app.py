"""The Textual application: trace list on the left, the views on the right, keyboard first.

Data comes from a :class:`~.source.Source` in worker threads (a slow server or a large session
never freezes the screen); results are applied on the UI thread only if they still match what
the user has selected. Failures are shown in the status line and the affected view, never as a
traceback: ``r`` retries.
"""

from __future__ import annotations

import time
from typing import Any

from rich.text import Text
from textual import work
from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.timer import Timer
from textual.widget import Widget
from textual.widgets import ContentSwitcher, DataTable, Input, Static, Tab, Tabs
from textual.worker import get_current_worker

from . import render
from .source import Snapshot, Source, SourceError, TraceDetail
from .text import Palette, line, palette_from_theme
from .views import VIEWS, RowTable, View

HELP = """\
Raceway TUI — keys

  j / k, ↓ / ↑      move down / up in the focused list (or scroll the detail pane)
  g / G             first / last row
  h / l             focus the pane to the left / right (traces ▸ table ▸ detail)
  [ / ]             previous / next trace
  Enter             open: race from the dashboard, fold in the tree, read the detail
  Tab / Shift+Tab   next / previous view;  1 … 9 jump to a view
  /                 search the focused list;  n / N next / previous match
  r                 refresh now;  a  auto-refresh on / off
  t                 dark / light colours
  ?                 this help (Esc closes);  q  quit

Views
  1 Dashboard    totals, hotspots, most recent races
  2 Events       every event; f cycles the kind filter, c clears it
  3 Tree         tasks nested where they were started, with their events; space folds
  4 Timeline     one lane per task; + / - zoom, < / > (or , / .) pan; ! marks a racing access
  5 Races        each racing pair: both accesses and stacks, task origins, the missing edge
  6 Critical path   the longest chain of happens-before work
  7 Audit trail  every access to a variable, ✓ ordered / ✗ concurrent with the previous
  8 Dependencies calls between services
  9 Anomalies    timed events far from their operation's usual duration
"""


class HelpScreen(ModalScreen[None]):
    BINDINGS = [Binding("escape,question_mark,q,f1", "dismiss", "close")]
    DEFAULT_CSS = """
    HelpScreen { align: center middle; }
    HelpScreen > VerticalScroll { width: 104; max-width: 100%; height: auto; max-height: 90%;
                                   border: round $accent; background: $surface; padding: 0 1; }
    """

    def compose(self) -> ComposeResult:
        with VerticalScroll():
            yield Static(Text(HELP), id="help-text")

    async def action_dismiss(self, result: Any = None) -> None:
        self.dismiss(None)


class StaticTabs(Tabs):
    """Tabs that only show the current view (mouse clicks work; the keyboard never lands here)."""

    can_focus = False


class RacewayApp(App[None]):
    TITLE = "Raceway"
    CSS = """
    #header { height: 1; background: $primary-muted; padding: 0 1; }
    #body { height: 1fr; }
    #left { width: 34%; min-width: 24; border-right: solid $primary-muted; }
    #left > .title { height: 1; padding: 0 1; text-style: bold; }
    #traces { height: 1fr; }
    #right { width: 1fr; }
    #views { height: 1fr; }
    #status { height: auto; max-height: 3; padding: 0 1; background: $panel; }
    #search { dock: bottom; display: none; }
    #search.open { display: block; }
    RowTable:focus { border: none; }
    """

    BINDINGS = [
        Binding("q", "quit", "quit"),
        Binding("question_mark,f1", "help", "help"),
        Binding("r", "refresh", "refresh"),
        Binding("a", "toggle_auto", "auto-refresh"),
        Binding("t", "toggle_theme", "theme"),
        Binding("tab", "switch_view(1)", "next view", priority=True),
        Binding("shift+tab", "switch_view(-1)", "previous view", priority=True),
        Binding("j", "move(1)", "down"),
        Binding("k", "move(-1)", "up"),
        Binding("g,home", "edge(0)", "top"),
        Binding("G,shift+g,end", "edge(1)", "bottom"),
        Binding("h", "pane(-1)", "left pane"),
        Binding("l", "pane(1)", "right pane"),
        Binding("left_square_bracket", "step_trace(-1)", "previous trace"),
        Binding("right_square_bracket", "step_trace(1)", "next trace"),
        Binding("slash", "search", "search"),
        Binding("n", "find(1)", "next match"),
        Binding("N,shift+n", "find(-1)", "previous match"),
        Binding("escape", "close_search", "close search", show=False),
        *[Binding(str(n), f"show_view({n - 1})", show=False) for n in range(1, len(VIEWS) + 1)],
        *[Binding(",".join(keys), f"view_key({action!r})", show=False)
          for _, cls in VIEWS for action, keys in cls.KEYS.items()],
    ]

    def __init__(
        self,
        source: Source,
        interval: float = 5.0,
        auto: bool | None = None,
        theme: str | None = None,
    ) -> None:
        super().__init__()
        self.source = source
        self.interval = max(0.5, float(interval))
        self.auto = source.live if auto is None else auto
        self._theme_name = theme
        self.snapshot: Snapshot | None = None
        self.detail: TraceDetail | None = None
        self.selected: str | None = None
        self.snapshot_message = "Loading…"
        self.trace_message = ""
        self.error: str | None = None
        self.updated_at: float | None = None
        self.palette: Palette = Palette()
        self.search_text = ""
        self._search_target: RowTable | None = None
        self._dirty: set[str] = set()
        self._load_timer: Timer | None = None
        self._auto_timer: Timer | None = None
        self._want_race: Any = None
        self._details: dict[str, tuple[tuple[int, int | None], TraceDetail]] = {}

    # --- layout -------------------------------------------------------------------------------

    def compose(self) -> ComposeResult:
        yield Static("", id="header", markup=False)
        with Horizontal(id="body"):
            with Vertical(id="left"):
                yield Static("Traces", classes="title", markup=False)
                yield RowTable(render.TRACE_COLUMNS, id="traces")
            with Vertical(id="right"):
                yield StaticTabs(*[Tab(f"{n} {cls.TAB or cls.TITLE}", id=f"tab-{name}")
                                   for n, (name, cls) in enumerate(VIEWS, 1)], id="tabs")
                with ContentSwitcher(id="views", initial="dashboard"):
                    for name, cls in VIEWS:
                        yield cls(id=name)
        yield Static("", id="status", markup=False)
        yield Input(placeholder="search (Enter: find, Esc: cancel)", id="search")

    def on_mount(self) -> None:
        if self._theme_name:
            self.theme = self._theme_name
        self.palette = palette_from_theme(self.current_theme)
        self._auto_timer = self.set_interval(self.interval, self._auto_tick, pause=not self.auto)
        self.trace_table.focus()
        self.render_chrome()
        for view in self.views():
            view.refresh_view()
        self.action_refresh()

    @property
    def trace_table(self) -> RowTable:
        return self.query_one("#traces", RowTable)

    def views(self) -> list[View]:
        return [self.query_one(f"#{name}", View) for name, _ in VIEWS]

    @property
    def current_view(self) -> View:
        switcher = self.query_one("#views", ContentSwitcher)
        return self.query_one(f"#{switcher.current}", View)

    # --- chrome -------------------------------------------------------------------------------

    def render_chrome(self) -> None:
        pal = self.palette
        snap = self.snapshot
        parts: list[str | tuple[str, str]] = [("Raceway", pal.strong), f"  {self.source.label}"]
        if snap is not None:
            races = snap.totals.get("races", 0)
            parts += [f"  · {len(snap.traces)} traces · ",
                      (f"{races} races", pal.error if races else pal.success)]
        if self.source.live or self.auto:
            parts.append(f"  · auto-refresh {'on' if self.auto else 'off'} ({self.interval:g} s)")
        if self.updated_at is not None:
            parts.append(f"  · updated {time.strftime('%H:%M:%S', time.localtime(self.updated_at))}")
        self.query_one("#header", Static).update(line(*parts))
        view = self.current_view
        status = Text()
        if self.error:
            status.append_text(line(("error: ", pal.error), self.error, ("  (r retries)", pal.muted)))
            status.append("\n")
        trace = self.detail.title or self.detail.trace_id if self.detail else "no trace selected"
        status.append_text(line((f"[{view.TITLE}] ", pal.accent), f"{trace}   ",
                                (view.HINT + "   " if view.HINT else "", ""),
                                ("j/k move  h/l pane  Tab view  / search  ? help  q quit", pal.muted)))
        self.query_one("#status", Static).update(status)

    def show_error(self, message: str | None) -> None:
        """Status line always; a toast only when the error is new (auto-refresh repeats it)."""
        if message and message != self.error:
            self.notify(message, severity="error", timeout=8)
        self.error = message
        self.render_chrome()

    # --- loading ------------------------------------------------------------------------------

    def action_refresh(self) -> None:
        self.load_snapshot(force=True)

    def _auto_tick(self) -> None:
        if not any(w.group == "snapshot" and w.is_running for w in self.workers):
            self.load_snapshot(force=False)

    @work(thread=True, exclusive=True, group="snapshot")
    def load_snapshot(self, force: bool) -> None:
        worker = get_current_worker()
        try:
            snap = self.source.snapshot()
        except SourceError as exc:
            message = str(exc)
        except Exception as exc:  # noqa: BLE001 - shown to the user, never a traceback
            message = f"unexpected {type(exc).__name__}: {exc}"
        else:
            if not worker.is_cancelled:
                self.call_from_thread(self.apply_snapshot, snap, force)
            return
        if not worker.is_cancelled:
            self.call_from_thread(self.snapshot_failed, message)

    def snapshot_failed(self, message: str) -> None:
        if self.snapshot is None:
            self.snapshot_message = f"Cannot load data: {message}"
            self.current_view.refresh_view()
            self.query_one("#dashboard", View).refresh_view()
        self.show_error(message)

    def apply_snapshot(self, snap: Snapshot, force: bool) -> None:
        old = {t.trace_id: t for t in self.snapshot.traces} if self.snapshot else {}
        self.snapshot = snap
        self.updated_at = time.time()
        self.error = None
        keep = self.selected
        self.trace_table.set_rows(render.trace_rows(snap, self.palette), keep)
        self.query_one("#dashboard", View).refresh_view()
        current = self.trace_table.current
        if current is None:
            self.selected = None
            self.detail = None
            self.trace_message = "No traces yet." if not snap.traces else ""
            self._mark_trace_views()
        elif current.key != self.selected or force:
            self.select_trace(current.key, delay=0.0, force=force)
        else:
            row = next((t for t in snap.traces if t.trace_id == current.key), None)
            before = old.get(current.key)
            if row is not None and (before is None or (row.event_count, row.race_count)
                                    != (before.event_count, before.race_count)):
                self.select_trace(current.key, delay=0.0)
        self.render_chrome()

    def select_trace(self, trace_id: str, delay: float = 0.15, force: bool = False) -> None:
        """Load ``trace_id`` after ``delay`` (debounce while the cursor moves); ``force``
        bypasses the cache (an explicit refresh)."""
        self.selected = trace_id
        if self._load_timer is not None:
            self._load_timer.stop()
        if delay <= 0:
            self.load_trace(trace_id, force)
        else:
            self._load_timer = self.set_timer(delay, lambda: self.load_trace(trace_id))

    def _row_version(self, trace_id: str) -> tuple[int, int | None]:
        snap = self.snapshot
        row = next((t for t in snap.traces if t.trace_id == trace_id), None) if snap else None
        return (row.event_count, row.race_count) if row else (-1, None)

    def load_trace(self, trace_id: str, force: bool = False) -> None:
        if trace_id != self.selected:
            return
        cached = self._details.get(trace_id)
        if not force and cached is not None and cached[0] == self._row_version(trace_id):
            self.apply_detail(cached[1])
            return
        self.trace_message = f"Loading trace {trace_id}…"
        self._fetch_trace(trace_id)

    @work(thread=True, exclusive=True, group="trace")
    def _fetch_trace(self, trace_id: str) -> None:
        worker = get_current_worker()
        try:
            detail = self.source.trace(trace_id)
            render.warm(detail, self.palette)  # the big views' rows, off the UI thread
        except SourceError as exc:
            message = str(exc)
        except Exception as exc:  # noqa: BLE001 - shown to the user, never a traceback
            message = f"unexpected {type(exc).__name__}: {exc}"
        else:
            if not worker.is_cancelled:
                self.call_from_thread(self.apply_detail, detail)
            return
        if not worker.is_cancelled:
            self.call_from_thread(self.trace_failed, trace_id, message)

    def trace_failed(self, trace_id: str, message: str) -> None:
        if trace_id != self.selected:
            return
        self.detail = None
        self.trace_message = f"Cannot load trace {trace_id}: {message}"
        self._mark_trace_views()
        self.show_error(message)

    def apply_detail(self, detail: TraceDetail) -> None:
        if detail.trace_id != self.selected:
            return  # the user moved on while it loaded
        self._details[detail.trace_id] = (self._row_version(detail.trace_id), detail)
        if len(self._details) > 32:
            self._details.pop(next(iter(self._details)))
        self.detail = detail
        self.trace_message = ""
        snap = self.snapshot
        row = next((t for t in snap.traces if t.trace_id == detail.trace_id), None) if snap else None
        if snap is not None and row is not None and row.race_count is None:
            # "?" in the list until now: the opened trace tells its race count
            row.race_count = sum(1 for r in detail.races if r.get("status") != "suppressed")
            self.trace_table.set_rows(render.trace_rows(snap, self.palette), detail.trace_id)
        self._mark_trace_views()
        if self._want_race is not None:
            self.query_one("#races", View).refresh_view(keep=f"race:{self._want_race}")
            self._dirty.discard("races")
            self._want_race = None
        self.render_chrome()

    def _mark_trace_views(self) -> None:
        """Refresh the visible per-trace view now, the others when they are shown."""
        current = self.current_view
        for view in self.views():
            if view.PER_TRACE:
                self._dirty.add(view.id or "")
        if current.PER_TRACE:
            current.refresh_view()
            self._dirty.discard(current.id or "")
        self.render_chrome()

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        if event.data_table is self.trace_table:
            row = self.trace_table.current
            if row is not None and row.key != self.selected:
                self.select_trace(row.key)

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        if event.data_table is self.trace_table:  # Enter on a trace: go read it
            if self.current_view.id == "dashboard":
                self.action_show_view(1)
            self.current_view.table.focus()

    def open_race(self, trace_id: str, race_id: Any) -> None:
        """Dashboard Enter: select the race's trace and show the race."""
        index = next((i for i, r in enumerate(self.trace_table.rows_data) if r.key == trace_id), None)
        if index is None:
            self.notify(f"trace {trace_id} is not in the list", severity="warning")
            return
        self._want_race = race_id
        self.action_show_view([n for n, _ in VIEWS].index("races"))
        self.trace_table.go(index)
        if trace_id == self.selected and self.detail is not None and self.detail.trace_id == trace_id:
            self.apply_detail(self.detail)
        else:
            self.select_trace(trace_id, delay=0.0)
        self.current_view.table.focus()

    # --- views and panes ------------------------------------------------------------------------

    def action_show_view(self, index: int) -> None:
        name = VIEWS[index % len(VIEWS)][0]
        had_focus = self.focused in (self.current_view.table, self.current_view.detail_pane)
        self.query_one("#views", ContentSwitcher).current = name
        self.query_one("#tabs", Tabs).active = f"tab-{name}"
        view = self.current_view
        if name in self._dirty or not view.PER_TRACE:
            view.refresh_view()
            self._dirty.discard(name)
        if had_focus:
            view.table.focus()
        self.render_chrome()

    def action_view_key(self, action: str) -> None:
        """A view's own key (f, c, space, + - < >): acts on the current view, if it has it."""
        view = self.current_view
        if action in view.KEYS:
            getattr(view, f"action_{action}")()

    def action_switch_view(self, step: int) -> None:
        if isinstance(self.screen, ModalScreen):
            return
        names = [n for n, _ in VIEWS]
        self.action_show_view(names.index(self.current_view.id or "dashboard") + step)

    def on_tabs_tab_activated(self, event: Tabs.TabActivated) -> None:
        name = (event.tab.id or "").removeprefix("tab-")
        if name and name != self.current_view.id:
            self.action_show_view([n for n, _ in VIEWS].index(name))

    def _panes(self) -> list[Widget]:
        view = self.current_view
        return [self.trace_table, view.table, view.detail_pane]

    def action_pane(self, step: int) -> None:
        panes = self._panes()
        index = panes.index(self.focused) if self.focused in panes else 0
        panes[max(0, min(len(panes) - 1, index + step))].focus()

    def action_move(self, step: int) -> None:
        focused = self.focused
        if isinstance(focused, DataTable):
            focused.action_cursor_down() if step > 0 else focused.action_cursor_up()
        elif isinstance(focused, VerticalScroll):
            focused.scroll_relative(y=step, animate=False)

    def action_edge(self, end: int) -> None:
        focused = self.focused
        if isinstance(focused, RowTable):
            focused.go(len(focused.rows_data) - 1 if end else 0)
        elif isinstance(focused, DataTable) and focused.row_count:
            focused.move_cursor(row=focused.row_count - 1 if end else 0)
        elif isinstance(focused, VerticalScroll):
            focused.scroll_end(animate=False) if end else focused.scroll_home(animate=False)

    def action_step_trace(self, step: int) -> None:
        table = self.trace_table
        table.go(table.index + step)

    # --- search -------------------------------------------------------------------------------

    def action_search(self) -> None:
        focused = self.focused
        self._search_target = focused if isinstance(focused, RowTable) else self.current_view.table
        box = self.query_one("#search", Input)
        box.add_class("open")
        box.value = ""
        box.focus()

    def action_close_search(self) -> None:
        box = self.query_one("#search", Input)
        if box.has_class("open"):
            box.remove_class("open")
            (self._search_target or self.trace_table).focus()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.search_text = event.value.strip()
        self.action_close_search()
        if self.search_text:
            self.action_find(1)

    def action_find(self, direction: int) -> None:
        if not self.search_text:
            self.notify("nothing to search for: press / first", severity="warning")
            return
        focused = self.focused
        table = focused if isinstance(focused, RowTable) else self._search_target or self.current_view.table
        if not table.rows_data:
            self.notify("this list is empty", severity="warning")
            return
        found = table.find(self.search_text, direction > 0)
        if found is None:
            self.notify(f"no match for {self.search_text!r}", severity="warning")
        else:
            matches = sum(self.search_text.lower() in r.search.lower() for r in table.rows_data)
            self.notify(f"{self.search_text!r}: row {found + 1}, {matches} matching rows", timeout=2)

    # --- toggles ------------------------------------------------------------------------------

    def action_toggle_auto(self) -> None:
        self.auto = not self.auto
        if self._auto_timer is not None:
            self._auto_timer.resume() if self.auto else self._auto_timer.pause()
        self.notify(f"auto-refresh {'on' if self.auto else 'off'} (every {self.interval:g} s)", timeout=2)
        self.render_chrome()

    def action_toggle_theme(self) -> None:
        self.theme = "textual-light" if self.current_theme.dark else "textual-dark"
        self.palette = palette_from_theme(self.current_theme)
        if self.snapshot is not None:
            self.trace_table.set_rows(render.trace_rows(self.snapshot, self.palette))
        for view in self.views():
            view.refresh_view()
        self.render_chrome()

    def action_help(self) -> None:
        if not isinstance(self.screen, HelpScreen):
            self.push_screen(HelpScreen())

    def on_unmount(self) -> None:
        self.source.close()


__all__ = ["HELP", "RacewayApp"]
