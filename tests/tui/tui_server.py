"""A real uvicorn server on 127.0.0.1 in a thread, for the TUI tests (imported by name:
``conftest`` is ambiguous when several test folders are collected together)."""

from __future__ import annotations

from typing import Any

import httpx

from raceway_server.config import Config
from raceway_server.testing import ThreadedServer


class LiveServer(ThreadedServer):
    """A server in a thread (``LiveServer(**config settings)``) and a helper to post events."""

    def __init__(self, **settings: Any) -> None:
        super().__init__(Config(**settings))
        self.key = (settings.get("api_keys") or (None,))[0]

    def post(self, body: bytes) -> dict[str, Any]:
        headers = {"Content-Type": "application/json"}
        if self.key:
            headers["Authorization"] = f"Bearer {self.key}"
        r = httpx.post(self.url + "/events", content=body, headers=headers, timeout=20)
        assert r.status_code == 200, r.text
        return r.json()["data"]  # type: ignore[no-any-return]

