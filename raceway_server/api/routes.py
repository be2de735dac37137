"""Route handlers: the original's 18 API routes plus exports, with the envelope everywhere.

Handlers validate parameters (bad values are a 400 naming the parameter, never a silent default
and never a panic) and run the service's blocking work in a worker thread.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, TypeVar

import anyio.to_thread
import orjson
from raceway_sdk.protocol.events import BatchError, dumps_batch, parse_batch, parse_uuid, uuid_str
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from raceway_server.api.export import session_document, shiviz_log
from raceway_server.api.responses import ApiError, JSONResponse, ok
from raceway_server.engine.analysis import SEVERITY_LABEL
from raceway_server.service import NotFound, Service, Unavailable

SEVERITIES = tuple(SEVERITY_LABEL)  # the engine's race kinds: write-write, lost-update, read-write

_T = TypeVar("_T")
MAX_PAGE_SIZE = 1000


def int_param(request: Request, name: str, default: int, low: int, high: int) -> int:
    raw = request.query_params.get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ApiError(400, f"query parameter '{name}' must be an integer, got {raw!r}") from None
    if not low <= value <= high:
        raise ApiError(400, f"query parameter '{name}' must be between {low} and {high}, got {value}")
    return value


def trace_param(request: Request) -> int:
    raw = request.path_params["trace_id"]
    try:
        return parse_uuid(raw)
    except ValueError:
        raise ApiError(400, "Invalid trace ID format") from None


def envelope_param(request: Request) -> bool:
    """``?envelope=1``: an export inside the envelope instead of the bare downloadable file."""
    raw = request.query_params.get("envelope")
    if raw is None:
        return False
    value = raw.strip().lower()
    if value in ("1", "true", "yes"):
        return True
    if value in ("0", "false", "no", ""):
        return False
    raise ApiError(400, f"query parameter 'envelope' must be 1/true or 0/false, got {raw!r}")


def _wrapped(document: bytes) -> bytes:
    """An already serialised JSON document as the envelope's ``data`` (no re-parse)."""
    return b'{"success":true,"data":' + document + b',"error":null}'


async def call(fn: Callable[..., _T], *args: Any) -> _T:
    """Run blocking service work off the event loop; map service errors to HTTP."""
    try:
        return await anyio.to_thread.run_sync(fn, *args)
    except NotFound as exc:
        raise ApiError(404, str(exc)) from None
    except Unavailable as exc:  # storage down, warming up, or Busy (backpressure)
        raise ApiError(503, str(exc), retry_after=exc.retry_after) from None


