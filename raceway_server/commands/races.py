"""``raceway races``: variables with cross-trace races (causality-based)."""

from __future__ import annotations

import argparse

from raceway_server.commands._client import add_client_arguments, print_json, request, table

HELP = "list variables with cross-trace races"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_client_arguments(parser)


def run(args: argparse.Namespace) -> int:
    data = request(args, "/api/distributed/global-races")
    if args.json:
        print_json(data)
        return 0
    print(f"{data['total_races']} racing variables")
    table(
        ["VARIABLE", "SEVERITY", "TRACES", "ACCESSES", "TASKS"],
        [
            (r["variable"], r["severity"], r["trace_count"], r["access_count"], r["thread_count"])
            for r in data["races"]
        ],
    )
    return 0
