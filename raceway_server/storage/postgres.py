"""PostgreSQL storage through psycopg 3: a connection pool, COPY for batches, SQL migrations.

Writers serialise on one transaction-scoped advisory lock, so the log position ``seq`` (assigned
by the writer as ``max(seq) + n``) grows in commit order and a reader that has applied everything
up to ``seq = s`` never misses a later commit. That makes ``SELECT ... WHERE seq > s`` a complete
change feed for every other server process sharing the database.
"""

from __future__ import annotations

import dataclasses
import logging
import uuid
from collections.abc import Callable, Iterator
from importlib import resources
from typing import Any, TypeVar

import orjson
import psycopg
import psycopg_pool
from raceway_sdk.protocol.events import (
    Event,
    Metadata,
    format_timestamp,
    metadata_to_wire,
    parse_batch,
    uuid_str,
)

from raceway_server.storage.base import AppendResult, Deletion, StorageUnavailable

log = logging.getLogger(__name__)

APPEND_LOCK = 7405214  # pg_advisory_xact_lock key shared by every writer
MIGRATE_LOCK = 7405215
_COLUMNS = "(seq, id, trace_id, parent_id, ts, kind, service_name, body)"
_T = TypeVar("_T")


def migrations() -> list[tuple[str, str]]:
    """(version, sql) for every file under ``migrations/``, in name order."""
    folder = resources.files("raceway_server.storage").joinpath("migrations")
    files = sorted(
        (entry for entry in folder.iterdir() if entry.name.endswith(".sql")),
        key=lambda entry: entry.name,
    )
    return [(entry.name.removesuffix(".sql"), entry.read_text(encoding="utf-8")) for entry in files]


def _uuid(value: int | None) -> str | None:
    return None if value is None else str(uuid.UUID(int=value))


