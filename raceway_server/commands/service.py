"""``raceway service overview|traces|dependencies NAME``: one service."""

from __future__ import annotations

import argparse
from urllib.parse import quote

from raceway_server.commands._client import add_client_arguments, print_json, request, table

HELP = "one service: overview, traces or dependencies"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_client_arguments(parser)
    parser.add_argument("action", choices=("overview", "traces", "dependencies"))
    parser.add_argument("name", help="service name")
    parser.add_argument("--page", type=int, default=1)
    parser.add_argument("--page-size", type=int, default=100)


def run(args: argparse.Namespace) -> int:
    name = quote(args.name, safe="")
    if args.action == "traces":
        data = request(
            args, f"/api/services/{name}/traces", {"page": args.page, "page_size": args.page_size}
        )
    elif args.action == "dependencies":
        data = request(args, f"/api/services/{name}/dependencies")
    else:
        services = request(args, "/api/services")["services"]
        deps = request(args, f"/api/services/{name}/dependencies")
        row = next((s for s in services if s["name"] == args.name), None)
        data = {"service": row, "dependencies": deps}
    if args.json:
        print_json(data)
        return 0
    if args.action == "traces":
        table(
            ["TRACE", "EVENTS", "LAST EVENT"],
            [(t["trace_id"], t["event_count"], t["last_timestamp"]) for t in data["traces"]],
        )
        return 0
    deps = data if args.action == "dependencies" else data["dependencies"]
    if args.action == "overview":
        row = data["service"]
        if row is None:
            print(f"service {args.name!r}: no events")
        else:
            print(f"service {row['name']}: {row['event_count']} events in {row['trace_count']} traces")
    print("calls to:")
    table(["SERVICE", "CALLS", "TRACES"], [(r["to"], r["total_calls"], r["trace_count"]) for r in deps["calls_to"]])
    print("called by:")
    table(["SERVICE", "CALLS", "TRACES"], [(r["to"], r["total_calls"], r["trace_count"]) for r in deps["called_by"]])
    return 0
