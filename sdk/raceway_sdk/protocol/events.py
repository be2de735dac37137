"""The event model and the wire schema shared by the SDK, the plugin and the server.

One in-memory type (:class:`Event`) for every event, produced in-process or parsed from the wire.
The wire format is the original Raceway batch ``{"events": [...]}`` (13 ``kind`` variants,
``causality_vector`` as ``[[component, n], ...]``, RFC 3339 timestamps); our additions travel in
one extra top-level object ``"raceway"`` that the original server ignores. See docs/internals.md.

Parsing (:func:`parse_batch`, :func:`parse_event`) checks every field with the original's types
(``core/src/event.rs``): ``u16``/``u32``/``u64`` are JSON integers in range (a boolean or a float
is not an integer); UUIDs in every form the Rust ``uuid`` crate parses (hyphenated, simple,
braced, ``urn:uuid:``; any case) become ints; timestamps are RFC 3339 *with* an offset (``Z`` or
``±hh:mm``, 0-9 fraction digits; a naive timestamp is an error) and become ``timestamp_ns`` (UTC);
unknown extra fields are ignored (and not kept). A bad event yields an :class:`EventError` naming
its index and field; the other events of the batch are still returned. Only a body that is not a
JSON object with an ``events`` list fails as a whole (:class:`BatchError`).

In-memory conventions of ``Event.data`` (the variant payload, original field names):
values are JSON-compatible; UUID-typed payload fields (``AsyncSpawn.task_id``,
``AsyncAwait.future_id``) are canonical lowercase hyphenated strings; optional JSON fields
(``old_value``, ``body``) are always present (``None`` when absent on the wire). Events of one
context (same ``thread_id`` and identical metadata) in a batch share one :class:`Metadata` object:
treat it as immutable, like ``vc``.

Deliberate leniency for payloads the original SDKs really send but the original server rejects
(reference §2.2/§6), so that "a batch produced by an original SDK validates unchanged":

* Go ``AsyncSpawn {task_id, task_name, spawned_at}`` (no ``spawned_by``, ``task_id`` any string)
  is accepted and kept as sent: ``data == {"task_id", "task_name", "spawned_at"}``, all strings.
  Consumers tell the two shapes apart by ``"spawned_by" in data``.
* ``FunctionReturn {function_name, return_value, file, line}`` (Go ``TrackFunctionReturn``, the
  Python SDK's dataclass) is not one of the 13 kinds: it is accepted as
  ``kind="Custom", data={"name": "FunctionReturn", "data": {...the payload...}}`` so every
  consumer can rely on ``kind in KINDS`` (it serialises as that ``Custom`` event).
* ``HttpResponse.duration_ms`` may be a non-negative finite float (TypeScript
  ``trackHttpResponse``); it is kept as sent. Every other integer field stays strict.
* ``metadata.duration_ns`` may be an integral float (the Python SDK multiplies a float
  ``duration_ms``); it becomes an int.
* A JSON-typed payload field that is missing (``new_value``, ``args``, ``Custom.data``,
  ``return_value``: JavaScript drops ``undefined`` members) reads as ``None``.
* ``Error.stack_trace: null`` (a nil Go slice) reads as ``[]``.
* Duplicate ``causality_vector`` components keep the largest count.

Extension object ``"raceway"`` (docs/internals.md "Extension fields"): the types of the known keys
are checked (strings, ``trusted_vc`` bool, ``seg`` non-negative int, ``stack`` list of
``[file, line, func]``, ``sync`` ``"acquire"|"release"``, ``origin_trace`` UUID -> int in memory,
``value`` a JSON scalar); unknown keys are kept as they are. It lands in ``Event.ext``.

Serialising (:func:`event_to_wire`, :func:`dumps_batch`) writes the original layout: UUIDs
lowercase hyphenated, timestamps ``Z`` with microseconds (nanoseconds when the sub-microsecond part
is not zero), ``instance_id``/``distributed_span_id``/``upstream_span_id`` omitted when ``None``,
``"raceway"`` only when ``ext`` is set. ``parse_event(event_to_wire(e))`` reproduces ``e``.
"""

from __future__ import annotations

import binascii
import contextlib
import datetime as _dt
import gc
import itertools
import os
import re
import threading
from collections.abc import Iterable, Iterator
from typing import Any

import msgspec
import orjson

KINDS: tuple[str, ...] = (
    "FunctionCall",
    "AsyncSpawn",
    "AsyncAwait",
    "StateChange",
    "LockAcquire",
    "LockRelease",
    "MemoryFence",
    "HttpRequest",
    "HttpResponse",
    "DatabaseQuery",
    "DatabaseResult",
    "Error",
    "Custom",
)
ACCESS_TYPES: tuple[str, ...] = ("Read", "Write", "AtomicRead", "AtomicWrite", "AtomicRMW")
WRITE_TYPES = frozenset(("Write", "AtomicWrite", "AtomicRMW"))
ATOMIC_TYPES = frozenset(("AtomicRead", "AtomicWrite", "AtomicRMW"))


