"""``raceway serve``: run the server (uvicorn) with the resolved configuration."""

from __future__ import annotations

import argparse
import gc
import logging
import sys

from raceway_server.cli import CommandError

HELP = "run the Raceway server"

_LEVELS = {"trace": "debug", "warn": "warning"}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-c", "--config", help="TOML file (default: raceway.toml if present)")
    parser.add_argument("--host", help="bind address (default 127.0.0.1)")
    parser.add_argument("--port", type=int, help="port (default 8080; 0 picks a free port)")
    parser.add_argument("--storage", choices=("memory", "postgres"), help="storage backend")
    parser.add_argument("--database-url", help="PostgreSQL connection string")
    parser.add_argument(
        "--api-key",
        action="append",
        dest="api_keys",
        help="require this API key (repeatable; prefer RACEWAY_API_KEYS so keys stay out of ps)",
    )
    parser.add_argument("--cors-origin", action="append", dest="cors_origins", help="allowed origin")
    parser.add_argument("--rate-limit-rpm", type=int, help="enable a per-key/IP rate limit")
    parser.add_argument("--max-body-bytes", type=int, help="largest accepted POST body")
    parser.add_argument("--retention-max-age-hours", type=float, help="delete older traces")
    parser.add_argument("--retention-max-traces", type=int, help="keep at most this many traces")
    parser.add_argument(
        "--log-level", choices=("trace", "debug", "info", "warn", "warning", "error")
    )
    parser.add_argument("-v", "--verbose", action="store_true", default=None)


def cli_values(args: argparse.Namespace) -> dict[str, object]:
    """Flags given on the command line, as config field names (None = not given)."""
    return {
        "host": args.host,
        "port": args.port,
        "storage_backend": args.storage,
        "database_url": args.database_url,
        "api_keys": args.api_keys,
        "cors_origins": args.cors_origins,
        "rate_limit_rpm": args.rate_limit_rpm,
        "rate_limit_enabled": True if args.rate_limit_rpm is not None else None,
        "max_body_bytes": args.max_body_bytes,
        "retention_max_age_hours": args.retention_max_age_hours,
        "retention_max_traces": args.retention_max_traces,
        "log_level": args.log_level,
        "verbose": args.verbose,
    }


def run(args: argparse.Namespace) -> int:
    from raceway_server import config as config_module

    try:
        config, warnings = config_module.load(cli_values(args), args.config)
    except config_module.ConfigError as exc:
        raise CommandError(str(exc)) from None
    level = _LEVELS.get(config.log_level, config.log_level)
    fmt = "%(asctime)s %(levelname)s %(name)s: %(message)s" if config.include_modules else (
        "%(asctime)s %(levelname)s %(message)s"
    )
    logging.basicConfig(level=level.upper(), format=fmt, stream=sys.stderr)
    log = logging.getLogger("raceway_server")
    for warning in warnings:
        log.warning("%s", warning)
    log.debug("configuration: %s", config.redacted())
    return serve(config, level)


GC_THRESHOLDS = (50_000, 20, 100)
# With PostgreSQL, the thread holding the storage writer's turn waits on round trips while
# request threads parse and analyse; each time a reply arrives it must win the GIL back, which
# takes up to one switch interval. 1 ms instead of 5 ms shortens that serial section (measured
# with benchmarks/ingest.py: PostgreSQL 58-62k -> 67-71k events/s). Memory storage has no
# round trips and does a little better with the default (more switching costs CPU).
PG_SWITCH_INTERVAL = 0.001


def serve(config: object, level: str = "info") -> int:
    from raceway_server import gcpolicy
    from raceway_server.api import create_app
    from raceway_server.api.security import install_log_redaction
    from raceway_server.api.server import Server
    from raceway_server.config import Config

    assert isinstance(config, Config)
    install_log_redaction()
    # The server keeps millions of long-lived, acyclic event objects: with the default
    # thresholds every few hundred allocations start a collection that rescans them (measured:
    # over half of ingest CPU). Collect the young generation rarely and the old one seldom.
    gc.set_threshold(GC_THRESHOLDS[0], GC_THRESHOLDS[1], GC_THRESHOLDS[2])
    # ... and keep applied events out of its scans altogether (raceway_server/gcpolicy.py).
    gcpolicy.install()
    if config.storage_backend == "postgres":
        sys.setswitchinterval(PG_SWITCH_INTERVAL)
    logging.getLogger("raceway_server").info(
        "raceway serve on %s:%d, storage %s, auth %s",
        config.host,
        config.port,
        config.storage_backend,
        "on" if config.auth_required else "off",
    )
    server = Server(
        create_app(config),
        host=config.host,
        port=config.port,
        log_level=level,
        access_log=config.verbose,
        server_header=False,
    )
    server.run()
    return 0
