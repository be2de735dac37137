"""Render a session document as ONE self-contained HTML file (no network, no CDN).

Layout of the page: inline ``<style>``, the summary rendered by jinja2 (readable without JS),
the data as ``<script type="application/json" id="raceway-data">`` and our own JS inline, which
draws the race cards and the per-test trace views lazily. The JSON has ``<``, ``>``, ``&``,
U+2028 and U+2029 escaped, so no string from user code can end the script element or the JS
string it lands in. Output is deterministic for one input (sorted keys, session order, the
session's own ``generated_at``); the version and date sit in elements of their own.
"""

from __future__ import annotations

import importlib.metadata
import os
import re
from pathlib import Path
from typing import Any

import jinja2
import orjson
from markupsafe import Markup

from report_templates import CORE_SCRIPTS, REPORT_SCRIPT, STYLESHEET, TEMPLATE_DIR, asset

from .compact import encode_trace
from .session import ParsedTrace, ReportError, check_session
from .sources import SourceReader, access_snippet

_ESCAPES = (
    (b"&", b"\\u0026"),
    (b"<", b"\\u003c"),
    (b">", b"\\u003e"),
    ("\u2028".encode(), b"\\u2028"),
    ("\u2029".encode(), b"\\u2029"),
)
_ANCHOR = re.compile(r"race-[A-Za-z0-9_-]{1,64}\Z")


def script_json(obj: Any) -> str:
    """JSON safe inside ``<script type="application/json">`` and as a JS literal."""
    raw = orjson.dumps(obj, option=orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS)
    for needle, replacement in _ESCAPES:
        raw = raw.replace(needle, replacement)
    return raw.decode()


def version() -> str:
    try:
        return importlib.metadata.version("pytest-raceway")
    except importlib.metadata.PackageNotFoundError:
        from raceway_server.service import VERSION

        return VERSION


_env: jinja2.Environment | None = None


def environment() -> jinja2.Environment:
    """The shared jinja2 environment (autoescape on for every template)."""
    global _env
    if _env is None:
        _env = jinja2.Environment(
            loader=jinja2.FileSystemLoader(str(TEMPLATE_DIR)),
            autoescape=True,
            undefined=jinja2.StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
            keep_trailing_newline=True,
        )
    return _env


def inline_assets() -> dict[str, Markup]:
    """CSS and JS as trusted markup (our own files, checked for ``</script``)."""
    return {
        "css": Markup(asset(STYLESHEET)),
        "js": Markup("\n".join(asset(name) for name in (*CORE_SCRIPTS, REPORT_SCRIPT))),
    }


def anchor_of(race: dict[str, Any]) -> str:
    anchor = race.get("anchor")
    if isinstance(anchor, str) and _ANCHOR.match(anchor):
        return anchor
    return f"race-{race.get('id')}"


def _roots(session: dict[str, Any]) -> list[Path]:
    roots = []
    settings = session.get("settings")
    if isinstance(settings, dict):
        for key in ("rootdir", "root", "cwd"):
            value = settings.get(key)
            if isinstance(value, str) and value:
                roots.append(Path(value))
    roots.append(Path(os.getcwd()))
    return roots


def build_report_data(session: dict[str, Any], *, title: str | None = None) -> dict[str, Any]:
    """The JSON blob the report's JS reads (also what the golden tests compare)."""
    check_session(session)
    from raceway_server.engine.anomalies import Baselines

    reader = SourceReader(_roots(session))
    races: list[dict[str, Any]] = []
    by_trace: dict[str, list[dict[str, Any]]] = {}
    for race in session.get("races", []):
        doc = dict(race)
        doc["anchor"] = anchor_of(race)
        doc["source"] = {
            side: access_snippet(reader, race[side])
            for side in ("first", "second", "stale_read")
            if isinstance(race.get(side), dict)
        }
        races.append(doc)
        by_trace.setdefault(str(race.get("trace_id")), []).append(race)
    parsed = [ParsedTrace(str(tid), doc) for tid, doc in session.get("traces", {}).items()]
    baselines = Baselines()
    for p in parsed:
        baselines.observe_many(p.events)
    traces = [
        encode_trace(p, by_trace.get(p.trace_id, []), baselines)
        for p in sorted(parsed, key=lambda p: (p.test, p.trace_id))
    ]
    problems = [
        f"trace {t['trace_id']} ({t['test']}): {t['bad_events']} unreadable events skipped; "
        f"first: {t['first_error']}"
        for t in traces
        if t["bad_events"]
    ]
    return {
        "meta": {
            "title": title or "Raceway report",
            "generated_at": session.get("generated_at"),
            "version": version(),
            "settings": session.get("settings", {}),
        },
        "summary": session.get("summary", {}),
        "tests": session.get("tests", []),
        "races": races,
        "traces": traces,
        "problems": problems,
    }


def render_report(session: dict[str, Any], *, title: str | None = None) -> str:
    """One self-contained HTML page for a ``raceway-session`` v1 document."""
    data = build_report_data(session, title=title)
    template = environment().get_template("report.html.j2")
    summary = data["summary"] if isinstance(data["summary"], dict) else {}
    return template.render(
        title=data["meta"]["title"],
        generated_at=data["meta"]["generated_at"] or "unknown",
        version=data["meta"]["version"],
        summary=summary,
        races=data["races"],
        tests=[t for t in data["tests"] if isinstance(t, dict)],
        anchors={r.get("id"): r["anchor"] for r in data["races"]},
        problems=data["problems"],
        data_json=Markup(script_json(data)),
        **inline_assets(),
    )


def write_report(session: dict[str, Any], path: str | os.PathLike[str], *, title: str | None = None) -> Path:
    """Render and write the report atomically (a crashed run leaves no half file)."""
    out = Path(path)
    text = render_report(session, title=title)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, out)
    return out


def write_html(session: dict[str, Any], path: str | os.PathLike[str]) -> Path:
    """The name the pytest plugin looks for (docs/internals.md): same as :func:`write_report`."""
    return write_report(session, path)


__all__ = [
    "ReportError",
    "build_report_data",
    "environment",
    "inline_assets",
    "render_report",
    "script_json",
    "write_html",
    "write_report",
]
