"""``raceway traces``: list trace summaries, newest first."""

from __future__ import annotations

import argparse

from raceway_server.commands._client import add_client_arguments, print_json, request, table

HELP = "list traces (newest first)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_client_arguments(parser)
    parser.add_argument("--page", type=int, default=1)
    parser.add_argument("--page-size", type=int, default=20)
    parser.add_argument("--min-events", type=int, default=None)


def run(args: argparse.Namespace) -> int:
    params = {"page": args.page, "page_size": args.page_size}
    if args.min_events is not None:
        params["min_events"] = args.min_events
    data = request(args, "/api/traces", params)
    if args.json:
        print_json(data)
        return 0
    print(f"{data['total_traces']} traces (page {data['page']} of {max(1, data['total_pages'])})")
    table(
        ["TRACE", "EVENTS", "SERVICES", "LAST EVENT"],
        [
            (t["trace_id"], t["event_count"], ",".join(t["services"]), t["last_timestamp"])
            for t in data["traces"]
        ],
    )
    return 0
