"""The HTTP API (Starlette): ``create_app(config, service=None)``."""

from __future__ import annotations

from raceway_server.api.app import create_app

__all__ = ["create_app"]
