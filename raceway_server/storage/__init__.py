"""Storage backends: the durable event log (memory or PostgreSQL) and the in-memory catalog."""

from __future__ import annotations

from typing import TYPE_CHECKING

from raceway_server.storage.base import AppendResult, Deletion, Storage, StorageUnavailable

if TYPE_CHECKING:
    from raceway_server.config import Config

__all__ = ["AppendResult", "Deletion", "Storage", "StorageUnavailable", "open_storage"]


def open_storage(config: Config) -> Storage:
    """The backend named by ``storage.backend`` (not yet opened). psycopg is imported lazily."""
    if config.storage_backend == "postgres":
        from raceway_server.storage.postgres import PostgresStorage

        assert config.database_url is not None  # checked by config validation
        return PostgresStorage(
            config.database_url,
            min_connections=config.pg_min_connections,
            max_connections=config.pg_max_connections,
            connect_timeout=config.pg_connect_timeout,
            auto_migrate=config.auto_migrate,
        )
    from raceway_server.storage.memory import MemoryStorage

    return MemoryStorage()
