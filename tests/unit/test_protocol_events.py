"""Wire schema: parsing/validation of original batches, our extension, serialisation."""

from __future__ import annotations

import copy
import datetime as dt
import uuid
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from raceway_sdk.protocol.events import (
    ACCESS_TYPES,
    KINDS,
    BatchError,
    Event,
    EventError,
    Metadata,
    dumps_batch,
    event_to_wire,
    format_timestamp,
    loads_events,
    parse_batch,
    parse_event,
    parse_timestamp,
    parse_uuid,
)

TRACE = "0af76519-16cd-43dd-8448-eb211c80319c"
EID = "6f1c1d2e-0b8a-4c3d-9e4f-112233445566"

PAYLOADS: dict[str, dict] = {
    "FunctionCall": {
        "function_name": "f",
        "module": "app",
        "args": {"a": 1},
        "file": "a.py",
        "line": 3,
    },
    "AsyncSpawn": {"task_id": "11111111-2222-4333-8444-555555555555", "spawned_by": "main"},
    "AsyncAwait": {"future_id": "11111111-2222-4333-8444-555555555555", "awaited_at": "a.py:9"},
    "StateChange": {
        "variable": "alice.balance",
        "old_value": 1000,
        "new_value": 900,
        "location": "app.py:42",
        "access_type": "Write",
    },
    "LockAcquire": {"lock_id": "L", "lock_type": "Mutex", "location": "a.py:1"},
    "LockRelease": {"lock_id": "L", "lock_type": "RwLock::Read", "location": "a.py:2"},
    "MemoryFence": {"ordering": "SeqCst", "location": "a.rs:5"},
    "HttpRequest": {"method": "GET", "url": "/x", "headers": {"a": "b"}, "body": None},
    "HttpResponse": {"status": 200, "headers": {}, "body": {"ok": True}, "duration_ms": 12},
    "DatabaseQuery": {"query": "SELECT 1", "database": "pg", "duration_ms": 3},
    "DatabaseResult": {"rows_affected": 7},
    "Error": {"error_type": "ValueError", "message": "boom", "stack_trace": ["a.py:1", "b.py:2"]},
    "Custom": {"name": "raceway.task_end", "data": {"x": [1, 2]}},
}
# (field, a wrong value, a fragment of the message) for every required payload field
WRONG: dict[str, list[tuple[str, object, str]]] = {
    "FunctionCall": [
        ("function_name", 1, "expected a string"),
        ("module", None, "expected a string"),
        ("file", [], "expected a string"),
        ("line", -1, "unsigned 32-bit"),
    ],
    "AsyncSpawn": [
        ("task_id", "not-a-uuid", "invalid UUID"),
        ("spawned_by", 5, "expected a string"),
    ],
    "AsyncAwait": [("future_id", 5, "a UUID string"), ("awaited_at", False, "expected a string")],
    "StateChange": [
        ("variable", 1, "expected a string"),
        ("location", None, "expected a string"),
        ("access_type", "read", "expected one of Read, Write, AtomicRead, AtomicWrite, AtomicRMW"),
    ],
    "LockAcquire": [
        ("lock_id", 1, "string"),
        ("lock_type", 1, "string"),
        ("location", 1, "string"),
    ],
    "LockRelease": [
        ("lock_id", 1, "string"),
        ("lock_type", 1, "string"),
        ("location", 1, "string"),
    ],
    "MemoryFence": [
        ("ordering", "Strong", "expected one of Relaxed, Acquire, Release, AcqRel, SeqCst"),
        ("location", 3, "string"),
    ],
    "HttpRequest": [
        ("method", 1, "string"),
        ("url", 1, "string"),
        ("headers", {"a": 1}, "expected a string"),
    ],
    "HttpResponse": [
        ("status", 65536, "unsigned 16-bit"),
        ("headers", [], "object of strings"),
        ("duration_ms", -1, "non-negative number"),
    ],
    "DatabaseQuery": [
        ("query", 1, "string"),
        ("database", 1, "string"),
        ("duration_ms", 1.5, "unsigned 64-bit"),
    ],
    "DatabaseResult": [("rows_affected", True, "unsigned 64-bit")],
    "Error": [
        ("error_type", 1, "string"),
        ("message", 1, "string"),
        ("stack_trace", ["ok", 2], "expected a string"),
    ],
    "Custom": [("name", None, "string")],
}


def wire(kind: str = "StateChange", **over: object) -> dict[str, Any]:
    ev: dict[str, Any] = {
        "id": EID,
        "trace_id": TRACE,
        "parent_id": None,
        "timestamp": "2024-01-01T12:00:00.123456Z",
        "kind": {kind: copy.deepcopy(PAYLOADS[kind])},
        "metadata": {
            "thread_id": "python-123-ab12cd34",
            "process_id": 123,
            "service_name": "banking-api",
            "environment": "development",
            "tags": {"sdk_language": "python"},
            "duration_ns": None,
            "instance_id": "host-123",
            "distributed_span_id": "0123456789abcdef",
            "upstream_span_id": None,
        },
        "causality_vector": [["banking-api#host-123", 3]],
        "lock_set": [],
    }
    ev.update(over)
    return ev


def one_error(obj: object) -> EventError:
    res = parse_batch({"events": [obj]})
    assert res.events == [] and len(res.errors) == 1
    return res.errors[0]


