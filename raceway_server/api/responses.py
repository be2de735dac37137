"""The original's response envelope ``{"success", "data", "error"}`` (orjson) and API errors."""

from __future__ import annotations

from typing import Any

import orjson
from starlette.responses import Response


def _default(value: Any) -> Any:
    if isinstance(value, (set, frozenset, tuple)):
        return list(value)
    if hasattr(value, "to_dict"):
        return value.to_dict()
    return str(value)


def dumps(value: Any) -> bytes:
    """JSON bytes; non-JSON values (sets, objects with to_dict) are converted, never dropped."""
    return orjson.dumps(value, default=_default, option=orjson.OPT_NON_STR_KEYS)


class JSONResponse(Response):
    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return dumps(content)


def ok(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"success": True, "data": data, "error": None}, status, headers)


def fail(
    status: int, message: str, data: Any = None, headers: dict[str, str] | None = None
) -> JSONResponse:
    return JSONResponse({"success": False, "data": data, "error": message}, status, headers)


class ApiError(Exception):
    """Raised by handlers; rendered as an envelope with ``success: false``."""

    def __init__(
        self, status: int, message: str, retry_after: int | None = None, data: Any = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.retry_after = retry_after
        self.data = data

    def response(self) -> JSONResponse:
        headers = {"Retry-After": str(self.retry_after)} if self.retry_after is not None else None
        return fail(self.status, self.message, self.data, headers)
