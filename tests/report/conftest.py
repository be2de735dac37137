"""Fixtures: real headless Chromium (module-scoped) and a real uvicorn server with the web UI.

Chromium is Debian's ``/usr/bin/chromium``; when it is missing, browser tests fail in CI
(``CI=true``) and are skipped locally. The server is ``create_app`` as ``raceway serve`` builds
it (API and web UI), run by :class:`raceway_server.testing.ThreadedServer`.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cdp import CHROMIUM, Browser  # this directory is on sys.path (pytest's prepend import mode)

from raceway_server.config import Config
from raceway_server.testing import ThreadedServer


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


class UIServer(ThreadedServer):
    """``raceway serve``'s app (API and web UI) in a thread; ``UIServer(**config settings)``."""

    def __init__(self, **settings: Any) -> None:
        super().__init__(Config(**settings))


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