def as_tuple(e: Event) -> tuple:
    m = e.meta
    return (
        e.id, e.trace_id, e.parent_id, e.timestamp_ns, e.kind, e.data, e.vc, e.lock_set, e.ext,
        m.thread_id, m.process_id, m.service_name, m.environment, m.tags, m.duration_ns,
        m.instance_id, m.distributed_span_id, m.upstream_span_id,
    )  # fmt: skip


# ---------------------------------------------------------------------------------- valid input


@pytest.mark.parametrize("kind", KINDS)
def test_every_kind_parses_with_its_fields(kind: str) -> None:
    e = parse_event(wire(kind))
    assert e.kind == kind
    expected = dict(PAYLOADS[kind])
    assert e.data == expected
    assert e.id == uuid.UUID(EID).int and e.trace_id == uuid.UUID(TRACE).int
    assert e.parent_id is None
    assert e.timestamp_ns == 1704110400_123456000
    assert e.vc == {"banking-api#host-123": 3}
    assert e.meta.thread_id == "python-123-ab12cd34" and e.meta.process_id == 123
    assert e.meta.instance_id == "host-123" and e.meta.upstream_span_id is None
    assert e.ext is None and e.task == "python-123-ab12cd34"


def test_optional_fields_may_be_absent_or_null() -> None:
    ev = wire()
    del ev["parent_id"]
    for key in ("duration_ns", "instance_id", "distributed_span_id", "upstream_span_id"):
        del ev["metadata"][key]
    del ev["kind"]["StateChange"]["old_value"]
    ev["kind"]["StateChange"]["new_value"] = None
    e = parse_event(ev)
    assert e.parent_id is None and e.meta.duration_ns is None and e.meta.instance_id is None
    assert e.data["old_value"] is None and e.data["new_value"] is None


def test_unknown_extra_fields_are_ignored_and_not_kept() -> None:
    ev = wire("LockAcquire", extra=1)
    ev["metadata"]["future_field"] = [1]
    ev["kind"]["LockAcquire"]["holder"] = "x"
    e = parse_event(ev)
    assert e.data == PAYLOADS["LockAcquire"]
    assert "extra" not in event_to_wire(e) and "future_field" not in event_to_wire(e)["metadata"]


def test_good_events_survive_bad_ones_and_errors_name_index_and_field() -> None:
    bad = wire()
    bad["kind"]["StateChange"]["access_type"] = "Modify"
    events = [wire(), wire("Custom"), wire(id="x"), bad, wire("Error")]
    res = parse_batch(orjson.dumps({"events": events}))
    assert [e.kind for e in res.events] == ["StateChange", "Custom", "Error"]
    assert [(err.index, err.field) for err in res.errors] == [
        (2, "id"),
        (3, "kind.StateChange.access_type"),
    ]
    assert str(res.errors[1]) == (
        "events[3].kind.StateChange.access_type: "
        "expected one of Read, Write, AtomicRead, AtomicWrite, AtomicRMW"
    )
    assert res.errors[0].to_dict()["index"] == 2


@pytest.mark.parametrize("form", ["bytes", "str", "bytearray", "memoryview", "dict"])
def test_body_forms(form: str) -> None:
    body = {"events": [wire(), wire("Custom")]}
    raw = orjson.dumps(body)
    arg = {
        "bytes": raw,
        "str": raw.decode(),
        "bytearray": bytearray(raw),
        "memoryview": memoryview(raw),
        "dict": body,
    }[form]
    res = parse_batch(arg)
    assert len(res.events) == 2 and not res.errors


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        (b"{not json", "not valid JSON"),
        (b"[1, 2]", "must be a JSON object"),
        (b'{"evts": []}', 'no "events" field'),
        (b'{"events": {"a": 1}}', '"events" must be an array'),
        (b"", "not valid JSON"),
    ],
)
def test_whole_batch_errors(body: bytes, fragment: str) -> None:
    with pytest.raises(BatchError, match=fragment):
        parse_batch(body)


def test_loads_events_is_strict() -> None:
    assert len(loads_events({"events": [wire()]})) == 1
    with pytest.raises(EventError, match=r"events\[1\]\.trace_id"):
        loads_events({"events": [wire(), wire(trace_id=None)]})


def test_dict_input_is_not_modified_and_events_do_not_alias_it() -> None:
    body = {"events": [wire(raceway={"origin_trace": TRACE, "task": "t"}), wire("LockAcquire")]}
    before = copy.deepcopy(body)
    res = parse_batch(body)
    assert body == before
    res.events[0].meta.tags["x"] = "y"
    res.events[1].lock_set.append("L")
    assert body == before
    assert res.events[0].ext == {"origin_trace": uuid.UUID(TRACE).int, "task": "t"}


# ------------------------------------------------------------------------------ field checking


@pytest.mark.parametrize(
    ("kind", "field", "value", "fragment"),
    [(k, f, v, m) for k, cases in WRONG.items() for f, v, m in cases],
)
def test_every_payload_field_is_checked(
    kind: str, field: str, value: object, fragment: str
) -> None:
    ev = wire(kind)
    ev["kind"][kind][field] = value
    err = one_error(ev)
    assert err.field.startswith(f"kind.{kind}.{field}"), str(err)
    assert err.field in (
        f"kind.{kind}.{field}",
        f"kind.{kind}.{field}.a",
        f"kind.{kind}.{field}[1]",
    )
    assert fragment in err.message


