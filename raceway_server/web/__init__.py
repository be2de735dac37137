"""The web UI of ``raceway serve``: a static shell plus our JS/CSS, all from ``report_templates``.

The shell holds no data; the pages read the JSON API with relative URLs (so a reverse proxy may
mount the server under a prefix) and send the API key as ``X-Raceway-Key``. Because the shell and
assets carry nothing secret, they must be reachable *before* the user has typed the key:
:data:`PUBLIC_PATHS` lists exactly the paths the auth guard has to let through.

Wiring (``raceway_server/api/app.py``)::

    from raceway_server.web import PUBLIC_PATHS, web_routes
    routes = [*web_routes(), Route("/openapi.json", ...), ...]     # instead of the placeholder
    # and in security.Guard: exempt PUBLIC_PATHS like OPEN_PATHS
"""

from __future__ import annotations

import hashlib
from functools import cache, lru_cache

from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Route

from report_templates import CORE_SCRIPTS, STYLESHEET, UI_SCRIPT, asset

SCRIPTS = (*CORE_SCRIPTS, UI_SCRIPT)
ASSETS = (*SCRIPTS, STYLESHEET)
PUBLIC_PATHS = frozenset(("/", *(f"/ui/{name}" for name in ASSETS)))
_TYPES = {".js": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8"}
# The shell runs only our own files: no inline script, no other origin, no framing.
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}


@cache
def _asset(name: str) -> tuple[bytes, str]:
    body = asset(name).encode()
    return body, hashlib.sha256(body).hexdigest()[:16]


@lru_cache(maxsize=1)
def shell_html() -> str:
    """The UI page; asset URLs carry a content hash so a new version is never served stale."""
    from raceway_server.report.render import environment, version

    stamp = hashlib.sha256(b"".join(_asset(n)[0] for n in ASSETS)).hexdigest()[:12]
    template = environment().get_template("ui.html.j2")
    return template.render(css=STYLESHEET, scripts=SCRIPTS, stamp=stamp, version=version())


async def _shell(request: Request) -> Response:
    return HTMLResponse(shell_html(), headers={**SECURITY_HEADERS, "Cache-Control": "no-cache"})


async def _static(request: Request) -> Response:
    name = request.path_params["name"]
    if name not in ASSETS:
        return Response("not found", status_code=404, media_type="text/plain")
    body, etag = _asset(name)
    quoted = f'"{etag}"'
    headers = {**SECURITY_HEADERS, "ETag": quoted, "Cache-Control": "no-cache"}
    if request.headers.get("if-none-match") == quoted:
        return Response(status_code=304, headers=headers)
    return Response(body, media_type=_TYPES[name[name.rfind(".") :]], headers=headers)


def web_routes() -> list[Route]:
    """``GET /`` (the UI shell) and ``GET /ui/{name}`` (its JS and CSS)."""
    return [
        Route("/", _shell, methods=["GET"]),
        Route("/ui/{name}", _static, methods=["GET"]),
    ]


__all__ = ["CSP", "PUBLIC_PATHS", "SCRIPTS", "shell_html", "web_routes"]
