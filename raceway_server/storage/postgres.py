"""PostgreSQL storage through psycopg 3: a connection pool, COPY for batches, SQL migrations.

Writers serialise on one transaction-scoped advisory lock, so the log position ``seq`` (assigned
by the writer as ``max(seq) + n``) grows in commit order and a reader that has applied everything
up to ``seq = s`` never misses a later commit. That makes ``SELECT ... WHERE seq > s`` a complete
change feed for every other server process sharing the database.
"""

from __future__ import annotations

import dataclasses
import logging
import struct
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
    keeps_raw = True  # prepare() takes the events' JSON as received (BatchResult.raw)

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
            # Autocommit: ``append`` sends BEGIN with its first statements (one round trip)
            # instead of psycopg's separate implicit BEGIN. No check on checkout (another
            # round trip per batch): ``_run`` replaces connections found broken and retries.
            kwargs={"autocommit": True},
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

    def prepare(self, events: list[Event], raw: list[bytes] | None = None) -> _Prepared:
        """Build the COPY rows (the CPU-heavy part) before any lock is taken.

        With ``raw`` (each event's JSON text as received, aligned with ``events``) the body
        column is that text; otherwise the event is serialised (``event_to_wire``).
        """
        texts = raw if raw is not None and len(raw) == len(events) else None
        seen: set[int] = set()
        unique: list[Event] = []
        rows: list[bytes] = []
        ids: list[bytes] = []
        writer = _RowWriter()
        for i, event in enumerate(events):
            n = event.id
            if n in seen:
                continue
            seen.add(n)
            unique.append(event)
            rows.append(writer.row(event, writer.body(event) if texts is None else texts[i]))
            ids.append(b"%032x" % n)  # PostgreSQL's uuid input takes 32 hex digits
        return _Prepared(events, unique, rows, b",".join(ids).decode())

    def append(self, events: list[Event], prepared: _Prepared | None = None) -> AppendResult:
        if prepared is None or prepared.events is not events:
            prepared = self.prepare(events)

        def run(conn: psycopg.Connection[Any]) -> AppendResult:
            # Round trips are the cost here: each one waits for the GIL again while the other
            # request threads parse and analyse. One simple-protocol query takes the lock and
            # reads everything needed; then COPY; then COMMIT. The lock comes in an earlier
            # statement than the reads, so (READ COMMITTED) their snapshots see every commit
            # of the writers it waited for.
            try:
                cur = conn.execute(self._append_head_sql(prepared.ids))
                cur.nextset()  # past BEGIN's empty result
                cur.nextset()  # past the lock's row
                pending = self._pending_from(conn, cur)
                stored = {found.int for (found,) in cur.fetchall()} if cur.nextset() else set()
                head = pending.head
                new, rows = prepared.unique, prepared.rows  # first occurrences in the batch
                if stored:
                    kept = [i for i, event in enumerate(new) if event.id not in stored]
                    new, rows = [new[i] for i in kept], [rows[i] for i in kept]
                if new:
                    data = _copy_data(rows, head + 1)
                    with conn.cursor().copy(
                        f"COPY raceway_events {_COLUMNS} FROM STDIN (FORMAT BINARY)"
                    ) as copy:
                        copy.write(data)
                conn.execute("COMMIT")
            except BaseException:
                _rollback(conn)
                raise
            # committed: only now does this process advance and report
            self._advance(pending)
            self._seq = head + len(new)
            return AppendResult(foreign=pending.ops, new=new, duplicates=len(events) - len(new))

        return self._run(run)

    def catch_up(self) -> list[Event | Deletion]:
        def run(conn: psycopg.Connection[Any]) -> list[Event | Deletion]:
            # Without the append lock a writer may commit between the statements below: in
            # READ COMMITTED the rows could then run past the head read before them, and the
            # next catch-up would return them again. One snapshot for all of them.
            try:
                cur = conn.execute("BEGIN ISOLATION LEVEL REPEATABLE READ; " + self._pending_sql())
                cur.nextset()  # BEGIN's empty result
                pending = self._pending_from(conn, cur)
                conn.execute("COMMIT")
            except BaseException:
                _rollback(conn)
                raise
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

    def _append_head_sql(self, ids: str) -> str:
        """BEGIN, the append lock, the pending operations' queries and the batch's stored ids.

        ``ids`` are 32-digit hex strings made by ``prepare``, so inlining them is safe.
        """
        lock = f"BEGIN; SELECT pg_advisory_xact_lock({APPEND_LOCK}); " + self._pending_sql()
        return f"{lock}; SELECT id FROM raceway_events WHERE id = ANY('{{{ids}}}'::uuid[])" if ids else lock

    def _pending_sql(self) -> str:
        """The log head, then the tombstones after this reader's (two results)."""
        return (
            "SELECT coalesce(max(seq), 0) FROM raceway_events; "
            "SELECT id, after_seq, trace_ids FROM raceway_trace_deletions "
            f"WHERE id > {int(self._deletion)} ORDER BY id"
        )

    def _pending(self, conn: psycopg.Connection[Any]) -> _Pending:
        """Operations committed by others after this reader's position, and the log head."""
        return self._pending_from(conn, conn.execute(self._pending_sql()))

    def _pending_from(self, conn: psycopg.Connection[Any], cur: psycopg.Cursor[Any]) -> _Pending:
        """Read the results of :meth:`_pending_sql` from ``cur`` (left on the second)."""
        row = cur.fetchone()
        pending = _Pending(head=max(int(row[0]) if row else 0, self._seq), deletion=self._deletion)
        ops: list[tuple[int, int, Event | Deletion]] = []
        cur.nextset()
        for del_id, after_seq, ids in cur.fetchall():
            ops.append((int(after_seq), 1, Deletion([u.int for u in ids])))
            pending.deletion = int(del_id)
        if pending.head > self._seq:
            rows = conn.execute(
                "SELECT seq, body::text FROM raceway_events WHERE seq > %s ORDER BY seq",
                (self._seq,),
            ).fetchall()
            for (seq, _), event in zip(rows, self._decode(rows), strict=False):
                ops.append((int(seq), 0, event))
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
        """``fn`` on a pooled connection; once more on a fresh one if that one was dead.

        Connections are not checked on checkout, so after a PostgreSQL restart the first use
        of each pooled one fails: then the pool's idle connections are checked (dead ones
        replaced) and ``fn`` runs again. Every ``fn`` here may run twice: ``append`` skips ids
        already stored and picks up rows committed by an attempt whose reply was lost as
        foreign operations.
        """
        for attempt in (1, 2):
            conn: psycopg.Connection[Any] | None = None
            try:
                with self._pool.connection() as conn:
                    return fn(conn)
            except psycopg.OperationalError as exc:
                if attempt == 1 and conn is not None and conn.closed:
                    log.warning("PostgreSQL connection lost (%s); retrying on a new one", exc)
                    self._pool.check()
                    continue
                raise StorageUnavailable(f"PostgreSQL unavailable: {exc}") from exc
            except psycopg_pool.PoolTimeout as exc:
                raise StorageUnavailable(f"PostgreSQL unavailable: {exc}") from exc
        raise AssertionError("unreachable")