@pytest.mark.parametrize(
    ("kind", "field"),
    [
        (k, f)
        for k, p in PAYLOADS.items()
        for f in p
        if f not in ("args", "old_value", "new_value", "body", "data")
    ],
)
def test_missing_required_payload_field(kind: str, field: str) -> None:
    ev = wire(kind)
    del ev["kind"][kind][field]
    err = one_error(ev)
    assert err.field == f"kind.{kind}.{field}"
    assert "missing required field" in err.message


@pytest.mark.parametrize(
    ("field", "value", "fragment"),
    [
        ("id", None, "missing required field"),
        ("id", 12, "expected a UUID string"),
        ("trace_id", "0af76519-16cd-43dd-8448-eb211c80319", "invalid UUID"),
        ("parent_id", "zz", "invalid UUID"),
        ("timestamp", 1704110400, "RFC 3339 timestamp string"),
        ("kind", "StateChange", "exactly one key"),
        ("kind", {}, "empty object"),
        (
            "kind",
            {"StateChange": PAYLOADS["StateChange"], "Custom": {}},
            "got keys StateChange, Custom",
        ),
        ("kind", {"Spawn": {}}, "unknown variant 'Spawn'"),
        ("kind", {"Custom": []}, "expected an object"),
        ("metadata", [], "expected an object"),
        ("causality_vector", {"a": 1}, "array of [component, count] pairs"),
        ("lock_set", None, "array of strings"),
        ("raceway", [1], "expected an object"),
    ],
)
def test_top_level_fields_are_checked(field: str, value: object, fragment: str) -> None:
    ev = wire()
    if value is None and field == "id":
        del ev["id"]
    else:
        ev[field] = value
    err = one_error(ev)
    assert err.field in (field, "kind.Custom") and fragment in err.message, str(err)


def test_non_object_event() -> None:
    err = one_error(["not", "an", "event"])
    assert str(err) == "events[0]: expected an event object, got array"


@pytest.mark.parametrize(
    ("field", "value", "fragment"),
    [
        ("thread_id", None, "expected a string, got null"),
        ("process_id", True, "unsigned 32-bit integer, got true"),
        ("process_id", -1, "unsigned 32-bit integer, got number -1"),
        ("process_id", 2**32, "unsigned 32-bit"),
        ("process_id", 12.0, "unsigned 32-bit"),
        ("service_name", 1, "string"),
        ("environment", None, "string"),
        ("tags", None, "object of strings"),
        ("duration_ns", -5, "unsigned 64-bit integer or null"),
        ("duration_ns", 1.5, "unsigned 64-bit integer or null"),
        ("duration_ns", 2**64, "unsigned 64-bit integer or null"),
        ("instance_id", 1, "string or null"),
        ("distributed_span_id", [], "string or null"),
        ("upstream_span_id", {}, "string or null"),
    ],
)
def test_metadata_fields_are_checked(field: str, value: object, fragment: str) -> None:
    ev = wire()
    ev["metadata"][field] = value
    err = one_error(ev)
    assert err.field == f"metadata.{field}" and fragment in err.message, str(err)


def test_metadata_missing_required_and_tag_values() -> None:
    for field in ("thread_id", "process_id", "service_name", "environment", "tags"):
        ev = wire()
        del ev["metadata"][field]
        err = one_error(ev)
        assert err.field == f"metadata.{field}" and "missing required field" in err.message
    ev = wire()
    ev["metadata"]["tags"] = {"sdk_language": "python", "n": 3}
    assert str(one_error(ev)) == "events[0].metadata.tags.n: expected a string, got number 3"


def test_u64_bounds() -> None:
    ev = wire("DatabaseResult")
    ev["kind"]["DatabaseResult"]["rows_affected"] = 2**64 - 1
    assert parse_event(ev).data["rows_affected"] == 2**64 - 1
    ev["kind"]["DatabaseResult"]["rows_affected"] = 2**64
    assert "unsigned 64-bit" in one_error(ev).message
    body = orjson.dumps({"events": [wire("DatabaseResult")]}).replace(
        b'"rows_affected":7', b'"rows_affected":18446744073709551616'
    )
    assert (
        parse_batch(body).errors[0].field == "kind.DatabaseResult.rows_affected"
    )  # a float to orjson
    body = orjson.dumps({"events": [wire()]}).replace(b'"process_id":123', b'"process_id":1e3')
    assert parse_batch(body).errors[0].field == "metadata.process_id"


def test_metadata_memo_does_not_accept_a_bool_after_an_int() -> None:
    a, b = wire(), wire(id="6f1c1d2e-0b8a-4c3d-9e4f-112233445567")
    b["metadata"]["process_id"] = True  # == 1 in Python; the memo must not take it for 123
    a["metadata"]["process_id"] = 1
    res = parse_batch(orjson.dumps({"events": [a, b]}))
    assert len(res.events) == 1 and res.errors[0].field == "metadata.process_id"


def test_metadata_objects_are_shared_within_a_context_only() -> None:
    ctx_b = wire()
    ctx_b["metadata"]["thread_id"] = "other"
    changed = wire()
    changed["metadata"]["upstream_span_id"] = "aaaaaaaaaaaaaaaa"
    res = parse_batch(orjson.dumps({"events": [wire(), wire(), ctx_b, changed]}))
    e = res.events
    assert e[0].meta is e[1].meta and e[2].meta is not e[0].meta
    assert e[3].meta.upstream_span_id == "aaaaaaaaaaaaaaaa" and e[0].meta.upstream_span_id is None


