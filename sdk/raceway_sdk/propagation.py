"""Happens-before across HTTP: the clock rides in ``raceway-clock`` from caller to handler and back.

One call is two hand-offs, each a release on one side and an acquire on the other
(docs/internals.md "Headers"; reference §2.4 for the byte format):

* **request** -- the caller releases (``LockRelease``, ``lock_type="http"``): its clock goes into
  ``raceway-clock`` (plus ``traceparent``/``tracestate``) and the caller ticks. The handler runs
  as a *new logical task* of kind ``http`` (forked from whatever server task received the
  request, so it is ordered after the service's start-up) and acquires that clock first.
* **response** -- when the response starts, the handler releases: its clock goes back in the
  response's ``raceway-clock``; the caller acquires it when the response arrives.

So two concurrent requests to one service are concurrent handlers (neither acquired the other's
clock, whatever the server's threads or event loop did), and a request sent after another's
response is ordered after everything the first handler did before responding. What a handler
does after its response started (streamed bodies, background tasks) is not ordered before the
caller's later actions -- which is the truth.

The request's trace: a handler's events belong to the caller's trace (``traceparent``), not to
whatever trace the service process stamps by default. :func:`route` applies that at the process
boundary (the transport calls it for every event): events emitted in a request's context, and
events of tasks forked from it (threads start with an empty context, so forks are followed by
task id), get the request's trace id.

Functions here are called by the middleware (:mod:`raceway_sdk.middleware`) and the client
instrumentation (:mod:`raceway_sdk.instrument.http_clients`); none of them raises into the
application, and all are no-ops while the recorder has no sink or ignores the calling thread.
"""

from __future__ import annotations

import contextvars
import os
import time
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from raceway_sdk import _identity
from raceway_sdk import _recorder as rec
from raceway_sdk.protocol.events import Event
from raceway_sdk.protocol.headers import (
    RACEWAY_CLOCK,
    TRACEPARENT,
    TRACESTATE,
    IncomingContext,
    build_outgoing,
    new_span_id,
    parse_incoming,
)

__all__ = [
    "Outgoing",
    "Handler",
    "begin_request",
    "end_request",
    "start_handler",
    "respond",
    "finish_handler",
    "enter_request",
    "exit_request",
    "request_trace",
    "route",
    "set_flush_on_response",
    "flush_on_response",
    "LOCK_TYPE",
    "safe_url",
    "routing_stats",
]

LOCK_TYPE = "http"

#: trace id of the request handled in this context (None: the recorder's current trace)
_TRACE: contextvars.ContextVar[int | None] = contextvars.ContextVar("raceway_http_trace", default=None)
#: this service's span for the request handled in this context
_SPAN: contextvars.ContextVar[str | None] = contextvars.ContextVar("raceway_http_span", default=None)
#: ``tracestate`` of the request handled in this context (passed on to outgoing calls)
_STATE: contextvars.ContextVar[str | None] = contextvars.ContextVar("raceway_http_state", default=None)

_ROOT_SPAN = new_span_id()  # the span of work done outside any request handler
_MAX_ROUTED = 100_000
_task_trace: dict[str, int] = {}  # task id -> request trace, for tasks forked by a handler
_routing_overflow = 0
_flush_on_response = os.environ.get("RACEWAY_FLUSH_ON_RESPONSE", "") in ("1", "true", "yes")
_flush_timeout = 5.0


class _Carrier:
    """Holds one hand-off's clock under a readable lock id (``http:<span>``)."""

    __slots__ = ("__weakref__",)


def _carrier(label: str, vc: dict[str, int] | None = None) -> _Carrier:
    carrier = _Carrier()
    ent = _identity.entry(carrier)
    ent.label = label
    if vc is not None:
        ent.sync_vc = vc
    return carrier


def _release(label: str) -> dict[str, int] | None:
    """Release-like hand-off by the running task: the clock it published (None if ignored)."""
    carrier = _carrier(label)
    rec.release(carrier, LOCK_TYPE)
    return _identity.entry(carrier).sync_vc


def _acquire(label: str, clock: dict[str, int]) -> None:
    rec.acquire(_carrier(label, dict(clock)), LOCK_TYPE)


