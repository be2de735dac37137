"""ASGI middleware: each HTTP request's handler is a logical task that continues the caller.

Pure ASGI (no framework import), so it wraps Starlette, FastAPI, Quart or any ASGI callable::

    app = RacewayASGIMiddleware(app)

Per request: read ``traceparent``/``tracestate``/``raceway-clock``; run the app as a new
logical task of kind ``http`` -- with the asyncio instrumentation installed, a real child
task created under that kind, so its steps are segments like any task's -- that first
acquires the caller's clock; on ``http.response.start`` record ``HttpResponse``, release, and
add the handler's clock as a ``raceway-clock`` response header. ``websocket`` and ``lifespan``
scopes pass through untouched. With :func:`raceway_sdk.propagation.set_flush_on_response` on
(tests), the response start waits, bounded, for the sink to deliver the handler's events.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from raceway_sdk import _recorder as rec
from raceway_sdk import propagation
from raceway_sdk.protocol.headers import IncomingContext, parse_incoming

__all__ = ["RacewayASGIMiddleware"]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

_WANTED = (b"traceparent", b"tracestate", b"raceway-clock")


def _aio() -> Any:
    module = sys.modules.get("raceway_sdk.instrument.aio")
    if module is not None and module.is_installed():
        return module
    return None


def _incoming(scope: Scope) -> dict[str, str]:
    found: dict[str, str] = {}
    for key, value in scope.get("headers") or ():
        name = bytes(key).lower()
        if name in _WANTED:
            found[name.decode("latin-1")] = bytes(value).decode("latin-1")
    return found


def _url(scope: Scope) -> str:
    path = scope.get("root_path", "") + scope.get("path", "/")
    query = scope.get("query_string") or b""
    if query:
        path += "?" + bytes(query).decode("latin-1")
    server = scope.get("server")
    if server and server[0]:
        host = server[0] if server[1] is None else f"{server[0]}:{server[1]}"
        return f"{scope.get('scheme', 'http')}://{host}{path}"
    return path


class RacewayASGIMiddleware:
    """Wraps an ASGI app: propagation of clocks and traces for every ``http`` request."""

    def __init__(self, app: ASGIApp) -> None:
        if not callable(app):
            raise TypeError(f"RacewayASGIMiddleware needs an ASGI app, got {app!r}")
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope.get("type") != "http" or not rec.enabled():
            await self.app(scope, receive, send)
            return
        ctx = parse_incoming(_incoming(scope))
        method = str(scope.get("method", "GET"))
        url = _url(scope)
        name = f"{method} {scope.get('path', '/')}"
        tokens = propagation.enter_request(ctx)
        try:
            aio = _aio()
            if aio is not None:
                kind = aio.KIND.set("http")
                try:
                    task = asyncio.get_running_loop().create_task(
                        self._handle(ctx, method, url, scope, receive, send), name=name
                    )
                finally:
                    aio.KIND.reset(kind)
                await task  # a cancelled request cancels the handler task with it
            else:
                state = rec.fork("http", name)
                token = rec.activate(state)
                try:
                    await self._handle(ctx, method, url, scope, receive, send)
                finally:
                    rec.finish(state)
                    try:
                        rec.deactivate(token)
                    except (ValueError, RuntimeError):
                        pass
        finally:
            propagation.exit_request(tokens)

    async def _handle(
        self,
        ctx: IncomingContext | None,
        method: str,
        url: str,
        scope: Scope,
        receive: Receive,
        send: Send,
    ) -> None:
        handler = propagation.start_handler(ctx, method, url)

        async def send_with_clock(message: Message) -> None:
            if message.get("type") == "http.response.start":
                extra = propagation.respond(handler, int(message.get("status", 200)))
                if extra:
                    message = dict(message)
                    headers = list(message.get("headers") or ())
                    for key, value in extra.items():
                        headers.append((key.encode("latin-1"), value.encode("latin-1")))
                    message["headers"] = headers
            await send(message)

        try:
            await self.app(scope, receive, send_with_clock)
        finally:
            propagation.finish_handler(handler)
