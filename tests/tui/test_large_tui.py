"""A large trace: the table holds a window of rows, navigation and search still cover all."""

from __future__ import annotations

from pathlib import Path

import pytest
from tui_pilot import SIZE, settle

from raceway_server.tui.app import RacewayApp
from raceway_server.tui.session_source import SessionSource
from raceway_server.tui.views import View


@pytest.mark.asyncio
async def test_large_trace_is_windowed_but_fully_navigable(tmp_path: Path) -> None:
    from tui_builders import big_session

    path = tmp_path / "big.json"
    big_session(path, 2400)
    app = RacewayApp(SessionSource(path))
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("2", "l")
        events = app.query_one("#events", View)
        table = events.table
        total = len(app.detail.events)  # type: ignore[union-attr]
        assert len(table.rows_data) == total > 2400
        assert table.row_count == 1000  # only a window is in the DataTable
        await pilot.press("G")
        assert table.index == total - 1 and table.current is table.rows_data[-1]
        assert "join w3" in table.current.search
        await pilot.press("g")
        assert table.index == 0 and table.window_start == 0
        for _ in range(3):
            edge = table.window_start + table.row_count - 1
            table.go(edge)
            await pilot.press("j")  # past the window's edge: the window slides
            assert table.index == edge + 1
        assert table.window_start > 0 and table.current is table.rows_data[table.index]
        assert "Write" in events.detail.content.plain  # type: ignore[union-attr]
        await pilot.press("slash", *"slot96 ", "enter")
        first = table.index
        assert "slot96 " in table.rows_data[first].search
        await pilot.press("N")
        assert table.index != first
        assert "slot96 " in table.current.search  # type: ignore[union-attr]
