"""Fixtures: a real server (uvicorn on 127.0.0.1, in a thread) and a real session file.

Sessions: one built through the real engine from known events (exact assertions), and one from
a real ``pytest --raceway --raceway-json`` run over a small racy suite (threads racing on a
global, an asyncio lost update, a lock-protected counter), each made once per test session.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from raceway_server.api import create_app
from raceway_server.api.server import Server
from raceway_server.config import Config

RACY_SUITE = '''
import asyncio
import threading

counter = 0
total = 0
lock = threading.Lock()


def bump():
    global counter
    for _ in range(3):
        counter += 1


def test_threads_race():
    workers = [threading.Thread(target=bump, name=f"bumper-{i}") for i in range(2)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()


def safe_add():
    global total
    with lock:
        total += 1


def test_locked_is_fine():
    workers = [threading.Thread(target=safe_add, name=f"adder-{i}") for i in range(2)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()


class Account:
    balance = 0


async def deposit(account):
    seen = account.balance
    await asyncio.sleep(0)
    account.balance = seen + 10


def test_lost_update():
    account = Account()

    async def main():
        await asyncio.gather(deposit(account), deposit(account))

    asyncio.run(main())
'''


class LiveServer:
    """uvicorn in a daemon thread on 127.0.0.1:free port, with a helper to post events."""

    def __init__(self, **settings: Any) -> None:
        self.app = create_app(Config(**settings))
        self.service = self.app.state.service
        self.uv = Server(self.app, host="127.0.0.1", port=0, log_level="warning", lifespan="on")
        self.thread = threading.Thread(target=self.uv.run, daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 20
        while not (self.uv.started and self.service.warmup.ready):
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.01)
        self.url = f"http://127.0.0.1:{self.uv.port}"
        self.key = (settings.get("api_keys") or (None,))[0]

    def post(self, body: bytes) -> dict[str, Any]:
        headers = {"Content-Type": "application/json"}
        if self.key:
            headers["Authorization"] = f"Bearer {self.key}"
        r = httpx.post(self.url + "/events", content=body, headers=headers, timeout=20)
        assert r.status_code == 200, r.text
        return r.json()["data"]  # type: ignore[no-any-return]

    def stop(self) -> None:
        self.uv.should_exit = True
        self.thread.join(timeout=20)


@pytest.fixture
def serve() -> Iterator[Callable[..., LiveServer]]:
    servers: list[LiveServer] = []

    def start(**settings: Any) -> LiveServer:
        server = LiveServer(**settings)
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


@pytest.fixture(scope="session")
def session_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A deterministic session: known races found by the real engine (``tui_builders``)."""
    from tui_builders import engine_session

    path = tmp_path_factory.mktemp("engine") / "session.json"
    engine_session(path)
    return path


@pytest.fixture(scope="session")
def plugin_session(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A session JSON from a real ``pytest --raceway`` run (the plugin, not a hand-made file)."""
    root = tmp_path_factory.mktemp("racy")
    (root / "test_racy_suite.py").write_text(textwrap.dedent(RACY_SUITE))
    out = root / "session.json"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RACEWAY", "PYTEST_"))}
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", "--raceway",
         f"--raceway-json={out}", "test_racy_suite.py"],
        cwd=root, env=env, capture_output=True, text=True, timeout=120,
    )
    assert out.exists(), f"the plugin wrote no session JSON:\n{proc.stdout}\n{proc.stderr}"
    return out