class Metadata:
    """Who emitted an event: the original ``metadata`` object."""

    __slots__ = (
        "thread_id",
        "process_id",
        "service_name",
        "environment",
        "tags",
        "duration_ns",
        "instance_id",
        "distributed_span_id",
        "upstream_span_id",
    )

    def __init__(
        self,
        thread_id: str,
        process_id: int,
        service_name: str,
        environment: str = "test",
        tags: dict[str, str] | None = None,
        duration_ns: int | None = None,
        instance_id: str | None = None,
        distributed_span_id: str | None = None,
        upstream_span_id: str | None = None,
    ) -> None:
        self.thread_id = thread_id
        self.process_id = process_id
        self.service_name = service_name
        self.environment = environment
        self.tags = tags if tags is not None else {}
        self.duration_ns = duration_ns
        self.instance_id = instance_id
        self.distributed_span_id = distributed_span_id
        self.upstream_span_id = upstream_span_id

    def __repr__(self) -> str:
        return f"Metadata(thread_id={self.thread_id!r}, service_name={self.service_name!r})"


class Event(msgspec.Struct, gc=False, eq=False, weakref=False):
    """One event. Plain attributes, no validation here (parsing validates).

    A msgspec struct without garbage-collector tracking: events never form reference cycles
    (their fields are ids, strings and plain dicts), and a run keeps many thousands of them, so
    the collector's passes would otherwise visit each one again and again (measured: a
    third of the recorder's collector time in a thread-heavy test). Equality is identity.
    """

    id: int
    trace_id: int
    parent_id: int | None
    timestamp_ns: int
    kind: str
    data: dict[str, Any]
    meta: Metadata
    vc: dict[str, int]
    lock_set: list[str] = msgspec.field(default_factory=list)
    ext: dict[str, Any] | None = None

    @property
    def task(self) -> str:
        """Logical task of the event: ours from ``ext``, else the original ``thread_id``."""
        ext = self.ext
        if ext is not None:
            task = ext.get("task")
            if task is not None:
                return str(task)
        return self.meta.thread_id

    def __repr__(self) -> str:
        return f"Event({self.kind}, task={self.task!r}, data={self.data!r})"


_ID_MASK = (1 << 62) - 1


def _id_base() -> int:
    prefix = int.from_bytes(os.urandom(8), "big")
    high = (prefix & ~(0xF << 12)) | (0x4 << 12)  # version 4 nibble in time_hi
    return (high << 64) | (0b10 << 62)  # RFC 4122 variant bits


_id_base_now = _id_base()
_counter = itertools.count(1)


def _reseed_ids_after_fork() -> None:
    # A forked child must never share ids with its parent: new random prefix, fresh counter.
    global _id_base_now, _counter
    _id_base_now = _id_base()
    _counter = itertools.count(1)


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_reseed_ids_after_fork)


def new_event_id() -> int:
    """A cheap unique 128-bit id laid out as a valid UUIDv4 (random prefix + counter).

    The prefix is re-drawn in a forked child (``os.register_at_fork``), not checked per call.
    """
    return _id_base_now | (next(_counter) & _ID_MASK)


# --------------------------------------------------------------------------------------------
# Errors and results
# --------------------------------------------------------------------------------------------


class EventError(ValueError):
    """One invalid event of a batch: its index, the dotted field path and what is wrong."""

    def __init__(self, index: int, field: str, message: str) -> None:
        super().__init__(index, field, message)
        self.index = index
        self.field = field
        self.message = message

    def __str__(self) -> str:
        field = self.field
        if not field:
            return f"events[{self.index}]: {self.message}"
        sep = "" if field.startswith("[") else "."
        return f"events[{self.index}]{sep}{field}: {self.message}"

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (the server's per-event error report)."""
        return {"index": self.index, "field": self.field, "message": self.message}


class BatchError(ValueError):
    """The body as a whole is unusable: not JSON, not an object, or without an ``events`` list."""


class BatchResult:
    """Valid events of a batch, in order, and one :class:`EventError` per rejected event.

    ``raw``: when :func:`parse_batch` was asked to ``keep_raw`` and the fast path decoded the
    batch (every event valid), the JSON text of each event exactly as received, aligned with
    ``events``; otherwise ``None``.
    """

    __slots__ = ("events", "errors", "raw")

    def __init__(
        self, events: list[Event], errors: list[EventError], raw: list[bytes] | None = None
    ) -> None:
        self.events = events
        self.errors = errors
        self.raw = raw

    def __repr__(self) -> str:
        return f"BatchResult(events={len(self.events)}, errors={len(self.errors)})"


class _Bad(Exception):
    """Internal: a validation failure at ``field`` (the index is added by the caller)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(field, message)
        self.field = field
        self.message = message


_MISSING: Any = object()
_U16 = 0xFFFF
_U32 = 0xFFFF_FFFF
_U64 = 0xFFFF_FFFF_FFFF_FFFF
_JSON_SCALARS = (str, int, float, bool, type(None))


def _jtype(v: Any) -> str:
    """The JSON name of a value's type, for messages (values are shown only when short)."""
    if v is None:
        return "null"
    t = type(v)
    if t is bool:
        return "true" if v else "false"
    if t is int or t is float:
        return f"number {v!r}"
    if t is str:
        return f"string {v!r}" if len(v) <= 40 else f"string {v[:37]!r}..."
    if t is list or t is tuple:
        return "array"
    if t is dict:
        return "object"
    return t.__name__


def _fail(field: str, v: Any, expected: str) -> _Bad:
    if v is _MISSING:
        return _Bad(field, f"missing required field (expected {expected})")
    return _Bad(field, f"expected {expected}, got {_jtype(v)}")


def _str(v: Any, field: str) -> str:
    if type(v) is str:
        return v
    raise _fail(field, v, "a string")


def _uint(v: Any, field: str, limit: int, name: str) -> int:
    if type(v) is int and 0 <= v <= limit:
        return v
    raise _fail(field, v, f"an unsigned {name}-bit integer")


def _str_map(v: Any, field: str) -> dict[str, str]:
    if type(v) is not dict:
        raise _fail(field, v, "an object of strings")
    for k, s in v.items():
        if type(s) is not str or type(k) is not str:
            if type(k) is not str:
                raise _Bad(field, f"keys must be strings, got {_jtype(k)}")
            raise _fail(f"{field}.{k}", s, "a string")
    return v


def _str_list(v: Any, field: str) -> list[str]:
    if type(v) is not list:
        raise _fail(field, v, "an array of strings")
    for i, s in enumerate(v):
        if type(s) is not str:
            raise _fail(f"{field}[{i}]", s, "a string")
    return v


# UUIDs: every textual form the Rust `uuid` crate parses.
_HYPHENATED = re.compile(
    r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}\Z"
).match
_SIMPLE = re.compile(r"[0-9a-fA-F]{32}\Z").match


