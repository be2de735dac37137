"""The HTML report without a browser: golden file, structure, escaping, errors, the CLI."""

from __future__ import annotations

import json
import os
import re
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st
from sessions import HOSTILE_TASK, HOSTILE_TEST, HOSTILE_VALUE, HOSTILE_VAR, demo_session

from raceway_server.cli import main as cli_main
from raceway_server.report import (
    ReportError,
    build_report_data,
    check_session,
    load_session,
    render_report,
    script_json,
    write_html,
    write_report,
)
from report_templates import CORE_SCRIPTS, REPORT_SCRIPT, asset

GOLD = Path(__file__).parent / "gold"


class Page(HTMLParser):
    """Collects tags with attributes and the text of every <script> element."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.scripts: list[tuple[dict[str, str | None], str]] = []
        self._in_script: dict[str, str | None] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))
        if tag == "script":
            self._in_script = dict(attrs)
            self.scripts.append((self._in_script, ""))

    def handle_data(self, data: str) -> None:
        if self._in_script is not None:
            attrs, text = self.scripts[-1]
            self.scripts[-1] = (attrs, text + data)

    def handle_endtag(self, tag: str) -> None:
        if tag == "script":
            self._in_script = None


def parse(html: str) -> Page:
    page = Page()
    page.feed(html)
    page.close()
    return page


def scrub(html: str, root: Path) -> str:
    """coverage.py-style scrubs: version, dates, temporary paths, and our inline assets."""
    html = re.sub(r'(<span id="raceway-version">)[^<]*', r"\1VERSION", html)
    html = re.sub(r'(<time id="generated-at">)[^<]*', r"\1DATE", html)
    html = re.sub(r'"version":"[^"]*"', '"version":"VERSION"', html)
    html = re.sub(r'"generated_at":"[^"]*"', '"generated_at":"DATE"', html)
    html = html.replace(json.dumps(str(root))[1:-1], "ROOT").replace(str(root), "ROOT")
    # The JS/CSS have their own tests; the golden file pins the page and the data.
    html = re.sub(r"<style>\n.*?</style>", "<style>CSS</style>", html, flags=re.S)
    html = re.sub(r"<script>\n.*?</script>", "<script>JS</script>", html, flags=re.S)
    return html


@pytest.fixture
def session(tmp_path: Path) -> dict[str, Any]:
    return demo_session(tmp_path)


def test_golden_report(tmp_path: Path) -> None:
    """A stored session (so engine wording changes do not move the renderer's golden file)."""
    stored = GOLD / "demo-session.json"
    if os.environ.get("RACEWAY_UPDATE_GOLD") == "1" or not stored.exists():
        fresh = demo_session(None)
        assert len(fresh["races"]) == 3, "the engine must find the demo's 3 races before a golden update"
        fresh["settings"]["rootdir"] = "ROOT"
        stored.write_bytes(orjson.dumps(fresh, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS) + b"\n")
    session = orjson.loads(stored.read_bytes())
    demo_session(tmp_path)  # writes app.py for the source snippets
    session["settings"]["rootdir"] = str(tmp_path)
    actual = scrub(render_report(session), tmp_path)
    gold = GOLD / "demo.html"
    if os.environ.get("RACEWAY_UPDATE_GOLD") == "1" or not gold.exists():
        gold.write_text(actual, encoding="utf-8")
        if os.environ.get("RACEWAY_UPDATE_GOLD") != "1":
            pytest.fail(f"golden file {gold} did not exist; written now, review and rerun")
    expected = gold.read_text(encoding="utf-8")
    if actual != expected:
        out = tmp_path / "demo.actual.html"
        out.write_text(actual, encoding="utf-8")
        pytest.fail(f"report differs from {gold}; actual saved to {out} (RACEWAY_UPDATE_GOLD=1 to accept)")


def test_output_is_deterministic(session: dict[str, Any]) -> None:
    assert render_report(session) == render_report(session)


def test_data_blob_round_trips_and_is_the_only_data(session: dict[str, Any]) -> None:
    html = render_report(session, title="CI <run>")
    page = parse(html)
    blobs = [text for attrs, text in page.scripts if attrs.get("type") == "application/json"]
    assert len(blobs) == 1 and [a.get("id") for a, _ in page.scripts if a.get("type")] == ["raceway-data"]
    data = json.loads(blobs[0])
    assert data == json.loads(orjson.dumps(build_report_data(session, title="CI <run>"), option=orjson.OPT_SORT_KEYS))
    assert data["meta"]["title"] == "CI <run>"
    assert [r["anchor"] for r in data["races"]] == ["race-1", "race-2", "race-3"]
    hostile = data["races"][2]
    assert hostile["variable"] == HOSTILE_VAR and hostile["first"]["value"] == HOSTILE_VALUE
    assert hostile["test"] == HOSTILE_TEST and hostile["first"]["task_name"] == HOSTILE_TASK
    # traces hold every event of the racing tests, none of the quiet one
    assert [t["test"] for t in data["traces"]] == ["tests/test_app.py::test_counter", HOSTILE_TEST]
    assert [len(t["events"]) for t in data["traces"]] == [17, 3]


def test_hostile_strings_never_reach_the_markup_raw(session: dict[str, Any]) -> None:
    html = render_report(session)
    for needle in ("<img src=x", "<svg onload", "window.__pwned='task'</script>", "\u2028", "\u2029", "<b>svc"):
        assert needle not in html, needle
    page = parse(html)
    assert page.scripts[-1][1].count("</script") == 0
    assert sum(1 for tag, _ in page.tags if tag == "script") == html.count("</script>") == 2
    assert not [t for t, _ in page.tags if t in ("img", "svg", "iframe", "object", "embed")]
    # the summary's user text (notes, module reasons) is escaped by jinja2
    assert "server unreachable: 127.0.0.1:9 &lt;refused&gt;" in html
    assert "extension module &lt;no source&gt;" in html


def test_self_contained_no_network(session: dict[str, Any]) -> None:
    page = parse(render_report(session))
    for tag, attrs in page.tags:
        assert tag != "link", attrs
        for key in ("src", "href", "action", "srcset"):
            assert key not in attrs or str(attrs[key]).startswith("#"), (tag, attrs)
    csp = [a["content"] for t, a in page.tags if t == "meta" and a.get("http-equiv") == "Content-Security-Policy"]
    assert csp and "default-src 'none'" in str(csp[0])


@given(st.text())
def test_script_json_escapes_everything_that_could_end_the_element(text: str) -> None:
    out = script_json({"v": text, "k<": [text]})
    assert not set(out) & {"<", ">", "&", "\u2028", "\u2029"}
    assert json.loads(out) == {"v": text, "k<": [text]}


def test_source_snippets_are_embedded(session: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    data = build_report_data(session)
    src = data["races"][1]["source"]["first"]
    assert src["file"] == "app.py" and src["line"] == 8
    assert src["lines"][src["line"] - src["start"]] == "    counter = value + 1  # write"
    # a file that cannot be found simply has no snippet
    session["settings"]["rootdir"] = "/nonexistent"
    monkeypatch.chdir("/")
    assert build_report_data(session)["races"][1]["source"]["first"] is None


def test_compact_rows_share_clocks_and_keep_analyses(session: dict[str, Any]) -> None:
    trace = build_report_data(session)["traces"][0]
    assert all(len(row) == 13 for row in trace["events"])
    assert len(trace["vcs"]) < len(trace["events"])
    kinds = {trace["strings"][row[3]] for row in trace["events"]}
    assert {"AsyncSpawn", "AsyncAwait", "LockAcquire", "LockRelease", "StateChange", "FunctionCall"} <= kinds
    cp = trace["critical_path"]
    assert cp["path"] and all(0 <= i < len(trace["events"]) for i, _ in cp["path"])
    counter = trace["audit"]["counter"]
    assert len(counter) == 4 and sum(1 for row in counter if row[2]) == 3  # three racing accesses
    assert trace["dependencies"]["services"] == [{"name": "app", "event_count": 17}]


def test_unreadable_events_are_counted_not_lost(session: dict[str, Any]) -> None:
    tid = next(iter(session["traces"]))
    session["traces"][tid]["events"].append({"id": "nope"})
    data = build_report_data(session)
    assert data["traces"][0]["bad_events"] == 1
    assert "1 unreadable events skipped" in data["problems"][0] and "events[17]" in data["problems"][0]
    assert "1 unreadable events skipped" in render_report(session)


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda s: s.update(format="pytest-json"), "session.format must be 'raceway-session'"),
        (lambda s: s.update(version=7), "session.version 7 is not supported"),
        (lambda s: s.update(races={}), "session.races must be a JSON array"),
        (lambda s: s["races"][0].pop("second"), "session.races[0].second must be an object"),
        (lambda s: s["traces"].update(x=[]), "session.traces['x'] must be an object"),
    ],
)
def test_bad_sessions_are_named(session: dict[str, Any], mutate: Any, message: str) -> None:
    mutate(session)
    with pytest.raises(ReportError, match=re.escape(message)):
        render_report(session)


