"""Fixtures: a real uvicorn server on 127.0.0.1 and a throwaway PostgreSQL cluster.

The PostgreSQL fixture follows pytest-postgresql's recipe (initdb with trust auth, ``pg_ctl
start -w`` with fsync off and a private socket directory, ``pg_ctl stop -m fast`` + rmtree). As
root it runs the binaries as the ``postgres`` OS user (the server refuses to run as root). When
the binaries are missing the tests are skipped locally and fail in CI (``CI=true``), so CI never
skips storage tests silently.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from rw_server import RunningServer

from raceway_server.config import Config
from raceway_server.service import Service
from raceway_server.storage.throwaway import PgCluster, find_bindir


@pytest.fixture(scope="session")
def pg_cluster() -> Iterator[PgCluster]:
    bindir = find_bindir()
    if bindir is None:
        message = "PostgreSQL binaries (initdb, pg_ctl) not found; set PG_BIN"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(message)
        pytest.skip(message)
    cluster = PgCluster(bindir)
    try:
        cluster.init()
        cluster.start()
        yield cluster
    finally:
        cluster.destroy()


@pytest.fixture
def pg_url(pg_cluster: PgCluster) -> str:
    """A fresh, empty database of the session cluster."""
    return pg_cluster.new_database()


@pytest.fixture
def serve() -> Iterator[Callable[..., RunningServer]]:
    """``serve(**config)`` starts a server; all are stopped at teardown."""
    servers: list[RunningServer] = []

    def start(service: Service | None = None, **settings: Any) -> RunningServer:
        server = RunningServer(Config(**settings), service)
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


@pytest.fixture
def server(serve: Callable[..., RunningServer]) -> RunningServer:
    """A default server: memory storage, no auth."""
    return serve()