_unhex = binascii.unhexlify
_from_bytes = int.from_bytes


def _uuid(v: Any, field: str) -> int:
    if type(v) is str:
        n = len(v)
        if n == 36:
            if v[8] == "-" and v[13] == "-" and v[18] == "-" and v[23] == "-":
                try:
                    raw = _unhex(v.replace("-", ""))  # strict: hex digits only
                except (binascii.Error, ValueError):
                    raw = b""
                if len(raw) == 16:
                    return _from_bytes(raw, "big")
        elif n == 32:
            if _SIMPLE(v):
                return int(v, 16)
        elif n == 38:
            if v[0] == "{" and v[37] == "}" and _HYPHENATED(v, 1, 37):
                return int(v[1:37].replace("-", ""), 16)
        elif n == 45:
            if v[:9].lower() == "urn:uuid:" and _HYPHENATED(v, 9):
                return int(v[9:].replace("-", ""), 16)
        raise _Bad(
            field,
            f"invalid UUID {_jtype(v)[7:]} (expected hyphenated, simple, braced or urn:uuid form)",
        )
    raise _fail(field, v, "a UUID string")


def uuid_str(n: int) -> str:
    """Canonical lowercase hyphenated form of a 128-bit id (the wire form of every UUID)."""
    h = n.to_bytes(16, "big").hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def parse_uuid(value: str) -> int:
    """Parse a UUID in any form the original accepts; ``ValueError`` names the problem."""
    try:
        return _uuid(value, "uuid")
    except _Bad as exc:
        raise ValueError(exc.message) from None


# Timestamps: RFC 3339 with offset (chrono's relaxed parser also takes `t` and a space).
_TS = re.compile(
    r"([0-9]{4})-([0-9]{2})-([0-9]{2})[Tt ]([0-9]{2}):([0-9]{2}):([0-9]{2})"
    r"(?:\.([0-9]{1,9}))?(?:([Zz])|([+-])([0-9]{2}):([0-9]{2}))\Z"
).match
_TS_NAIVE = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt ][0-9]{2}:[0-9]{2}:[0-9]{2}(?:\.[0-9]+)?\Z"
).match
_EPOCH_ORDINAL = _dt.date(1970, 1, 1).toordinal()
_NS = 1_000_000_000
# the UTC range every timestamp must fall in once its offset is applied (what we can write back)
_MIN_SECS = (_dt.date(1, 1, 1).toordinal() - _EPOCH_ORDINAL) * 86_400
_MAX_SECS = (_dt.date(9999, 12, 31).toordinal() - _EPOCH_ORDINAL) * 86_400 + 86_399


_TS_TAIL = re.compile(r"(?:\.([0-9]{1,9}))?(?:([Zz])|([+-])([0-9]{2}):([0-9]{2}))\Z").match
_FRAC_SCALE = (0, 100_000_000, 10_000_000, 1_000_000, 100_000, 10_000, 1_000, 100, 10, 1)
_secs_cache: dict[str, int] = {}


def _timestamp(v: Any, field: str) -> int:
    if type(v) is str:
        # Fast path: the "YYYY-MM-DDTHH:MM:SS" prefix was already validated (events come in
        # bursts within one second); only the fraction and the offset are left to check.
        secs = _secs_cache.get(v[:19])
        if secs is not None:
            m = _TS_TAIL(v, 19)
            if m is not None:
                return _with_tail(v, secs, m.groups(), field)
    return _timestamp_full(v, field)


def _with_tail(v: str, secs: int, tail: tuple[Any, ...], field: str) -> int:
    frac, z, sign, oh, om = tail
    if z is None:
        oh_i, om_i = int(oh), int(om)
        if oh_i > 23 or om_i > 59:
            raise _Bad(field, f"timestamp {v!r} has an invalid UTC offset")
        off = oh_i * 3600 + om_i * 60
        secs = secs - off if sign == "+" else secs + off
        if not _MIN_SECS <= secs <= _MAX_SECS:  # e.g. 0001-01-01T00:00:00+00:01
            raise _Bad(field, f"timestamp {v!r} is outside years 1-9999 in UTC")
    if frac is None:
        return secs * _NS
    return secs * _NS + int(frac) * _FRAC_SCALE[len(frac)]


