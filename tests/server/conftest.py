"""Fixtures: a real uvicorn server on 127.0.0.1 and a throwaway PostgreSQL cluster.

The PostgreSQL fixture follows pytest-postgresql's recipe (initdb with trust auth, ``pg_ctl
start -w`` with fsync off and a private socket directory, ``pg_ctl stop -m fast`` + rmtree). As
root it runs the binaries as the ``postgres`` OS user (the server refuses to run as root). When
the binaries are missing the tests are skipped locally and fail in CI (``CI=true``), so CI never
skips storage tests silently.
"""

from __future__ import annotations

import itertools
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from raceway_server.api import create_app
from raceway_server.api.server import Server
from raceway_server.config import Config
from raceway_server.service import Service

PG_CANDIDATES = [os.environ.get("PG_BIN", ""), "/usr/lib/postgresql/15/bin", "/usr/lib/postgresql/16/bin"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class PgCluster:
    """A private PostgreSQL cluster controlled with pg_ctl."""

    def __init__(self, bindir: Path, root: Path) -> None:
        self.bindir = bindir
        self.root = root
        self.data = root / "data"
        self.sock = root / "sock"
        self.log = root / "postgres.log"
        self.port = free_port()
        self._as_postgres = os.geteuid() == 0
        self._dbs = itertools.count(1)

    def _run(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        cmd = [str(self.bindir / args[0]), *args[1:]]
        if self._as_postgres:
            cmd = ["runuser", "-u", "postgres", "--", *cmd]
        env = dict(os.environ, LC_ALL="C.UTF-8", LANG="C.UTF-8")
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env)
        if proc.returncode != 0:
            log = self.log.read_text() if self.log.exists() else ""
            raise RuntimeError(f"{' '.join(cmd)} failed: {proc.stdout}{proc.stderr}\n{log[-2000:]}")
        return proc

    def init(self) -> None:
        self.sock.mkdir()
        if self._as_postgres:
            pg = pwd.getpwnam("postgres")
            for path in (self.root, self.sock):
                os.chown(path, pg.pw_uid, pg.pw_gid)
        self._run("initdb", "-D", str(self.data), "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync")

    def start(self) -> None:
        opts = (
            f"-F -p {self.port} -c listen_addresses=127.0.0.1 "
            f"-c unix_socket_directories={self.sock} -c logging_collector=off "
            "-c full_page_writes=off -c max_connections=200"
        )
        self._run("pg_ctl", "start", "-D", str(self.data), "-o", opts, "-l", str(self.log), "-w")

    def stop(self) -> None:
        self._run("pg_ctl", "stop", "-D", str(self.data), "-m", "fast", "-w")

    def restart(self) -> None:
        """Fast shutdown (every connection is dropped) and start again on the same port."""
        self.stop()
        self.start()

    @property
    def admin_url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def new_database(self) -> str:
        name = f"raceway_t{next(self._dbs)}"
        with psycopg.connect(self.admin_url, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return f"postgresql://postgres@127.0.0.1:{self.port}/{name}"


def _pg_bindir() -> Path | None:
    for candidate in PG_CANDIDATES:
        if candidate and (Path(candidate) / "initdb").exists():
            return Path(candidate)
    return None


@pytest.fixture(scope="session")
def pg_cluster() -> Iterator[PgCluster]:
    bindir = _pg_bindir()
    if bindir is None:
        message = "PostgreSQL binaries (initdb, pg_ctl) not found; set PG_BIN"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(message)
        pytest.skip(message)
    root = Path(tempfile.mkdtemp(prefix="raceway-pg-"))
    cluster = PgCluster(bindir, root)
    try:
        cluster.init()
        cluster.start()
        yield cluster
    finally:
        try:
            cluster.stop()
        except Exception:  # noqa: BLE001 - already stopped by a failing test
            pass
        shutil.rmtree(root, ignore_errors=True)


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
        self.uv.install_signal_handlers = lambda: None  # type: ignore[method-assign]
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
