"""Fixtures: a real Raceway server on 127.0.0.1, services as ``raceway run`` subprocesses, and
an instrumented caller (see ``msutil``)."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from msutil import Caller, RunningServer  # noqa: E402
from raceway_sdk.testing_services import Services  # noqa: E402

from raceway_server.config import Config  # noqa: E402


@pytest.fixture
def make_server() -> Iterator[Callable[..., RunningServer]]:
    started: list[RunningServer] = []

    def make(**config: Any) -> RunningServer:
        server = RunningServer(Config(**config))
        started.append(server)
        return server

    yield make
    for server in started:
        server.stop()


@pytest.fixture
def server(make_server: Callable[..., RunningServer]) -> RunningServer:
    return make_server()


@pytest.fixture
def services(server: RunningServer) -> Iterator[Services]:
    svc = Services(server_url=server.url, workdir=str(Path(__file__).resolve().parents[2]))
    try:
        yield svc
    finally:
        svc.stop_all()


@pytest.fixture
def caller(server: RunningServer) -> Iterator[Caller]:
    c = Caller(server.url)
    try:
        yield c
    finally:
        c.close()