class PostgresStorage:
    """The durable log in PostgreSQL; see the module docstring for the ordering argument."""

    name = "postgres"

    def __init__(
        self,
        url: str,
        min_connections: int = 2,
        max_connections: int = 10,
        connect_timeout: float = 30.0,
        auto_migrate: bool = True,
    ) -> None:
        self._url = url
        self._timeout = connect_timeout
        self._auto_migrate = auto_migrate
        self._pool = psycopg_pool.ConnectionPool(
            url,
            min_size=min_connections,
            max_size=max_connections,
            timeout=connect_timeout,
            check=psycopg_pool.ConnectionPool.check_connection,
            open=False,
            name="raceway",
        )
        self._seq = 0  # highest log position applied by this process
        self._deletion = 0  # highest tombstone id applied by this process
        self.undecodable = 0  # stored rows that could not be parsed back (surfaced in /status)

    # --- lifecycle -------------------------------------------------------------------------

    def open(self) -> None:
        try:
            self._pool.open(wait=True, timeout=self._timeout)
        except psycopg_pool.PoolTimeout as exc:
            raise StorageUnavailable(f"cannot connect to PostgreSQL: {exc}") from exc
        if self._auto_migrate:
            self.migrate()

    def close(self) -> None:
        self._pool.close()

    def migrate(self) -> list[str]:
        """Apply the pending SQL migrations (serialised across processes); returns them."""

        def run(conn: psycopg.Connection[Any]) -> list[str]:
            applied: list[str] = []
            with conn.transaction():
                conn.execute("SELECT pg_advisory_xact_lock(%s)", (MIGRATE_LOCK,))
                conn.execute(
                    "CREATE TABLE IF NOT EXISTS raceway_schema_migrations ("
                    "version TEXT PRIMARY KEY, applied_at TIMESTAMPTZ NOT NULL DEFAULT now())"
                )
                done = {r[0] for r in conn.execute("SELECT version FROM raceway_schema_migrations")}
                for version, sql in migrations():
                    if version in done:
                        continue
                    conn.execute(sql.encode())
                    conn.execute(
                        "INSERT INTO raceway_schema_migrations (version) VALUES (%s)", (version,)
                    )
                    applied.append(version)
            return applied

        applied = self._run(run)
        if applied:
            log.info("applied migrations: %s", ", ".join(applied))
        return applied

    def stats(self) -> dict[str, Any]:
        """Pool figures for /status (connections lost and re-made show reconnects)."""
        raw = self._pool.get_stats()
        keys = ("pool_size", "pool_available", "requests_waiting", "connections_num",
                "connections_errors", "connections_lost", "requests_errors")
        return {k: int(raw.get(k, 0)) for k in keys}

    def healthy(self) -> bool:
        try:
            self._run(lambda conn: conn.execute("SELECT 1").fetchone())
        except StorageUnavailable:
            return False
        return True

    # --- the log ---------------------------------------------------------------------------

    def load(self) -> Iterator[list[Event]]:
        """Stream the whole log (server-side cursor) and position this reader at its end."""
        try:
            with self._pool.connection() as conn, conn.transaction():
                # one snapshot for the tombstone position and the events
                conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
                row = conn.execute(
                    "SELECT coalesce(max(id), 0) FROM raceway_trace_deletions"
                ).fetchone()
                self._deletion = int(row[0]) if row else 0
                with conn.cursor(name="raceway_load") as cur:
                    cur.itersize = 5000
                    cur.execute("SELECT seq, body::text FROM raceway_events ORDER BY seq")
                    while rows := cur.fetchmany(5000):
                        self._seq = int(rows[-1][0])
                        yield self._decode(rows)
        except psycopg.OperationalError as exc:
            raise StorageUnavailable(f"PostgreSQL: {exc}") from exc

    def prepare(self, events: list[Event]) -> _Prepared:
        """Serialise COPY rows (the CPU-heavy part) before any lock is taken."""
        rows: dict[int, bytes] = {}
        ids: list[str] = []
        writer = _RowWriter()
        for event in events:
            if event.id not in rows:
                tail, id_text = writer.row(event)
                rows[event.id] = tail
                ids.append(id_text)
        return _Prepared(events, rows, ids)

    def append(self, events: list[Event], prepared: _Prepared | None = None) -> AppendResult:
        if prepared is None or prepared.events is not events:
            prepared = self.prepare(events)
        rows = prepared.rows

        def run(conn: psycopg.Connection[Any]) -> AppendResult:
            with conn.transaction():
                conn.execute("SELECT pg_advisory_xact_lock(%s)", (APPEND_LOCK,))
                pending = self._pending(conn)
                head = pending.head
                stored: set[int] = set()
                if prepared.ids:
                    for (found,) in conn.execute(
                        "SELECT id FROM raceway_events WHERE id = ANY(%s::uuid[])", (prepared.ids,)
                    ):
                        stored.add(found.int)
                new: list[Event] = []
                seen: set[int] = set()
                for event in events:
                    if event.id in stored or event.id in seen:
                        continue
                    seen.add(event.id)
                    new.append(event)
                if new:
                    data = b"".join(
                        b"%d%s" % (n, rows[event.id]) for n, event in enumerate(new, head + 1)
                    )
                    with conn.cursor().copy(f"COPY raceway_events {_COLUMNS} FROM STDIN") as copy:
                        copy.write(data)
            # committed: only now does this process advance and report
            self._advance(pending)
            self._seq = head + len(new)
            return AppendResult(foreign=pending.ops, new=new, duplicates=len(events) - len(new))

        return self._run(run)

    def catch_up(self) -> list[Event | Deletion]:
        def run(conn: psycopg.Connection[Any]) -> list[Event | Deletion]:
            with conn.transaction():
                pending = self._pending(conn)
            self._advance(pending)
            return pending.ops

        return self._run(run)

    def delete_traces(self, trace_ids: list[int]) -> list[Event | Deletion]:
        if not trace_ids:
            return []

        def run(conn: psycopg.Connection[Any]) -> list[Event | Deletion]:
            ids = [uuid.UUID(int=t) for t in trace_ids]
            with conn.transaction():
                conn.execute("SELECT pg_advisory_xact_lock(%s)", (APPEND_LOCK,))
                pending = self._pending(conn)
                conn.execute("DELETE FROM raceway_events WHERE trace_id = ANY(%s)", (ids,))
                row = conn.execute(
                    "INSERT INTO raceway_trace_deletions (after_seq, trace_ids) "
                    "VALUES (%s, %s) RETURNING id",
                    (pending.head, ids),
                ).fetchone()
                # tombstones only matter to processes that are behind; a week is plenty
                conn.execute(
                    "DELETE FROM raceway_trace_deletions WHERE deleted_at < now() - interval '7 days'"
                )
            self._advance(pending)
            if row:
                self._deletion = int(row[0])
            return pending.ops

        return self._run(run)

    # --- internals -------------------------------------------------------------------------

    def _pending(self, conn: psycopg.Connection[Any]) -> _Pending:
        """Operations committed by others after this reader's position, and the log head."""
        row = conn.execute("SELECT coalesce(max(seq), 0) FROM raceway_events").fetchone()
        pending = _Pending(head=max(int(row[0]) if row else 0, self._seq), deletion=self._deletion)
        ops: list[tuple[int, int, Event | Deletion]] = []
        if pending.head > self._seq:
            rows = conn.execute(
                "SELECT seq, body::text FROM raceway_events WHERE seq > %s ORDER BY seq",
                (self._seq,),
            ).fetchall()
            for (seq, _), event in zip(rows, self._decode(rows), strict=False):
                ops.append((int(seq), 0, event))
        for del_id, after_seq, ids in conn.execute(
            "SELECT id, after_seq, trace_ids FROM raceway_trace_deletions WHERE id > %s ORDER BY id",
            (self._deletion,),
        ):
            ops.append((int(after_seq), 1, Deletion([u.int for u in ids])))
            pending.deletion = int(del_id)
        ops.sort(key=lambda op: (op[0], op[1]))
        pending.ops = [op[2] for op in ops]
        return pending

    def _advance(self, pending: _Pending) -> None:
        """Move this reader past ``pending`` (called only after the transaction committed)."""
        self._seq = max(self._seq, pending.head)
        self._deletion = max(self._deletion, pending.deletion)

    def _decode(self, rows: list[Any]) -> list[Event]:
        if not rows:
            return []
        result = parse_batch({"events": [orjson.loads(body) for _, body in rows]})
        if result.errors:
            self.undecodable += len(result.errors)
            log.error("%d stored events could not be decoded: %s", len(result.errors), result.errors[0])
        return list(result.events)

    def _run(self, fn: Callable[[psycopg.Connection[Any]], _T]) -> _T:
        try:
            with self._pool.connection() as conn:
                return fn(conn)
        except (psycopg.OperationalError, psycopg_pool.PoolTimeout) as exc:
            raise StorageUnavailable(f"PostgreSQL unavailable: {exc}") from exc


