"""``raceway health``: service health within a time window."""

from __future__ import annotations

import argparse

from raceway_server.commands._client import add_client_arguments, print_json, request, table

HELP = "service health (activity within a time window)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_client_arguments(parser)
    parser.add_argument("--window", type=int, default=60, help="window in minutes (default 60)")


def run(args: argparse.Namespace) -> int:
    data = request(args, "/api/services/health", {"time_window_minutes": args.window})
    if args.json:
        print_json(data)
        return 0
    table(
        ["SERVICE", "STATUS", "TRACES", "MIN SINCE LAST", "LAST ACTIVITY"],
        [
            (
                s["name"],
                s["status"],
                s["trace_count"],
                round(s["minutes_since_last_activity"], 1),
                s["last_activity"],
            )
            for s in data
        ],
    )
    return 0