def _timestamp_full(v: Any, field: str) -> int:
    if type(v) is not str:
        raise _fail(field, v, "an RFC 3339 timestamp string")
    m = _TS(v)
    if m is None:
        if _TS_NAIVE(v):
            raise _Bad(field, f"timestamp {v!r} has no UTC offset (expected Z or +hh:mm)")
        raise _Bad(field, f"expected an RFC 3339 timestamp with offset, got {_jtype(v)}")
    g = m.groups()
    try:
        days = _dt.date(int(g[0]), int(g[1]), int(g[2])).toordinal() - _EPOCH_ORDINAL
    except ValueError:
        raise _Bad(field, f"timestamp {v!r} is not a valid date") from None
    h, mn, s = int(g[3]), int(g[4]), int(g[5])
    if h > 23 or mn > 59 or s > 60:  # 60: a leap second, as chrono accepts it
        raise _Bad(field, f"timestamp {v!r} is not a valid time of day")
    secs = days * 86400 + h * 3600 + mn * 60 + s
    if len(_secs_cache) >= 4096:
        _secs_cache.clear()
    _secs_cache[v[:19]] = secs
    return _with_tail(v, secs, g[6:], field)


def parse_timestamp(value: str) -> int:
    """RFC 3339 (with offset) to ns since the epoch, UTC; ``ValueError`` names the problem."""
    try:
        return _timestamp(value, "timestamp")
    except _Bad as exc:
        raise ValueError(exc.message) from None


_sec_str_cache: dict[int, str] = {}


def format_timestamp(ns: int) -> str:
    """RFC 3339 ``Z`` form: microseconds, or nanoseconds when they are not all zero."""
    secs, sub = divmod(ns, _NS)
    prefix = _sec_str_cache.get(secs)
    if prefix is None:
        days, sod = divmod(secs, 86400)
        h, rem = divmod(sod, 3600)
        mn, s = divmod(rem, 60)
        date = _dt.date.fromordinal(days + _EPOCH_ORDINAL).isoformat()
        prefix = f"{date}T{h:02d}:{mn:02d}:{s:02d}"
        if len(_sec_str_cache) >= 4096:
            _sec_str_cache.clear()
        _sec_str_cache[secs] = prefix
    us, rest = divmod(sub, 1000)
    if rest:
        return f"{prefix}.{sub:09d}Z"
    return f"{prefix}.{us:06d}Z"


# --------------------------------------------------------------------------------------------
# Kind variants: each parser takes the payload object and returns (kind, data)
# --------------------------------------------------------------------------------------------

_ACCESS_SET = frozenset(ACCESS_TYPES)
_ACCESS_MSG = "expected one of " + ", ".join(ACCESS_TYPES)
MEMORY_ORDERINGS: tuple[str, ...] = ("Relaxed", "Acquire", "Release", "AcqRel", "SeqCst")
_ORDERING_SET = frozenset(MEMORY_ORDERINGS)
_ORDERING_MSG = "expected one of " + ", ".join(MEMORY_ORDERINGS)


def _k_function_call(p: dict[str, Any], owned: bool) -> tuple[str, dict[str, Any]]:
    f = "kind.FunctionCall."
    return "FunctionCall", {
        "function_name": _str(p.get("function_name", _MISSING), f + "function_name"),
        "module": _str(p.get("module", _MISSING), f + "module"),
        "args": p.get("args"),
        "file": _str(p.get("file", _MISSING), f + "file"),
        "line": _uint(p.get("line", _MISSING), f + "line", _U32, "32"),
    }


def _k_async_spawn(p: dict[str, Any], owned: bool) -> tuple[str, dict[str, Any]]:
    f = "kind.AsyncSpawn."
    if "spawned_by" not in p and ("task_name" in p or "spawned_at" in p):
        # Go SDK shape (see the module docstring): kept as sent, all strings.
        return "AsyncSpawn", {
            "task_id": _str(p.get("task_id", _MISSING), f + "task_id"),
            "task_name": _str(p.get("task_name", _MISSING), f + "task_name"),
            "spawned_at": _str(p.get("spawned_at", _MISSING), f + "spawned_at"),
        }
    return "AsyncSpawn", {
        "task_id": uuid_str(_uuid(p.get("task_id", _MISSING), f + "task_id")),
        "spawned_by": _str(p.get("spawned_by", _MISSING), f + "spawned_by"),
    }


def _k_async_await(p: dict[str, Any], owned: bool) -> tuple[str, dict[str, Any]]:
    f = "kind.AsyncAwait."
    return "AsyncAwait", {
        "future_id": uuid_str(_uuid(p.get("future_id", _MISSING), f + "future_id")),
        "awaited_at": _str(p.get("awaited_at", _MISSING), f + "awaited_at"),
    }


def _k_state_change(p: dict[str, Any], owned: bool) -> tuple[str, dict[str, Any]]:
    var = p.get("variable", _MISSING)
    loc = p.get("location", _MISSING)
    at = p.get("access_type", _MISSING)
    if type(var) is not str:
        raise _fail("kind.StateChange.variable", var, "a string")
    if type(loc) is not str:
        raise _fail("kind.StateChange.location", loc, "a string")
    if type(at) is not str or at not in _ACCESS_SET:
        if at is _MISSING:
            raise _Bad("kind.StateChange.access_type", "missing required field; " + _ACCESS_MSG)
        raise _Bad("kind.StateChange.access_type", _ACCESS_MSG)
    if owned and len(p) == 5 and "new_value" in p and "old_value" in p:
        return "StateChange", p  # exactly the five fields: our own decoded object, reuse it
    return "StateChange", {
        "variable": var,
        "old_value": p.get("old_value"),
        "new_value": p.get("new_value"),
        "location": loc,
        "access_type": at,
    }


