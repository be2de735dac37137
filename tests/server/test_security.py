"""API keys, UI sessions, rate limit and CORS over real HTTP."""

from __future__ import annotations

import logging
from collections.abc import Callable

import anyio
import httpx
import pytest
from rw_events import body, racing_trace
from rw_server import RunningServer

from raceway_server.api.security import Guard, RateLimiter, RedactKeys, Sessions, presented_key
from raceway_server.config import Config

KEY = "k-" + "s3cret" * 4


@pytest.fixture
def secured(serve: Callable[..., RunningServer]) -> RunningServer:
    return serve(api_keys=(KEY, "other-key"), ui_password="hunter2")


@pytest.mark.parametrize(
    "how",
    ["bearer", "bearer-lowercase", "x-raceway-key", "x-raceway-api-key", "query"],
)
def test_every_key_form_is_accepted(secured: RunningServer, how: str) -> None:
    headers: dict[str, str] = {}
    params: dict[str, str] = {}
    if how == "bearer":
        headers["Authorization"] = f"Bearer {KEY}"
    elif how == "bearer-lowercase":
        headers["Authorization"] = f"bearer {KEY}"
    elif how == "x-raceway-key":
        headers["X-Raceway-Key"] = KEY
    elif how == "x-raceway-api-key":
        headers["X-Raceway-API-Key"] = KEY
    else:
        params["api_key"] = KEY
    response = httpx.get(secured.url + "/api/traces", headers=headers, params=params)
    assert response.status_code == 200, response.text


@pytest.mark.parametrize(
    "path", ["/openapi.json", "/health", "/status", "/api/traces", "/api/live", "/api/export/session"]
)
def test_everything_but_auth_routes_needs_a_key(secured: RunningServer, path: str) -> None:
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"X-Raceway-Key": KEY[:-1]}):
        response = httpx.get(secured.url + path, headers=headers)
        assert response.status_code == 401
        assert response.json() == {"success": False, "data": None, "error": "Unauthorized"}
        assert response.headers["WWW-Authenticate"] == "Bearer"
    post = httpx.post(secured.url + "/events", content=body(racing_trace()[1]))
    assert post.status_code == 401
    assert secured.service.catalog.event_count == 0


