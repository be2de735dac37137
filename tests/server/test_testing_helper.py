"""``raceway_server.testing``: the public helper that runs a real server in a thread."""

from __future__ import annotations

import httpx
import pytest
from rw_events import body, racing_trace

import raceway_server.testing as testing
from raceway_server.config import Config
from raceway_server.testing import ThreadedServer


def test_public_surface() -> None:
    assert testing.__all__ == ["ThreadedServer"]


def test_serves_over_http_until_the_with_block_ends() -> None:
    with ThreadedServer(Config(api_keys=["k"])) as server:
        assert server.url.startswith("http://127.0.0.1:")
        assert httpx.get(server.url + "/health").status_code == 401  # the config is applied
        trace, events = racing_trace()
        r = httpx.post(server.url + "/events", content=body(events),
                       headers={"Content-Type": "application/json", "Authorization": "Bearer k"})
        assert r.status_code == 200, r.text
        assert server.service.trace_races(trace)  # the in-process service behind the URL
        url = server.url
    assert not server.thread.is_alive()
    with pytest.raises(httpx.TransportError):
        httpx.get(url + "/health", timeout=2)


def test_a_server_that_cannot_open_its_storage_says_why() -> None:
    config = Config(storage_backend="postgres", database_url="postgresql://127.0.0.1:1/none",
                    pg_connect_timeout=0.5)
    with pytest.raises(RuntimeError, match="did not start: StorageUnavailable: cannot connect to PostgreSQL"):
        ThreadedServer(config, start_timeout=10)
