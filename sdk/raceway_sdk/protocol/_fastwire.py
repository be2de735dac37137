"""Fast path of :func:`raceway_sdk.protocol.events.parse_batch`: one msgspec decode per batch.

msgspec decodes and type-checks a whole ``{"events": [...]}`` body in C into the typed schema
below (a mirror of the wire schema in ``events.py``); :func:`parse_fast` then builds the
:class:`Event` objects without re-checking what msgspec checked. Variant payloads decode straight
into plain dicts (``TypedDict``), so most ``Event.data`` dicts are used as msgspec made them.

The fast path either produces exactly what the precise parser would or declines (returns
``None``) and the caller runs the precise parser, which names index and field and keeps the valid
events. It declines when

* it is turned off (``RACEWAY_FAST_PARSE=0``), msgspec is not importable, or the body is a
  dict (already decoded);
* msgspec rejects the body: any invalid event, or a form msgspec does not take although the
  precise parser does (braced/urn UUIDs, a duplicate key whose first value has the wrong type,
  an unknown ``kind`` variant, ...);
* an integer orjson would not keep exact (outside [-2**63, 2**64): orjson makes it a float,
  msgspec keeps it) sits in a JSON-typed value (``new_value``, ``args``, ...), or a typed integer
  field exceeds 2**63 - 1 (msgspec's bound limit): such a body would decode differently;
* the interpreter would let msgspec nest deeper than orjson's 1024 levels (CPython 3.12+, where
  msgspec's limit is the C recursion limit, or ``sys.getrecursionlimit() > 1024``): a body orjson
  rejects as a whole must not be accepted here;
* a Python-side check fails (timestamps, UUID payload fields, the Go ``AsyncSpawn`` shape,
  integral-float ``duration_ns``, ``origin_trace``): the timestamp and UUID checks are the precise
  parser's own functions, so a value they accept is converted identically.

tests/unit/test_protocol_fastwire.py is the judge: random valid and corrupted batches must give
the same result through both parsers. Fast-path figures: benchmarks/protocol.py.
"""

from __future__ import annotations

import os
import sys
import uuid
from typing import Annotated, Any, Literal, TypedDict

from raceway_sdk.protocol.events import (
    _FRAC_SCALE,
    _NS,
    _U64,
    BatchResult,
    Event,
    Metadata,
    _Bad,
    _secs_cache,
    _timestamp,
    _uuid,
    uuid_str,
)

try:
    import msgspec
    from msgspec import UNSET, Meta, UnsetType
    from msgspec.structs import astuple
except ImportError:  # pragma: no cover - exercised only without msgspec
    msgspec = None  # type: ignore[assignment]

__all__ = ["available", "parse_fast"]


# RACEWAY_FAST_PARSE=0 turns the fast path off (comparisons, or a suspected difference).
ENABLED = os.environ.get("RACEWAY_FAST_PARSE", "1") != "0"


def available() -> bool:
    """Whether the fast path runs here: enabled, msgspec importable, nesting depth bounded."""
    return (
        ENABLED
        and msgspec is not None
        and sys.version_info < (3, 12)
        and sys.getrecursionlimit() <= 1024
    )


# orjson turns integers outside [-2**63, 2**64) into floats; msgspec keeps them exact. Typed
# integer fields are bounded to int64 (msgspec's limit; larger values go to the precise parser)
# and JSON-typed values are checked after decoding (_exact), so no such integer slips through.
_I64_MIN = -(1 << 63)
_I63_MAX = (1 << 63) - 1
_PLAIN = frozenset((str, float, bool, type(None)))


def _exact(v: Any) -> bool:
    """Whether every integer in the JSON value ``v`` is one orjson would also keep as an int."""
    t = type(v)
    if t is int:
        return _I64_MIN <= v <= _U64
    if t is list:
        return all(map(_exact, v))
    if t is dict:
        return all(map(_exact, v.values()))
    return True