def test_non_object_session() -> None:
    with pytest.raises(ReportError, match="session must be a JSON object, got list"):
        check_session([])


def test_write_report_and_plugin_alias(session: dict[str, Any], tmp_path: Path) -> None:
    out = write_report(session, tmp_path / "deep" / "r.html")
    assert out.read_text(encoding="utf-8").startswith("<!doctype html>")
    alias = write_html(session, tmp_path / "p.html")
    assert alias.read_text(encoding="utf-8") == out.read_text(encoding="utf-8")
    assert not list(tmp_path.rglob("*.tmp"))


def test_cli_report(session: dict[str, Any], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    src = tmp_path / "session.json"
    src.write_bytes(orjson.dumps(session))
    assert cli_main(["report", str(src), "-o", str(tmp_path / "out.html"), "--title", "Nightly"]) == 0
    printed = capsys.readouterr().out
    assert printed.startswith("raceway report: file://") and "3 races" in printed
    assert "<title>Nightly</title>" in (tmp_path / "out.html").read_text(encoding="utf-8")
    assert cli_main(["report", str(src)]) == 0 and (tmp_path / "session.html").exists()
    (tmp_path / "bad.json").write_text("{not json")
    assert cli_main(["report", str(tmp_path / "bad.json"), "-o", str(tmp_path / "x.html")]) == 2
    assert "is not JSON" in capsys.readouterr().err
    assert cli_main(["report", str(tmp_path / "missing.json")]) == 2
    assert "cannot read session file" in capsys.readouterr().err
    assert load_session(src)["format"] == "raceway-session"


def test_assets_are_inlinable() -> None:
    for name in (*CORE_SCRIPTS, REPORT_SCRIPT, "raceway-ui.js"):
        text = asset(name)
        assert "innerHTML" not in text and "insertAdjacentHTML" not in text and "eval(" not in text, name
    with pytest.raises(FileNotFoundError):
        asset("../pyproject.toml")


def test_original_sdk_events_render_with_engine_clocks() -> None:
    """Events from the original SDKs (no ``raceway`` extension) use the engine's clocks."""
    def event(n: int, thread: str, access: str) -> dict[str, Any]:
        return {
            "id": f"00000000-0000-4000-8000-{n:012d}", "trace_id": "11111111-1111-4111-8111-111111111111",
            "parent_id": None, "timestamp": f"2026-01-01T00:00:0{n}.000000Z",
            "kind": {"StateChange": {"variable": "x", "old_value": None, "new_value": n, "location": f"a.ts:{n}", "access_type": access}},
            "metadata": {"thread_id": thread, "process_id": 1, "service_name": "node-svc", "environment": "dev", "tags": {}, "duration_ns": None},
            "causality_vector": [], "lock_set": [],
        }
    session = {"format": "raceway-session", "version": 1, "races": [], "tests": [], "summary": {},
               "traces": {"11111111-1111-4111-8111-111111111111": {"test": "t", "events": [event(1, "t1", "Write"), event(2, "t2", "Write")]}}}
    data = build_report_data(session)
    trace = data["traces"][0]
    assert trace["bad_events"] == 0 and len(trace["events"]) == 2
    tasks = {trace["strings"][row[2]] for row in trace["events"]}
    assert len(tasks) == 2 and all(trace["vcs"][row[9]] for row in trace["events"])  # reconstructed clocks
    assert "<!doctype html>" in render_report(session)
