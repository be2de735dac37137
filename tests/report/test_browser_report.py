"""The report in real headless Chromium: clean load, the SVGs' lanes and edges, clicks, inertness."""

from __future__ import annotations

import json
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from cdp import Browser, Page
from sessions import HOSTILE_TASK, HOSTILE_VALUE, HOSTILE_VAR, demo_session

from raceway_server.report import write_report

READY = "document.documentElement.getAttribute('data-ready') === '1'"
COUNTER_TRACE = "5eed0000-0000-0000-0000-000000000001"


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("report")
    return write_report(demo_session(root), root / "report.html")


@pytest.fixture
def page(browser: Browser, report: Path) -> Any:
    p = browser.page()
    p.goto(report.as_uri(), READY)
    yield p
    p.close()


def dag(page: Page) -> dict[str, Any]:
    return dict(page.eval(
        "(() => { const s = document.querySelector('details.trace[open] svg.dag');"
        " return {lanes: Array.from(s.querySelectorAll('g.lane')).map(g => g.getAttribute('data-lane')),"
        " edges: Array.from(s.querySelectorAll('line.edge:not(.stub)')).map(e => e.getAttribute('data-type')),"
        " racing: Array.from(s.querySelectorAll('g.node.racing')).map(g => Number(g.getAttribute('data-i'))),"
        " missing: s.querySelectorAll('.missing-edge').length, nodes: s.querySelectorAll('g.node').length}; })()"
    ))


def test_loads_clean_and_draws_cards(page: Page) -> None:
    assert page.errors() == []
    assert page.eval("document.querySelectorAll('.race-card').length") == 3
    assert page.eval("document.querySelector('#race-2 .sev').textContent") == "write-write"
    source = page.eval("document.querySelector('#race-2 pre.source .hit').textContent")
    assert source.endswith("counter = value + 1  # write\n")


def test_full_dag_has_every_happens_before_edge(page: Page) -> None:
    page.click(f"#trace-{COUNTER_TRACE} > summary")
    page.wait_for("document.querySelector('details.trace[open] svg.dag')")
    got = dag(page)
    assert got["lanes"] == ["p1/1", "p1/2", "p1/3"]
    assert got["nodes"] == 17 and got["racing"] == [] and got["missing"] == 0
    # fork x2, lock L (worker-1 -> worker-2), queue Q (worker-2 -> main), join x2 (task ends -> main)
    assert Counter(got["edges"]) == Counter({"fork": 2, "join": 2, "lock": 1, "queue": 1})
    assert page.errors() == []


def test_clicking_a_race_highlights_its_pair(page: Page) -> None:
    page.click("#race-2 .show-trace")
    page.wait_for("document.querySelector('details.trace[open] svg.dag .missing-edge')")
    got = dag(page)
    ids = page.eval("(() => { const r = RacewayReport.data.races[1]; return [r.first.event_id, r.second.event_id]; })()")
    expected = page.eval(
        "(() => { const d = RacewayReport.data.traces[0]; return " + json.dumps(ids)
        + ".map(id => d.events.findIndex(e => e[0] === id)); })()"
    )
    assert sorted(got["racing"]) == sorted(expected) and got["missing"] == 1
    assert page.eval("document.querySelector('details.trace[open] .race-chip.active').getAttribute('data-race')") == "2"
    # the timeline marks the same pair, and zooming halves the visible span
    page.click("details.trace[open] .tabs button[data-tab=timeline]")
    page.wait_for("document.querySelector('details.trace[open] svg.timeline')")
    assert page.eval("document.querySelector('details.trace[open] svg.timeline').getAttribute('data-lanes')") == "3"
    assert page.eval("document.querySelectorAll('details.trace[open] svg.timeline rect.tl-ev.racing').length") == 2
    before = page.eval("document.querySelector('svg.timeline .axis text:last-of-type').textContent")
    page.click("details.trace[open] .tl-holder .toolbar button[title='zoom in']")
    after = page.eval("document.querySelector('svg.timeline .axis text:last-of-type').textContent")
    assert before != after
    assert page.errors() == []


def test_filters_search_and_every_tab(page: Page) -> None:
    page.click(f"#trace-{COUNTER_TRACE} > summary")
    page.wait_for("document.querySelector('details.trace[open] svg.dag')")
    page.eval("(() => { const s = document.querySelector('details.trace[open] select[name=task]');"
              " s.value = 'p1/3'; s.dispatchEvent(new Event('change')); })()")
    assert dag(page)["lanes"] == ["p1/3"]
    for tab in ("critical", "variables", "services", "anomalies", "events"):
        page.click(f"details.trace[open] .tabs button[data-tab={tab}]")
        page.wait_for(f"document.querySelector('details.trace[open] .panel-{tab}')")
    page.type_text("details.trace[open] input.search", "shared")
    page.wait_for("document.querySelector('details.trace[open] .ev-count').textContent.startsWith('1 of 17')")
    page.click("details.trace[open] .tabs button[data-tab=variables]")
    page.wait_for("document.querySelector('details.trace[open] .audit-table')")
    rows = page.eval("Array.from(document.querySelectorAll('details.trace[open] .audit-table tbody tr')).map(r => r.cells[6].textContent)")
    assert len(rows) == 4 and sum(1 for r in rows if r.startswith("race")) == 3
    assert page.eval("document.querySelector('details.trace[open] svg.svc-graph g.svc-node').getAttribute('data-service')") == "app"
    assert page.errors() == []