def _lock(kind: str, p: dict[str, Any], owned: bool) -> tuple[str, dict[str, Any]]:
    lock_id = p.get("lock_id", _MISSING)
    lock_type = p.get("lock_type", _MISSING)
    loc = p.get("location", _MISSING)
    if type(lock_id) is not str:
        raise _fail(f"kind.{kind}.lock_id", lock_id, "a string")
    if type(lock_type) is not str:
        raise _fail(f"kind.{kind}.lock_type", lock_type, "a string")
    if type(loc) is not str:
        raise _fail(f"kind.{kind}.location", loc, "a string")
    if owned and len(p) == 3:
        return kind, p
    return kind, {"lock_id": lock_id, "lock_type": lock_type, "location": loc}


def _k_lock_acquire(p: dict[str, Any], owned: bool) -> tuple[str, dict[str, Any]]:
    return _lock("LockAcquire", p, owned)


def _k_lock_release(p: dict[str, Any], owned: bool) -> tuple[str, dict[str, Any]]:
    return _lock("LockRelease", p, owned)


def _k_memory_fence(p: dict[str, Any], owned: bool) -> tuple[str, dict[str, Any]]:
    ordering = p.get("ordering", _MISSING)
    if type(ordering) is not str or ordering not in _ORDERING_SET:
        if ordering is _MISSING:
            raise _Bad("kind.MemoryFence.ordering", "missing required field; " + _ORDERING_MSG)
        raise _Bad("kind.MemoryFence.ordering", _ORDERING_MSG)
    return "MemoryFence", {
        "ordering": ordering,
        "location": _str(p.get("location", _MISSING), "kind.MemoryFence.location"),
    }


def _k_http_request(p: dict[str, Any], owned: bool) -> tuple[str, dict[str, Any]]:
    f = "kind.HttpRequest."
    return "HttpRequest", {
        "method": _str(p.get("method", _MISSING), f + "method"),
        "url": _str(p.get("url", _MISSING), f + "url"),
        "headers": _str_map(p.get("headers", _MISSING), f + "headers"),
        "body": p.get("body"),
    }


def _k_http_response(p: dict[str, Any], owned: bool) -> tuple[str, dict[str, Any]]:
    f = "kind.HttpResponse."
    dur = p.get("duration_ms", _MISSING)
    if not (type(dur) is int and 0 <= dur <= _U64):
        # TypeScript's trackHttpResponse sends fractional milliseconds (module docstring).
        if not (type(dur) is float and 0.0 <= dur < 1.9e19):
            raise _fail(f + "duration_ms", dur, "a non-negative number of milliseconds")
    return "HttpResponse", {
        "status": _uint(p.get("status", _MISSING), f + "status", _U16, "16"),
        "headers": _str_map(p.get("headers", _MISSING), f + "headers"),
        "body": p.get("body"),
        "duration_ms": dur,
    }


def _k_database_query(p: dict[str, Any], owned: bool) -> tuple[str, dict[str, Any]]:
    f = "kind.DatabaseQuery."
    return "DatabaseQuery", {
        "query": _str(p.get("query", _MISSING), f + "query"),
        "database": _str(p.get("database", _MISSING), f + "database"),
        "duration_ms": _uint(p.get("duration_ms", _MISSING), f + "duration_ms", _U64, "64"),
    }


def _k_database_result(p: dict[str, Any], owned: bool) -> tuple[str, dict[str, Any]]:
    rows = p.get("rows_affected", _MISSING)
    return "DatabaseResult", {
        "rows_affected": _uint(rows, "kind.DatabaseResult.rows_affected", _U64, "64")
    }


def _k_error(p: dict[str, Any], owned: bool) -> tuple[str, dict[str, Any]]:
    f = "kind.Error."
    trace = p.get("stack_trace", _MISSING)
    return "Error", {
        "error_type": _str(p.get("error_type", _MISSING), f + "error_type"),
        "message": _str(p.get("message", _MISSING), f + "message"),
        # a nil Go slice arrives as null (module docstring)
        "stack_trace": [] if trace is None else _str_list(trace, f + "stack_trace"),
    }


def _k_custom(p: dict[str, Any], owned: bool) -> tuple[str, dict[str, Any]]:
    return "Custom", {
        "name": _str(p.get("name", _MISSING), "kind.Custom.name"),
        "data": p.get("data"),
    }


def _k_function_return(p: dict[str, Any], owned: bool) -> tuple[str, dict[str, Any]]:
    """Go/Python SDK ``FunctionReturn``: carried as ``Custom`` (module docstring)."""
    f = "kind.FunctionReturn."
    return "Custom", {
        "name": "FunctionReturn",
        "data": {
            "function_name": _str(p.get("function_name", _MISSING), f + "function_name"),
            "return_value": p.get("return_value"),
            "file": _str(p.get("file", _MISSING), f + "file"),
            "line": _uint(p.get("line", _MISSING), f + "line", _U32, "32"),
        },
    }


