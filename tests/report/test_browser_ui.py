"""The live web UI in real headless Chromium against a real uvicorn server behind an API key."""

from __future__ import annotations

import itertools
import json
import time
from collections import Counter
from typing import Any

import httpx
import pytest
from cdp import Browser, CDPError, Page
from raceway_sdk.protocol.events import dumps_batch, uuid_str
from sessions import HOSTILE_TASK, HOSTILE_VAR, Builder, counter_trace, hostile_trace

from raceway_server.web import CSP, PUBLIC_PATHS

KEY = "s3cret-key"


def loaded(page: Page, name: str, timeout: float = 45) -> None:
    try:
        page.wait_for(
            f"document.documentElement.getAttribute('data-page') === {json.dumps(name)}"
            " && document.documentElement.getAttribute('data-loaded') === '1'",
            timeout,
        )
    except CDPError as exc:  # say where the page is instead (an error page names its cause)
        where = page.eval(
            "[location.hash, document.documentElement.getAttribute('data-page'),"
            " document.documentElement.getAttribute('data-loaded'),"
            " (document.querySelector('main') || document.body).textContent.slice(0, 300)]"
        )
        raise CDPError(f"page {name!r} did not load; hash, page, loaded, text: {where}") from exc


def post(server: Any, builder: Builder) -> None:
    r = httpx.post(server.url + "/events", content=dumps_batch(builder.events),
                   headers={"X-Raceway-Key": KEY, "Content-Type": "application/json"})
    assert r.status_code == 200, r.text


@pytest.fixture
def locked(ui_server: Any) -> Any:
    return ui_server(api_keys=[KEY])


def login(page: Page, server: Any, key: str = KEY) -> None:
    page.goto(server.url + "/", "document.documentElement.getAttribute('data-page') === 'login'")
    page.type_text("input[name=api-key]", key)
    page.click("form.login button[type=submit]")


def test_shell_and_assets_are_public_and_locked_down(locked: Any) -> None:
    shell = httpx.get(locked.url + "/")
    assert shell.status_code == 200 and shell.headers["content-security-policy"] == CSP
    assert "<script>" not in shell.text  # no inline script: the CSP forbids it
    for path in sorted(PUBLIC_PATHS - {"/"}):
        r = httpx.get(locked.url + path)
        assert r.status_code == 200 and r.headers["content-type"].startswith(("text/javascript", "text/css")), path
        again = httpx.get(locked.url + path, headers={"If-None-Match": r.headers["etag"]})
        assert again.status_code == 304
    assert httpx.get(locked.url + "/api/traces").status_code == 401  # the data is not public


