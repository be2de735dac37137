"""The TUI against a real server on 127.0.0.1 (uvicorn in a thread, and `raceway serve`)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable

import httpx
import pytest
from tui_builders import body, quiet_trace, shop_trace
from tui_pilot import SIZE, cli, settle, text_of
from tui_server import LiveServer

from raceway_server.storage.throwaway import free_port
from raceway_server.tui.app import RacewayApp
from raceway_server.tui.server_source import ServerSource
from raceway_server.tui.views import View


def shop_server(serve: Callable[..., LiveServer], **settings: object) -> tuple[LiveServer, str]:
    """12 quiet traces (anomaly baselines) and one shop trace with a race and a slow query."""
    server = serve(**settings)
    shop = shop_trace(query_ms=50.0)
    server.post(body([quiet_trace(1.0 + i * 0.01) for i in range(12)] + [shop]))
    return server, shop.id


@pytest.mark.asyncio
async def test_views_over_http(serve: Callable[..., LiveServer]) -> None:
    server, shop = shop_server(serve)
    app = RacewayApp(ServerSource(server.url), auto=False)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        assert app.error is None
        rows = {r.key: r for r in app.trace_table.rows_data}
        assert len(rows) == 13
        assert rows[shop].cells[0].plain == "!" and rows[shop].cells[1].plain == "1"
        assert sum(1 for r in rows.values() if r.cells[0].plain == "!") == 1
        dash = text_of(app, "dashboard")
        assert "traces 13" in dash and "races 1" in dash and "write-write" in dash
        assert "orders: 2 / 1 / 1" in dash  # hotspot with its race

        await pilot.press("l", "enter")  # open the race from the dashboard
        await settle(pilot)
        assert app.selected == shop and app.current_view.id == "races"
        races = text_of(app, "races")
        for part in ("write-write", "orders", "handler-1", "handler-2", "shop/orders.py:20",
                     "shop/orders.py:31", "#0 place_order", "Missing happens-before edge"):
            assert part in races, part

        await pilot.press("2")
        events = text_of(app, "events")
        assert "POST http://backend/orders" in events and "HTTP 201" in events
        await pilot.press("8")
        deps = text_of(app, "deps")
        assert "frontend | backend | 1 | HttpCall 1" in deps
        assert "backend (3 events)" in deps and "frontend (2 events)" in deps
        await pilot.press("9")
        anomalies = text_of(app, "anomalies")
        assert "Critical | FunctionCall(query) | 50.00" in anomalies
        await pilot.press("6")
        assert "Critical path" in text_of(app, "critical")
        await pilot.press("7")
        assert "orders | 2 | 2 | 2 | 2" in text_of(app, "audit")
        await pilot.press("4")
        lanes = {r.cells[0].plain: r.cells[1].plain for r in app.query_one("#timeline", View).table.rows_data}
        assert len(lanes) == 3
        assert [name.rsplit("/", 1)[1] for name in lanes if "!" in lanes[name]] in (
            ["handler-1", "handler-2"], ["handler-2", "handler-1"])


@pytest.mark.asyncio
async def test_refresh_and_auto_refresh_pick_up_new_traces(serve: Callable[..., LiveServer]) -> None:
    server = serve()
    first = quiet_trace()
    server.post(body([first]))
    app = RacewayApp(ServerSource(server.url), interval=0.5, auto=False)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        assert [r.key for r in app.trace_table.rows_data] == [first.id]
        assert app.selected == first.id
        racing = shop_trace()
        server.post(body([racing]))
        await settle(pilot)
        assert len(app.trace_table.rows_data) == 1  # auto-refresh is off
        await pilot.press("r")
        await settle(pilot)
        keys = [r.key for r in app.trace_table.rows_data]
        assert set(keys) == {first.id, racing.id}
        assert app.selected == first.id  # the selection follows the trace, not the row index
        assert "races 1" in text_of(app, "dashboard")

        await pilot.press("a")
        assert app.auto
        third = shop_trace()
        server.post(body([third]))
        deadline = time.monotonic() + 10
        while third.id not in {r.key for r in app.trace_table.rows_data}:
            assert time.monotonic() < deadline, "auto-refresh did not pick up the new trace"
            await pilot.pause(0.2)
        await settle(pilot)
        flagged = {r.key for r in app.trace_table.rows_data if r.cells[0].plain == "!"}
        assert flagged == {racing.id, third.id}

        # the selected trace grows: its views are reloaded
        more = quiet_trace()
        for e in more.events:
            e.trace_id = first.trace_id
        server.post(body([more]))
        deadline = time.monotonic() + 10
        while app.detail is None or len(app.detail.events) != 4:
            assert time.monotonic() < deadline, "the grown trace was not reloaded"
            await pilot.pause(0.2)


@pytest.mark.asyncio
async def test_unreachable_server_is_a_message_not_a_traceback() -> None:
    url = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    app = RacewayApp(ServerSource(url, timeout=2), auto=False)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        assert app.error is not None and "cannot reach the Raceway server" in app.error
        assert url in app.error and "raceway serve" in app.error
        assert "Cannot load data" in text_of(app, "dashboard")
        await pilot.press("r", "2", "tab")  # still alive and usable
        await settle(pilot)
        assert app.is_running and app.current_view.id == "tree"
        assert "Select a trace" in text_of(app, "tree")


@pytest.mark.asyncio
async def test_wrong_or_missing_api_key(serve: Callable[..., LiveServer]) -> None:
    server, shop = shop_server(serve, api_keys=("s3cret",))
    for key, expected in ((None, "requires an API key"), ("nope", "rejected the API key")):
        app = RacewayApp(ServerSource(server.url, key), auto=False)
        async with app.run_test(size=SIZE) as pilot:
            await settle(pilot)
            assert app.error is not None and expected in app.error, app.error
            assert "RACEWAY_API_KEY" in app.error
            assert app.snapshot is None
    app = RacewayApp(ServerSource(server.url, "s3cret"), auto=False)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        assert app.error is None and shop in {r.key for r in app.trace_table.rows_data}


def test_not_a_raceway_server_and_bad_urls(serve: Callable[..., LiveServer]) -> None:
    from raceway_server.tui.source import SourceError

    with pytest.raises(SourceError, match="must start with http:// or https://"):
        ServerSource("ftp://example.org")
    server = serve()
    source = ServerSource(server.url.replace("http://", ""))  # scheme added
    assert source.url == server.url and source.snapshot().traces == []
    with pytest.raises(SourceError, match="trace_id|Invalid trace ID|HTTP 400"):
        source.trace("not-a-uuid")



def test_cli_plain_summary_against_raceway_serve() -> None:
    """`raceway serve` as its own process, `raceway tui --server` into a pipe (plain text)."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("RACEWAY")}
    env["RACEWAY_API_KEYS"] = "k1"
    proc = subprocess.Popen([sys.executable, "-m", "raceway_server", "serve", "--port", str(port)],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(url + "/health", headers={"Authorization": "Bearer k1"}).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
            assert time.monotonic() < deadline, "raceway serve did not start"
            time.sleep(0.1)
        shop = shop_trace()
        r = httpx.post(url + "/events", content=body([shop]),
                       headers={"Authorization": "Bearer k1", "Content-Type": "application/json"})
        assert r.status_code == 200, r.text

        ok = cli("--server", url, RACEWAY_API_KEY="k1")
        assert ok.returncode == 0, ok.stderr
        assert f"Raceway — {url}" in ok.stdout and "races 1" in ok.stdout
        assert "! frontend, backend" not in ok.stdout  # services are listed sorted
        assert "! backend, frontend" in ok.stdout and shop.id in ok.stdout
        assert "RACE #1 write-write on orders" in ok.stdout and "\x1b[" not in ok.stdout

        denied = cli("--server", url, "--api-key", "wrong")
        assert denied.returncode == 2 and "rejected the API key" in denied.stderr
        assert "Traceback" not in denied.stderr
    finally:
        proc.terminate()
        proc.wait(timeout=20)
    gone = cli("--server", url)
    assert gone.returncode == 2 and "cannot reach the Raceway server" in gone.stderr
    assert "Traceback" not in gone.stderr


def test_race_flags_and_reports_come_from_the_api(serve: Callable[..., LiveServer]) -> None:
    """No probing: the first snapshot knows every trace's race count (``race_count``), the
    dashboard's races and severities (``/api/races``) and the hotspot races; opening a trace
    reads the full reports and tasks from the bundle alone, the same as the session export."""
    server = serve()
    shops = [shop_trace() for _ in range(3)]
    quiet = quiet_trace()
    server.post(body([*shops, quiet]))
    source = ServerSource(server.url)
    snap = source.snapshot()
    assert {r.trace_id: r.race_count for r in snap.traces} == {**{s.id: 1 for s in shops}, quiet.id: 0}
    assert snap.totals["races"] == 3 and snap.totals["racing_traces"] == 3
    assert snap.totals["by_severity"] == {"write-write": 3}
    assert [h["races"] for h in snap.hotspots if h["variable"] == "orders"] == [3]
    assert [h["races"] for h in snap.hotspots if h["variable"] == "stock"] == [0]
    assert snap.notes == []
    listed = httpx.get(server.url + "/api/races").json()["data"]["races"]
    assert [(r["trace_id"], r["id"]) for r in snap.recent_races] == [(r["trace_id"], r["id"]) for r in listed]
    assert all(r["test"] == f"trace:{r['trace_id']}" and r["status"] == "new" for r in snap.recent_races)

    detail = source.trace(shops[0].id)
    export = httpx.get(f"{server.url}/api/traces/{shops[0].id}/export").json()
    assert detail.races == export["races"]  # identical to what the session export reports
    assert detail.tasks == export["traces"][shops[0].id]["tasks"]
    assert len(detail.races) == 1 and detail.races[0]["variable"] == "orders"
    names = {detail.races[0][side]["task"].rsplit("/", 1)[1] for side in ("first", "second")}
    assert names == {"handler-1", "handler-2"}


@pytest.mark.asyncio
async def test_events_of_the_original_sdks(serve: Callable[..., LiveServer]) -> None:
    from tui_builders import original_trace

    server = serve()
    legacy = original_trace()
    server.post(body([legacy]))
    app = RacewayApp(ServerSource(server.url), auto=False)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        assert app.error is None and app.selected == legacy.id
        await pilot.press("3")
        tree = app.query_one("#tree", View).table.rows_data
        cells = [r.cells[0].plain for r in tree]
        rows = [(c.strip(" ▾▸"), len(c) - len(c.lstrip(" ▾▸"))) for c in cells]
        names = [name for name, _ in rows]
        assert names == ["thread-1", "HttpRequest", "FunctionCall", "StateChange",
                         "thread-2", "StateChange"]
        depths = [d for _, d in rows]
        assert depths[0] < depths[1] < depths[2] < depths[3]  # parent_id nesting
        assert depths[4] == depths[0] and depths[5] == depths[1]
        assert "3 events" in tree[0].cells[1].plain
        await pilot.press("2")
        events = text_of(app, "events")
        assert "GET /cart" in events and "load_cart() @ cart.py:9" in events
        for view in ("4", "5", "6", "7", "8", "9", "1"):
            await pilot.press(view)
            assert app.error is None
        assert "thread-1" in text_of(app, "timeline")


@pytest.mark.asyncio
async def test_empty_server_every_key_is_safe(serve: Callable[..., LiveServer]) -> None:
    server = serve()
    app = RacewayApp(ServerSource(server.url), auto=False)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        for key in "123456789":
            await pilot.press(key)
        await pilot.press("slash", "x", "enter", "n", "N", "f", "c", "space", "plus", "less_than_sign",
                          "enter", "g", "G", "j", "k", "h", "l", "l", "j", "left_square_bracket", "r")
        await settle(pilot)
        assert app.is_running and app.error is None
        assert "No traces yet." in text_of(app, "events")
        assert "traces 0" in text_of(app, "dashboard")
