"""The ASGI application: routes, the auth/rate-limit guard, optional CORS, lifespan.

``create_app(config)`` builds everything; ``create_app(config, service)`` reuses a started
service (tests, embedding). The lifespan opens storage and starts the warm-up; shutdown ends the
live streams, then flushes and closes storage.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator
from typing import Any

import anyio.to_thread
import orjson
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from raceway_server.api.live import LiveFeed
from raceway_server.api.openapi import openapi_document
from raceway_server.api.responses import ApiError, JSONResponse, fail
from raceway_server.api.routes import Handlers, api_routes
from raceway_server.api.security import SESSION_COOKIE, SESSION_MAX_AGE, Guard, Sessions
from raceway_server.config import Config
from raceway_server.service import Service
from raceway_server.web import web_routes

log = logging.getLogger(__name__)

def _auth_routes(config: Config, sessions: Sessions, guard_ref: list[Guard]) -> list[Route]:
    async def login(request: Request) -> Response:
        if not sessions.enabled:
            return fail(400, "UI authentication is not enabled")
        raw = b""
        async for chunk in request.stream():
            raw += chunk
            if len(raw) > 4096:
                return fail(413, "login body must be a small JSON object")
        try:
            body = orjson.loads(raw)
        except orjson.JSONDecodeError:
            body = None
        password = body.get("password") if isinstance(body, dict) else None
        if not isinstance(password, str):
            return fail(400, 'body must be a JSON object {"password": "..."}')
        if not sessions.check_password(password):
            response = JSONResponse({"success": False, "message": "Invalid password"}, 401)
            response.delete_cookie(SESSION_COOKIE, path="/")
            return response
        response = JSONResponse({"success": True, "message": "Login successful"})
        response.set_cookie(
            SESSION_COOKIE,
            sessions.issue(),
            max_age=SESSION_MAX_AGE,
            path="/",
            httponly=True,
            samesite="strict",
            secure=request.url.scheme == "https",
        )
        return response

    async def logout(request: Request) -> Response:
        sessions.revoke(request.cookies.get(SESSION_COOKIE))
        response = JSONResponse({"success": True, "message": "Logged out successfully"})
        response.delete_cookie(SESSION_COOKIE, path="/")
        return response

    async def check(request: Request) -> Response:
        key = request.scope.get("state", {}).get("raceway_key")
        guard = guard_ref[0]
        authenticated = (not config.auth_required) or guard.authenticated(request.scope, key)
        return JSONResponse({"authenticated": authenticated, "auth_required": config.auth_required})

    return [
        Route("/auth/login", login, methods=["POST"]),
        Route("/auth/logout", logout, methods=["POST"]),
        Route("/auth/check", check, methods=["GET"]),
    ]


async def _api_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ApiError)
    return exc.response()


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    message = {404: "Not Found", 405: "Method Not Allowed"}.get(exc.status_code, str(exc.detail))
    return fail(exc.status_code, message, headers=dict(exc.headers or {}))


async def _server_error(request: Request, exc: Exception) -> Response:
    log.exception("unhandled error on %s %s", request.method, request.url.path)
    return fail(500, f"internal error: {type(exc).__name__}")


def create_app(config: Config, service: Service | None = None) -> Starlette:
    """The Raceway ASGI app. Without ``service`` the lifespan creates and starts one."""
    owned = service is None
    svc = service if service is not None else Service(config)
    live = LiveFeed(svc)
    sessions = Sessions(config.ui_password)
    handlers = Handlers(svc, config.max_body_bytes)
    guard_ref: list[Guard] = []
    document = openapi_document()

    async def openapi(request: Request) -> Response:
        return JSONResponse(document)

    routes = [
        *web_routes(),
        Route("/openapi.json", openapi, methods=["GET"]),
        *_auth_routes(config, sessions, guard_ref),
        *api_routes(handlers, live.endpoint),
    ]

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        if owned:
            await anyio.to_thread.run_sync(svc.start)
        try:
            yield
        finally:
            live.close()
            if owned:
                await anyio.to_thread.run_sync(svc.close)

    def guard_factory(app: Any) -> Guard:
        guard = Guard(app, config, sessions)
        guard_ref[:] = [guard]
        return guard

    middleware = []
    if config.cors_active:
        origins = ["*"] if config.cors_allow_all or "*" in config.cors_origins else list(config.cors_origins)
        middleware.append(
            Middleware(
                CORSMiddleware,
                allow_origins=origins,
                allow_methods=["GET", "POST", "OPTIONS"],
                allow_headers=["*"],
                allow_credentials=False,
            )
        )
    middleware.append(Middleware(guard_factory))  # type: ignore[arg-type]
    app = Starlette(
        routes=routes,
        middleware=middleware,
        lifespan=lifespan,
        exception_handlers={
            ApiError: _api_error,
            HTTPException: _http_error,
            Exception: _server_error,
        },
    )
    app.state.service = svc
    app.state.live = live
    return app


__all__ = ["create_app"]
