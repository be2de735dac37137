"""``raceway hotspots``: most accessed variables and busiest service calls."""

from __future__ import annotations

import argparse

from raceway_server.commands._client import add_client_arguments, print_json, request, table

HELP = "most accessed variables and busiest service calls"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_client_arguments(parser)


def run(args: argparse.Namespace) -> int:
    data = request(args, "/api/distributed/hotspots")
    if args.json:
        print_json(data)
        return 0
    table(
        ["VARIABLE", "ACCESSES", "TRACES", "SERVICES"],
        [
            (v["variable"], v["access_count"], v["trace_count"], ",".join(v["services"]))
            for v in data["top_variables"]
        ],
    )
    print()
    table(
        ["FROM", "TO", "CALLS"],
        [(c["from_service"], c["to_service"], c["call_count"]) for c in data["top_service_calls"]],
    )
    return 0
