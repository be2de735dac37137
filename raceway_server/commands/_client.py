"""Shared plumbing of the read commands: server URL, API key, requests, plain tables."""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from typing import Any

from raceway_server.cli import CommandError

DEFAULT_SERVER = "http://127.0.0.1:8080"


def add_client_arguments(parser: argparse.ArgumentParser, json_flag: bool = True) -> None:
    parser.add_argument(
        "-s",
        "--server",
        default=None,
        help=f"server URL (env RACEWAY_SERVER, default {DEFAULT_SERVER})",
    )
    parser.add_argument(
        "--api-key",
        default=None,
        help="API key, sent as Authorization: Bearer (env RACEWAY_API_KEY)",
    )
    parser.add_argument("--timeout", type=float, default=30.0, help="request timeout in seconds")
    if json_flag:
        parser.add_argument("--json", action="store_true", help="print the raw JSON data")


def server_url(args: argparse.Namespace) -> str:
    return (args.server or os.environ.get("RACEWAY_SERVER") or DEFAULT_SERVER).rstrip("/")


def request(
    args: argparse.Namespace, path: str, params: dict[str, Any] | None = None, raw: bool = False
) -> Any:
    """GET ``path``; returns the envelope's ``data`` (or the raw response for ``raw``)."""
    import httpx

    key = args.api_key or os.environ.get("RACEWAY_API_KEY")
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    url = server_url(args) + path
    try:
        response = httpx.get(url, params=params, headers=headers, timeout=args.timeout)
    except httpx.HTTPError as exc:
        raise CommandError(f"cannot reach the Raceway server at {server_url(args)}: {exc}") from None
    if response.status_code == 401:
        raise CommandError("unauthorized: pass --api-key or set RACEWAY_API_KEY")
    if raw and response.status_code == 200:
        return response
    try:
        body = response.json()
    except ValueError:
        raise CommandError(
            f"{url}: HTTP {response.status_code} with a non-JSON body (is this a Raceway server?)"
        ) from None
    if not isinstance(body, dict) or "success" not in body:
        raise CommandError(f"{url}: unexpected response (no envelope)")
    if not body["success"]:
        raise CommandError(f"{url}: HTTP {response.status_code}: {body.get('error')}")
    return body["data"]


def print_json(data: Any) -> None:
    json.dump(data, sys.stdout, indent=2, ensure_ascii=False)
    sys.stdout.write("\n")


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    """A left-aligned plain-text table (numbers right-aligned)."""
    cells = [[str(c) for c in headers]] + [["" if c is None else str(c) for c in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    numeric = [
        all(isinstance(row[i], (int, float)) for row in rows) and bool(rows) for i in range(len(headers))
    ]
    for n, row in enumerate(cells):
        parts = [c.rjust(w) if numeric[i] else c.ljust(w) for i, (c, w) in enumerate(zip(row, widths, strict=True))]
        print("  ".join(parts).rstrip())
        if n == 0:
            print("  ".join("-" * w for w in widths))
    if not rows:
        print("(none)")