def safe_url(url: str) -> str:
    """``url`` as events record it: no credentials, no query string, no fragment."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return url.split("?", 1)[0]
    netloc = parts.netloc.rpartition("@")[2]
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


def _identity_of_process() -> tuple[str, str]:
    return str(getattr(rec, "_service_name", "python")), str(getattr(rec, "_INSTANCE", "?"))


# --------------------------------------------------------------------------- request context


def request_trace() -> int:
    """The trace the running context's events belong to (the request's, else the recorder's)."""
    trace = _TRACE.get()
    return rec.current_trace() if trace is None else trace


def enter_request(ctx: IncomingContext | None) -> tuple[Any, ...]:
    """Adopt an incoming request's trace, span and tracestate in the running context.

    Returns the tokens for :func:`exit_request` (same context). Without a usable trace id the
    request joins the recorder's current trace, with a fresh span.
    """
    trace = ctx.trace_id if ctx is not None else None
    span = ctx.span_id if ctx is not None and ctx.span_id else new_span_id()
    state = ctx.tracestate if ctx is not None else None
    return (_TRACE.set(trace), _SPAN.set(span), _STATE.set(state))


def exit_request(tokens: tuple[Any, ...]) -> None:
    """Undo :func:`enter_request` (tolerates a context that already moved on)."""
    variables: tuple[contextvars.ContextVar[Any], ...] = (_TRACE, _SPAN, _STATE)
    for var, token in zip(variables, tokens, strict=False):
        try:
            var.reset(token)
        except ValueError:  # a different context (a misbehaving server): leave it
            pass


def route(event: Event) -> None:
    """Stamp ``event`` with its request's trace (called by the transport for every event)."""
    global _routing_overflow
    trace = _TRACE.get()
    ext = event.ext
    task = ext.get("task") if ext is not None else None
    if trace is None and task is not None and _task_trace:
        trace = _task_trace.get(task)
    if trace is None:
        return
    event.trace_id = trace
    if ext is None:
        return
    kind = event.kind
    if kind == "AsyncSpawn":
        child = ext.get("child")
        if isinstance(child, str):
            if len(_task_trace) >= _MAX_ROUTED:
                _routing_overflow += 1  # a leak of never-ending tasks: stop following them
            else:
                _task_trace[child] = trace
    elif kind == "Custom" and event.data.get("name") == "raceway.task_end" and task is not None:
        _task_trace.pop(task, None)


def routing_stats() -> dict[str, int]:
    """Tasks currently followed into a request trace, and forks no longer followed."""
    return {"routed_tasks": len(_task_trace), "routing_overflow": _routing_overflow}


def set_flush_on_response(enabled: bool, timeout: float = 5.0) -> None:
    """Make every response wait (at most ``timeout`` s) until the handler's events were sent.

    For tests: when the caller gets the response, the engine already has everything the
    handler did before responding, so the verdict of the test that made the call is complete.
    """
    global _flush_on_response, _flush_timeout
    if not isinstance(timeout, (int, float)) or timeout <= 0:
        raise ValueError(f"timeout must be a positive number of seconds, got {timeout!r}")
    _flush_on_response = bool(enabled)
    _flush_timeout = float(timeout)


def flush_on_response() -> bool:
    """True when responses wait for the handler's events to be delivered."""
    return _flush_on_response


# --------------------------------------------------------------------------- caller side


class Outgoing:
    """One outgoing request in flight (returned by :func:`begin_request`)."""

    __slots__ = ("span", "method", "url", "started")

    def __init__(self, span: str, method: str, url: str) -> None:
        self.span = span
        self.method = method
        self.url = url
        self.started = time.perf_counter_ns()


def begin_request(
    method: str, url: str, existing: Mapping[str, str] | None = None
) -> tuple[dict[str, str], Outgoing] | None:
    """The caller is about to send a request: record it, release, return headers to add.

    ``existing``: the request's headers; an explicit ``traceparent``/``tracestate`` there is
    kept (only ``raceway-clock`` is always ours). None when nothing is recorded.
    """
    if not rec.enabled():
        return None
    child = new_span_id()
    rec.emit_event(
        "HttpRequest",
        {"method": method, "url": safe_url(url), "headers": {}, "body": None},
        {"span": child},
    )
    clock = _release(f"http:{child}")
    if clock is None:
        return None
    service, instance = _identity_of_process()
    tracestate = _STATE.get()
    headers = build_outgoing(
        request_trace(),
        _SPAN.get() or _ROOT_SPAN,
        service,
        instance,
        clock,
        tracestate,
        child_span_id=child,
        ext={"task": rec.current().id},
    )
    if existing is not None:
        lowered = {k.lower() for k in existing}
        for name in (TRACEPARENT, TRACESTATE):
            if name in lowered:
                headers.pop(name, None)
    return headers, Outgoing(child, method, url)