def test_ui_shell_is_public_but_carries_no_data(secured: RunningServer) -> None:
    """The shell only holds our JS/CSS and a login prompt; every byte of data needs the key."""
    post = httpx.post(secured.url + "/events", content=body(racing_trace()[1]),
                      headers={"X-Raceway-Key": KEY})
    assert post.status_code == 200
    page = httpx.get(secured.url + "/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert secured.service.catalog.event_count > 0
    import uuid

    for trace_id in secured.service.catalog.traces:
        assert str(uuid.UUID(int=trace_id)) not in page.text
    assert httpx.get(secured.url + "/api/traces").status_code == 401


def test_ui_login_session_grants_access_and_logout_ends_it(secured: RunningServer) -> None:
    with httpx.Client(base_url=secured.url) as client:
        assert client.get("/auth/check").json() == {"authenticated": False, "auth_required": True}
        wrong = client.post("/auth/login", json={"password": "nope"})
        assert wrong.status_code == 401 and wrong.json() == {"success": False, "message": "Invalid password"}
        assert client.get("/api/traces").status_code == 401
        good = client.post("/auth/login", json={"password": "hunter2"})
        assert good.json() == {"success": True, "message": "Login successful"}
        cookie = good.headers["set-cookie"]
        assert "raceway_session=" in cookie and "HttpOnly" in cookie and "SameSite=strict" in cookie
        assert client.get("/auth/check").json()["authenticated"] is True
        assert client.get("/").status_code == 200  # the UI is behind the same check
        assert client.get("/api/traces").status_code == 200
        token = client.cookies["raceway_session"]
        client.post("/auth/logout")
        assert client.get("/api/traces").status_code == 401
        forged = httpx.get(secured.url + "/api/traces", cookies={"raceway_session": token[:-2] + "xx"})
        assert forged.status_code == 401


def test_login_without_password_configured(server: RunningServer) -> None:
    response = httpx.post(server.url + "/auth/login", json={"password": "x"})
    assert response.status_code == 400 and response.json()["error"] == "UI authentication is not enabled"
    assert httpx.get(server.url + "/auth/check").json() == {"authenticated": True, "auth_required": False}


def test_sessions_expire_and_are_shared_between_processes() -> None:
    a, b = Sessions("pw"), Sessions("pw")
    token = a.issue(now=1000.0)
    assert b.valid(token, now=1001.0)  # another process with the same password accepts it
    assert not b.valid(token, now=1000.0 + 8 * 86400)
    assert not Sessions("other").valid(token, now=1001.0)
    assert not Sessions(None).valid(token, now=1001.0)


def test_rate_limit_per_client_with_retry_after(serve: Callable[..., RunningServer]) -> None:
    server = serve(rate_limit_enabled=True, rate_limit_rpm=3, api_keys=("a-key", "b-key"))
    a = {"Authorization": "Bearer a-key"}
    codes = [httpx.get(server.url + "/api/traces", headers=a).status_code for _ in range(4)]
    assert codes == [200, 200, 200, 429]
    refused = httpx.get(server.url + "/api/traces", headers=a)
    assert refused.status_code == 429 and refused.json()["error"] == "Too Many Requests"
    assert 1 <= int(refused.headers["Retry-After"]) <= 20
    # another key has its own bucket
    assert httpx.get(server.url + "/api/traces", headers={"X-Raceway-Key": "b-key"}).status_code == 200
    # guessing keys is limited per client address, whatever key is presented
    guesses = [
        httpx.get(server.url + "/api/traces", headers={"X-Raceway-Key": f"guess-{n}"}).status_code
        for n in range(4)
    ]
    assert guesses == [401, 401, 401, 429]


def test_rate_limiter_refills() -> None:
    limiter = RateLimiter(per_minute=60)
    for _ in range(60):
        assert limiter.acquire("c", now=0.0) == 0
    assert limiter.acquire("c", now=0.0) == pytest.approx(1.0)
    assert limiter.acquire("c", now=1.5) == 0


def test_cors_off_by_default_and_on_for_configured_origins(serve: Callable[..., RunningServer]) -> None:
    origin = {"Origin": "http://ui.example"}
    plain = serve()
    assert "access-control-allow-origin" not in httpx.get(plain.url + "/api/traces", headers=origin).headers
    cors = serve(cors_origins=("http://ui.example",))
    response = httpx.get(cors.url + "/api/traces", headers=origin)
    assert response.headers["access-control-allow-origin"] == "http://ui.example"
    other = httpx.get(cors.url + "/api/traces", headers={"Origin": "http://evil.example"})
    assert "access-control-allow-origin" not in other.headers
    preflight = httpx.options(
        cors.url + "/events",
        headers={**origin, "Access-Control-Request-Method": "POST"},
    )
    assert preflight.status_code == 200


def test_query_key_is_stripped_before_the_app_and_logs() -> None:
    seen: dict[str, bytes] = {}

    async def app(scope, receive, send):  
        seen["qs"] = scope["query_string"]
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    guard = Guard(app, Config(api_keys=(KEY,)), Sessions(None))
    scope = {"type": "http", "path": "/api/traces", "method": "GET", "headers": [],
             "query_string": f"page=2&api_key={KEY}".encode(), "client": ("127.0.0.1", 1)}
    sent: list[dict] = []

    async def receive():  
        return {"type": "http.request"}

    async def send(message):  
        sent.append(message)

    anyio.run(guard, scope, receive, send)
    assert sent[0]["status"] == 204
    assert seen["qs"] == b"page=2" and KEY.encode() not in scope["query_string"]  # type: ignore[operator]
    record = logging.LogRecord("uvicorn.access", logging.INFO, "", 0, '%s "GET %s"', ("1.2.3.4", f"/x?api_key={KEY}"), None)
    RedactKeys().filter(record)
    assert KEY not in record.getMessage() and "api_key=<redacted>" in record.getMessage()


def test_presented_key_precedence() -> None:
    scope = {"headers": [(b"authorization", b"Bearer one"), (b"x-raceway-key", b"two")], "query_string": b""}
    assert presented_key(scope) == "one"
    assert presented_key({"headers": [], "query_string": b""}) is None