class Handlers:
    def __init__(self, service: Service, max_body_bytes: int) -> None:
        self.service = service
        self.max_body = max_body_bytes

    # --- system ---------------------------------------------------------------------------

    async def health(self, request: Request) -> Response:
        warm = self.service.warmup
        if warm.phase == "failed":
            return JSONResponse(
                {"success": False, "data": warm.to_dict(), "error": f"warm-up failed: {warm.last_error}"},
                503,
            )
        return ok(warm.to_dict())

    async def status(self, request: Request) -> Response:
        return ok(self.service.status())

    # --- ingestion ------------------------------------------------------------------------

    async def _body(self, request: Request) -> bytes:
        length = request.headers.get("content-length")
        if length is not None:
            if not length.isdigit():
                raise ApiError(400, "invalid Content-Length header")
            if int(length) > self.max_body:
                raise ApiError(413, f"body of {length} bytes exceeds the limit of {self.max_body} bytes")
        chunks: list[bytes] = []
        size = 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > self.max_body:
                raise ApiError(413, f"body exceeds the limit of {self.max_body} bytes")
            chunks.append(chunk)
        return b"".join(chunks)

    async def events(self, request: Request) -> Response:
        ctype = request.headers.get("content-type", "application/json").split(";")[0].strip().lower()
        if ctype and "json" not in ctype:
            raise ApiError(415, f"Content-Type must be application/json, got {ctype!r}")
        body = await self._body(request)

        def work() -> Any:
            try:
                batch = parse_batch(body, keep_raw=self.service.keeps_raw)
            except BatchError as exc:
                raise ApiError(400, str(exc)) from None
            except RecursionError:
                raise ApiError(400, "body is nested too deeply") from None
            if batch.errors and not batch.events:
                self.service.note_rejected(len(batch.errors))
                raise ApiError(
                    422,
                    f"all {len(batch.errors)} events are invalid; first: {batch.errors[0]}",
                    data={"ingested": 0, "duplicates": 0, "rejected": len(batch.errors),
                          "errors": [e.to_dict() for e in batch.errors]},
                )
            return self.service.ingest(batch.events, batch.errors, batch.raw)

        outcome = await call(work)
        data = outcome.to_dict()
        if outcome.errors:
            first = outcome.errors[0]
            return JSONResponse(
                {
                    "success": True,
                    "data": data,
                    "error": f"{len(outcome.errors)} events rejected; first: {first}",
                },
                207,
            )
        return ok(data)

    # --- traces ---------------------------------------------------------------------------

    async def traces(self, request: Request) -> Response:
        page = int_param(request, "page", 1, 1, 10**9)
        page_size = int_param(request, "page_size", 20, 1, MAX_PAGE_SIZE)
        min_events = int_param(request, "min_events", 1, 0, 10**9)
        total, rows = await call(self.service.trace_page, page, page_size, min_events)
        return ok(
            {
                "total_traces": total,
                "page": page,
                "page_size": page_size,
                "total_pages": math.ceil(total / page_size),
                "traces": rows,
            }
        )

    async def races(self, request: Request) -> Response:
        page = int_param(request, "page", 1, 1, 10**9)
        page_size = int_param(request, "page_size", 20, 1, MAX_PAGE_SIZE)
        trace_id: int | None = None
        raw = request.query_params.get("trace_id")
        if raw is not None:
            try:
                trace_id = parse_uuid(raw)
            except ValueError:
                raise ApiError(400, f"query parameter 'trace_id' must be a UUID, got {raw!r}") from None
        variable = request.query_params.get("variable")
        severity = request.query_params.get("severity")
        if severity is not None and severity not in SEVERITIES:
            raise ApiError(
                400, f"query parameter 'severity' must be one of {', '.join(SEVERITIES)}, got {severity!r}"
            )
        return ok(await call(self.service.race_page, page, page_size, trace_id, variable, severity))

    async def trace(self, request: Request) -> Response:
        return ok(await call(self.service.trace_bundle, trace_param(request)))

    async def audit_trail(self, request: Request) -> Response:
        variable = request.path_params["variable"]
        return ok(await call(self.service.audit_trail, trace_param(request), variable))

    async def critical_path(self, request: Request) -> Response:
        return ok(await call(self.service.critical_path, trace_param(request)))

    async def anomalies(self, request: Request) -> Response:
        return ok(await call(self.service.anomalies, trace_param(request)))

    async def dependencies(self, request: Request) -> Response:
        return ok(await call(self.service.dependencies, trace_param(request)))

    async def analyze_global(self, request: Request) -> Response:
        return ok(await call(self.service.global_analysis))

    # --- services -------------------------------------------------------------------------

    async def services(self, request: Request) -> Response:
        return ok(await call(self.service.services))

    async def services_health(self, request: Request) -> Response:
        window = int_param(request, "time_window_minutes", 60, 1, 525_600)
        return ok(await call(self.service.service_health, window))

    async def service_traces(self, request: Request) -> Response:
        name = request.path_params["service_name"]
        page = int_param(request, "page", 1, 1, 10**9)
        page_size = int_param(request, "page_size", 100, 1, MAX_PAGE_SIZE)
        total, rows = await call(self.service.trace_page, page, page_size, 1, name)
        return ok(
            {
                "service_name": name,
                "total_traces": total,
                "page": page,
                "page_size": page_size,
                "total_pages": math.ceil(total / page_size),
                "traces": rows,
            }
        )

    async def service_dependencies(self, request: Request) -> Response:
        name = request.path_params["service_name"]
        return ok(await call(self.service.service_dependencies, name))

    async def performance(self, request: Request) -> Response:
        limit = int_param(request, "limit", 50, 1, 100_000)
        return ok(await call(self.service.performance, limit))

    async def edges(self, request: Request) -> Response:
        return ok(await call(self.service.edges))

    async def global_races(self, request: Request) -> Response:
        return ok(await call(self.service.global_races))

    async def hotspots(self, request: Request) -> Response:
        return ok(await call(self.service.hotspots))

    # --- exports --------------------------------------------------------------------------

    async def trace_export(self, request: Request) -> Response:
        trace_id = trace_param(request)
        fmt = request.query_params.get("format", "session")
        if fmt not in ("session", "events", "shiviz"):
            raise ApiError(400, f"query parameter 'format' must be session, events or shiviz, got {fmt!r}")
        wrap = envelope_param(request)
        service = self.service
        if fmt == "shiviz":
            events = await call(service.trace_events, trace_id)
            text = await anyio.to_thread.run_sync(shiviz_log, events, service.engine.clock_of)
            if wrap:
                return ok(text)
            return Response(
                text,
                media_type="text/plain; charset=utf-8",
                headers={"Content-Disposition": f'attachment; filename="{uuid_str(trace_id)}.shiviz.log"'},
            )
        if fmt == "events":
            events = await call(service.trace_events, trace_id)
            body = await anyio.to_thread.run_sync(dumps_batch, events)
            return Response(_wrapped(body) if wrap else body, media_type="application/json")
        return await self._session([trace_id], wrap)

    async def session_export(self, request: Request) -> Response:
        raw = request.query_params.getlist("trace_id")
        ids: list[int] | None = None
        if raw:
            try:
                ids = [parse_uuid(r) for r in raw]
            except ValueError:
                raise ApiError(400, "query parameter 'trace_id' must be a UUID") from None
        return await self._session(ids, envelope_param(request))

    async def _session(self, trace_ids: list[int] | None, wrap: bool = False) -> Response:
        service = self.service

        def work() -> bytes:
            traces = service.export_traces(trace_ids)
            doc = session_document(traces, dict(service.engine.tasks()), service.engine.stats())
            return orjson.dumps(doc, default=str)

        body = await call(work)
        return Response(_wrapped(body) if wrap else body, media_type="application/json")