def end_request(out: Outgoing, status: int, headers: Mapping[str, str]) -> None:
    """The response arrived: join the handler's clock (if it sent one), record the response."""
    if not rec.enabled():
        return
    ctx = parse_incoming(headers) if _has_clock(headers) else None
    if ctx is not None and ctx.clock:
        _acquire(f"http:{out.span}:response", ctx.clock)
    elapsed = time.perf_counter_ns() - out.started
    rec.emit_event(
        "HttpResponse",
        {"status": int(status), "headers": {}, "body": None, "duration_ms": elapsed // 1_000_000},
        {"span": out.span},
        elapsed,
    )


def _has_clock(headers: Mapping[str, str]) -> bool:
    if headers.get(RACEWAY_CLOCK) is not None:
        return True
    return any(k.lower() == RACEWAY_CLOCK for k in headers)


# --------------------------------------------------------------------------- handler side


class Handler:
    """One request being handled (returned by :func:`start_handler`)."""

    __slots__ = ("ctx", "span", "method", "url", "started", "responded", "status")

    def __init__(self, ctx: IncomingContext | None, method: str, url: str) -> None:
        self.ctx = ctx
        self.span = _SPAN.get() or new_span_id()
        self.method = method
        self.url = url
        self.started = time.perf_counter_ns()
        self.responded = False
        self.status: int | None = None


def start_handler(ctx: IncomingContext | None, method: str, url: str) -> Handler:
    """Run in the handler's own task, first thing: acquire the caller's clock, record the request.

    ``ctx`` is what :func:`~raceway_sdk.protocol.headers.parse_incoming` read from the request.
    """
    handler = Handler(ctx, method, url)
    if not rec.enabled():
        return handler
    if ctx is not None and ctx.clock:
        _acquire(f"http:{handler.span}", ctx.clock)
    ext: dict[str, Any] = {"span": handler.span}
    if ctx is not None:
        if ctx.parent_span_id:
            ext["upstream_span"] = ctx.parent_span_id
        if ctx.service:
            ext["caller_service"] = ctx.service
    data: dict[str, Any] = {"method": method, "url": safe_url(url), "headers": {}, "body": None}
    rec.emit_event("HttpRequest", data, ext)
    return handler


def respond(handler: Handler, status: int) -> dict[str, str]:
    """The response starts: record it, release the handler's clock; returns headers to add.

    With :func:`set_flush_on_response` on, waits (bounded) until the sink delivered the events
    recorded so far. Call once per request; later calls return no headers.
    """
    if handler.responded:
        return {}
    handler.responded = True
    handler.status = int(status)
    if not rec.enabled():
        return {}
    elapsed = time.perf_counter_ns() - handler.started
    rec.emit_event(
        "HttpResponse",
        {"status": int(status), "headers": {}, "body": None, "duration_ms": elapsed // 1_000_000},
        {"span": handler.span},
        elapsed,
    )
    clock = _release(f"http:{handler.span}:response")
    if clock is None:
        return {}
    service, instance = _identity_of_process()
    ctx = handler.ctx
    upstream = ctx.parent_span_id if ctx is not None and ctx.parent_span_id else handler.span
    built = build_outgoing(
        request_trace(),
        upstream,
        service,
        instance,
        clock,
        child_span_id=handler.span if _is_span(handler.span) else None,
        ext={"task": rec.current().id, "response": True},
    )
    if _flush_on_response:
        _flush_sink()
    return {RACEWAY_CLOCK: built[RACEWAY_CLOCK]}


def _is_span(span: str) -> bool:
    return len(span) == 16 and all(c in "0123456789abcdefABCDEF" for c in span)


def _flush_sink() -> None:
    flush = getattr(rec.get_sink(), "flush", None)
    if flush is None:
        return
    with rec.suspended():
        try:
            flush(_flush_timeout)
        except Exception:  # the sink counts its own failures; never fail the response
            pass


def finish_handler(handler: Handler) -> None:
    """The handler's work ended (body sent, background work done): nothing to release."""
    handler.responded = True
