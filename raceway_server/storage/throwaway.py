"""A private, disposable PostgreSQL cluster (tests and benchmarks), pytest-postgresql style.

``initdb`` with trust auth into a temporary directory, ``pg_ctl start -w`` on 127.0.0.1 and a free
port with fsync off and a private socket directory; ``stop`` + ``rmtree`` at the end. As root, the
binaries run as the ``postgres`` OS user (the server refuses to run as root).
"""

from __future__ import annotations

import itertools
import os
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

BIN_CANDIDATES = ("/usr/lib/postgresql/17/bin", "/usr/lib/postgresql/16/bin", "/usr/lib/postgresql/15/bin")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def find_bindir() -> Path | None:
    """``$PG_BIN``, else the newest Debian-layout install, else ``initdb`` on PATH."""
    candidates = [os.environ.get("PG_BIN", ""), *BIN_CANDIDATES]
    on_path = shutil.which("initdb")
    if on_path:
        candidates.append(str(Path(on_path).parent))
    for candidate in candidates:
        if candidate and (Path(candidate) / "initdb").exists() and (Path(candidate) / "pg_ctl").exists():
            return Path(candidate)
    return None


class PgCluster:
    """One private cluster controlled with pg_ctl."""

    def __init__(self, bindir: Path, root: Path | None = None) -> None:
        self.bindir = bindir
        self.root = root or Path(tempfile.mkdtemp(prefix="raceway-pg-"))
        self.data = self.root / "data"
        self.sock = self.root / "sock"
        self.log = self.root / "postgres.log"
        self.port = free_port()
        self._as_postgres = os.geteuid() == 0
        self._dbs = itertools.count(1)

    def _run(self, *args: str, timeout: float = 60) -> None:
        cmd = [str(self.bindir / args[0]), *args[1:]]
        if self._as_postgres:
            cmd = ["runuser", "-u", "postgres", "--", *cmd]
        env = dict(os.environ, LC_ALL="C.UTF-8", LANG="C.UTF-8")
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env)
        if proc.returncode != 0:
            log = self.log.read_text() if self.log.exists() else ""
            raise RuntimeError(f"{' '.join(cmd)} failed: {proc.stdout}{proc.stderr}\n{log[-2000:]}")

    def init(self) -> None:
        self.sock.mkdir(parents=True, exist_ok=True)
        if self._as_postgres:
            import pwd

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

    def destroy(self) -> None:
        try:
            self.stop()
        except (RuntimeError, subprocess.TimeoutExpired):
            pass  # already stopped
        shutil.rmtree(self.root, ignore_errors=True)

    @property
    def admin_url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def new_database(self) -> str:
        import psycopg

        name = f"raceway_t{next(self._dbs)}"
        with psycopg.connect(self.admin_url, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return f"postgresql://postgres@127.0.0.1:{self.port}/{name}"