def api_routes(handlers: Handlers, live_endpoint: Callable[..., Any]) -> list[Route]:
    h = handlers
    return [
        Route("/health", h.health, methods=["GET"]),
        Route("/status", h.status, methods=["GET"]),
        Route("/events", h.events, methods=["POST"]),
        Route("/api/traces", h.traces, methods=["GET"]),
        Route("/api/races", h.races, methods=["GET"]),
        Route("/api/traces/{trace_id}", h.trace, methods=["GET"]),
        Route("/api/traces/{trace_id}/audit-trail/{variable:path}", h.audit_trail, methods=["GET"]),
        Route("/api/traces/{trace_id}/critical-path", h.critical_path, methods=["GET"]),
        Route("/api/traces/{trace_id}/anomalies", h.anomalies, methods=["GET"]),
        Route("/api/traces/{trace_id}/dependencies", h.dependencies, methods=["GET"]),
        Route("/api/traces/{trace_id}/export", h.trace_export, methods=["GET"]),
        Route("/api/analyze/global", h.analyze_global, methods=["GET"]),
        Route("/api/services", h.services, methods=["GET"]),
        Route("/api/services/health", h.services_health, methods=["GET"]),
        Route("/api/services/{service_name}/traces", h.service_traces, methods=["GET"]),
        Route("/api/services/{service_name}/dependencies", h.service_dependencies, methods=["GET"]),
        Route("/api/performance/metrics", h.performance, methods=["GET"]),
        Route("/api/distributed/edges", h.edges, methods=["GET"]),
        Route("/api/distributed/global-races", h.global_races, methods=["GET"]),
        Route("/api/distributed/hotspots", h.hotspots, methods=["GET"]),
        Route("/api/export/session", h.session_export, methods=["GET"]),
        Route("/api/live", live_endpoint, methods=["GET"]),
    ]
