"""A real uvicorn server on 127.0.0.1 in a thread, for the TUI tests (imported by name:
``conftest`` is ambiguous when several test folders are collected together)."""

from __future__ import annotations

import threading
import time
from typing import Any

import httpx

from raceway_server.api import create_app
from raceway_server.api.server import Server
from raceway_server.config import Config


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
