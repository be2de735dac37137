"""``raceway tui``: browse a live server (``--server URL``) or a saved session (``SESSION.json``).

On a dumb terminal (``TERM=dumb``), or when stdin/stdout is not a terminal, a plain-text summary
is printed instead of starting the full-screen app (``--plain`` forces it).
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import TYPE_CHECKING

from raceway_server.cli import CommandError

if TYPE_CHECKING:
    from raceway_server.tui.source import Source

HELP = "terminal UI over a server or a saved session JSON"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("session", nargs="?", help="session JSON written by pytest --raceway-json")
    parser.add_argument("-s", "--server", default=None,
                        help="server URL (env RACEWAY_SERVER, default http://127.0.0.1:8080)")
    parser.add_argument("--api-key", default=None,
                        help="API key, sent as Authorization: Bearer (env RACEWAY_API_KEY)")
    parser.add_argument("--timeout", type=float, default=10.0, help="request timeout in seconds")
    parser.add_argument("--interval", type=float, default=5.0,
                        help="auto-refresh interval in seconds (default 5)")
    parser.add_argument("--no-auto", action="store_true",
                        help="start with auto-refresh off (the a key toggles it)")
    parser.add_argument("--theme", choices=("auto", "dark", "light"), default="auto",
                        help="colours (auto: from COLORFGBG when the terminal sets it, else dark)")
    parser.add_argument("--plain", action="store_true",
                        help="print a plain-text summary instead of starting the app")


def is_dumb_terminal() -> bool:
    """No full-screen app when the terminal cannot do it or the output goes to a pipe/file."""
    term = os.environ.get("TERM", "")
    if term in ("dumb", "unknown") or (not term and os.name != "nt"):
        return True
    return not (sys.stdin.isatty() and sys.stdout.isatty())


def theme_name(choice: str) -> str | None:
    """Textual theme for ``--theme``; ``auto`` reads COLORFGBG ("fg;bg", bg 7 or 15 is light)."""
    if choice == "dark":
        return "textual-dark"
    if choice == "light":
        return "textual-light"
    bg = os.environ.get("COLORFGBG", "").split(";")[-1]
    if bg in ("7", "15"):
        return "textual-light"
    return None


def open_source(args: argparse.Namespace) -> Source:
    from raceway_server.tui.source import SourceError

    if args.session and args.server:
        raise CommandError("give either a session file or --server, not both")
    try:
        if args.session:
            from raceway_server.tui.session_source import SessionSource

            return SessionSource(args.session)
        from raceway_server.commands._client import server_url
        from raceway_server.tui.server_source import ServerSource

        key = args.api_key or os.environ.get("RACEWAY_API_KEY")
        return ServerSource(server_url(args), key, timeout=args.timeout)
    except SourceError as exc:
        raise CommandError(str(exc)) from None


def run(args: argparse.Namespace) -> int:
    if args.interval <= 0:
        raise CommandError(f"--interval must be positive, got {args.interval}")
    source = open_source(args)
    from raceway_server.tui.source import SourceError

    if args.plain or is_dumb_terminal():
        from raceway_server.tui.plain import plain_summary

        try:
            plain_summary(source, sys.stdout)
        except SourceError as exc:
            raise CommandError(str(exc)) from None
        finally:
            source.close()
        return 0
    try:
        from raceway_server.tui.app import RacewayApp
    except ImportError as exc:
        raise CommandError(f"the terminal UI needs Textual: pip install 'raceway[tui]' ({exc})") from None
    app = RacewayApp(
        source,
        interval=args.interval,
        auto=False if args.no_auto else None,
        theme=theme_name(args.theme),
    )
    app.run()
    return 0