if msgspec is not None:
    # TypedDicts: required keys in a base class, the optional JSON members (JavaScript drops
    # undefined ones) in a total=False subclass (typing.NotRequired needs 3.11).
    U16 = Annotated[int, Meta(ge=0, le=0xFFFF)]
    U32 = Annotated[int, Meta(ge=0, le=0xFFFF_FFFF)]
    U64 = Annotated[int, Meta(ge=0, le=_I63_MAX)]  # msgspec bounds must fit an int64

    class _FunctionCallBase(TypedDict):
        function_name: str
        module: str
        file: str
        line: U32

    class _FunctionCall(_FunctionCallBase, total=False):
        args: Any

    class _AsyncSpawn(TypedDict, total=False):
        task_id: str
        spawned_by: str
        task_name: str
        spawned_at: str

    class _AsyncAwait(TypedDict):
        future_id: str
        awaited_at: str

    class _StateChangeBase(TypedDict):
        variable: str
        location: str
        access_type: Literal["Read", "Write", "AtomicRead", "AtomicWrite", "AtomicRMW"]

    class _StateChange(_StateChangeBase, total=False):
        old_value: Any
        new_value: Any

    class _Lock(TypedDict):
        lock_id: str
        lock_type: str
        location: str

    class _MemoryFence(TypedDict):
        ordering: Literal["Relaxed", "Acquire", "Release", "AcqRel", "SeqCst"]
        location: str

    class _HttpRequestBase(TypedDict):
        method: str
        url: str
        headers: dict[str, str]

    class _HttpRequest(_HttpRequestBase, total=False):
        body: Any

    class _HttpResponseBase(TypedDict):
        status: U16
        headers: dict[str, str]
        duration_ms: U64 | Annotated[float, Meta(ge=0.0, lt=1.9e19)]

    class _HttpResponse(_HttpResponseBase, total=False):
        body: Any

    class _DatabaseQuery(TypedDict):
        query: str
        database: str
        duration_ms: U64

    class _DatabaseResult(TypedDict):
        rows_affected: U64

    class _Error(TypedDict):
        error_type: str
        message: str
        stack_trace: list[str] | None

    class _CustomBase(TypedDict):
        name: str

    class _Custom(_CustomBase, total=False):
        data: Any

    class _FunctionReturnBase(TypedDict):
        function_name: str
        file: str
        line: U32

    class _FunctionReturn(_FunctionReturnBase, total=False):
        return_value: Any

    class _Kind(msgspec.Struct, forbid_unknown_fields=True, gc=False):
        # Field order = index used by _VARIANTS below.
        StateChange: _StateChange | UnsetType = UNSET
        LockAcquire: _Lock | UnsetType = UNSET
        LockRelease: _Lock | UnsetType = UNSET
        AsyncSpawn: _AsyncSpawn | UnsetType = UNSET
        AsyncAwait: _AsyncAwait | UnsetType = UNSET
        FunctionCall: _FunctionCall | UnsetType = UNSET
        HttpRequest: _HttpRequest | UnsetType = UNSET
        HttpResponse: _HttpResponse | UnsetType = UNSET
        MemoryFence: _MemoryFence | UnsetType = UNSET
        DatabaseQuery: _DatabaseQuery | UnsetType = UNSET
        DatabaseResult: _DatabaseResult | UnsetType = UNSET
        Error: _Error | UnsetType = UNSET
        Custom: _Custom | UnsetType = UNSET
        FunctionReturn: _FunctionReturn | UnsetType = UNSET

    class _OpenExtension(msgspec.Struct, gc=False):
        """Types of the known ``"raceway"`` keys (events._ext); used to check, not to keep."""

        task: str | UnsetType = UNSET
        loc: str | UnsetType = UNSET
        loop: str | UnsetType = UNSET
        func: str | UnsetType = UNSET
        child: str | UnsetType = UNSET
        child_name: str | UnsetType = UNSET
        child_kind: str | UnsetType = UNSET
        child_loop: str | UnsetType = UNSET
        seg: U64 | UnsetType = UNSET
        trusted_vc: bool | UnsetType = UNSET
        stack: list[tuple[str, U64, str]] | UnsetType = UNSET
        sync: Literal["acquire", "release"] | UnsetType = UNSET
        origin_trace: str | None | UnsetType = UNSET
        value: str | int | float | bool | None | UnsetType = UNSET

    class _Extension(_OpenExtension, forbid_unknown_fields=True, gc=False):
        """The same without unknown keys (whose values need the _exact check)."""

    _EXT_KEYS = frozenset(_OpenExtension.__struct_fields__)

    class _Metadata(msgspec.Struct, gc=False):
        thread_id: str
        process_id: U32
        service_name: str
        environment: str
        tags: dict[str, str]
        duration_ns: U64 | float | None = None
        instance_id: str | None = None
        distributed_span_id: str | None = None
        upstream_span_id: str | None = None

    class _Event(msgspec.Struct, gc=False):
        id: uuid.UUID
        trace_id: uuid.UUID
        timestamp: str
        kind: _Kind
        metadata: _Metadata
        causality_vector: list[tuple[str, U64]]
        lock_set: list[str]
        parent_id: uuid.UUID | None = None
        raceway: dict[str, Any] | None = None

    class _Batch(msgspec.Struct, gc=False):
        events: list[_Event]

    _decode = msgspec.json.Decoder(_Batch).decode
    _convert = msgspec.convert

    class _RawBatch(msgspec.Struct, gc=False):
        events: list[msgspec.Raw]

    _decode_raw = msgspec.json.Decoder(_RawBatch).decode