_KIND_PARSERS = {
    "FunctionCall": _k_function_call,
    "AsyncSpawn": _k_async_spawn,
    "AsyncAwait": _k_async_await,
    "StateChange": _k_state_change,
    "LockAcquire": _k_lock_acquire,
    "LockRelease": _k_lock_release,
    "MemoryFence": _k_memory_fence,
    "HttpRequest": _k_http_request,
    "HttpResponse": _k_http_response,
    "DatabaseQuery": _k_database_query,
    "DatabaseResult": _k_database_result,
    "Error": _k_error,
    "Custom": _k_custom,
    "FunctionReturn": _k_function_return,
}
_KINDS_MSG = "expected an object with exactly one key, one of " + ", ".join(KINDS)


def _kind(k: Any, owned: bool) -> tuple[str, dict[str, Any]]:
    if type(k) is not dict or len(k) != 1:
        if type(k) is dict and not k:
            raise _Bad("kind", _KINDS_MSG + ", got an empty object")
        if type(k) is dict:
            raise _Bad("kind", _KINDS_MSG + f", got keys {', '.join(map(str, k))}")
        raise _fail("kind", k, "an object with exactly one key (the variant)")
    ((name, payload),) = k.items()
    parser = _KIND_PARSERS.get(name)
    if parser is None:
        raise _Bad("kind", f"unknown variant {name!r}, expected one of " + ", ".join(KINDS))
    if type(payload) is not dict:
        raise _fail(f"kind.{name}", payload, "an object")
    return parser(payload, owned)


# --------------------------------------------------------------------------------------------
# Event, metadata, clock, extension
# --------------------------------------------------------------------------------------------


def _metadata(m: Any, owned: bool) -> Metadata:
    if type(m) is not dict:
        raise _fail("metadata", m, "an object")
    get = m.get
    thread_id = get("thread_id", _MISSING)
    pid = get("process_id", _MISSING)
    service = get("service_name", _MISSING)
    env = get("environment", _MISSING)
    tags = get("tags", _MISSING)
    if type(thread_id) is not str:
        raise _fail("metadata.thread_id", thread_id, "a string")
    if not (type(pid) is int and 0 <= pid <= _U32):
        raise _fail("metadata.process_id", pid, "an unsigned 32-bit integer")
    if type(service) is not str:
        raise _fail("metadata.service_name", service, "a string")
    if type(env) is not str:
        raise _fail("metadata.environment", env, "a string")
    _str_map(tags, "metadata.tags")
    dur = get("duration_ns")
    if dur is not None and not (type(dur) is int and 0 <= dur <= _U64):
        # an integral float comes from the Python SDK's float duration_ms (module docstring)
        if type(dur) is float and dur.is_integer() and 0.0 <= dur <= _U64:
            dur = int(dur)
        else:
            raise _fail("metadata.duration_ns", dur, "an unsigned 64-bit integer or null")
    instance = get("instance_id")
    span = get("distributed_span_id")
    upstream = get("upstream_span_id")
    if instance is not None and type(instance) is not str:
        raise _fail("metadata.instance_id", instance, "a string or null")
    if span is not None and type(span) is not str:
        raise _fail("metadata.distributed_span_id", span, "a string or null")
    if upstream is not None and type(upstream) is not str:
        raise _fail("metadata.upstream_span_id", upstream, "a string or null")
    return Metadata(
        thread_id, pid, service, env, tags if owned else dict(tags), dur, instance, span, upstream
    )


def _vector(cv: Any) -> dict[str, int]:
    if type(cv) is list:
        try:
            vc = dict(cv)  # C fast path; anything odd is re-checked entry by entry below
        except (TypeError, ValueError):
            vc = None
        if vc is not None and len(vc) == len(cv):
            for comp, n in vc.items():
                if type(comp) is not str or type(n) is not int or n < 0 or n > _U64:
                    break
            else:
                return vc
    return _vector_checked(cv)


def _vector_checked(cv: Any) -> dict[str, int]:
    if type(cv) is not list:
        raise _fail("causality_vector", cv, "an array of [component, count] pairs")
    vc: dict[str, int] = {}
    for entry in cv:
        if (type(entry) is list or type(entry) is tuple) and len(entry) == 2:
            comp, n = entry
            if type(comp) is str and type(n) is int and 0 <= n <= _U64:
                old = vc.get(comp)
                if old is None or n > old:
                    vc[comp] = n  # duplicate components keep the largest count
                continue
        raise _vector_error(cv, entry)
    return vc


def _vector_error(cv: list[Any], entry: Any) -> _Bad:
    i = next(i for i, e in enumerate(cv) if e is entry)
    field = f"causality_vector[{i}]"
    if not ((type(entry) is list or type(entry) is tuple) and len(entry) == 2):
        return _fail(field, entry, "a [component, count] pair")
    if type(entry[0]) is not str:
        return _fail(field + "[0]", entry[0], "a string component")
    return _fail(field + "[1]", entry[1], "an unsigned 64-bit integer")


_EXT_STR_KEYS = frozenset(
    ("task", "loc", "loop", "func", "child", "child_name", "child_kind", "child_loop")
)
_SYNC_VALUES = ("acquire", "release")


def _stack(v: Any, field: str) -> list[Any]:
    if type(v) is not list:
        raise _fail(field, v, "an array of [file, line, func] frames")
    for i, fr in enumerate(v):
        if not (
            (type(fr) is list or type(fr) is tuple)
            and len(fr) == 3
            and type(fr[0]) is str
            and type(fr[1]) is int
            and fr[1] >= 0
            and type(fr[2]) is str
        ):
            raise _fail(
                f"{field}[{i}]", fr, "a [file: string, line: integer >= 0, func: string] frame"
            )
    return v


