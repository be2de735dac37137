"""``raceway trace ID``: one trace's races, critical path and anomalies."""

from __future__ import annotations

import argparse

from raceway_server.cli import CommandError
from raceway_server.commands._client import add_client_arguments, print_json, request

HELP = "show one trace: races, critical path, anomalies"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_client_arguments(parser)
    parser.add_argument("trace_id", nargs="?", help="trace UUID")
    parser.add_argument("-i", "--id", dest="trace_id_opt", help="trace UUID (original CLI form)")
    parser.add_argument("--events", type=int, default=10, help="events to list (default 10)")


def trace_id_of(args: argparse.Namespace) -> str:
    value = args.trace_id or args.trace_id_opt
    if not value:
        raise CommandError("a trace id is required (positional or -i/--id)")
    return str(value)


def run(args: argparse.Namespace) -> int:
    data = request(args, f"/api/traces/{trace_id_of(args)}")
    if args.json:
        print_json(data)
        return 0
    analysis = data["analysis"]
    events = data["events"]
    print(f"trace {data['trace_id']}: {len(events)} events, {analysis['potential_races']} races")
    for line in analysis["anomalies"]:
        print(line)
    path = data.get("critical_path")
    if path:
        print(
            f"critical path: {path['path_events']} events, {path['total_duration_ms']:.3f} ms "
            f"({path['percentage_of_total']:.1f}% of {path['trace_total_duration_ms']:.3f} ms)"
        )
    for anomaly in data.get("anomalies", []):
        print(f"anomaly [{anomaly['severity']}] {anomaly['description']}")
    shown = events[: max(0, args.events)]
    if shown:
        print(f"first {len(shown)} events:")
        for n, event in enumerate(shown, 1):
            kind = next(iter(event["kind"]), "?")
            print(f"  {n:>3}. [{event['timestamp']}] {kind} ({event['metadata']['thread_id']})")
    return 0