class _Decline(Exception):
    """Internal: the fast path cannot vouch for this batch; the precise parser takes it."""


def parse_fast(body: Any, keep_raw: bool = False) -> BatchResult | None:
    """The parsed batch when every event is valid and decodes exactly as the precise parser's
    would; ``None`` otherwise (the caller then runs the precise parser).

    ``keep_raw``: also return each event's JSON text as received (``BatchResult.raw``), for
    storing the batch without serialising it again; parsing ``raw[i]`` gives ``events[i]``.
    """
    if not available():
        return None
    tb = type(body)
    if tb is str:
        try:
            body = body.encode()
        except UnicodeEncodeError:  # lone surrogates: not JSON text
            return None
    elif tb is memoryview:
        body = bytes(body)
    elif tb is not bytes and tb is not bytearray:
        return None
    try:
        batch = _decode(body)
    except Exception:  # msgspec errors, UnicodeError for lone surrogates, RecursionError
        return None
    try:
        events = _events(batch.events)
    except (_Bad, _Decline, RecursionError):
        return None
    return BatchResult(events, [], _raw_texts(body, len(events)) if keep_raw else None)


def _raw_texts(body: bytes | bytearray, count: int) -> list[bytes] | None:
    """The JSON text of each event of ``body`` exactly as received (``None`` if not ``count``).

    A second, shallow decode of the same bytes by msgspec (same duplicate-key rule as the typed
    decode: the last ``"events"`` wins), so ``raw[i]`` is the text event ``i`` was decoded from.
    """
    try:
        events = _decode_raw(body).events
    except Exception:  # noqa: BLE001 - cannot happen after the typed decode; then no raw
        return None
    if len(events) != count:
        return None
    return [bytes(r) for r in events]


def _events(raw: list[Any]) -> list[Event]:
    out: list[Event] = []
    append = out.append
    metas: dict[str, tuple[Any, Metadata]] = {}
    secs_get = _secs_cache.get
    unset = UNSET
    convert = _convert
    ValidationError = msgspec.ValidationError  # noqa: N806 - a local alias of the class
    for ev in raw:
        v = ev.timestamp
        # the precise parser's own fast path (events._event), then its full parser
        secs = secs_get(v[:19])
        if secs is not None and len(v) > 21 and v[19] == ".":
            f = v[20:-1] if v[-1] == "Z" else v[20:-6] if v.endswith("+00:00") else ""
            if f.isdigit() and f.isascii() and len(f) <= 9:
                ts = secs * _NS + int(f) * _FRAC_SCALE[len(f)]
            else:
                ts = _timestamp(v, "timestamp")
        else:
            ts = _timestamp(v, "timestamp")

        t = astuple(ev.kind)
        if t.count(unset) != 13:
            raise _Decline  # no variant or several: the precise parser names it
        data = t[0]
        if data is not unset:
            kind = "StateChange"
            if len(data) != 5:
                data = _state_change(data)
            v = data["old_value"]
            tv = type(v)
            if tv is int:  # _exact inlined for the common scalar
                if not _I64_MIN <= v <= _U64:
                    raise _Decline
            elif tv not in _PLAIN and not _exact(v):
                raise _Decline
            v = data["new_value"]
            tv = type(v)
            if tv is int:
                if not _I64_MIN <= v <= _U64:
                    raise _Decline
            elif tv not in _PLAIN and not _exact(v):
                raise _Decline
        else:
            i = 1
            while t[i] is unset:
                i += 1
            kind, data = _VARIANTS[i](t[i])

        m = ev.metadata
        hit = metas.get(m.thread_id)
        if hit is not None and hit[0] == m:
            meta = hit[1]
        else:
            dur = m.duration_ns
            if type(dur) is float:
                # an integral float (the Python SDK's float duration_ms), as events._metadata
                if not (dur.is_integer() and 0.0 <= dur <= _U64):
                    raise _Decline
                dur = int(dur)
            meta = Metadata(
                m.thread_id, m.process_id, m.service_name, m.environment, m.tags, dur,
                m.instance_id, m.distributed_span_id, m.upstream_span_id,
            )  # fmt: skip
            if dur is None:
                metas[m.thread_id] = (m, meta)

        cv = ev.causality_vector
        vc = dict(cv)
        if len(vc) != len(cv):
            vc = _max_vector(cv)
        x = ev.raceway
        if x is not None:
            # _extension's common case inlined: known keys only, no value/origin_trace
            try:
                convert(x, _Extension)
            except ValidationError:
                _extension(x)
            else:
                if "value" in x or "origin_trace" in x:
                    _extension(x)
        p = ev.parent_id
        append(
            Event(
                ev.id.int, ev.trace_id.int, None if p is None else p.int, ts, kind, data, meta,
                vc, ev.lock_set, x,
            )  # fmt: skip
        )
    return out


