"""WSGI middleware: each request's handler is a logical task that continues the caller.

::

    app.wsgi_app = RacewayWSGIMiddleware(app.wsgi_app)      # Flask
    application = RacewayWSGIMiddleware(application)        # any WSGI app

Per request: read ``traceparent``/``tracestate``/``raceway-clock`` from the environ; fork a
logical task of kind ``http`` from the server thread that received the request and make it
the running task until the response body is closed (PEP 3333 servers iterate and close the
body in the same thread); it first acquires the caller's clock. ``start_response`` records
``HttpResponse``, releases, and adds the handler's clock as a ``raceway-clock`` header.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Any

from raceway_sdk import _recorder as rec
from raceway_sdk import propagation
from raceway_sdk.protocol.headers import parse_incoming

__all__ = ["RacewayWSGIMiddleware"]

_WANTED = (("HTTP_TRACEPARENT", "traceparent"), ("HTTP_TRACESTATE", "tracestate"),
           ("HTTP_RACEWAY_CLOCK", "raceway-clock"))


def _url(environ: dict[str, Any]) -> str:
    from wsgiref.util import request_uri

    try:
        return request_uri(environ)
    except KeyError:
        return str(environ.get("PATH_INFO", "/"))


class _Body:
    """The app's response iterable; closing it ends the handler task."""

    def __init__(self, body: Iterable[bytes], end: Callable[[], None]) -> None:
        self._body = body
        self._end = end

    def __iter__(self) -> Iterator[bytes]:
        return iter(self._body)

    def close(self) -> None:
        try:
            close = getattr(self._body, "close", None)
            if close is not None:
                close()
        finally:
            self._end()


class RacewayWSGIMiddleware:
    """Wraps a WSGI app: propagation of clocks and traces for every request."""

    def __init__(self, app: Callable[..., Iterable[bytes]]) -> None:
        if not callable(app):
            raise TypeError(f"RacewayWSGIMiddleware needs a WSGI app, got {app!r}")
        self.app = app

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        if not rec.enabled():
            return self.app(environ, start_response)
        ctx = parse_incoming({h: environ[k] for k, h in _WANTED if environ.get(k)})
        method = str(environ.get("REQUEST_METHOD", "GET"))
        tokens = propagation.enter_request(ctx)
        state = rec.fork("http", f"{method} {environ.get('PATH_INFO', '/')}")
        token = rec.activate(state)
        handler = propagation.start_handler(ctx, method, _url(environ))
        ended = False

        def end() -> None:
            nonlocal ended
            if ended:
                return
            ended = True
            propagation.finish_handler(handler)
            rec.finish(state)
            try:
                rec.deactivate(token)
            except (ValueError, RuntimeError):  # closed from another context: nothing to undo
                pass
            propagation.exit_request(tokens)

        def start_with_clock(status: str, headers: list[tuple[str, str]], *exc: Any) -> Any:
            try:
                code = int(str(status).split(" ", 1)[0])
            except ValueError:
                code = 0
            extra = propagation.respond(handler, code)
            if extra:
                headers = list(headers) + list(extra.items())
            return start_response(status, headers, *exc)

        try:
            body = self.app(environ, start_with_clock)
        except BaseException:
            end()
            raise
        return _Body(body, end)