def _rollback(conn: psycopg.Connection[Any]) -> None:
    """End a failed explicit transaction so the connection goes back to the pool clean."""
    if conn.closed:
        return
    try:
        conn.rollback()
    except psycopg.Error:
        pass  # the pool discards a connection it cannot reset


@dataclasses.dataclass
class _Pending:
    head: int
    deletion: int
    ops: list[Event | Deletion] = dataclasses.field(default_factory=list)


@dataclasses.dataclass
class _Prepared:
    events: list[Event]
    unique: list[Event]  # the first event of each id, in order
    rows: list[bytes]  # their binary COPY rows without field count and seq
    ids: str  # their ids, comma-separated (an array literal's inside)


# COPY ... (FORMAT BINARY): a signature, flags and extension length, then per row the number of
# fields and each field as a 4-byte length (-1: NULL) and its binary value; a -1 count ends it.
_COPY_HEADER = b"PGCOPY\n\xff\r\n\x00" + struct.pack(">ii", 0, 0)
_COPY_TRAILER = b"\xff\xff"
_SEQ = struct.Struct(">hiq")  # field count (8), then the seq field: length 8, int8
_TIMESTAMP = struct.Struct(">iq")  # length 8, microseconds since 2000-01-01 UTC
_LENGTH = struct.Struct(">i")
_UUID_LENGTH = _LENGTH.pack(16)
_NULL = _LENGTH.pack(-1)
_PG_EPOCH_US = 946_684_800_000_000  # 2000-01-01 in Unix microseconds


