"""Fixtures: real headless Chromium (module-scoped) and a real uvicorn server with the web UI.

Chromium is Debian's ``/usr/bin/chromium``; when it is missing, browser tests fail in CI
(``CI=true``) and are skipped locally. The server is ``create_app`` as ``raceway serve`` builds
it; until the lead wires the UI into ``create_app``, the UI's public paths are dispatched to
:func:`raceway_server.web.web_routes` in front of it, exactly the routing the wiring will do.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cdp import CHROMIUM, Browser  # this directory is on sys.path (pytest's prepend import mode)
from starlette.applications import Starlette
from starlette.types import Receive, Scope, Send

from raceway_server.api import create_app
from raceway_server.api.server import Server
from raceway_server.config import Config
from raceway_server.web import PUBLIC_PATHS, web_routes


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if not Path(CHROMIUM).exists():
        message = f"Chromium not found at {CHROMIUM} (apt-get install chromium)"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(message)
        pytest.skip(message)
    b = Browser()
    try:
        yield b
    finally:
        b.close()


class WithUI:
    """ASGI dispatch: the UI's public paths to the web routes, everything else to the API app."""

    def __init__(self, api: Starlette) -> None:
        self.api = api
        self.ui = Starlette(routes=web_routes())
        self.state = api.state

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"] in PUBLIC_PATHS:
            await self.ui(scope, receive, send)
        else:
            await self.api(scope, receive, send)


class UIServer:
    def __init__(self, **settings: Any) -> None:
        api = create_app(Config(**settings))
        self.service = api.state.service
        self.uv = Server(WithUI(api), host="127.0.0.1", port=0, log_level="warning", lifespan="on")  # type: ignore[arg-type]
        self.uv.install_signal_handlers = lambda: None  # type: ignore[method-assign,attr-defined]
        self.thread = threading.Thread(target=self.uv.run, daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.uv.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.01)
        self.url = f"http://127.0.0.1:{self.uv.port}"
        while not self.service.warmup.ready:
            if time.monotonic() > deadline:
                raise RuntimeError("warm-up did not complete")
            time.sleep(0.01)

    def stop(self) -> None:
        self.uv.should_exit = True
        self.thread.join(timeout=20)


@pytest.fixture
def ui_server() -> Iterator[type[UIServer]]:
    started: list[UIServer] = []

    class Factory(UIServer):
        def __init__(self, **settings: Any) -> None:
            super().__init__(**settings)
            started.append(self)

    yield Factory
    for server in started:
        server.stop()
