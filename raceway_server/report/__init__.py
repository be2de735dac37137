"""Self-contained HTML reports of a ``raceway-session`` document (see :mod:`.render`)."""

from __future__ import annotations

from .render import build_report_data, render_report, script_json, write_html, write_report
from .session import ReportError, check_session, load_session

__all__ = [
    "ReportError",
    "build_report_data",
    "check_session",
    "load_session",
    "render_report",
    "script_json",
    "write_html",
    "write_report",
]