def _ext(x: Any, owned: bool) -> dict[str, Any]:
    if type(x) is not dict:
        raise _fail("raceway", x, "an object")
    out = x if owned else dict(x)
    for k, v in x.items():
        if k in _EXT_STR_KEYS:
            if type(v) is not str:
                raise _fail(f"raceway.{k}", v, "a string")
        elif k == "seg":
            if not (type(v) is int and 0 <= v <= _U64):
                raise _fail("raceway.seg", v, "an unsigned 64-bit integer")
        elif k == "trusted_vc":
            if type(v) is not bool:
                raise _fail("raceway.trusted_vc", v, "a boolean")
        elif k == "stack":
            _stack(v, "raceway.stack")
        elif k == "sync":
            if v not in _SYNC_VALUES or type(v) is not str:
                raise _Bad("raceway.sync", "expected one of acquire, release")
        elif k == "origin_trace":
            if v is not None:
                out[k] = _uuid(v, "raceway.origin_trace")
        elif k == "value":
            if type(v) not in _JSON_SCALARS:
                raise _fail("raceway.value", v, "a JSON scalar (string, number, boolean or null)")
    return out


class _Memo:
    """Per-batch memo: repeated trace ids, parent = previous id, identical metadata objects."""

    __slots__ = ("trace_s", "trace_i", "prev_s", "prev_i", "meta")

    def __init__(self) -> None:
        self.trace_s: Any = None
        self.trace_i = 0
        self.prev_s: Any = None
        self.prev_i = 0
        self.meta: dict[str, tuple[dict[str, Any], Metadata]] = {}


def _event(obj: Any, owned: bool, memo: _Memo) -> Event:
    if type(obj) is not dict:
        raise _fail("", obj, "an event object")
    get = obj.get
    v = get("id", _MISSING)
    if type(v) is str and len(v) == 36 and v[8] == v[13] == v[18] == v[23] == "-":
        try:
            raw = _unhex(v.replace("-", ""))
        except (binascii.Error, ValueError):
            raw = b""
        eid = _from_bytes(raw, "big") if len(raw) == 16 else _uuid(v, "id")
    else:
        eid = _uuid(v, "id")
    memo.prev_s, memo.prev_i, prev_s, prev_i = v, eid, memo.prev_s, memo.prev_i
    v = get("trace_id", _MISSING)
    if type(v) is str and v == memo.trace_s:
        trace_id = memo.trace_i
    else:
        trace_id = memo.trace_i = _uuid(v, "trace_id")
        memo.trace_s = v
    v = get("parent_id")
    if v is None:
        parent_id = None
    elif type(v) is str and v == prev_s:
        parent_id = prev_i
    else:
        parent_id = _uuid(v, "parent_id")
    v = get("timestamp", _MISSING)
    secs = _secs_cache.get(v[:19]) if type(v) is str else None
    if secs is not None and len(v) > 21 and v[19] == ".":
        # the common tails ".<digits>Z" / ".<digits>+00:00" without the regex
        f = v[20:-1] if v[-1] == "Z" else v[20:-6] if v.endswith("+00:00") else ""
        if f.isdigit() and f.isascii() and len(f) <= 9:
            ts = secs * _NS + int(f) * _FRAC_SCALE[len(f)]
        else:
            ts = _timestamp(v, "timestamp")
    else:
        ts = _timestamp(v, "timestamp")
    k = get("kind", _MISSING)
    parser = None
    if type(k) is dict and len(k) == 1:
        for name, payload in k.items():
            if type(payload) is dict:
                parser = _KIND_PARSERS.get(name)
    if parser is None:
        kind, data = _kind(k, owned)  # raises the precise error
    else:
        kind, data = parser(payload, owned)
    m = get("metadata", _MISSING)
    tid = m.get("thread_id") if type(m) is dict else None
    # only a str can be a cache key: a list or dict thread_id must reach the precise error
    hit = memo.meta.get(tid) if type(tid) is str else None
    # Equal to a validated metadata object of the same context (whose duration_ns was null)?
    # Only process_id can compare equal with another type (True == 1 == 1.0): check it.
    if hit is not None and hit[0] == m and type(m["process_id"]) is int:  # type: ignore[index]
        meta = hit[1]  # same context as an earlier event of the batch: share the object
    else:
        meta = _metadata(m, owned)
        if meta.duration_ns is None:
            memo.meta[meta.thread_id] = (m, meta)
    vc = _vector(get("causality_vector", _MISSING))
    lock_set = get("lock_set", _MISSING)
    if type(lock_set) is not list:
        raise _fail("lock_set", lock_set, "an array of strings")
    if lock_set:
        _str_list(lock_set, "lock_set")
        if not owned:
            lock_set = list(lock_set)
    else:
        lock_set = []
    ext = get("raceway")
    if ext is not None:
        ext = _ext(ext, owned)
    return Event(eid, trace_id, parent_id, ts, kind, data, meta, vc, lock_set, ext)


def parse_event(obj: Any, index: int = 0) -> Event:
    """Validate one wire event (a dict); raise :class:`EventError` naming ``index`` and the field.

    The input is not modified; nested JSON values (``args``, ``new_value``, ...) are shared.
    """
    try:
        return _event(obj, False, _Memo())
    except _Bad as exc:
        raise EventError(index, exc.field, exc.message) from None


