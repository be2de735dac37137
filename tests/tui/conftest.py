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
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from tui_server import LiveServer

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
