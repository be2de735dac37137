"""Server-side HTTP propagation: ASGI (:mod:`.asgi`) and WSGI (:mod:`.wsgi`) middleware.

``app = RacewayASGIMiddleware(app)`` / ``app.wsgi_app = RacewayWSGIMiddleware(app.wsgi_app)``:
each request's handler runs as its own logical task that acquires the caller's clock, and the
response carries the handler's clock back (:mod:`raceway_sdk.propagation`). Importing this
package imports neither framework.
"""

from __future__ import annotations

from typing import Any

__all__ = ["RacewayASGIMiddleware", "RacewayWSGIMiddleware"]


def __getattr__(name: str) -> Any:
    if name == "RacewayASGIMiddleware":
        from raceway_sdk.middleware.asgi import RacewayASGIMiddleware

        return RacewayASGIMiddleware
    if name == "RacewayWSGIMiddleware":
        from raceway_sdk.middleware.wsgi import RacewayWSGIMiddleware

        return RacewayWSGIMiddleware
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
