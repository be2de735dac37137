"""``raceway analyze -t ID``: the original's legacy alias of ``trace --json``."""

from __future__ import annotations

import argparse

from raceway_server.commands._client import add_client_arguments, print_json, request

HELP = "print one trace's full analysis as JSON (alias of 'trace --json')"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_client_arguments(parser, json_flag=False)
    parser.add_argument("-t", "--trace-id", required=True, help="trace UUID")


def run(args: argparse.Namespace) -> int:
    print_json(request(args, f"/api/traces/{args.trace_id}"))
    return 0