# ---------------------------------------------------------------------------------- UUIDs


@pytest.mark.parametrize(
    "text",
    [
        "0af76519-16cd-43dd-8448-eb211c80319c",
        "0AF76519-16CD-43DD-8448-EB211C80319C",
        "0af7651916cd43dd8448eb211c80319c",
        "0AF7651916cd43dd8448eb211c80319C",
        "{0af76519-16cd-43dd-8448-eb211c80319c}",
        "urn:uuid:0af76519-16cd-43dd-8448-eb211c80319c",
        "URN:UUID:0AF76519-16CD-43DD-8448-EB211C80319C",
    ],
)
def test_uuid_forms(text: str) -> None:
    assert parse_uuid(text) == uuid.UUID(TRACE).int
    assert parse_event(wire(trace_id=text, parent_id=text)).trace_id == uuid.UUID(TRACE).int


@pytest.mark.parametrize(
    "text",
    [
        "0af76519-16cd-43dd-8448-eb211c80319",
        "0af76519-16cd-43dd-8448-eb211c80319g",
        "0af76519-16cd-43dd-8448e-b211c80319c",
        "0af76519-16cd-43dd8-448-eb211c80319c",
        "0af7651-916cd-43dd-8448-eb211c80319c",
        "{0af76519-16cd-43dd-8448e-b211c80319c}",
        "urn:uuid:0af76519-16cd-43dd-8448e-b211c80319c",
        "0af76519_16cd_43dd_8448_eb211c80319c",
        "0af7651916cd43dd8448eb211c80319c0",
        "{0af7651916cd43dd8448eb211c80319c}",
        "(0af76519-16cd-43dd-8448-eb211c80319c)",
        "uuid:0af76519-16cd-43dd-8448-eb211c80319c",
        " 0af76519-16cd-43dd-8448-eb211c80319c",
        "0af76519-16cd-43dd-8448-eb211c80319c ",
        "0x0af7651916cd43dd8448eb211c80319c",
        "+af7651916cd43dd8448eb211c80319c",
        "0af76519-16cd-43dd-8448-eb2_1c80319c",
        "",
    ],
)
def test_invalid_uuids(text: str) -> None:
    with pytest.raises(ValueError, match="invalid UUID"):
        parse_uuid(text)
    assert one_error(wire(id=text)).field == "id"


def test_uuid_payload_fields_are_canonicalised() -> None:
    ev = wire("AsyncSpawn")
    ev["kind"]["AsyncSpawn"]["task_id"] = "{11111111-2222-4333-8444-55555555555A}"
    assert parse_event(ev).data["task_id"] == "11111111-2222-4333-8444-55555555555a"


# ------------------------------------------------------------------------------ timestamps


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2024-01-01T12:00:00Z", dt.datetime(2024, 1, 1, 12, tzinfo=dt.timezone.utc)),
        ("2024-01-01T12:00:00.5Z", dt.datetime(2024, 1, 1, 12, 0, 0, 500000, dt.timezone.utc)),
        (
            "2024-01-01T12:00:00.123456+00:00",
            dt.datetime(2024, 1, 1, 12, 0, 0, 123456, dt.timezone.utc),
        ),
        ("2024-01-01T14:30:00+02:30", dt.datetime(2024, 1, 1, 12, tzinfo=dt.timezone.utc)),
        ("2024-01-01T09:00:00-03:00", dt.datetime(2024, 1, 1, 12, tzinfo=dt.timezone.utc)),
        ("2024-01-01t12:00:00z", dt.datetime(2024, 1, 1, 12, tzinfo=dt.timezone.utc)),
        ("2024-01-01 12:00:00Z", dt.datetime(2024, 1, 1, 12, tzinfo=dt.timezone.utc)),
        ("2024-02-29T00:00:00Z", dt.datetime(2024, 2, 29, tzinfo=dt.timezone.utc)),
        ("1969-12-31T23:59:59Z", dt.datetime(1969, 12, 31, 23, 59, 59, tzinfo=dt.timezone.utc)),
    ],
)
def test_timestamps(text: str, expected: dt.datetime) -> None:
    delta = expected - dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc)
    ns = (delta.days * 86400 + delta.seconds) * 10**9 + delta.microseconds * 1000
    assert parse_timestamp(text) == ns
    assert parse_event(wire(timestamp=text)).timestamp_ns == ns


def test_nanosecond_timestamps() -> None:
    assert parse_timestamp("2024-01-01T12:00:00.123456789Z") % 10**9 == 123456789
    assert parse_timestamp("2024-01-01T12:00:00.000000001-00:00") % 10**9 == 1


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("2024-01-01T12:00:00", "no UTC offset"),
        ("2024-01-01T12:00:00.123456", "no UTC offset"),
        ("2024-01-01T12:00:00.1234567890Z", "with offset"),
        ("2024-01-01T12:00:00.Z", "with offset"),
        ("2024-01-01T12:00Z", "with offset"),
        ("2024-01-01", "with offset"),
        ("2023-02-29T00:00:00Z", "not a valid date"),
        ("2024-13-01T00:00:00Z", "not a valid date"),
        ("2024-01-01T24:00:00Z", "not a valid time"),
        ("2024-01-01T12:60:00Z", "not a valid time"),
        ("2024-01-01T12:00:00+24:00", "invalid UTC offset"),
        ("2024-01-01T12:00:00+0200", "with offset"),
        ("２０２４-01-01T12:00:00Z", "with offset"),
    ],
)
def test_bad_timestamps(text: str, fragment: str) -> None:
    with pytest.raises(ValueError, match=fragment):
        parse_timestamp(text)
    err = one_error(wire(timestamp=text))
    assert err.field == "timestamp" and fragment in err.message


