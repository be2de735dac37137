"""The TUI on a saved session from a real ``pytest --raceway --raceway-json`` run (Pilot)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from textual.widgets import Input
from tui_pilot import SIZE, settle, text_of

from raceway_server.tui.app import RacewayApp
from raceway_server.tui.session_source import SessionSource
from raceway_server.tui.views import View


def select_trace(app: RacewayApp, needle: str) -> None:
    table = app.trace_table
    index = next(i for i, r in enumerate(table.rows_data) if needle in r.search)
    table.go(index)


@pytest.mark.asyncio
async def test_trace_list_flags_racing_tests_and_dashboard(session_file: Path) -> None:
    app = RacewayApp(SessionSource(session_file))
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        rows = {r.data.label.split(" [")[0]: r for r in app.trace_table.rows_data}
        assert set(rows) == {
            "tests/test_shop.py::test_threads_race",
            "tests/test_shop.py::test_lost_update",
            "tests/test_shop.py::test_quiet",
        }
        doc = json.loads(session_file.read_text())
        per_test = {t["nodeid"]: len(t["races"]) for t in doc["tests"]}
        assert per_test["tests/test_shop.py::test_threads_race"] >= 2  # the engine found them
        threads = rows["tests/test_shop.py::test_threads_race"]
        assert threads.cells[0].plain == "!"
        assert threads.cells[1].plain == str(per_test["tests/test_shop.py::test_threads_race"])
        assert threads.data.outcome == "failed" and "[failed]" in threads.cells[3].plain
        quiet = rows["tests/test_shop.py::test_quiet"]
        assert quiet.cells[0].plain == " " and quiet.cells[1].plain == "0"
        assert quiet.cells[2].plain == "-"  # events are stored only for racing traces
        assert app.trace_table.rows_data[-1].key == quiet.key  # racing traces first
        dash = text_of(app, "dashboard")
        assert f"races {len(doc['races'])}" in dash and "racing traces 2" in dash
        sev = doc["summary"]["by_severity"]
        order = [k for k in ("write-write", "lost-update", "read-write") if k in sev]
        assert ", ".join(f"{k} {sev[k]}" for k in order) in dash
        on_total = sum(1 for r in doc["races"] if r["variable"] == "cart.total")
        assert f"cart.total: 4 / 1 / {on_total}" in dash and "Account.balance: 4 / 1 / 1" in dash
        assert "lost-update | Account.balance | deposit / deposit" in dash
        assert app.error is None


@pytest.mark.asyncio
async def test_each_view_shows_the_trace(session_file: Path) -> None:
    app = RacewayApp(SessionSource(session_file))
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        select_trace(app, "test_threads_race")
        await settle(pilot)
        assert app.detail is not None and app.detail.title.endswith("test_threads_race")

        await pilot.press("2")
        events = text_of(app, "events")
        assert "start thread checkout-a" in events and "join checkout-b" in events
        racing = [ln for ln in events.splitlines() if ln.endswith("[RACE]")]
        involved = {r[side]["event_id"] for r in app.detail.races for side in ("first", "second")}
        assert len(racing) == len(involved) >= 4
        assert all("cart." in ln for ln in racing)

        await pilot.press("tab")  # tree
        tree = text_of(app, "tree")
        lines = tree.splitlines()
        spawn = next(i for i, ln in enumerate(lines) if "start thread checkout-a" in ln)
        child = next(i for i, ln in enumerate(lines)
                     if "checkout-a (" in ln and "thread started at tests/test_shop.py:14" in ln)
        assert child == spawn + 1  # the started thread nests under its spawn
        indent = len(lines[child]) - len(lines[child].lstrip())
        assert indent > len(lines[spawn]) - len(lines[spawn].lstrip())

        await pilot.press("tab")  # timeline
        view = app.query_one("#timeline", View)
        lanes = {r.cells[0].plain: r.cells[1].plain for r in view.table.rows_data}
        assert set(lanes) == {"MainThread", "checkout-a", "checkout-b"}
        assert "!" in lanes["checkout-a"] and "!" in lanes["checkout-b"]
        assert "!" not in lanes["MainThread"]
        assert lanes["MainThread"].count("+") == 2 and lanes["MainThread"].count("<") == 2
        assert app.focused is app.trace_table  # view keys work wherever the focus is
        await pilot.press("plus")
        assert "(zoom 2x" in text_of(app, "timeline")
        await pilot.press("greater_than_sign")
        assert view.pan == 0.25  # type: ignore[attr-defined]
        zoomed = {r.cells[0].plain: r.cells[1].plain for r in view.table.rows_data}
        assert zoomed["MainThread"] != lanes["MainThread"]
        await pilot.press("minus")
        assert "(zoom 1x" in text_of(app, "timeline") and view.pan == 0.0  # type: ignore[attr-defined]

        await pilot.press("tab")  # races
        races = text_of(app, "races")
        assert races.count("checkout-a ↔ checkout-b") == len(app.detail.races) >= 2
        for part in ("First access", "Second access", "stack:", "#0 add_item", "value 0",
                     "thread checkout-a was started at tests/test_shop.py:14",
                     "thread checkout-b was started at tests/test_shop.py:15",
                     "Missing happens-before edge", "No happens-before edge between"):
            assert part in races, part
        # the clocks say why: each side's clock has not seen the other task's access
        shown = app.query_one("#races", View).table.rows_data[0].data
        first, second = shown["first"]["task"], shown["second"]["task"]
        assert f"{second}'s clock had seen {first} only up to 0" in races

        await pilot.press("tab")  # critical path
        crit = text_of(app, "critical")
        assert "Critical path" in crit and "AsyncSpawn" in crit and "AsyncAwait" in crit

        await pilot.press("tab")  # audit trail
        audit = text_of(app, "audit")
        assert audit.splitlines()[1].startswith("cart.total | 4 | 2 | 2 | ")  # racing first
        assert "Audit trail of cart.total" in audit and "RACE 1" in audit and "✗" in audit

        await pilot.press("tab")  # dependencies
        assert "Services python" in text_of(app, "deps")
        await pilot.press("tab")  # anomalies
        assert "No anomalies" in text_of(app, "anomalies")
        await pilot.press("tab")  # wraps to the dashboard
        assert app.current_view.id == "dashboard"
        await pilot.press("shift+tab")
        assert app.current_view.id == "anomalies"


@pytest.mark.asyncio
async def test_lost_update_race_and_dashboard_enter(session_file: Path) -> None:
    app = RacewayApp(SessionSource(session_file))
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("l")  # into the dashboard's race table
        dash = app.query_one("#dashboard", View).table
        assert app.focused is dash
        index = next(i for i, r in enumerate(dash.rows_data) if r.data["severity"] == "lost-update")
        dash.go(index)
        await pilot.press("enter")
        await settle(pilot)
        assert app.current_view.id == "races"
        assert app.detail is not None and app.detail.title.endswith("test_lost_update")
        races = text_of(app, "races")
        assert "lost-update" in races and "Stale read" in races and "Account.balance" in races
        assert "asyncio deposit" in races


@pytest.mark.asyncio
async def test_vim_navigation_search_and_help(session_file: Path) -> None:
    app = RacewayApp(SessionSource(session_file))
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        table = app.trace_table
        assert app.focused is table and table.index == 0
        await pilot.press("j")
        assert table.index == 1
        await pilot.press("G")
        assert table.index == len(table.rows_data) - 1
        await pilot.press("k")
        assert table.index == len(table.rows_data) - 2
        await pilot.press("g")
        assert table.index == 0
        await settle(pilot)

        await pilot.press("slash")
        assert isinstance(app.focused, Input)
        await pilot.press("j", "k", "q", "G")  # typed into the box: no move, no quit
        assert app.focused.value == "jkqG" and table.index == 0 and app.is_running
        await pilot.press("escape")
        assert app.focused is table
        await pilot.press("slash", *"quiet", "enter")
        assert app.focused is table
        assert "test_quiet" in table.current.search  # type: ignore[union-attr]
        await settle(pilot)
        assert app.detail is not None and app.detail.title.endswith("test_quiet")
        assert "stores events only for traces with races" in " ".join(app.detail.notes)

        await pilot.press("slash", *"test_", "enter")  # matches every row: n / N walk them
        first = table.index
        await pilot.press("n")
        assert table.index == (first + 1) % len(table.rows_data)
        await pilot.press("N")
        assert table.index == first

        select_trace(app, "test_threads_race")
        await settle(pilot)
        await pilot.press("2", "l")  # events view, focus its table
        events = app.query_one("#events", View)
        assert app.focused is events.table
        total = len(events.table.rows_data)
        await pilot.press("f")  # filter by the first kind present
        kind = events.kind  # type: ignore[attr-defined]
        assert kind is not None
        assert 0 < len(events.table.rows_data) < total
        assert all(r.data.kind == kind for r in events.table.rows_data)
        await pilot.press("c")
        assert len(events.table.rows_data) == total
        await pilot.press("l")
        assert app.focused is events.detail_pane
        await pilot.press("h", "h")
        assert app.focused is table
        before = table.index
        await pilot.press("left_square_bracket")
        assert table.index == before - 1
        await pilot.press("right_square_bracket")
        assert table.index == before
        await settle(pilot)

        await pilot.press("3", "l")  # tree: Enter folds a task
        tree = app.query_one("#tree", View)
        before = len(tree.table.rows_data)
        assert tree.table.current is not None and tree.table.current.key.startswith("task:")
        await pilot.press("enter")
        assert len(tree.table.rows_data) == 1 < before
        await pilot.press("space")
        assert len(tree.table.rows_data) == before

        await pilot.press("question_mark")
        assert app.screen.__class__.__name__ == "HelpScreen"
        await pilot.press("escape")
        assert app.screen.__class__.__name__ != "HelpScreen"
        await pilot.press("t")
        assert app.current_theme.dark is False
        await pilot.press("q")
    assert app.return_code == 0



def test_session_file_rewritten_is_picked_up(session_file: Path, tmp_path: Path) -> None:
    copy = tmp_path / "s.json"
    doc = json.loads(session_file.read_text())
    copy.write_text(json.dumps(doc))
    source = SessionSource(copy)
    assert len(source.snapshot().traces) == 3
    doc["tests"] = doc["tests"][:1]
    doc["traces"] = {k: v for k, v in doc["traces"].items() if k == doc["tests"][0]["trace_id"]}
    copy.write_text(json.dumps(doc) + " ")
    assert len(source.snapshot().traces) == 1


