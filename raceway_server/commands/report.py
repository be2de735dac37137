"""``raceway report SESSION.json -o report.html``: render a saved session as one HTML file."""

from __future__ import annotations

import argparse
from pathlib import Path

from raceway_server.cli import CommandError

HELP = "render a session JSON (pytest --raceway-json, raceway export --format session) as HTML"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("session", help="raceway-session JSON file ('-' reads stdin)")
    parser.add_argument("-o", "--output", help="HTML file to write (default: SESSION with .html)")
    parser.add_argument("--title", help="page title (default: 'Raceway report')")


def run(args: argparse.Namespace) -> int:
    import sys

    import orjson

    from raceway_server.report import ReportError, check_session, load_session, write_report

    try:
        if args.session == "-":
            try:
                session = orjson.loads(sys.stdin.buffer.read())
            except orjson.JSONDecodeError as exc:
                raise ReportError(f"stdin is not JSON: {exc}") from None
            check_session(session)
        else:
            session = load_session(args.session)
    except ReportError as exc:
        raise CommandError(str(exc)) from None
    if args.output:
        output = Path(args.output)
    elif args.session != "-":
        output = Path(args.session).with_suffix(".html")
    else:
        raise CommandError("--output is required when the session is read from stdin")
    try:
        path = write_report(session, output, title=args.title)
    except ReportError as exc:
        raise CommandError(str(exc)) from None
    except OSError as exc:
        raise CommandError(f"cannot write {output}: {exc.strerror or exc}") from None
    summary = session.get("summary", {}) if isinstance(session.get("summary"), dict) else {}
    print(
        f"raceway report: {path.resolve().as_uri()} "
        f"({summary.get('races', len(session.get('races', [])))} races, {path.stat().st_size} bytes)"
    )
    return 0
