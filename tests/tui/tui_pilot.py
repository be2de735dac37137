"""Helpers of the Pilot tests: wait for the app, read what a view shows, run the CLI."""

from __future__ import annotations

import os
import subprocess
import sys
from typing import Any

from rich.text import Text
from textual.pilot import Pilot
from textual.widgets import Static

from raceway_server.tui.app import RacewayApp
from raceway_server.tui.views import View

SIZE = (170, 50)


async def settle(pilot: Pilot[Any]) -> None:
    """Let debounce timers fire and worker threads finish, then apply their results."""
    for _ in range(2):
        await pilot.pause(0.2)
        await pilot.app.workers.wait_for_complete()
    await pilot.pause()


def shown(widget: Static) -> str:
    content = widget.content
    return content.plain if isinstance(content, Text) else str(content)


def text_of(app: RacewayApp, name: str) -> str:
    """Everything a view shows: summary, every row, the detail of the highlighted row."""
    view = app.query_one(f"#{name}", View)
    rows = "\n".join(" | ".join(c.plain for c in r.cells) for r in view.table.rows_data)
    return f"{shown(view.summary)}\n{rows}\n{shown(view.detail)}"


def cli(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """``raceway tui ARGS`` as a subprocess: stdout is a pipe, so never the full-screen app."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("RACEWAY")}
    clean.update(env)
    return subprocess.run([sys.executable, "-m", "raceway_server", "tui", *args],
                          capture_output=True, text=True, timeout=60, env=clean)
