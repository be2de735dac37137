"""`raceway tui` as a command: plain text on dumb terminals and pipes, the app on a real tty,
clear errors for bad input; plus a session written by the real pytest plugin."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from rich.style import Style
from textual.color import Color
from textual.theme import BUILTIN_THEMES
from tui_pilot import SIZE, cli, settle, text_of

from raceway_server.commands.tui import theme_name
from raceway_server.tui.app import RacewayApp
from raceway_server.tui.session_source import SessionSource
from raceway_server.tui.text import contrast, palette_from_theme
from raceway_server.tui.views import View


def select_trace(app: RacewayApp, needle: str) -> None:
    table = app.trace_table
    table.go(next(i for i, r in enumerate(table.rows_data) if needle in r.search))


def test_dumb_terminal_prints_plain_summary(plugin_session: Path, tmp_path: Path) -> None:
    """`raceway tui SESSION` on a real plugin session, stdout a pipe and TERM=dumb."""
    doc = json.loads(plugin_session.read_text())
    assert doc["races"], "the racy suite must produce races"
    proc = cli(str(plugin_session), TERM="dumb")
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert "\x1b[" not in out  # no escape sequences at all
    assert f"races {doc['summary']['races']}" in out
    for race in doc["races"]:
        assert f"RACE #{race['id']} {race['severity']} on {race['variable']}" in out
        assert f"! {race['test']}" in out
    assert out.count("Missing happens-before edge") == len(doc["races"])

    missing = cli(str(tmp_path / "nope.json"))
    assert missing.returncode == 2
    assert "cannot read session file" in missing.stderr and "Traceback" not in missing.stderr
    bad = tmp_path / "bad.json"
    bad.write_text('{"format": "something-else"}')
    wrong = cli(str(bad))
    assert wrong.returncode == 2 and "session.format must be 'raceway-session'" in wrong.stderr
    both = cli(str(plugin_session), "--server", "http://127.0.0.1:1")
    assert both.returncode == 2 and "not both" in both.stderr


@pytest.mark.asyncio
async def test_plugin_session_races_are_all_shown(plugin_session: Path) -> None:
    doc = json.loads(plugin_session.read_text())
    app = RacewayApp(SessionSource(plugin_session))
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        assert len(app.trace_table.rows_data) == len(doc["tests"])
        await pilot.press("5")
        for race in doc["races"]:
            select_trace(app, race["trace_id"])
            await settle(pilot)
            rows = app.query_one("#races", View).table.rows_data
            assert f"race:{race['id']}" in {r.key for r in rows}
            assert race["variable"] in text_of(app, "races")


def _in_pty(args: list[str], term: str, keys: bytes, want: bytes, timeout: float = 30.0
            ) -> tuple[int, bytes]:
    """Run ``raceway tui ARGS`` on a pseudo-terminal (a real tty), type ``keys`` once ``want``
    has been drawn; returns the exit status and everything written to the terminal."""
    import fcntl
    import os
    import pty
    import select
    import struct
    import subprocess
    import sys
    import termios
    import time

    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 140, 0, 0))
    env = {k: v for k, v in os.environ.items() if not k.startswith("RACEWAY")}
    env["TERM"] = term
    proc = subprocess.Popen([sys.executable, "-m", "raceway_server", "tui", *args],
                            stdin=slave, stdout=slave, stderr=slave, env=env, close_fds=True)
    os.close(slave)
    out = b""
    sent = False
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 0.1)
            if ready:
                try:
                    chunk = os.read(master, 65536)
                except OSError:
                    chunk = b""
                if not chunk and proc.poll() is not None:
                    break
                out += chunk
            if not sent and want in out:
                time.sleep(0.3)
                os.write(master, keys)
                sent = True
            if proc.poll() is not None and not ready:
                break
        return proc.wait(timeout=10), out
    finally:
        if proc.poll() is None:
            proc.kill()
        os.close(master)


def test_real_terminal_starts_the_app_and_dumb_one_does_not(session_file: Path) -> None:
    code, out = _in_pty([str(session_file), "--no-auto"], "xterm-256color", b"q", b"Dashboard")
    assert code == 0, out[-2000:]
    assert b"\x1b[" in out and b"test_threads_race" in out and b"Traceback" not in out
    code, out = _in_pty([str(session_file)], "dumb", b"", b"\x00never")
    assert code == 0
    assert b"\x1b[" not in out and b"Missing happens-before edge" in out


def test_theme_choice_and_palettes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLORFGBG", "0;15")  # dark text on a white background
    assert theme_name("auto") == "textual-light"
    monkeypatch.setenv("COLORFGBG", "15;0")
    assert theme_name("auto") is None  # Textual's default (dark)
    assert theme_name("light") == "textual-light" and theme_name("dark") == "textual-dark"
    for name in ("textual-dark", "textual-light", "solarized-light", "nord", "gruvbox"):
        theme = BUILTIN_THEMES[name]
        pal = palette_from_theme(theme)
        background = Color.parse(theme.background or ("#121212" if theme.dark else "#efefef"))
        for style in (pal.error, pal.warning, pal.success, pal.accent):
            color = Style.parse(style).color
            assert color is not None and color.triplet is not None, style
            ratio = contrast(Color(*color.triplet), background)
            assert ratio >= 4.5, (name, style, ratio)  # readable on dark and light themes
    # the light theme's own amber warning would not be: it is darkened
    light = BUILTIN_THEMES["textual-light"]
    assert contrast(Color.parse(light.warning), Color.parse(light.background)) < 4.5