def _extension(x: dict[str, Any]) -> None:
    """Check the extension object as events._ext does, converting ``origin_trace`` in place."""
    try:
        _convert(x, _Extension)  # the known keys only: the common case
    except msgspec.ValidationError:
        try:
            _convert(x, _OpenExtension)
        except msgspec.ValidationError:
            raise _Decline from None
        if not all(_exact(x[k]) for k in x.keys() - _EXT_KEYS):
            raise _Decline from None
    v = x.get("value")
    if type(v) is int and not _I64_MIN <= v <= _U64:
        raise _Decline
    if "origin_trace" in x:
        v = x["origin_trace"]
        if v is not None:
            x["origin_trace"] = _uuid(v, "raceway.origin_trace")


def _max_vector(cv: list[tuple[str, int]]) -> dict[str, int]:
    """Duplicate components keep the largest count (as events._vector_checked)."""
    vc: dict[str, int] = {}
    for comp, n in cv:
        old = vc.get(comp)
        if old is None or n > old:
            vc[comp] = n
    return vc


# Variant fix-ups: payloads arrive as checked dicts; only absent optional fields and the
# leniencies of the precise parser are handled here.


def _json(v: Any) -> Any:
    """``v`` when orjson would decode it identically (see _exact), else decline."""
    if type(v) in _PLAIN or _exact(v):
        return v
    raise _Decline


def _state_change(d: dict[str, Any]) -> dict[str, Any]:
    return {
        "variable": d["variable"],
        "old_value": d.get("old_value"),
        "new_value": d.get("new_value"),
        "location": d["location"],
        "access_type": d["access_type"],
    }


def _k_state_change(d: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    # also inlined in _events (the common kind)
    if len(d) != 5:
        d = _state_change(d)
    _json(d["old_value"])
    _json(d["new_value"])
    return "StateChange", d


def _k_lock_acquire(d: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    return "LockAcquire", d


def _k_lock_release(d: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    return "LockRelease", d


def _k_async_spawn(d: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    if "spawned_by" not in d and ("task_name" in d or "spawned_at" in d):
        if len(d) != 3:  # the Go shape needs all three strings
            raise _Decline
        return "AsyncSpawn", d
    if "task_id" not in d or "spawned_by" not in d:
        raise _Decline
    task = _uuid(d["task_id"], "kind.AsyncSpawn.task_id")
    return "AsyncSpawn", {"task_id": uuid_str(task), "spawned_by": d["spawned_by"]}


def _k_async_await(d: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    fut = _uuid(d["future_id"], "kind.AsyncAwait.future_id")
    return "AsyncAwait", {"future_id": uuid_str(fut), "awaited_at": d["awaited_at"]}


def _k_function_call(d: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    if len(d) != 5:
        d = {
            "function_name": d["function_name"],
            "module": d["module"],
            "args": None,
            "file": d["file"],
            "line": d["line"],
        }
    _json(d["args"])
    return "FunctionCall", d


def _k_http_request(d: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    if len(d) != 4:
        d = {"method": d["method"], "url": d["url"], "headers": d["headers"], "body": None}
    _json(d["body"])
    return "HttpRequest", d


def _k_http_response(d: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    if len(d) != 4:
        d = {
            "status": d["status"],
            "headers": d["headers"],
            "body": None,
            "duration_ms": d["duration_ms"],
        }
    _json(d["body"])
    return "HttpResponse", d


def _k_memory_fence(d: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    return "MemoryFence", d


def _k_database_query(d: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    return "DatabaseQuery", d


def _k_database_result(d: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    return "DatabaseResult", d


def _k_error(d: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    if d["stack_trace"] is None:  # a nil Go slice
        d["stack_trace"] = []
    return "Error", d


def _k_custom(d: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    if len(d) != 2:
        d = {"name": d["name"], "data": None}
    _json(d["data"])
    return "Custom", d


def _k_function_return(d: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    payload = {
        "function_name": d["function_name"],
        "return_value": _json(d.get("return_value")),
        "file": d["file"],
        "line": d["line"],
    }
    return "Custom", {"name": "FunctionReturn", "data": payload}


_VARIANTS = (  # in _Kind's field order
    _k_state_change,
    _k_lock_acquire,
    _k_lock_release,
    _k_async_spawn,
    _k_async_await,
    _k_function_call,
    _k_http_request,
    _k_http_response,
    _k_memory_fence,
    _k_database_query,
    _k_database_result,
    _k_error,
    _k_custom,
    _k_function_return,
)
