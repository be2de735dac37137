"""API keys, UI sessions and the per-key/IP rate limit, as one pure-ASGI middleware.

* Keys are read from ``Authorization: Bearer``, ``X-Raceway-Key``, ``X-Raceway-API-Key`` or
  ``?api_key=`` and compared with :func:`hmac.compare_digest` against every configured key (the
  time taken does not depend on which key matched or where a guess differs). A ``?api_key=`` is
  removed from the request's query string before anything downstream (uvicorn's access log
  included) sees it; keys are never logged.
* A UI session cookie (``/auth/login`` with ``server.ui_password``) is a stateless HMAC-signed
  token with an expiry, so it is valid on every process of a scale-out and protects the UI and
  the API alike (the original's cookie protected nothing).
* Rate limit: a token bucket per API key (hashed) or client IP, ``rate_limit_rpm`` per minute with
  a burst of the same size; refusals are 429 with ``Retry-After``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import math
import re
import secrets
import threading
import time
from collections import OrderedDict
from typing import Any
from urllib.parse import parse_qsl, urlencode

from starlette.types import ASGIApp, Receive, Scope, Send

from raceway_server.api.responses import fail
from raceway_server.config import Config
from raceway_server.web import PUBLIC_PATHS

SESSION_COOKIE = "raceway_session"
SESSION_MAX_AGE = 7 * 24 * 3600
OPEN_PATHS = frozenset(("/auth/login", "/auth/logout", "/auth/check")) | PUBLIC_PATHS


class Sessions:
    """Stateless signed session tokens: ``<expiry>.<nonce>.<hmac>``."""

    def __init__(self, password: str | None) -> None:
        self.enabled = password is not None
        self._password = (password or "").encode()
        # A fresh salt per process would break scale-out; derive the key from the password.
        self._key = hashlib.sha256(b"raceway-session\0" + self._password).digest()
        self._revoked: set[str] = set()

    def check_password(self, attempt: str) -> bool:
        return self.enabled and hmac.compare_digest(attempt.encode(), self._password)

    def issue(self, now: float | None = None) -> str:
        expiry = int((time.time() if now is None else now) + SESSION_MAX_AGE)
        body = f"{expiry}.{secrets.token_urlsafe(12)}"
        return f"{body}.{self._sign(body)}"

    def _sign(self, body: str) -> str:
        mac = hmac.new(self._key, body.encode(), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(mac).decode().rstrip("=")

    def valid(self, token: str | None, now: float | None = None) -> bool:
        if not self.enabled or not token or token in self._revoked:
            return False
        body, _, mac = token.rpartition(".")
        expiry_text = body.split(".", 1)[0]
        if not expiry_text.isdigit() or not hmac.compare_digest(mac, self._sign(body)):
            return False
        return int(expiry_text) > (time.time() if now is None else now)

    def revoke(self, token: str | None) -> None:
        if token:
            self._revoked.add(token)


class RateLimiter:
    """Token buckets keyed by client identity; bounded table (least recently used evicted)."""

    def __init__(self, per_minute: int, max_clients: int = 100_000) -> None:
        self.rate = per_minute / 60.0
        self.burst = float(per_minute)
        self._buckets: OrderedDict[str, list[float]] = OrderedDict()
        self._max = max_clients
        self._lock = threading.Lock()

    def acquire(self, client: str, now: float | None = None) -> float:
        """0 if allowed, else the seconds to wait until one request is allowed again."""
        now = time.monotonic() if now is None else now
        with self._lock:
            bucket = self._buckets.get(client)
            if bucket is None:
                bucket = [self.burst, now]
                self._buckets[client] = bucket
                if len(self._buckets) > self._max:
                    self._buckets.popitem(last=False)
            else:
                self._buckets.move_to_end(client)
                bucket[0] = min(self.burst, bucket[0] + (now - bucket[1]) * self.rate)
                bucket[1] = now
            if bucket[0] >= 1.0:
                bucket[0] -= 1.0
                return 0.0
            return (1.0 - bucket[0]) / self.rate


def _headers(scope: Scope) -> dict[bytes, bytes]:
    return {k.lower(): v for k, v in scope.get("headers", ())}


def _cookie(headers: dict[bytes, bytes], name: str) -> str | None:
    raw = headers.get(b"cookie", b"").decode("latin-1")
    for part in raw.split(";"):
        key, _, value = part.strip().partition("=")
        if key == name:
            return value
    return None


_API_KEY_PARAM = re.compile(rb"(?:^|&)api_key=")


def presented_key(scope: Scope) -> str | None:
    """The API key the request carries, and strip ``api_key`` from the query string."""
    headers = _headers(scope)
    auth = headers.get(b"authorization")
    if auth is not None and auth[:7].lower() == b"bearer ":
        return auth[7:].decode("latin-1").strip()
    for name in (b"x-raceway-key", b"x-raceway-api-key"):
        value = headers.get(name)
        if value is not None:
            return value.decode("latin-1").strip()
    query: bytes = scope.get("query_string", b"")
    if _API_KEY_PARAM.search(query):
        pairs = parse_qsl(query.decode("latin-1"), keep_blank_values=True)
        key = next((v for k, v in pairs if k == "api_key"), None)
        scope["query_string"] = urlencode([(k, v) for k, v in pairs if k != "api_key"]).encode()
        return key
    return None


class RedactKeys(logging.Filter):
    """Belt and braces for log lines that might still carry ``api_key=...``."""

    _pattern = re.compile(r"(api_key=)[^&\s\"]*")

    def filter(self, record: logging.LogRecord) -> bool:
        if record.args and isinstance(record.args, tuple):
            record.args = tuple(
                self._pattern.sub(r"\1<redacted>", a) if isinstance(a, str) else a
                for a in record.args
            )
        if isinstance(record.msg, str) and "api_key=" in record.msg:
            record.msg = self._pattern.sub(r"\1<redacted>", record.msg)
        return True


class Guard:
    """Authentication then rate limiting in front of every route except ``/auth/*``."""

    def __init__(self, app: ASGIApp, config: Config, sessions: Sessions) -> None:
        self.app = app
        self.config = config
        self.sessions = sessions
        self._keys = [k.encode() for k in config.api_keys]
        self.limiter = (
            RateLimiter(config.rate_limit_rpm) if config.rate_limit_enabled else None
        )

    def key_valid(self, key: str | None) -> bool:
        if key is None:
            return False
        attempt = key.encode()
        matched = False
        for candidate in self._keys:  # no early exit: time does not reveal which key matched
            matched |= hmac.compare_digest(attempt, candidate)
        return matched

    def authenticated(self, scope: Scope, key: str | None) -> bool:
        if self.key_valid(key):
            return True
        return self.sessions.valid(_cookie(_headers(scope), SESSION_COOKIE))

    def client_id(self, scope: Scope, key: str | None) -> str:
        if key:
            return "key:" + hashlib.sha256(key.encode()).hexdigest()[:24]
        if self.config.trust_forwarded_for:
            forwarded = _headers(scope).get(b"x-forwarded-for")
            if forwarded:
                return "ip:" + forwarded.decode("latin-1").split(",")[0].strip()
        client = scope.get("client")
        return "ip:" + (client[0] if client else "anonymous")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        key = presented_key(scope)
        scope.setdefault("state", {})["raceway_key"] = key
        valid_key = self.key_valid(key)
        if self.limiter is not None:
            # a valid key has its own bucket; anything else (no key, a wrong key) is limited by
            # client address, so guessing keys is rate-limited too
            wait = self.limiter.acquire(self.client_id(scope, key if valid_key else None))
            if wait > 0:
                response = fail(
                    429, "Too Many Requests", headers={"Retry-After": str(math.ceil(wait))}
                )
                await response(scope, receive, send)
                return
        if (
            self.config.auth_required
            and not valid_key
            and scope["path"] not in OPEN_PATHS
            and scope.get("method") != "OPTIONS"
            and not self.sessions.valid(_cookie(_headers(scope), SESSION_COOKIE))
        ):
            response = fail(401, "Unauthorized", headers={"WWW-Authenticate": "Bearer"})
            await response(scope, receive, send)
            return
        await self.app(scope, receive, send)


def install_log_redaction() -> None:
    """Attach :class:`RedactKeys` to the loggers that print request lines."""
    for name in ("uvicorn.access", "uvicorn.error", "raceway_server"):
        logger = logging.getLogger(name)
        if not any(isinstance(f, RedactKeys) for f in logger.filters):
            logger.addFilter(RedactKeys())


def request_state(scope: Scope) -> dict[str, Any]:
    state: dict[str, Any] = scope.setdefault("state", {})
    return state