def test_timestamp_second_cache_still_checks_the_tail() -> None:
    assert parse_timestamp("2030-05-05T05:05:05.1Z") % 10**9 == 100_000_000
    # same second prefix, different tails
    assert parse_timestamp("2030-05-05T05:05:05+01:00") == parse_timestamp("2030-05-05T04:05:05Z")
    with pytest.raises(ValueError):
        parse_timestamp("2030-05-05T05:05:05.1")
    with pytest.raises(ValueError):
        parse_timestamp("2030-05-05T05:05:05+25:00")


def test_format_timestamp() -> None:
    ns = parse_timestamp("2024-01-01T12:00:00.123456Z")
    assert format_timestamp(ns) == "2024-01-01T12:00:00.123456Z"
    assert format_timestamp(ns + 7) == "2024-01-01T12:00:00.123456007Z"
    assert format_timestamp(0) == "1970-01-01T00:00:00.000000Z"
    assert format_timestamp(-1) == "1969-12-31T23:59:59.999999999Z"


# ------------------------------------------------------------------------------ causality


def test_causality_vector() -> None:
    e = parse_event(wire(causality_vector=[["a", 1], ["b", 0], ["a", 5], ["a", 2]]))
    assert e.vc == {"a": 5, "b": 0}
    assert parse_event(wire(causality_vector=[])).vc == {}


@pytest.mark.parametrize(
    ("cv", "field", "fragment"),
    [
        ([["a", 1], ["b"]], "causality_vector[1]", "[component, count] pair"),
        ([["a", 1, 2]], "causality_vector[0]", "pair"),
        ([[1, 1]], "causality_vector[0][0]", "string component"),
        ([["a", -1]], "causality_vector[0][1]", "unsigned 64-bit"),
        ([["a", True]], "causality_vector[0][1]", "got true"),
        ([["a", 1.0]], "causality_vector[0][1]", "unsigned 64-bit"),
        ([["a", "1"]], "causality_vector[0][1]", "unsigned 64-bit"),
        ([["ab"]], "causality_vector[0]", "pair"),
        (["ab"], "causality_vector[0]", "pair"),
        ([{"a": 1, "b": 2}], "causality_vector[0]", "pair"),
    ],
)
def test_bad_causality_vectors(cv: list, field: str, fragment: str) -> None:
    err = one_error(wire(causality_vector=cv))
    assert err.field == field and fragment in err.message, str(err)
    assert str(err).startswith(f"events[0].{field}: ")


def test_lock_set() -> None:
    assert parse_event(wire(lock_set=["a", "b"])).lock_set == ["a", "b"]
    err = one_error(wire(lock_set=["a", 3]))
    assert str(err) == "events[0].lock_set[1]: expected a string, got number 3"


# ------------------------------------------------------------------ what the original SDKs send


def test_python_sdk_batch_validates_unchanged() -> None:
    # As RacewayClient.flush builds it: dataclasses.asdict, isoformat() "+00:00", tuples as lists.
    body = (
        b'{"events": [{"id": "5b0f7a4e-8f0c-4a53-9b1c-2f9d1d3c4e5f", "trace_id": "'
        + TRACE.encode()
        + b'", "parent_id": null, "timestamp": "2025-11-04T10:11:12.345678+00:00",'
        b' "kind": {"StateChange": {"variable": "counter", "old_value": 5, "new_value": 6,'
        b' "location": "/srv/app.py:17", "access_type": "Write"}}, "metadata": {"thread_id":'
        b' "python-4242-1a2b3c4d", "process_id": 4242, "service_name": "api", "environment":'
        b' "development", "tags": {"sdk_language": "python"}, "duration_ns": null, "instance_id":'
        b' "host-4242", "distributed_span_id": "1f2e3d4c5b6a7988", "upstream_span_id": null},'
        b' "causality_vector": [["api#host-4242", 1]], "lock_set": []},'
        b' {"id": "5b0f7a4e-8f0c-4a53-9b1c-2f9d1d3c4e60", "trace_id": "'
        + TRACE.encode()
        + b'", "parent_id": "5b0f7a4e-8f0c-4a53-9b1c-2f9d1d3c4e5f", "timestamp":'
        b' "2025-11-04T10:11:13+00:00", "kind": {"HttpResponse": {"status": 200, "headers": {},'
        b' "body": null, "duration_ms": 45}}, "metadata": {"thread_id": "python-4242-1a2b3c4d",'
        b' "process_id": 4242, "service_name": "api", "environment": "development", "tags":'
        b' {"sdk_language": "python"}, "duration_ns": 45000000, "instance_id": "host-4242",'
        b' "distributed_span_id": "1f2e3d4c5b6a7988", "upstream_span_id": null},'
        b' "causality_vector": [["api#host-4242", 2]], "lock_set": []}]}'
    )
    res = parse_batch(body)
    assert not res.errors and len(res.events) == 2
    assert res.events[1].parent_id == res.events[0].id
    assert res.events[1].meta.duration_ns == 45_000_000
    assert res.events[1].timestamp_ns - res.events[0].timestamp_ns == 654_322_000


