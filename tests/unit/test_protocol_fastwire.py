"""The msgspec fast path of parse_batch against the precise parser (differential tests).

The precise parser is reached through a dict body (parse_batch never takes the fast path for an
already decoded body). For random valid batches -- every kind, every UUID and timestamp form,
the original SDKs' deviations, extensions, unknown fields, JSON values with integers beyond 64
bits -- the fast path either declines or yields events equal field by field (types included) to
the precise parser's; for corrupted batches parse_batch's result (errors and kept events) equals
the precise parser's.
"""

from __future__ import annotations

import contextlib
import json
import sys
import uuid
from collections.abc import Iterator
from typing import Any

import orjson
import pytest
from hypothesis import assume, event, given, settings
from hypothesis import strategies as st
from raceway_sdk.protocol import _fastwire
from raceway_sdk.protocol.events import (
    ACCESS_TYPES,
    MEMORY_ORDERINGS,
    BatchError,
    BatchResult,
    Event,
    Metadata,
    dumps_batch,
    event_to_wire,
    new_event_id,
    parse_batch,
)

pytestmark = pytest.mark.skipif(not _fastwire.available(), reason="fast path not available here")

# ------------------------------------------------------------------------------ comparison


def typed(v: Any) -> Any:
    """A value with its JSON types made explicit (1, 1.0 and True differ; key order does not)."""
    if isinstance(v, dict):
        return ("dict", sorted((k, typed(x)) for k, x in v.items()))
    if isinstance(v, (list, tuple)):
        return (type(v).__name__, [typed(x) for x in v])
    if isinstance(v, float):
        return ("float", repr(v))
    return (type(v).__name__, v)


def fields(e: Event) -> tuple[Any, ...]:
    m = e.meta
    meta = (
        m.thread_id, m.process_id, m.service_name, m.environment, m.tags, m.duration_ns,
        m.instance_id, m.distributed_span_id, m.upstream_span_id,
    )  # fmt: skip
    return typed(
        (e.id, e.trace_id, e.parent_id, e.timestamp_ns, e.kind, e.data, meta, e.vc, e.lock_set, e.ext)
    )


def precise(body: bytes) -> BatchResult | str:
    """The precise parser's answer (or the BatchError's message)."""
    try:
        decoded = orjson.loads(body)
    except orjson.JSONDecodeError:
        return "BatchError"
    try:
        return parse_batch(decoded)
    except BatchError as exc:
        return f"BatchError: {exc}"


def outcome(result: BatchResult | str) -> Any:
    if isinstance(result, str):
        return result.split(":")[0]
    return ([fields(e) for e in result.events], [str(e) for e in result.errors])


def public(body: bytes) -> BatchResult | str:
    try:
        return parse_batch(body)
    except BatchError as exc:
        return f"BatchError: {exc}"


def same_sharing(fast: list[Event], slow: list[Event]) -> bool:
    """Events whose precise Metadata objects are shared also share them on the fast path."""
    for i, a in enumerate(slow):
        for j in range(i):
            if slow[j].meta is a.meta and fast[j].meta is not fast[i].meta:
                return False
    return True


@contextlib.contextmanager
def default_recursion_limit() -> Iterator[None]:
    """Hypothesis raises the recursion limit while it runs a test, which (rightly) turns the
    fast path off: restore the interpreter default for the body of the test."""
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(1000)
    try:
        yield
    finally:
        sys.setrecursionlimit(limit)


def check(body: bytes, record: bool = True) -> None:
    with default_recursion_limit():
        expected = precise(body)
        got = public(body)
        fast = _fastwire.parse_fast(body)
    assert outcome(got) == outcome(expected)
    if record:
        event("fast path" if fast is not None else "declined")
    if fast is not None:
        assert isinstance(expected, BatchResult) and not expected.errors
        assert [fields(e) for e in fast.events] == [fields(e) for e in expected.events]
        assert same_sharing(fast.events, expected.events)


# ------------------------------------------------------------------------------ strategies

_s = st.text(max_size=8)
_u16 = st.integers(0, 2**16 - 1)
_u32 = st.integers(0, 2**32 - 1)