def test_deep_link_and_theme(browser: Browser, report: Path) -> None:
    page = browser.page()
    try:
        page.goto(report.as_uri() + "#race-3", READY)
        assert page.eval("document.getElementById('race-3').classList.contains('target')")
        top, height = page.eval("[document.getElementById('race-3').getBoundingClientRect().top, innerHeight]")
        assert page.eval("scrollY") > 0 and 0 <= top < height
        theme = page.eval("document.documentElement.getAttribute('data-theme')")
        page.click(".theme-toggle")
        assert page.eval("document.documentElement.getAttribute('data-theme')") != theme
        assert page.errors() == []
    finally:
        page.close()


def test_hostile_names_and_values_stay_inert(page: Page) -> None:
    page.eval("window.__pwned = undefined")
    page.click("#race-3 .show-trace")
    page.wait_for("document.querySelector('details.trace[open] svg.dag .missing-edge')")
    for tab in ("timeline", "critical", "variables", "services", "anomalies", "events", "dag"):
        page.click(f"details.trace[open] .tabs button[data-tab={tab}]")
    page.click("details.trace[open] svg.dag g.node.racing")
    time.sleep(0.3)  # give any injected onerror/onload handler the chance to run
    assert page.eval("window.__pwned") is None
    assert page.eval("document.querySelectorAll('img, iframe, object, embed').length") == 0
    assert page.eval("document.querySelectorAll('svg[onload], [onerror]').length") == 0
    # ... and the strings were shown as text, not dropped
    text = page.eval("document.body.textContent")
    assert HOSTILE_VAR in text and HOSTILE_TASK in text
    assert page.eval("document.querySelector('#race-3 code.value').textContent") == json.dumps(HOSTILE_VALUE, ensure_ascii=False)
    lanes = page.eval("Array.from(document.querySelectorAll('details.trace[open] svg.dag .lane-name')).map(t => t.textContent)")
    assert any(name.startswith(HOSTILE_TASK[:17]) for name in lanes), lanes
    assert page.errors() == []
    # Control: the same string parsed as HTML does fire in this page, so the check above can fail.
    page.eval("document.body.appendChild(document.createElement('div')).innerHTML = " + json.dumps(HOSTILE_VAR))
    page.wait_for("window.__pwned === 'var'", 5)


def test_compact_and_wire_decoders_agree_and_edges_match_the_engine(page: Page, tmp_path: Path) -> None:
    """The report (compact rows) and the web UI (wire events) build the same model, and its
    cross-task edges are exactly the engine's HBGraph predecessors."""
    from raceway_sdk.protocol.events import parse_event

    from raceway_server.engine.critical_path import HBGraph

    session = demo_session(tmp_path)
    wire = session["traces"][COUNTER_TRACE]["events"]
    same = page.eval(
        "(() => { const c = Raceway.fromCompact(RacewayReport.data.traces[0]), w = Raceway.fromWire(" + json.dumps(wire) + ");"
        " const keys = ['id', 'ts', 'task', 'kind', 'name', 'op', 'loc', 'value', 'dur', 'child', 'svc', 'lock'];"
        " const bad = []; c.forEach((e, i) => keys.forEach(k => { if (JSON.stringify(e[k]) !== JSON.stringify(w[i][k])) bad.push([i, k, e[k], w[i][k]]); }));"
        " c.forEach((e, i) => { if (JSON.stringify(e.vc) !== JSON.stringify(Object.fromEntries(Object.entries(w[i].vc).sort()))) bad.push([i, 'vc']); });"
        " return {n: c.length, bad: bad}; })()"
    )
    assert same == {"n": len(wire), "bad": []}
    events = [parse_event(w, i) for i, w in enumerate(wire)]
    graph = HBGraph(events, lambda e: (e.ext["task"], e.vc))  # type: ignore[index]
    expected = sorted([p, i] for i in range(len(events)) for p in graph.cross_preds[i])
    got = page.eval("Raceway.buildModel(Raceway.fromWire(" + json.dumps(wire) + ")).edges.map(e => [e.from, e.to]).sort((a, b) => a[0] - b[0] || a[1] - b[1])")
    assert got == expected and len(got) == 6