def test_typescript_sdk_quirks_validate() -> None:
    ev = wire("HttpResponse", causality_vector=[[EID, 4]])
    ev["timestamp"] = "2025-10-27T04:28:42.836234Z"
    ev["kind"]["HttpResponse"]["duration_ms"] = 12.345  # fractional durationMs
    ev["metadata"]["tags"] = {"sdk_language": "typescript", "team": "core"}
    sc = wire("StateChange", id=str(uuid.uuid4()))
    del sc["kind"]["StateChange"]["old_value"]  # undefined members vanish in JSON.stringify
    del sc["kind"]["StateChange"]["new_value"]
    fc = wire("FunctionCall", id=str(uuid.uuid4()))
    fc["kind"]["FunctionCall"]["module"] = "unknown"
    del fc["kind"]["FunctionCall"]["args"]
    res = parse_batch(orjson.dumps({"events": [ev, sc, fc]}))
    assert not res.errors
    assert res.events[0].data["duration_ms"] == 12.345
    assert res.events[1].data["new_value"] is None and res.events[2].data["args"] is None
    # the float is kept and written back as sent
    assert event_to_wire(res.events[0])["kind"]["HttpResponse"]["duration_ms"] == 12.345


def test_go_sdk_quirks_validate() -> None:
    spawn = wire("AsyncSpawn", timestamp="2025-11-04T10:11:12.123456789Z")
    spawn["kind"] = {
        "AsyncSpawn": {"task_id": "worker-7", "task_name": "worker", "spawned_at": "main.go:40"}
    }
    ret = wire("Custom", id=str(uuid.uuid4()), timestamp="2025-11-04T10:11:12Z")
    ret["kind"] = {
        "FunctionReturn": {"function_name": "f", "return_value": None, "file": "main.go", "line": 9}
    }
    err = wire("Error", id=str(uuid.uuid4()))
    err["kind"]["Error"]["stack_trace"] = None  # a nil Go slice
    res = parse_batch(orjson.dumps({"events": [spawn, ret, err]}))
    assert not res.errors, [str(e) for e in res.errors]
    s, r, e = res.events
    assert s.kind == "AsyncSpawn" and s.data == spawn["kind"]["AsyncSpawn"]
    assert s.timestamp_ns % 10**9 == 123456789
    assert r.kind == "Custom" and r.data == {
        "name": "FunctionReturn",
        "data": {"function_name": "f", "return_value": None, "file": "main.go", "line": 9},
    }
    assert e.data["stack_trace"] == []
    # the Go spawn shape round-trips as sent
    assert event_to_wire(s)["kind"] == spawn["kind"]


def test_deviations_stay_precise() -> None:
    go = wire("AsyncSpawn")
    go["kind"] = {"AsyncSpawn": {"task_id": "w", "task_name": 3, "spawned_at": "m.go:1"}}
    assert (
        str(one_error(go)) == "events[0].kind.AsyncSpawn.task_name: expected a string, got number 3"
    )
    ret = wire()
    ret["kind"] = {"FunctionReturn": {"function_name": "f", "file": "a.go", "line": -2}}
    assert one_error(ret).field == "kind.FunctionReturn.line"
    q = wire("DatabaseQuery")
    q["kind"]["DatabaseQuery"]["duration_ms"] = 2.5  # only HttpResponse has the TS leniency
    assert one_error(q).field == "kind.DatabaseQuery.duration_ms"
    r = wire("HttpResponse")
    r["kind"]["HttpResponse"]["duration_ms"] = float("inf")
    assert one_error(r).field == "kind.HttpResponse.duration_ms"
    d = wire()
    d["metadata"]["duration_ns"] = 12500000.0  # Python SDK float ms * 1e6: integral, accepted
    assert parse_event(d).meta.duration_ns == 12500000


# ------------------------------------------------------------------------------ extension


def test_extension_is_validated_and_kept() -> None:
    ext = {
        "task": "host/3",
        "trusted_vc": True,
        "loc": "0x1:balance",
        "seg": 4,
        "loop": "loop-1",
        "func": "withdraw",
        "stack": [["a.py", 3, "f"], ["b.py", 0, "<module>"]],
        "child": "host/4",
        "child_name": "Thread-1",
        "child_kind": "thread",
        "child_loop": "loop-2",
        "sync": "release",
        "origin_trace": TRACE.upper(),
        "value": 3.5,
        "future_key": {"anything": [1]},
    }
    e = parse_event(wire(raceway=ext))
    assert e.ext == {**ext, "origin_trace": uuid.UUID(TRACE).int}
    assert e.task == "host/3"
    assert event_to_wire(e)["raceway"] == {**ext, "origin_trace": TRACE}
    assert parse_event(wire(raceway=None)).ext is None


@pytest.mark.parametrize(
    ("key", "value", "fragment"),
    [
        ("task", 3, "expected a string"),
        ("child_kind", None, "expected a string"),
        ("trusted_vc", 1, "a boolean"),
        ("seg", -1, "unsigned 64-bit"),
        ("seg", False, "unsigned 64-bit"),
        ("stack", "a.py:3", "frames"),
        ("stack", [["a.py", "3", "f"]], "frame"),
        ("stack", [["a.py", 3]], "frame"),
        ("sync", "acq", "expected one of acquire, release"),
        ("origin_trace", "nope", "invalid UUID"),
        ("value", [1], "JSON scalar"),
    ],
)
def test_extension_errors(key: str, value: object, fragment: str) -> None:
    err = one_error(wire(raceway={key: value}))
    assert err.field.startswith(f"raceway.{key}") and fragment in err.message, str(err)


