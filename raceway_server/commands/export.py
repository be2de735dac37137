"""``raceway export -t ID -o FILE``: save a trace (bundle, session JSON, events or ShiViz)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from raceway_server.cli import CommandError
from raceway_server.commands._client import add_client_arguments, request

HELP = "export a trace (or all traces as a session) to a file"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_client_arguments(parser, json_flag=False)
    parser.add_argument("-t", "--trace-id", help="trace UUID (omit with --format session: all traces)")
    parser.add_argument("-o", "--output", required=True, help="file to write ('-' for stdout)")
    parser.add_argument(
        "--format",
        choices=("bundle", "session", "events", "shiviz"),
        default="bundle",
        help="bundle: the /api/traces/:id JSON (the original's export); session: raceway-session "
        "JSON; events: the wire batch; shiviz: a ShiViz log",
    )


def run(args: argparse.Namespace) -> int:
    if args.format == "bundle":
        if not args.trace_id:
            raise CommandError("--trace-id is required for --format bundle")
        text = json.dumps(request(args, f"/api/traces/{args.trace_id}"), indent=2) + "\n"
    elif args.trace_id:
        response = request(args, f"/api/traces/{args.trace_id}/export", {"format": args.format}, raw=True)
        text = response.text
    elif args.format == "session":
        text = request(args, "/api/export/session", raw=True).text
    else:
        raise CommandError(f"--trace-id is required for --format {args.format}")
    if args.output == "-":
        print(text, end="")
    else:
        Path(args.output).write_text(text, encoding="utf-8")
        print(f"wrote {args.output} ({len(text)} bytes)")
    return 0
