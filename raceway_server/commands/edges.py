"""``raceway edges``: calls between services."""

from __future__ import annotations

import argparse

from raceway_server.commands._client import add_client_arguments, print_json, request, table

HELP = "calls between services"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_client_arguments(parser)


def run(args: argparse.Namespace) -> int:
    data = request(args, "/api/distributed/edges")
    if args.json:
        print_json(data)
        return 0
    table(
        ["FROM", "TO", "LINK", "CALLS"],
        [(e["from_service"], e["to_service"], e["link_type"], e["call_count"]) for e in data["edges"]],
    )
    return 0