def test_login_list_live_refresh_and_trace_view(browser: Browser, locked: Any) -> None:
    ids = itertools.count(1)
    counter = counter_trace(ids, 1)
    post(locked, counter)
    page = browser.page()
    try:
        login(page, locked, "wrong")
        page.wait_for("document.querySelector('form.login .error').textContent.includes('not accepted')")
        page.eval("document.querySelector('input[name=api-key]').value = ''")
        page.type_text("input[name=api-key]", KEY)
        page.click("form.login button[type=submit]")
        loaded(page, "traces")
        assert page.eval("document.querySelectorAll('.trace-table tbody tr').length") == 1
        # races found before the page opened are counted too (the server's race_count)
        listed = httpx.get(locked.url + "/api/traces", headers={"X-Raceway-Key": KEY}).json()
        count = listed["data"]["traces"][0]["race_count"]
        assert count >= 1
        cell = "document.querySelector('.trace-table tbody tr td:last-child').textContent"
        assert page.eval(cell) == str(count)
        page.wait_for("document.querySelector('#ui-status .live-dot.on')")
        # live refresh: a trace ingested after the page loaded appears without a reload
        hostile = hostile_trace(ids, 2)
        post(locked, hostile)
        page.wait_for("document.querySelectorAll('.trace-table tbody tr').length === 2", 30)
        newest = json.dumps(uuid_str(hostile.trace_id))
        page.wait_for(f"document.querySelector('.trace-table tbody tr').textContent.includes({newest})")
        page.wait_for("RacewayUI.app.races.length >= 1", 30)
        # search and the min-events filter
        page.type_text("input[name=q]", uuid_str(counter.trace_id)[-6:])
        assert page.eval("document.querySelectorAll('.trace-table tbody tr').length") == 1
        page.eval("(() => { const s = document.querySelector('select[name=min-events]'); s.value = '5'; s.dispatchEvent(new Event('change')); })()")
        page.wait_for("RacewayUI.app.minEvents === 5 && RacewayUI.app.loading === 0"
                      " && document.querySelectorAll('.trace-table tbody tr').length === 1")
        # the trace view from the wire events: same lanes and edges as the report draws
        page.click(".trace-link")
        loaded(page, "trace")
        got = page.eval(
            "(() => { const s = document.querySelector('svg.dag'); return {lanes: Array.from(s.querySelectorAll('g.lane')).map(g => g.getAttribute('data-lane')),"
            " edges: Array.from(s.querySelectorAll('line.edge:not(.stub)')).map(e => e.getAttribute('data-type'))}; })()"
        )
        assert got["lanes"] == ["p1/1", "p1/2", "p1/3"]
        assert Counter(got["edges"]) == Counter({"fork": 2, "join": 2, "lock": 1, "queue": 1})
        page.click(".trace-races .race-chip")
        page.wait_for("document.querySelectorAll('svg.dag g.node.racing').length === 2 && document.querySelector('svg.dag .missing-edge')")
        page.click(".tabs button[data-tab=variables]")
        page.wait_for("document.querySelectorAll('.audit-table tbody tr').length === 4")
        page.click(".tabs button[data-tab=critical]")
        page.wait_for("document.querySelector('.panel-critical table')")
        assert page.errors() == []
    finally:
        page.close()


def test_system_pages_deep_links_and_hostile_data(browser: Browser, locked: Any) -> None:
    ids = itertools.count(100)
    page = browser.page()
    try:
        login(page, locked)
        loaded(page, "traces")
        page.eval("location.hash = '#/races'")
        loaded(page, "races")
        page.wait_for("document.querySelector('#ui-status .live-dot.on')")
        page.eval("window.__pwned = undefined")
        post(locked, counter_trace(ids, 7))
        hostile = hostile_trace(ids, 8)
        post(locked, hostile)
        # races arrive live as cards, hostile names included
        page.wait_for("document.querySelectorAll('#live-races .race-card').length === 3", 30)
        expect = {
            "services": "document.querySelectorAll('svg.svc-graph g.svc-node').length === 2",
            "health": "document.querySelectorAll('.stat').length === 5",
            "hotspots": "document.querySelector('table.grid tbody tr') !== null",
            "performance": "document.querySelectorAll('.stat').length === 5",
            "traces": "document.querySelectorAll('.trace-table tbody tr').length === 2",
        }
        for name, check in expect.items():
            page.eval(f"location.hash = '#/{name}'")
            loaded(page, name)
            assert page.eval(check), name
        # a deep link straight to a race of the hostile trace (the key is kept for this tab)
        tid = uuid_str(hostile.trace_id)
        race_id = httpx.get(f"{locked.url}/api/traces/{tid}/export", headers={"X-Raceway-Key": KEY}).json()["races"][0]["id"]
        page.goto(f"{locked.url}/#/traces/{tid}/race/{race_id}", "document.documentElement.getAttribute('data-loaded') === '1'")
        loaded(page, "trace")
        page.wait_for("document.querySelectorAll('svg.dag g.node.racing').length === 2")
        for tab in ("timeline", "variables", "services", "anomalies", "events"):
            page.click(f".tabs button[data-tab={tab}]")
        time.sleep(0.3)
        assert page.eval("window.__pwned") is None
        assert page.eval("document.querySelectorAll('img, iframe, [onerror], [onload]').length") == 0
        text = page.eval("document.body.textContent")
        assert HOSTILE_VAR in text and HOSTILE_TASK in text
        # CSV export neutralises spreadsheet formulas and quotes separators
        csv = page.eval("Raceway.csv(['a', 'b'], [['=1+1', 'x,' + String.fromCharCode(34) + 'y']])")
        assert csv == 'a,b\r\n\'=1+1,"x,""y"\r\n'
        assert page.errors() == []
    finally:
        page.close()
