"""A real Raceway server in a background thread, for tests that need one over HTTP.

``raceway serve``'s app (API, live feed, web UI) under uvicorn on 127.0.0.1 and a free port,
started in a daemon thread and ready once the warm-up (the stored log's replay) is done::

    from raceway_server.testing import ThreadedServer

    with ThreadedServer(Config(storage_backend="memory")) as server:
        httpx.post(server.url + "/events", content=body)

Multi-service tests point their services' ``RACEWAY_URL`` at ``server.url``; ``server.service``
is the in-process :class:`~raceway_server.service.Service` behind it (races, events, status).
"""

from __future__ import annotations

import threading
import time
from types import TracebackType

from raceway_server.api import create_app
from raceway_server.api.server import Server
from raceway_server.config import Config
from raceway_server.service import Service

__all__ = ["ThreadedServer"]


class ThreadedServer:
    """uvicorn in a daemon thread (httpx's own test-server pattern); ``stop()`` or ``with``.

    Raises ``RuntimeError`` naming the step (start, warm-up) that did not complete within
    ``start_timeout`` seconds.
    """

    def __init__(
        self,
        config: Config | None = None,
        service: Service | None = None,
        *,
        start_timeout: float = 20.0,
    ) -> None:
        self.app = create_app(config if config is not None else Config(), service)
        self.service: Service = self.app.state.service
        self.uv = Server(self.app, host="127.0.0.1", port=0, log_level="warning", lifespan="on")
        # uvicorn installs signal handlers only in the main thread: none here
        self.thread = threading.Thread(target=self._run, name="raceway-server", daemon=True)
        self.thread.start()
        deadline = time.monotonic() + start_timeout
        while not self.uv.started:
            if not self.thread.is_alive():
                cause = self.service.start_error or "see uvicorn's log"
                raise RuntimeError(f"the raceway server did not start: {cause}")
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"the raceway server did not start in {start_timeout:g} s")
            time.sleep(0.01)
        self.url = f"http://127.0.0.1:{self.uv.port}"
        while not self.service.warmup.ready:
            if self.service.warmup.phase == "failed" or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"warm-up did not complete: {self.service.warmup.to_dict()}")
            time.sleep(0.01)

    def _run(self) -> None:
        try:
            self.uv.run()
        except SystemExit:  # uvicorn's way out of a failed start-up: reported by __init__
            pass

    def stop(self) -> None:
        """Graceful shutdown (live streams end, storage is flushed); waits for the thread."""
        self.uv.should_exit = True
        self.thread.join(timeout=20)

    def __enter__(self) -> ThreadedServer:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