# ------------------------------------------------------------------------------ serialisation


def test_event_to_wire_layout() -> None:
    e = parse_event(wire(parent_id=EID.upper()))
    w = event_to_wire(e)
    assert list(w) == [
        "id", "trace_id", "parent_id", "timestamp", "kind", "metadata", "causality_vector", "lock_set",
    ]  # fmt: skip
    assert w["id"] == EID and w["parent_id"] == EID and w["trace_id"] == TRACE
    assert w["timestamp"] == "2024-01-01T12:00:00.123456Z"
    assert w["metadata"] == {
        "thread_id": "python-123-ab12cd34",
        "process_id": 123,
        "service_name": "banking-api",
        "environment": "development",
        "tags": {"sdk_language": "python"},
        "duration_ns": None,
        "instance_id": "host-123",
        "distributed_span_id": "0123456789abcdef",
    }
    assert w["causality_vector"] == [["banking-api#host-123", 3]]
    assert "raceway" not in w


def test_event_to_wire_of_a_constructed_event() -> None:
    meta = Metadata("t", 1, "svc")
    e = Event(
        1, 2, None, 5, "Custom", {"name": "n", "data": None}, meta, {"a": 1}, ext={"task": "t"}
    )
    w = event_to_wire(e)
    assert w["id"] == "00000000-0000-0000-0000-000000000001"
    assert w["timestamp"] == "1970-01-01T00:00:00.000000005Z"
    assert w["metadata"] == {
        "thread_id": "t",
        "process_id": 1,
        "service_name": "svc",
        "environment": "test",
        "tags": {},
        "duration_ns": None,
    }
    assert w["raceway"] == {"task": "t"}
    assert as_tuple(parse_event(w)) == as_tuple(e)


def test_dumps_batch_names_the_unserialisable_event() -> None:
    ok = parse_event(wire())
    bad = parse_event(wire("Custom"))
    bad.data["data"] = {1, 2}
    with pytest.raises(TypeError, match=r"events\[1\] is not JSON-serialisable"):
        dumps_batch([ok, bad])
    assert orjson.loads(dumps_batch([ok]))["events"][0]["id"] == EID


# ------------------------------------------------------------------------------ round trip

_json = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**64 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=6,
)
_s = st.text(max_size=12)
_u16 = st.integers(0, 2**16 - 1)
_u32 = st.integers(0, 2**32 - 1)
_u64 = st.integers(0, 2**64 - 1)
_uuid_s = st.integers(0, 2**128 - 1).map(lambda n: str(uuid.UUID(int=n)))
_headers = st.dictionaries(_s, _s, max_size=3)

_DATA = {
    "FunctionCall": st.fixed_dictionaries(
        {"function_name": _s, "module": _s, "args": _json, "file": _s, "line": _u32}
    ),
    "AsyncSpawn": st.fixed_dictionaries({"task_id": _uuid_s, "spawned_by": _s})
    | st.fixed_dictionaries({"task_id": _s, "task_name": _s, "spawned_at": _s}),
    "AsyncAwait": st.fixed_dictionaries({"future_id": _uuid_s, "awaited_at": _s}),
    "StateChange": st.fixed_dictionaries(
        {
            "variable": _s,
            "old_value": _json,
            "new_value": _json,
            "location": _s,
            "access_type": st.sampled_from(ACCESS_TYPES),
        }
    ),
    "LockAcquire": st.fixed_dictionaries({"lock_id": _s, "lock_type": _s, "location": _s}),
    "LockRelease": st.fixed_dictionaries({"lock_id": _s, "lock_type": _s, "location": _s}),
    "MemoryFence": st.fixed_dictionaries(
        {
            "ordering": st.sampled_from(["Relaxed", "Acquire", "Release", "AcqRel", "SeqCst"]),
            "location": _s,
        }
    ),
    "HttpRequest": st.fixed_dictionaries(
        {"method": _s, "url": _s, "headers": _headers, "body": _json}
    ),
    "HttpResponse": st.fixed_dictionaries(
        {
            "status": _u16,
            "headers": _headers,
            "body": _json,
            "duration_ms": _u64 | st.floats(0, 1e12),
        }
    ),
    "DatabaseQuery": st.fixed_dictionaries({"query": _s, "database": _s, "duration_ms": _u64}),
    "DatabaseResult": st.fixed_dictionaries({"rows_affected": _u64}),
    "Error": st.fixed_dictionaries(
        {"error_type": _s, "message": _s, "stack_trace": st.lists(_s, max_size=3)}
    ),
    "Custom": st.fixed_dictionaries({"name": _s, "data": _json}),
}
_ext = st.none() | st.fixed_dictionaries(
    {"task": _s},
    optional={
        "trusted_vc": st.booleans(),
        "loc": _s,
        "seg": _u64,
        "loop": _s,
        "stack": st.lists(st.tuples(_s, _u32, _s).map(list), max_size=3),
        "sync": st.sampled_from(["acquire", "release"]),
        "origin_trace": st.integers(0, 2**128 - 1),
        "value": st.none() | st.integers(-(2**63), 2**63) | _s | st.booleans(),
        "child_kind": _s,
        "unknown_key": _json,
    },
)
_min_ns = parse_timestamp("0001-01-02T00:00:00Z")
_max_ns = parse_timestamp("9999-12-30T23:59:59.999999999Z")