def _micros(ns: int) -> int:
    """Nanoseconds rounded to microseconds half to even, as PostgreSQL rounds timestamp input."""
    q, r = divmod(ns, 1000)
    if r > 500 or (r == 500 and q & 1):
        q += 1
    return q


class _RowWriter:
    """Binary COPY rows of one batch (without their leading field count and seq).

    Columns: id, trace_id, parent_id (uuid: 16 bytes), ts (timestamptz: microseconds since 2000,
    PostgreSQL's own rounding), kind, service_name (text; a NUL, which text cannot hold, becomes
    U+FFFD) and body (json: its text). Binary rows need no escaping and spare the database
    parsing UUID and timestamp text. The body is the event's JSON text as received when the
    caller has it (``PostgresStorage.prepare``), else ``event_to_wire(event)`` built here with
    per-batch memos: trace ids, parent ids (usually the previous event) and shared Metadata
    objects repeat within a batch and are formatted once (tests/unit/test_protocol_fastwire.py
    checks the bytes equal ``orjson.dumps(event_to_wire(event))``).
    """

    __slots__ = ("_uuids", "_fields", "_texts", "_metas")

    def __init__(self) -> None:
        self._uuids: dict[int, str] = {}
        self._fields: dict[int, bytes] = {}  # uuid -> length-prefixed binary field
        self._texts: dict[str, bytes] = {}  # str -> length-prefixed binary field
        self._metas: dict[int, dict[str, Any]] = {}  # id(Metadata) -> wire dict (batch-local)

    def _uuid(self, n: int) -> str:
        text = self._uuids.get(n)
        if text is None:
            text = self._uuids[n] = uuid_str(n)
        return text

    def _uuid_field(self, n: int) -> bytes:
        field = self._fields.get(n)
        if field is None:
            field = self._fields[n] = _UUID_LENGTH + n.to_bytes(16, "big")
        return field

    def _text_field(self, value: str) -> bytes:
        field = self._texts.get(value)
        if field is None:
            data = value.replace("\0", "\ufffd").encode()  # PostgreSQL text cannot hold NUL
            field = self._texts[value] = _LENGTH.pack(len(data)) + data
        return field

    def _meta(self, m: Metadata) -> dict[str, Any]:
        wire = self._metas.get(id(m))
        if wire is None:
            wire = self._metas[id(m)] = metadata_to_wire(m)
        return wire

    def body(self, event: Event) -> bytes:
        """``orjson.dumps(event_to_wire(event))`` with the batch memos."""
        id_text = uuid_str(event.id)
        self._uuids[event.id] = id_text  # the next event's parent, usually
        wire: dict[str, Any] = {
            "id": id_text,
            "trace_id": self._uuid(event.trace_id),
            "parent_id": None if event.parent_id is None else self._uuid(event.parent_id),
            "timestamp": format_timestamp(event.timestamp_ns),
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
        return orjson.dumps(wire)

    def row(self, event: Event, body: bytes) -> bytes:
        """The binary COPY row of ``event`` with JSON text ``body``, without count and seq."""
        parent = event.parent_id
        return b"".join(
            (
                _UUID_LENGTH,
                event.id.to_bytes(16, "big"),
                self._uuid_field(event.trace_id),
                _NULL if parent is None else self._uuid_field(parent),
                _TIMESTAMP.pack(8, _micros(event.timestamp_ns) - _PG_EPOCH_US),
                self._text_field(event.kind),
                self._text_field(event.meta.service_name),
                _LENGTH.pack(len(body)),
                body,
            )
        )


def _copy_data(rows: list[bytes], first_seq: int) -> bytes:
    """The whole ``COPY ... (FORMAT BINARY)`` stream: ``rows`` numbered from ``first_seq``."""
    pack = _SEQ.pack
    parts = [_COPY_HEADER]
    for seq, row in enumerate(rows, first_seq):
        parts.append(pack(8, 8, seq))
        parts.append(row)
    parts.append(_COPY_TRAILER)
    return b"".join(parts)