@dataclasses.dataclass
class _Pending:
    head: int
    deletion: int
    ops: list[Event | Deletion] = dataclasses.field(default_factory=list)


@dataclasses.dataclass
class _Prepared:
    events: list[Event]
    rows: dict[int, bytes]  # event id -> COPY text row without its leading seq
    ids: list[str]


def _text(value: str) -> bytes:
    """A COPY text-format field (backslash, tab, newline and carriage return escaped)."""
    if "\\" in value or "\t" in value or "\n" in value or "\r" in value or "\0" in value:
        value = (
            value.replace("\\", "\\\\")
            .replace("\t", "\\t")
            .replace("\n", "\\n")
            .replace("\r", "\\r")
            .replace("\0", "\ufffd")  # PostgreSQL text cannot hold NUL
        )
    return value.encode()


class _RowWriter:
    """COPY rows of one batch: ``\\t<id>\\t<trace>\\t<parent>\\t<ts>\\t<kind>\\t<service>\\t<json>\\n``.

    The JSON is ``event_to_wire(event)`` (tests/unit/test_protocol_fastwire.py checks the bytes
    are identical), built here with per-batch memos: trace ids, parent ids (usually the previous
    event) and shared Metadata objects repeat within a batch and are formatted once. orjson never
    emits raw control characters, so only backslashes need doubling in the JSON text.
    """

    __slots__ = ("_uuids", "_metas")

    def __init__(self) -> None:
        self._uuids: dict[int, str] = {}
        self._metas: dict[int, dict[str, Any]] = {}  # id(Metadata) -> wire dict (batch-local)

    def _uuid(self, n: int) -> str:
        text = self._uuids.get(n)
        if text is None:
            text = self._uuids[n] = uuid_str(n)
        return text

    def _meta(self, m: Metadata) -> dict[str, Any]:
        wire = self._metas.get(id(m))
        if wire is None:
            wire = self._metas[id(m)] = metadata_to_wire(m)
        return wire

    def row(self, event: Event) -> tuple[bytes, str]:
        """The COPY row of ``event`` without its leading seq, and the id text."""
        id_text = uuid_str(event.id)
        self._uuids[event.id] = id_text  # the next event's parent, usually
        trace = self._uuid(event.trace_id)
        parent = None if event.parent_id is None else self._uuid(event.parent_id)
        timestamp = format_timestamp(event.timestamp_ns)
        wire: dict[str, Any] = {
            "id": id_text,
            "trace_id": trace,
            "parent_id": parent,
            "timestamp": timestamp,
            "kind": {event.kind: event.data},
            "metadata": self._meta(event.meta),
            "causality_vector": [[c, n] for c, n in event.vc.items()],
            "lock_set": event.lock_set,
        }
        ext = event.ext
        if ext is not None:
            origin = ext.get("origin_trace")
            if type(origin) is int:
                ext = {**ext, "origin_trace": uuid_str(origin)}
            wire["raceway"] = ext
        body = orjson.dumps(wire).replace(b"\\", b"\\\\")
        return (
            b"\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n"
            % (
                id_text.encode(),
                trace.encode(),
                parent.encode() if parent is not None else b"\\N",
                timestamp.encode(),
                _text(event.kind),
                _text(event.meta.service_name),
                body,
            ),
            id_text,
        )


def _copy_tail(event: Event) -> tuple[bytes, str]:
    """One event's COPY row without its leading seq (see :class:`_RowWriter`) and the id text."""
    return _RowWriter().row(event)
