"""HTTP clients carry clocks: httpx (sync and async) and requests.

Every request a client sends is a release of the calling task (its clock goes out in
``raceway-clock``, with ``traceparent``/``tracestate``), and the response's ``raceway-clock``
(the handler's clock when it responded) is acquired when the response arrives. See
:mod:`raceway_sdk.propagation` for the rules.

Where the hooks sit, and why:

* ``httpx.Client._send_single_request`` / ``httpx.AsyncClient._send_single_request``: called
  once per hop (redirects included) with the final ``Request``, whatever the transport
  (HTTP, ASGI, WSGI, mock), after auth and event hooks -- the one place that sees every wire
  request and its response headers.
* ``requests.Session.send``: every ``requests.get``/``Session.request`` and every redirect
  hop goes through it.

Nothing is recorded (and no header added) while the recorder ignores the calling thread: the
transport's own posts to the Raceway server stay untouched. The Raceway API key is never
added to these requests.
"""

from __future__ import annotations

import importlib
from typing import Any

import wrapt

from raceway_sdk import _recorder as rec
from raceway_sdk import propagation

__all__ = ["install", "uninstall", "is_installed", "patched_clients"]

_saved: list[tuple[Any, str, Any]] = []
_clients: list[str] = []


def _patch(owner: Any, name: str, wrapper: Any) -> None:
    original = vars(owner)[name]
    _saved.append((owner, name, original))
    setattr(owner, name, wrapt.FunctionWrapper(original, wrapper))


def _httpx_send(wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
    if not rec.enabled():
        return wrapped(*args, **kwargs)
    request = args[0] if args else kwargs["request"]
    out = _begin(request.method, str(request.url), request.headers)
    if out is None:
        return wrapped(*args, **kwargs)
    headers, pending = out
    request.headers.update(headers)
    response = wrapped(*args, **kwargs)
    propagation.end_request(pending, response.status_code, response.headers)
    return response


async def _httpx_send_async(wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
    if not rec.enabled():
        return await wrapped(*args, **kwargs)
    request = args[0] if args else kwargs["request"]
    out = _begin(request.method, str(request.url), request.headers)
    if out is None:
        return await wrapped(*args, **kwargs)
    headers, pending = out
    request.headers.update(headers)
    response = await wrapped(*args, **kwargs)
    propagation.end_request(pending, response.status_code, response.headers)
    return response


def _requests_send(wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
    if not rec.enabled():
        return wrapped(*args, **kwargs)
    request = args[0] if args else kwargs["request"]
    out = _begin(str(request.method), str(request.url), request.headers)
    if out is None:
        return wrapped(*args, **kwargs)
    headers, pending = out
    request.headers.update(headers)
    response = wrapped(*args, **kwargs)
    propagation.end_request(pending, response.status_code, response.headers)
    return response


def _begin(method: str, url: str, headers: Any) -> Any:
    try:
        return propagation.begin_request(method, url, headers)
    except Exception:  # never break the application's request over bookkeeping
        rec._bump("sink_errors")
        return None


def _optional(name: str) -> Any:
    try:
        return importlib.import_module(name)
    except ImportError:
        return None


def is_installed() -> bool:
    """True while at least one client library is patched."""
    return bool(_saved)


def patched_clients() -> list[str]:
    """The client libraries patched right now (``httpx``, ``requests``)."""
    return list(_clients)


def install() -> None:
    """Patch httpx and requests if they are importable (idempotent)."""
    if _saved:
        return
    try:
        httpx = _optional("httpx")
        if httpx is not None:
            _patch(httpx.Client, "_send_single_request", _httpx_send)
            _patch(httpx.AsyncClient, "_send_single_request", _httpx_send_async)
            _clients.append("httpx")
        requests = _optional("requests")
        if requests is not None:
            _patch(requests.Session, "send", _requests_send)
            _clients.append("requests")
    except BaseException:
        uninstall()
        raise


def uninstall() -> None:
    """Put the original methods back."""
    while _saved:
        owner, name, original = _saved.pop()
        setattr(owner, name, original)
    _clients.clear()
