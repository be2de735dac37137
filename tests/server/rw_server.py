"""A real uvicorn server on 127.0.0.1 in a thread, for the server tests (imported by name:
``conftest`` is ambiguous when several test folders are collected together)."""

from __future__ import annotations

import threading
import time

from raceway_server.api import create_app
from raceway_server.api.server import Server
from raceway_server.config import Config
from raceway_server.service import Service
from raceway_server.storage.throwaway import PgCluster, free_port

__all__ = ["PgCluster", "RunningServer", "free_port"]


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
