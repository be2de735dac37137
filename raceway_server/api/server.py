"""uvicorn with one addition: live-feed streams end when shutdown begins.

uvicorn waits for in-flight responses before it runs the lifespan shutdown, and an SSE response
never finishes on its own, so the streams are told to close first; then storage is flushed by
the lifespan as usual.
"""

from __future__ import annotations

import socket
from typing import Any

import uvicorn
from starlette.applications import Starlette


class Server(uvicorn.Server):
    def __init__(self, app: Starlette, **options: Any) -> None:
        options.setdefault("timeout_graceful_shutdown", 10)
        super().__init__(uvicorn.Config(app, **options))
        self.app = app

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        live = getattr(self.app.state, "live", None)
        if live is not None:
            live.close()
        await super().shutdown(sockets)

    @property
    def port(self) -> int:
        """The bound port (useful with ``port=0``), once ``started``."""
        return int(self.servers[0].sockets[0].getsockname()[1])
