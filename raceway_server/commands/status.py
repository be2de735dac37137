"""``raceway status``: server version, uptime, counts, warm-up and drop counters."""

from __future__ import annotations

import argparse

from raceway_server.commands._client import add_client_arguments, print_json, request

HELP = "server status: uptime, counts, warm-up, drop counters"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_client_arguments(parser)


def run(args: argparse.Namespace) -> int:
    data = request(args, "/status")
    if args.json:
        print_json(data)
        return 0
    warm = data["warmup"]
    print(f"raceway server {data['version']}, up {data['uptime_seconds']:.0f} s")
    print(f"events: {data['events_captured']}  traces: {data['traces_active']}")
    print(f"warm-up: {warm['phase']} ({warm['processed_traces']}/{warm['total_traces']} traces)")
    ingestion = data.get("ingestion", {})
    if ingestion:
        print(
            "ingestion: "
            + ", ".join(f"{k} {v}" for k, v in sorted(ingestion.items()) if isinstance(v, int))
        )
    return 0
