"""``GET /api/live``: a Server-Sent Events feed of new traces and new races.

Events: ``hello`` (once, the current counts), ``trace`` (a trace seen for the first time: its
summary), ``race`` (a race the engine just reported: ``Race.to_dict()``), ``lagged`` (this
subscriber fell behind and ``dropped`` messages were discarded for it: counted, never silent) and a
comment line every ``heartbeat`` seconds. ``?types=trace,race`` filters. Each message carries an
``id`` that grows by one, so a client can also see a gap itself.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

from starlette.requests import Request
from starlette.responses import StreamingResponse

from raceway_server.api.responses import ApiError, dumps
from raceway_server.service import Service

KINDS = ("trace", "race")


class LiveFeed:
    """Bridges the service's listener callbacks (ingest threads) to asyncio subscribers."""

    def __init__(self, service: Service, queue_size: int = 1000, heartbeat: float = 15.0) -> None:
        self.service = service
        self.queue_size = queue_size
        self.heartbeat = heartbeat
        self.closing = asyncio.Event()
        self.subscribers = 0
        self.dropped = 0

    def close(self) -> None:
        self.closing.set()

    async def endpoint(self, request: Request) -> StreamingResponse:
        raw = request.query_params.get("types")
        types = set(KINDS) if not raw else {t.strip() for t in raw.split(",") if t.strip()}
        unknown = types - set(KINDS)
        if unknown:
            raise ApiError(
                400, f"unknown live event type(s) {sorted(unknown)}; expected {', '.join(KINDS)}"
            )
        return StreamingResponse(
            self._stream(types),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        )

    async def _stream(self, types: set[str]) -> AsyncIterator[bytes]:
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[tuple[str, dict[str, Any]]] = asyncio.Queue(self.queue_size)
        lagged = [0]

        def put(kind: str, payload: dict[str, Any]) -> None:
            try:
                queue.put_nowait((kind, payload))
            except asyncio.QueueFull:
                lagged[0] += 1
                self.dropped += 1

        def listener(kind: str, payload: dict[str, Any]) -> None:
            if kind in types:
                loop.call_soon_threadsafe(put, kind, payload)

        unsubscribe = self.service.subscribe(listener)
        self.subscribers += 1
        counter = 0

        def message(kind: str, payload: Any) -> bytes:
            nonlocal counter
            counter += 1
            return b"id: %d\nevent: %s\ndata: %s\n\n" % (counter, kind.encode(), dumps(payload))

        try:
            status = self.service.status()
            yield message(
                "hello",
                {
                    "types": sorted(types),
                    "events_captured": status["events_captured"],
                    "traces_active": status["traces_active"],
                },
            )
            closing = asyncio.ensure_future(self.closing.wait())
            try:
                while not self.closing.is_set():
                    getter = asyncio.ensure_future(queue.get())
                    done, _ = await asyncio.wait(
                        {getter, closing}, timeout=self.heartbeat, return_when=asyncio.FIRST_COMPLETED
                    )
                    if getter not in done:
                        getter.cancel()
                        if not done:
                            yield b": keepalive\n\n"
                        continue
                    if lagged[0]:
                        yield message("lagged", {"dropped": lagged[0]})
                        lagged[0] = 0
                    kind, payload = getter.result()
                    yield message(kind, payload)
            finally:
                closing.cancel()
        finally:
            self.subscribers -= 1
            with contextlib.suppress(ValueError):
                unsubscribe()