@st.composite
def events(draw: st.DrawFn) -> Event:
    kind = draw(st.sampled_from(KINDS))
    meta = Metadata(
        draw(_s),
        draw(_u32),
        draw(_s),
        draw(_s),
        draw(st.dictionaries(_s, _s, max_size=3)),
        draw(st.none() | _u64),
        draw(st.none() | _s),
        draw(st.none() | _s),
        draw(st.none() | _s),
    )
    return Event(
        draw(st.integers(0, 2**128 - 1)),
        draw(st.integers(0, 2**128 - 1)),
        draw(st.none() | st.integers(0, 2**128 - 1)),
        draw(st.integers(_min_ns, _max_ns)),
        kind,
        draw(_DATA[kind]),
        meta,
        draw(st.dictionaries(_s, _u64, max_size=4)),
        draw(st.lists(_s, max_size=3)),
        draw(_ext),
    )


@settings(max_examples=300, deadline=None)
@given(st.lists(events(), min_size=1, max_size=4))
def test_round_trip(evs: list[Event]) -> None:
    res = parse_batch(dumps_batch(evs))
    assert not res.errors, [str(e) for e in res.errors]
    assert [as_tuple(e) for e in res.events] == [as_tuple(e) for e in evs]
    # and the dict path agrees with the bytes path
    again = [parse_event(event_to_wire(e), i) for i, e in enumerate(evs)]
    assert [as_tuple(e) for e in again] == [as_tuple(e) for e in evs]


@settings(max_examples=200, deadline=None)
@given(
    events(),
    st.sampled_from(["id", "timestamp", "metadata", "causality_vector", "lock_set"]),
    _json,
)
def test_mutated_field_is_either_valid_or_a_named_error(e: Event, field: str, junk: object) -> None:
    w = event_to_wire(e)
    w[field] = junk
    res = parse_batch(orjson.dumps({"events": [w]}))
    if res.errors:
        assert res.errors[0].field.startswith(field)
    else:
        assert len(res.events) == 1


# ------------------------------------------------------------------------------ runtime behaviour


def test_gc_state_is_restored_and_threads_parse_concurrently() -> None:
    import gc
    import threading

    body = orjson.dumps({"events": [wire(), wire("Custom"), wire(id="bad")]})
    assert gc.isenabled()
    results: list = []
    errors: list = []

    def worker() -> None:
        try:
            for _ in range(200):
                r = parse_batch(body)
                results.append((len(r.events), [e.field for e in r.errors]))
        except BaseException as exc:  # pragma: no cover - surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert not errors and len(results) == 800
    assert set(map(str, results)) == {str((2, ["id"]))}
    assert gc.isenabled()
    gc.disable()
    try:
        parse_batch(body)
        assert not gc.isenabled()  # a caller's choice is kept
    finally:
        gc.enable()


def test_non_string_keys_in_a_dict_body() -> None:
    ev = wire()
    ev["metadata"]["tags"] = {1: "x"}
    err = one_error(ev)
    assert err.field == "metadata.tags" and "keys must be strings" in err.message


def test_decoded_payloads_are_normalised_on_the_bytes_path() -> None:
    sc = wire()
    del sc["kind"]["StateChange"]["old_value"]
    sc["kind"]["StateChange"]["future"] = 1  # five keys, but not the five fields
    lock = wire("LockRelease", id=str(uuid.uuid4()))
    lock["kind"]["LockRelease"]["extra"] = True
    res = parse_batch(orjson.dumps({"events": [sc, lock]}))
    assert res.events[0].data == {**PAYLOADS["StateChange"], "old_value": None}
    assert res.events[1].data == PAYLOADS["LockRelease"]


@pytest.mark.parametrize("bad", [["a"], {"a": 1}])
def test_unhashable_thread_id_is_an_error_not_a_crash(bad: object) -> None:
    """Found by the fast-path differential property: the metadata cache keyed on thread_id."""
    base = {
        "id": "39edef37-26f6-4c63-8000-000000000001",
        "trace_id": "39edef37-26f6-4c63-8000-000000000002",
        "parent_id": None,
        "timestamp": "2024-01-01T12:00:00Z",
        "kind": {"Custom": {"name": "x", "data": 1}},
        "metadata": {"thread_id": bad, "process_id": 1, "service_name": "s",
                     "environment": "e", "tags": {}},
        "causality_vector": [],
        "lock_set": [],
    }
    good = dict(base, id="39edef37-26f6-4c63-8000-000000000003",
                metadata=dict(base["metadata"], thread_id="t"))  # type: ignore[arg-type]
    result = parse_batch(orjson.dumps({"events": [base, good]}))
    assert len(result.events) == 1
    assert [str(e) for e in result.errors] == [
        f"events[0].metadata.thread_id: expected a string, got {'array' if isinstance(bad, list) else 'object'}"
    ]


@pytest.mark.parametrize("stamp", ["0001-01-01T00:00:00+00:01", "9999-12-31T23:59:00-01:00"])
def test_timestamps_outside_years_1_to_9999_utc_are_rejected(stamp: str) -> None:
    """Accepting them would store events that can never be serialised back."""
    with pytest.raises(ValueError, match="outside years 1-9999 in UTC"):
        parse_timestamp(stamp)
    assert format_timestamp(parse_timestamp("0001-01-01T00:00:00-00:01")).startswith("0001-01-01T00:01")
