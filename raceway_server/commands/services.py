"""``raceway services``: services seen in event metadata."""

from __future__ import annotations

import argparse

from raceway_server.commands._client import add_client_arguments, print_json, request, table

HELP = "list services"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_client_arguments(parser)


def run(args: argparse.Namespace) -> int:
    data = request(args, "/api/services")
    if args.json:
        print_json(data)
        return 0
    table(
        ["SERVICE", "EVENTS", "TRACES"],
        [(s["name"], s["event_count"], s["trace_count"]) for s in data["services"]],
    )
    return 0