def _events_of(
    body: bytes | bytearray | memoryview | str | dict[str, Any],
) -> tuple[list[Any], bool]:
    owned = not isinstance(body, dict)
    if owned:
        try:
            body = orjson.loads(body)  # type: ignore[arg-type]
        except orjson.JSONDecodeError as exc:
            raise BatchError(f"body is not valid JSON: {exc}") from None
        except TypeError:
            raise BatchError(
                f"body must be bytes, str or dict, got {type(body).__name__}"
            ) from None
    if type(body) is not dict:
        raise BatchError(f'body must be a JSON object {{"events": [...]}}, got {_jtype(body)}')
    events = body.get("events", _MISSING)
    if type(events) is not list:
        if events is _MISSING:
            raise BatchError('body has no "events" field (expected {"events": [...]})')
        raise BatchError(f'"events" must be an array, got {_jtype(events)}')
    return events, owned


_gc_lock = threading.Lock()
_gc_depth = 0
_gc_reenable = False


@contextlib.contextmanager
def _gc_paused() -> Iterator[None]:
    """Pause the cyclic GC while a batch is decoded.

    Decoding allocates millions of acyclic containers that all survive; with the collector on,
    repeated young/old collections over them cost several times the decoding itself. Nested and
    concurrent pauses are counted; the collector is re-enabled only if it was enabled before
    (a ``gc.disable()`` issued by another thread during a pause is therefore undone).
    """
    global _gc_depth, _gc_reenable
    with _gc_lock:
        if _gc_depth == 0:
            _gc_reenable = gc.isenabled()
            gc.disable()
        _gc_depth += 1
    try:
        yield
    finally:
        with _gc_lock:
            _gc_depth -= 1
            if _gc_depth == 0 and _gc_reenable:
                gc.enable()


def parse_batch(
    body: bytes | bytearray | memoryview | str | dict[str, Any], keep_raw: bool = False
) -> BatchResult:
    """Parse a ``POST /events`` body: valid events plus one error per invalid event.

    Raises :class:`BatchError` only when the body itself is unusable. A dict body is not
    modified (bytes/str bodies are decoded here and their objects reused without copying).
    The cyclic GC is paused while the batch is decoded (see ``_gc_paused``). ``keep_raw``: see
    :class:`BatchResult` (a server stores those texts instead of serialising every event again).
    """
    with _gc_paused():
        if type(body) is not dict:
            # one msgspec decode for a fully valid batch; None: the precise parser decides
            from raceway_sdk.protocol._fastwire import parse_fast

            fast = parse_fast(body, keep_raw)
            if fast is not None:
                return fast
        raw, owned = _events_of(body)
        events: list[Event] = []
        errors: list[EventError] = []
        append = events.append
        memo = _Memo()
        for i, obj in enumerate(raw):
            try:
                append(_event(obj, owned, memo))
            except _Bad as exc:
                errors.append(EventError(i, exc.field, exc.message))
        return BatchResult(events, errors)


def loads_events(body: bytes | bytearray | memoryview | str | dict[str, Any]) -> list[Event]:
    """Strict variant of :func:`parse_batch` for trusted input: raise the first EventError."""
    result = parse_batch(body)
    if result.errors:
        raise result.errors[0]
    return result.events


# --------------------------------------------------------------------------------------------
# Serialisation
# --------------------------------------------------------------------------------------------


def _ext_to_wire(ext: dict[str, Any]) -> dict[str, Any]:
    origin = ext.get("origin_trace")
    if type(origin) is int:
        out = dict(ext)
        out["origin_trace"] = uuid_str(origin)
        return out
    return ext


def metadata_to_wire(m: Metadata) -> dict[str, Any]:
    """The original ``metadata`` object (the three optional ids omitted when None)."""
    meta: dict[str, Any] = {
        "thread_id": m.thread_id,
        "process_id": m.process_id,
        "service_name": m.service_name,
        "environment": m.environment,
        "tags": m.tags,
        "duration_ns": m.duration_ns,
    }
    if m.instance_id is not None:
        meta["instance_id"] = m.instance_id
    if m.distributed_span_id is not None:
        meta["distributed_span_id"] = m.distributed_span_id
    if m.upstream_span_id is not None:
        meta["upstream_span_id"] = m.upstream_span_id
    return meta


def event_to_wire(e: Event) -> dict[str, Any]:
    """The original JSON layout of ``e`` (plus ``"raceway"`` when ``e.ext`` is set)."""
    meta = metadata_to_wire(e.meta)
    parent = e.parent_id
    wire: dict[str, Any] = {
        "id": uuid_str(e.id),
        "trace_id": uuid_str(e.trace_id),
        "parent_id": None if parent is None else uuid_str(parent),
        "timestamp": format_timestamp(e.timestamp_ns),
        "kind": {e.kind: e.data},
        "metadata": meta,
        "causality_vector": [[c, n] for c, n in e.vc.items()],
        "lock_set": e.lock_set,
    }
    if e.ext is not None:
        wire["raceway"] = _ext_to_wire(e.ext)
    return wire


def dumps_batch(events: Iterable[Event]) -> bytes:
    """``{"events": [...]}`` as bytes; a non-JSON value names the event that carries it."""
    wire = [event_to_wire(e) for e in events]
    try:
        return orjson.dumps({"events": wire})
    except orjson.JSONEncodeError:
        for i, w in enumerate(wire):
            try:
                orjson.dumps(w)
            except orjson.JSONEncodeError as exc:
                raise TypeError(f"events[{i}] is not JSON-serialisable: {exc}") from None
        raise
