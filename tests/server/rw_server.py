"""The server tests' names for the shared helpers (imported by name: ``conftest`` is
ambiguous when several test folders are collected together)."""

from __future__ import annotations

from raceway_server.storage.throwaway import PgCluster, free_port
from raceway_server.testing import ThreadedServer as RunningServer

__all__ = ["PgCluster", "RunningServer", "free_port"]
