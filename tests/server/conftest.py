"""Fixtures: a real uvicorn server on 127.0.0.1 and a throwaway PostgreSQL cluster.

The PostgreSQL fixture follows pytest-postgresql's recipe (initdb with trust auth, ``pg_ctl
start -w`` with fsync off and a private socket directory, ``pg_ctl stop -m fast`` + rmtree). As
root it runs the binaries as the ``postgres`` OS user (the server refuses to run as root). When
the binaries are missing the tests are skipped locally and fail in CI (``CI=true``), so CI never
skips storage tests silently.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from raceway_server.api import create_app
from raceway_server.api.server import Server
from raceway_server.config import Config
from raceway_server.service import Service
from raceway_server.storage.throwaway import PgCluster, find_bindir, free_port

__all__ = ["PgCluster", "RunningServer", "free_port"]

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


class RunningServer:
    """uvicorn in a thread (httpx's own test-server pattern), on 127.0.0.1 and a free port."""

    def __init__(self, config: Config, service: Service | None = None) -> None:
        self.app = create_app(config, service)
        self.service: Service = self.app.state.service
        self.uv = Server(self.app, host="127.0.0.1", port=0, log_level="warning", lifespan="on")
        # uvicorn installs signal handlers only in the main thread: none here
        self.thread = threading.Thread(target=self.uv.run, daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.uv.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.01)
        self.url = f"http://127.0.0.1:{self.uv.port}"
        deadline = time.monotonic() + 20
        while not self.service.warmup.ready:
            if self.service.warmup.phase == "failed" or time.monotonic() > deadline:
                raise RuntimeError(f"warm-up did not complete: {self.service.warmup.to_dict()}")
            time.sleep(0.01)

    def stop(self) -> None:
        self.uv.should_exit = True
        self.thread.join(timeout=20)


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
