"""Templates, CSS and our own JS shared by the HTML report and the web UI (package data).

The files live flat in this directory so the ``package-data`` globs ship them. ``asset(name)``
reads one of them; the JS and CSS are inlined into the report and served by the web UI.
"""

from __future__ import annotations

from pathlib import Path

TEMPLATE_DIR = Path(__file__).resolve().parent

# Order matters: the core defines window.Raceway, the views use it, the apps start last.
CORE_SCRIPTS = ("raceway-core.js", "raceway-views.js", "raceway-trace.js")
REPORT_SCRIPT = "raceway-report.js"
UI_SCRIPT = "raceway-ui.js"
STYLESHEET = "raceway.css"


def asset(name: str) -> str:
    """The text of one shipped asset; a name outside this directory is an error."""
    path = (TEMPLATE_DIR / name).resolve()
    if path.parent != TEMPLATE_DIR or not path.is_file():
        raise FileNotFoundError(f"no report asset named {name!r} in {TEMPLATE_DIR}")
    text = path.read_text(encoding="utf-8")
    if "</script" in text.lower() and name.endswith(".js"):
        raise ValueError(f"report asset {name} contains '</script' and cannot be inlined")
    return text


__all__ = ["CORE_SCRIPTS", "REPORT_SCRIPT", "STYLESHEET", "TEMPLATE_DIR", "UI_SCRIPT", "asset"]
