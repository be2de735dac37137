"""``raceway performance``: latency percentiles, slow operations, throughput."""

from __future__ import annotations

import argparse

from raceway_server.commands._client import add_client_arguments, print_json, request, table

HELP = "latency percentiles, durations per kind and service, throughput"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_client_arguments(parser)
    parser.add_argument("--limit", type=int, default=50, help="newest traces considered")


def run(args: argparse.Namespace) -> int:
    data = request(args, "/api/performance/metrics", {"limit": args.limit})
    if args.json:
        print_json(data)
        return 0
    lat = data["trace_latency"]
    print(
        f"trace latency: avg {lat['avg_ms']:.3f} ms, p50 {lat['p50_ms']:.3f}, "
        f"p95 {lat['p95_ms']:.3f}, p99 {lat['p99_ms']:.3f}"
    )
    table(
        ["KIND", "COUNT", "AVG MS"],
        [(r["type"], r["count"], round(r["avg_duration_ms"], 3)) for r in data["event_performance"]["by_type"]],
    )
    tp = data["throughput"]
    print(
        f"throughput: {tp['events_per_second']:.1f} events/s, {tp['traces_per_second']:.2f} traces/s "
        f"over {tp['time_range_seconds']:.1f} s"
    )
    return 0