def rarely(common: st.SearchStrategy[Any], rare: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """``rare`` one draw in ten: one declining value sends the whole batch to the precise parser,
    so the edges must be rare for most batches to exercise the fast path itself."""
    return st.integers(0, 9).flatmap(lambda n: rare if n == 0 else common)


# mostly small, sometimes near or beyond the 63/64-bit edges
_u64 = rarely(st.integers(0, 10**6), st.integers(2**62, 2**64 - 1))
_big = st.integers(-(2**70), 2**70) | st.sampled_from(
    [2**63 - 1, 2**63, 2**64 - 1, 2**64, -(2**63), -(2**63) - 1]
)
_json = st.recursive(
    st.none()
    | st.booleans()
    | rarely(st.integers(-(2**63), 2**63), _big)
    | st.floats(allow_nan=False, allow_infinity=False)
    | _s,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(_s, inner, max_size=3),
    max_leaves=6,
)


@st.composite
def uuids(draw: st.DrawFn) -> str:
    h = f"{draw(st.integers(0, 2**128 - 1)):032x}"
    hy = f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"
    form = draw(
        rarely(st.sampled_from(["hy", "HY", "mixed", "simple", "SIMPLE"]),
               st.sampled_from(["braced", "urn", "URN"]))
    )  # fmt: skip
    return {
        "hy": hy,
        "HY": hy.upper(),
        "mixed": hy[:18] + hy[18:].upper(),
        "simple": h,
        "SIMPLE": h.upper(),
        "braced": "{" + hy + "}",
        "urn": "urn:uuid:" + hy,
        "URN": "URN:UUID:" + hy.upper(),
    }[form]


_common_uuid = st.integers(0, 2**128 - 1).map(
    lambda n: (lambda h: f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}")(f"{n:032x}")
)
_any_uuid = _common_uuid | uuids()


@st.composite
def timestamps(draw: st.DrawFn) -> str:
    y = draw(st.integers(1, 9999) | st.integers(2020, 2030))
    mo, d = draw(st.integers(1, 12)), draw(st.integers(1, 28))
    h, mi, s = draw(st.integers(0, 23)), draw(st.integers(0, 59)), draw(st.integers(0, 60))
    sep = draw(st.sampled_from("TTt "))
    digits = draw(st.integers(0, 9))
    frac = "." + "".join(draw(st.lists(st.sampled_from("0123456789"), min_size=digits, max_size=digits))) if digits else ""
    off = draw(
        st.sampled_from(["Z", "z", "+00:00"])
        | st.tuples(st.sampled_from("+-"), st.integers(0, 23), st.integers(0, 59)).map(
            lambda t: f"{t[0]}{t[1]:02d}:{t[2]:02d}"
        )
    )
    return f"{y:04d}-{mo:02d}-{d:02d}{sep}{h:02d}:{mi:02d}:{s:02d}{frac}{off}"


def _maybe_drop(draw: st.DrawFn, payload: dict[str, Any], optional: tuple[str, ...]) -> dict[str, Any]:
    """JavaScript drops undefined members; unknown members are ignored."""
    for key in optional:
        if draw(st.booleans()) and draw(st.booleans()):
            del payload[key]
    if draw(st.integers(0, 9)) == 0:
        payload["unknown_member"] = draw(_json)
    return payload


@st.composite
def kinds(draw: st.DrawFn) -> dict[str, Any]:
    name = draw(
        st.sampled_from(
            ["StateChange"] * 4
            + ["FunctionCall", "AsyncSpawn", "GoAsyncSpawn", "AsyncAwait", "LockAcquire", "LockRelease",
               "MemoryFence", "HttpRequest", "HttpResponse", "DatabaseQuery", "DatabaseResult", "Error",
               "Custom", "FunctionReturn"]
        )
    )  # fmt: skip
    p: dict[str, Any]
    if name == "StateChange":
        p = {"variable": draw(_s), "old_value": draw(_json), "new_value": draw(_json),
             "location": draw(_s), "access_type": draw(st.sampled_from(ACCESS_TYPES))}  # fmt: skip
        p = _maybe_drop(draw, p, ("old_value", "new_value"))
    elif name == "FunctionCall":
        p = {"function_name": draw(_s), "module": draw(_s), "args": draw(_json), "file": draw(_s),
             "line": draw(_u32)}  # fmt: skip
        p = _maybe_drop(draw, p, ("args",))
    elif name == "AsyncSpawn":
        p = _maybe_drop(draw, {"task_id": draw(_any_uuid), "spawned_by": draw(_s)}, ())
    elif name == "GoAsyncSpawn":
        name = "AsyncSpawn"
        p = {"task_id": draw(_s), "task_name": draw(_s), "spawned_at": draw(_s)}
    elif name == "AsyncAwait":
        p = _maybe_drop(draw, {"future_id": draw(_any_uuid), "awaited_at": draw(_s)}, ())
    elif name in ("LockAcquire", "LockRelease"):
        p = _maybe_drop(draw, {"lock_id": draw(_s), "lock_type": draw(_s), "location": draw(_s)}, ())
    elif name == "MemoryFence":
        p = {"ordering": draw(st.sampled_from(MEMORY_ORDERINGS)), "location": draw(_s)}
    elif name == "HttpRequest":
        p = {"method": draw(_s), "url": draw(_s), "headers": draw(st.dictionaries(_s, _s, max_size=2)),
             "body": draw(_json)}  # fmt: skip
        p = _maybe_drop(draw, p, ("body",))
    elif name == "HttpResponse":
        duration = draw(_u64 | st.floats(0, 1e12))  # TypeScript: fractional milliseconds
        p = {"status": draw(_u16), "headers": draw(st.dictionaries(_s, _s, max_size=2)),
             "body": draw(_json), "duration_ms": duration}  # fmt: skip
        p = _maybe_drop(draw, p, ("body",))
    elif name == "DatabaseQuery":
        p = {"query": draw(_s), "database": draw(_s), "duration_ms": draw(_u64)}
    elif name == "DatabaseResult":
        p = {"rows_affected": draw(_u64)}
    elif name == "Error":
        trace = draw(st.none() | st.lists(_s, max_size=2))  # Go: a nil slice is null
        p = {"error_type": draw(_s), "message": draw(_s), "stack_trace": trace}
    elif name == "Custom":
        p = _maybe_drop(draw, {"name": draw(_s), "data": draw(_json)}, ("data",))
    else:  # FunctionReturn (Go, Python SDK)
        p = {"function_name": draw(_s), "return_value": draw(_json), "file": draw(_s),
             "line": draw(_u32)}  # fmt: skip
        p = _maybe_drop(draw, p, ("return_value",))
    return {name: p}


@st.composite
def metadata(draw: st.DrawFn) -> dict[str, Any]:
    m: dict[str, Any] = {
        "thread_id": draw(st.sampled_from(["t1", "t2"]) | _s),
        "process_id": draw(st.sampled_from([1, 4242]) | _u32),
        "service_name": draw(st.just("svc") | _s),
        "environment": "test",
        "tags": draw(st.just({"sdk_language": "python"}) | st.dictionaries(_s, _s, max_size=2)),
    }
    dur = draw(st.none() | _u64 | st.integers(0, 2**53).map(float) | st.just("absent"))
    if dur != "absent":
        m["duration_ns"] = dur  # an integral float: the Python SDK's float duration_ms
    for key in ("instance_id", "distributed_span_id", "upstream_span_id"):
        choice = draw(st.sampled_from(["absent", "null", "value"]))
        if choice != "absent":
            m[key] = None if choice == "null" else draw(_s)
    if draw(st.integers(0, 9)) == 0:
        m["unknown_member"] = draw(_json)
    return m


_ext_values = {
    "task": _s, "loc": _s, "loop": _s, "func": _s, "child": _s, "child_name": _s,
    "child_kind": _s, "child_loop": _s, "seg": _u64, "trusted_vc": st.booleans(),
    "stack": st.lists(st.tuples(_s, _u32 | _u64, _s).map(list), max_size=2),
    "sync": st.sampled_from(["acquire", "release"]), "origin_trace": st.none() | _any_uuid,
    "value": st.none() | st.booleans() | _big | st.floats(allow_nan=False, allow_infinity=False) | _s,
    "span": _s, "unknown_key": _json,
}  # fmt: skip


@st.composite
def wire_events(draw: st.DrawFn, ids: list[str]) -> dict[str, Any]:
    eid = draw(_any_uuid)
    parent: Any = draw(st.sampled_from(["absent", "null", "previous", "other"]))
    ev: dict[str, Any] = {
        "id": eid,
        "trace_id": draw(st.sampled_from(["0af76519-16cd-43dd-8448-eb211c80319c"]) | _any_uuid),
        "timestamp": draw(st.sampled_from(["2025-11-24T16:00:00.123456Z"]) | timestamps()),
        "kind": draw(kinds()),
        "metadata": draw(metadata()),
        "causality_vector": draw(
            st.lists(st.tuples(st.sampled_from(["a", "b", "c"]) | _s, _u64).map(list), max_size=4)
        ),  # duplicate components keep the largest count
        "lock_set": draw(st.lists(_s, max_size=2)),
    }
    if parent == "null":
        ev["parent_id"] = None
    elif parent == "previous" and ids:
        ev["parent_id"] = ids[-1]
    elif parent == "other":
        ev["parent_id"] = draw(_any_uuid)
    ext = draw(st.sampled_from(["absent", "null", "dict", "dict"]))
    if ext == "null":
        ev["raceway"] = None
    elif ext == "dict":
        keys = draw(st.lists(st.sampled_from(sorted(_ext_values)), max_size=6, unique=True))
        ev["raceway"] = {k: draw(_ext_values[k]) for k in keys}
    if draw(st.integers(0, 9)) == 0:
        ev["unknown_member"] = draw(_json)
    ids.append(eid)
    return ev


@st.composite
def batches(draw: st.DrawFn) -> list[dict[str, Any]]:
    ids: list[str] = []
    return [draw(wire_events(ids)) for _ in range(draw(st.integers(1, 5)))]


def encode(events: list[dict[str, Any]]) -> bytes:
    # the stdlib encoder: integers beyond 64 bits, which orjson cannot write
    return json.dumps({"events": events}).encode()


# ------------------------------------------------------------------------------ properties


@settings(max_examples=300, deadline=None)
@given(batches())
def test_valid_batches_equal_the_precise_parser(evs: list[dict[str, Any]]) -> None:
    check(encode(evs))


_junk = (
    _json
    | st.sampled_from(["", "not-a-uuid", "2024-01-01T00:00:00", "Write", -1, 2**64, 1.5, True, [], {}])
    | uuids()
    | timestamps()
)


@st.composite
def corrupted(draw: st.DrawFn) -> list[dict[str, Any]]:
    """A valid batch with one value replaced, one member deleted, or the kind's variant renamed."""
    evs = draw(batches())
    target: Any = draw(st.sampled_from(evs))
    while True:  # walk down to a random member of a random container
        keys = list(target) if isinstance(target, dict) else list(range(len(target)))
        if not keys:
            return evs
        key = draw(st.sampled_from(keys))
        child = target[key]
        if not isinstance(child, (dict, list)) or not child or draw(st.booleans()):
            break
        target = child
    action = draw(st.sampled_from(["replace", "replace", "delete", "rename"]))
    if action == "delete" and isinstance(target, dict):
        del target[key]
    elif action == "rename" and isinstance(target, dict):
        new = draw(st.sampled_from(["FunctionReturn", "Bogus", "statechange", key + "x"]))
        target[new] = target.pop(key)
    else:
        target[key] = draw(_junk)
    return evs


@settings(max_examples=300, deadline=None)
@given(corrupted())
def test_corrupted_batches_equal_the_precise_parser(evs: list[dict[str, Any]]) -> None:
    check(encode(evs))


# ------------------------------------------------------------------------------ specific cases

GOOD: dict[str, Any] = {
    "id": "6f1c1d2e-0b8a-4c3d-9e4f-112233445566",
    "trace_id": "0af76519-16cd-43dd-8448-eb211c80319c",
    "parent_id": None,
    "timestamp": "2024-01-01T12:00:00.123456Z",
    "kind": {"StateChange": {"variable": "a.b", "old_value": 1, "new_value": 2,
                             "location": "app.py:1", "access_type": "Write"}},
    "metadata": {"thread_id": "t", "process_id": 1, "service_name": "svc", "environment": "test",
                 "tags": {}, "duration_ns": None},
    "causality_vector": [["t", 1]],
    "lock_set": [],
}  # fmt: skip


def good_body(**over: Any) -> bytes:
    return encode([{**GOOD, **over}])


@pytest.mark.parametrize(
    "body",
    [
        good_body().replace(b'"id"', b'"id": 5, "id"'),  # duplicate key, first value bad
        good_body().replace(b'"id"', b'"id": "x", "id"'),  # duplicate key, last one wins
        good_body().replace(b'"old_value": 1', b'"old_value": 18446744073709551616'),
        good_body().replace(b'"old_value": 1', b'"old_value": -9223372036854775809'),
        good_body().replace(b'"old_value": 1', b'"old_value": 18446744073709551615'),
        good_body().replace(b'"old_value": 1', b'"old_value": ' + b"[" * 1100 + b"]" * 1100),
        good_body().replace(b'"old_value": 1', b'"old_value": "\\ud800"'),
        good_body().replace(b'"old_value": 1', b'"old_value": 1e400'),
        good_body().replace(b'"a.b"', b'"a\xffb"'),
        good_body() + b" x",
        b"\xef\xbb\xbf" + good_body(),
        good_body(raceway={"stack": [["f.py", 18446744073709551616, "f"]]}),
        good_body(raceway={"value": 18446744073709551616}),
        good_body(raceway={"value": 9223372036854775808}),
        good_body(raceway={"seg": 18446744073709551615}),
        good_body(raceway={"other": {"deep": [18446744073709551616]}}),
        good_body(causality_vector=[["t", 18446744073709551615], ["u", 18446744073709551616]]),
        good_body(kind={"HttpResponse": {"status": 200, "headers": {}, "duration_ms": 18446744073709551616}}),
        good_body(metadata={**GOOD["metadata"], "duration_ns": 18446744073709551616}),
        good_body(metadata={**GOOD["metadata"], "duration_ns": 1.8446744073709552e19}),
        good_body(metadata={**GOOD["metadata"], "duration_ns": 1.5}),
        good_body(kind={}),
        good_body(kind={"StateChange": GOOD["kind"]["StateChange"], "Custom": {"name": "x"}}),
        good_body(kind={"StateChange": None}),
        good_body(kind={"Bogus": {}}),
        good_body(id="{6f1c1d2e-0b8a-4c3d-9e4f-112233445566}"),
        b'{"events": {}}',
        b"[]",
        b"",
    ],
)
def test_edge_bodies_equal_the_precise_parser(body: bytes) -> None:
    check(body, record=False)
    check_str = body.decode("utf-8", "surrogateescape")
    try:
        check_str.encode()
    except UnicodeEncodeError:
        return
    assert outcome(public(check_str)) == outcome(precise(body))  # type: ignore[arg-type]


def test_lone_surrogate_in_a_str_body_is_a_batch_error() -> None:
    with pytest.raises(BatchError):
        parse_batch('{"events": [{"id": "\ud800"}]}')


def sdk_batch(n: int = 50) -> bytes:
    """What our SDK sends: dumps_batch of recorder-shaped events."""
    meta = Metadata("host-1/1", 4242, "svc", "test", {"sdk_language": "python"}, None, "host-1")
    trace, parent = new_event_id(), None
    evs = []
    for i in range(n):
        eid = new_event_id()
        data = {"variable": "Account.balance", "old_value": i, "new_value": i + 1,
                "location": "app.py:3", "access_type": "Write"}  # fmt: skip
        ext = {"task": "host-1/1", "trusted_vc": True, "loc": "Account@3.balance", "seg": i,
               "stack": [["app.py", 3, "deposit"]], "value": i}  # fmt: skip
        kind = "StateChange"
        if i % 5 == 4:
            kind, data, ext = "AsyncSpawn", {"task_id": str(__import__("uuid").uuid4()), "spawned_by": "host-1/1"}, {
                "task": "host-1/1", "child": "host-1/2", "child_kind": "thread", "origin_trace": trace}
        evs.append(Event(eid, trace, parent, 1_700_000_000_123_456_789 + i, kind, data, meta,
                         {"host-1/1": i + 1}, [], ext))  # fmt: skip
        parent = eid
    return dumps_batch(evs)


def original_sdk_batch() -> bytes:
    """Original SDK quirks (TypeScript, Go, Python) that the fast path handles itself."""
    evs = []
    kinds_ = [
        {"HttpResponse": {"status": 200, "headers": {}, "duration_ms": 12.5}},  # TS fractional ms
        {"StateChange": {"variable": "x", "location": "a.ts:1", "access_type": "Read"}},  # undefined dropped
        {"AsyncSpawn": {"task_id": "go-7", "task_name": "worker", "spawned_at": "main.go:3"}},
        {"FunctionReturn": {"function_name": "f", "return_value": 3, "file": "a.go", "line": 9}},
        {"Error": {"error_type": "E", "message": "m", "stack_trace": None}},  # nil Go slice
        {"Custom": {"name": "n"}},
    ]
    for i, kind in enumerate(kinds_):
        evs.append({**GOOD, "id": f"6f1c1d2e-0b8a-4c3d-9e4f-1122334455{i:02d}", "kind": kind,
                    "metadata": {**GOOD["metadata"], "duration_ns": 1500.0},
                    "timestamp": "2024-01-01T12:00:00.123+02:00",
                    "causality_vector": [["t", 1], ["t", 3], ["t", 2]]})  # fmt: skip
    return encode(evs)


@pytest.mark.parametrize("make", [sdk_batch, original_sdk_batch])
def test_real_batches_take_the_fast_path_and_match(make: Any) -> None:
    body = make()
    fast = _fastwire.parse_fast(body)
    assert fast is not None, "the fast path declined a valid batch it is meant to handle"
    assert [fields(e) for e in fast.events] == [fields(e) for e in precise(body).events]  # type: ignore[union-attr]


def test_fast_results_conventions() -> None:
    fast = _fastwire.parse_fast(sdk_batch(10))
    assert fast is not None and not fast.errors
    e = fast.events
    assert e[0].meta is e[1].meta  # one Metadata object per context
    assert e[1].parent_id == e[0].id and e[0].timestamp_ns == 1_700_000_000_123_456_789
    spawn = e[4]
    assert spawn.kind == "AsyncSpawn" and isinstance(spawn.ext["origin_trace"], int)
    assert spawn.data["task_id"] == spawn.data["task_id"].lower() and len(spawn.data["task_id"]) == 36
    body = original_sdk_batch()
    quirks = _fastwire.parse_fast(body)
    assert quirks is not None
    kinds_ = [(x.kind, x.data) for x in quirks.events]
    assert kinds_[1] == ("StateChange", {"variable": "x", "old_value": None, "new_value": None,
                                         "location": "a.ts:1", "access_type": "Read"})  # fmt: skip
    assert kinds_[3][0] == "Custom" and kinds_[3][1]["name"] == "FunctionReturn"
    assert kinds_[4][1]["stack_trace"] == [] and kinds_[5][1] == {"name": "n", "data": None}
    assert quirks.events[0].meta.duration_ns == 1500 and type(quirks.events[0].meta.duration_ns) is int
    assert quirks.events[0].vc == {"t": 3}


def test_body_types() -> None:
    body = sdk_batch(3)
    for form in (body, bytearray(body), memoryview(body), body.decode()):
        res = _fastwire.parse_fast(form)
        assert res is not None and len(res.events) == 3
    assert _fastwire.parse_fast(orjson.loads(body)) is None  # decoded bodies: precise parser
    assert _fastwire.parse_fast(12) is None


def test_unbounded_recursion_disables_the_fast_path() -> None:
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(5000)
    try:
        assert not _fastwire.available()
        assert _fastwire.parse_fast(sdk_batch(2)) is None
        assert len(parse_batch(sdk_batch(2)).events) == 2
    finally:
        sys.setrecursionlimit(limit)


# ------------------------------------------------------------------------------ stored copy


@settings(max_examples=150, deadline=None)
@given(batches())
def test_postgres_rows_hold_event_to_wire(evs: list[dict[str, Any]]) -> None:
    """The PostgreSQL COPY rows (per-batch memos) carry exactly event_to_wire's JSON."""
    postgres = pytest.importorskip("raceway_server.storage.postgres")
    with default_recursion_limit():
        try:
            result = parse_batch(encode(evs))
        except BatchError:  # json.dumps wrote a non-finite float: not JSON, nothing is stored
            assume(False)
    writer = postgres._RowWriter()
    for e in result.events:
        wire = event_to_wire(e)  # every accepted event can be written back (years 1-9999 UTC)
        text = writer.body(e)
        assert text == orjson.dumps(wire)
        cols = binary_fields(writer.row(e, text))
        assert cols[0] == uuid.UUID(wire["id"]).bytes and cols[1] == uuid.UUID(wire["trace_id"]).bytes
        assert cols[2] == (None if wire["parent_id"] is None else uuid.UUID(wire["parent_id"]).bytes)
        micros = int.from_bytes(cols[3], "big", signed=True) + 946_684_800_000_000
        assert abs(micros * 1000 - e.timestamp_ns) <= 500
        assert cols[4] == e.kind.encode()
        assert cols[5] == e.meta.service_name.replace("\0", "\ufffd").encode()
        assert cols[6] == text


def binary_fields(row: bytes) -> list[bytes | None]:
    """The fields of a binary COPY row (4-byte length, -1 for NULL, then the value)."""
    out: list[bytes | None] = []
    at = 0
    while at < len(row):
        n = int.from_bytes(row[at : at + 4], "big", signed=True)
        at += 4
        out.append(None if n < 0 else row[at : at + n])
        at += max(n, 0)
    return out


@settings(max_examples=150, deadline=None)
@given(batches(), st.sampled_from([None, 1, "\t"]))
def test_kept_raw_texts_are_the_events_as_sent(evs: list[dict[str, Any]], indent: Any) -> None:
    """keep_raw: each event's text as received, aligned with the events; reparsing one text
    gives that event. Only the fast path keeps them (the precise path returns None)."""
    body = json.dumps({"events": evs}, indent=indent).encode()
    with default_recursion_limit():
        try:
            result = parse_batch(body, keep_raw=True)
        except BatchError:  # json.dumps wrote a non-finite float: not JSON
            assume(False)
        fast = _fastwire.parse_fast(body) is not None
        assert parse_batch(body).raw is None  # not asked for
        assert (result.raw is not None) == fast
        event("raw kept" if fast else "declined")
        if result.raw is None:
            return
        assert len(result.raw) == len(result.events) == len(evs)
        for text, sent, parsed in zip(result.raw, evs, result.events, strict=True):
            assert json.loads(text) == sent
            again = parse_batch({"events": [orjson.loads(text)]})
            assert [fields(e) for e in again.events] == [fields(parsed)]


def test_no_raw_texts_without_the_fast_path() -> None:
    body = sdk_batch(3)
    with default_recursion_limit():
        assert parse_batch(body, keep_raw=True).raw is not None
        assert parse_batch(orjson.loads(body), keep_raw=True).raw is None  # dict: precise path
        broken = orjson.loads(body)
        broken["events"][1]["timestamp"] = "yesterday"
        result = parse_batch(orjson.dumps(broken), keep_raw=True)
        assert len(result.events) == 2 and len(result.errors) == 1 and result.raw is None
