"""traceparent / tracestate / raceway-clock: byte compatibility with the original SDKs."""

from __future__ import annotations

import base64
import http.server
import json
import threading
import uuid

import httpx
import pytest
from raceway_sdk.protocol.headers import (
    build_outgoing,
    new_span_id,
    parse_clock_header,
    parse_incoming,
    parse_traceparent,
)

TRACE = "0af76519-16cd-43dd-8448-eb211c80319c"
TRACE_INT = uuid.UUID(TRACE).int
TRACEPARENT = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"


def b64(text: str) -> str:
    """base64url without padding, as every original SDK encodes the clock payload."""
    return base64.urlsafe_b64encode(text.encode("utf-8")).decode("ascii").rstrip("=")


def python_sdk_clock(payload: dict) -> str:
    """raceway-clock exactly as the original Python SDK builds it."""
    return "v1;" + b64(json.dumps(payload, separators=(",", ":")))


# ------------------------------------------------------------------------------ parsing


def test_traceparent_only_callee_adopts_the_span() -> None:
    ctx = parse_incoming({"traceparent": TRACEPARENT})
    assert ctx is not None
    assert ctx.trace_id == TRACE_INT
    assert ctx.span_id == "b7ad6b7169203331"  # non-standard: the callee's own span
    assert ctx.parent_span_id is None and ctx.clock == {} and ctx.tracestate is None
    assert ctx.has_traceparent and not ctx.has_clock


def test_python_sdk_headers() -> None:
    payload = {
        "trace_id": TRACE,
        "span_id": "b7ad6b7169203331",
        "parent_span_id": "1111222233334444",
        "service": "upstream",
        "instance": "host-1",
        "clock": [["upstream#host-1", 5], ["other#o-1", 3]],
    }
    headers = {
        "traceparent": TRACEPARENT,
        "raceway-clock": python_sdk_clock(payload),
        "tracestate": "congo=t61rcWkgMzE,rojo=00f067aa0ba902b7",
    }
    ctx = parse_incoming(headers)
    assert ctx is not None
    assert (ctx.trace_id, ctx.span_id, ctx.parent_span_id) == (
        TRACE_INT,
        "b7ad6b7169203331",
        "1111222233334444",
    )
    assert (ctx.service, ctx.instance) == ("upstream", "host-1")
    assert ctx.clock == {"upstream#host-1": 5, "other#o-1": 3}
    assert ctx.tracestate == "congo=t61rcWkgMzE,rojo=00f067aa0ba902b7"
    assert ctx.ext is None


def test_rust_sdk_headers_sorted_keys() -> None:
    # serde_json::json! without preserve_order: keys sorted, compact
    raw = (
        '{"clock":[["svc-a#i-1",10]],"instance":"i-1","parent_span_id":"aaaaaaaaaaaaaaaa",'
        f'"service":"svc-a","span_id":"b7ad6b7169203331","trace_id":"{TRACE}"}}'
    )
    ctx = parse_incoming({"Traceparent": TRACEPARENT, "Raceway-Clock": "v1;" + b64(raw)})
    assert ctx is not None and ctx.clock == {"svc-a#i-1": 10}
    assert ctx.parent_span_id == "aaaaaaaaaaaaaaaa" and ctx.trace_id == TRACE_INT


def test_typescript_sdk_headers_utf8() -> None:
    # JSON.stringify: compact, insertion order, non-ASCII as raw UTF-8
    raw = (
        f'{{"trace_id":"{TRACE}","span_id":"b7ad6b7169203331","parent_span_id":"cccccccccccccccc",'
        '"service":"café","instance":"n-1","clock":[["café#n-1",2]]}'
    )
    ctx = parse_incoming({"raceway-clock": "v1;" + b64(raw)})
    assert ctx is not None and ctx.service == "café" and ctx.clock == {"café#n-1": 2}
    assert ctx.has_clock and not ctx.has_traceparent


def test_clock_overrides_traceparent_ids() -> None:
    other = "11111111-2222-4333-8444-555555555555"
    payload = {"trace_id": other, "span_id": "dddddddddddddddd", "clock": []}
    ctx = parse_incoming({"traceparent": TRACEPARENT, "raceway-clock": python_sdk_clock(payload)})
    assert ctx is not None
    assert ctx.trace_id == uuid.UUID(other).int and ctx.span_id == "dddddddddddddddd"


def test_ljust_padded_trace_id_round_trips_through_traceparent() -> None:
    # Python SDK with a non-UUID trace id "abc": traceparent carries it ljust(32, "0")-padded,
    # the clock carries "abc" verbatim (not a UUID, so traceparent's re-hyphenated form wins).
    tp = "00-" + "abc".ljust(32, "0") + "-b7ad6b7169203331-01"
    payload = {"trace_id": "abc", "span_id": "b7ad6b7169203331", "clock": [["s#i", 1]]}
    ctx = parse_incoming({"traceparent": tp, "raceway-clock": python_sdk_clock(payload)})
    assert ctx is not None
    assert str(uuid.UUID(int=ctx.trace_id)) == "abc00000-0000-0000-0000-000000000000"
    assert ctx.clock == {"s#i": 1}


def test_clock_entries_kept_only_when_string_and_number() -> None:
    payload = {
        "trace_id": TRACE,
        "clock": [
            ["ok", 4],
            ["float", 2.7],  # the Python SDK keeps int(2.7)
            [1, 2],
            ["neg", -1],
            ["str", "3"],
            ["bool", True],
            ["triple", 1, 2],
            "flat",
            ["null", None],
            ["dup", 9],
            ["dup", 1],
        ],
    }
    ctx = parse_incoming({"raceway-clock": python_sdk_clock(payload)})
    assert ctx is not None and ctx.clock == {"ok": 4, "float": 2, "dup": 9}


@pytest.mark.parametrize(
    "value",
    [
        "v99;" + b64('{"clock": [["s#1", 1]]}'),
        "v1;invalid-base64!!!",
        "v1;" + b64("{not json"),
        "v1;" + b64('[["s#1", 1]]'),
        "v1;" + base64.urlsafe_b64encode(b"\xff\xfe").decode(),
        "v1;a",
        "",
        # not the base64url alphabet: rejected as the Rust/Go/TS decoders do
        "v1;!" + b64('{"trace_id": "x", "clock": [["s#1", 1]]}'),
        "v1;" + base64.b64encode(b'{"clock": [["s#1", 1]], "k": ">>>???"}').decode(),
    ],
)
def test_malformed_clock_header_is_ignored(value: str) -> None:
    assert parse_clock_header(value) is None
    assert parse_incoming({"raceway-clock": value}) is None
    ctx = parse_incoming({"raceway-clock": value, "traceparent": TRACEPARENT})
    assert ctx is not None and not ctx.has_clock and ctx.clock == {}


def test_padded_base64_is_accepted() -> None:
    raw = json.dumps({"trace_id": TRACE, "clock": [["a", 1]]})
    padded = "v1;" + base64.urlsafe_b64encode(raw.encode()).decode()
    assert "=" in padded
    assert parse_clock_header(padded) == json.loads(raw)


@pytest.mark.parametrize(
    "value",
    [
        "invalid-format",
        "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331",
        "00-0af7651916cd43dd8448eb211c80319-b7ad6b7169203331-01",
        "00-0af7651916cd43dd8448eb211c80319c-b7ad6b716920333-01",
        "00-0af7651916cd43dd8448eb211c80319g-b7ad6b7169203331-01",
        "00-0af7651916cd43dd8448eb211c80319c-b7ad6b716920333z-01",
        "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01-extra",
    ],
)
def test_malformed_traceparent_is_ignored(value: str) -> None:
    assert parse_traceparent(value) is None
    assert parse_incoming({"traceparent": value}) is None


def test_traceparent_version_and_flags_are_not_checked() -> None:
    parsed = parse_traceparent(" ff-0AF7651916CD43DD8448EB211C80319C-B7AD6B7169203331-zz ")
    assert parsed == (TRACE_INT, "b7ad6b7169203331")


def test_no_headers_or_lone_tracestate() -> None:
    assert parse_incoming({}) is None
    assert parse_incoming({"tracestate": "a=b", "content-type": "text/plain"}) is None


def test_our_extension_key_is_read() -> None:
    payload = {"trace_id": TRACE, "clock": [["h/1", 3]], "raceway": {"task": "h/1"}}
    ctx = parse_incoming({"raceway-clock": python_sdk_clock(payload)})
    assert ctx is not None and ctx.ext == {"task": "h/1"}


# ------------------------------------------------------------------------------ building


def test_build_is_byte_identical_to_the_python_sdk() -> None:
    clock = {"svc#inst": 6, "up#u-1": 2}
    headers = build_outgoing(
        TRACE_INT,
        "1111222233334444",
        "svc",
        "inst",
        clock,
        "rojo=1",
        child_span_id="b7ad6b7169203331",
    )
    expected_payload = {
        "trace_id": TRACE,
        "span_id": "b7ad6b7169203331",
        "parent_span_id": "1111222233334444",
        "service": "svc",
        "instance": "inst",
        "clock": [["svc#inst", 6], ["up#u-1", 2]],
    }
    assert headers == {
        "traceparent": TRACEPARENT,
        "raceway-clock": python_sdk_clock(expected_payload),
        "tracestate": "rojo=1",
    }
    assert len(headers["traceparent"]) == 55


def test_build_escapes_non_ascii_like_the_python_sdk() -> None:
    headers = build_outgoing(TRACE_INT, "s" * 16, "café", "ü", {}, child_span_id="a" * 16)
    payload = {
        "trace_id": TRACE,
        "span_id": "a" * 16,
        "parent_span_id": "s" * 16,
        "service": "café",
        "instance": "ü",
        "clock": [],
    }
    assert headers["raceway-clock"] == python_sdk_clock(payload)
    assert "tracestate" not in headers
    assert headers["raceway-clock"].isascii()


def test_build_then_parse_round_trip_with_extension() -> None:
    clock = {"host/1": 4, "host/7": 2}
    headers = build_outgoing(5, "1234567890abcdef", "svc", "host", clock, ext={"task": "host/1"})
    ctx = parse_incoming(headers)
    assert ctx is not None
    assert ctx.trace_id == 5 and ctx.clock == clock and ctx.ext == {"task": "host/1"}
    assert ctx.parent_span_id == "1234567890abcdef"
    assert ctx.span_id == headers["traceparent"].split("-")[2]
    assert (ctx.service, ctx.instance) == ("svc", "host")


def test_child_span_ids_are_fresh() -> None:
    spans = {new_span_id() for _ in range(50)}
    assert len(spans) == 50 and all(len(s) == 16 and int(s, 16) >= 0 for s in spans)
    a = build_outgoing(1, "s", "svc", "i", {})
    b = build_outgoing(1, "s", "svc", "i", {})
    assert a["traceparent"] != b["traceparent"]


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [
        ({"child_span_id": "xyz"}, "16 hex"),
        ({"trace_id": -1}, "128-bit"),
        ({"trace_id": 1 << 128}, "128-bit"),
        ({"clock": {"a": -1}}, "non-negative int"),
        ({"clock": {"a": True}}, "non-negative int"),
        ({"clock": {"a": 1.5}}, "non-negative int"),
    ],
)
def test_build_rejects_bad_arguments(kwargs: dict, fragment: str) -> None:
    args: dict = {"trace_id": 1, "span_id": "s", "service": "svc", "instance": "i", "clock": {}}
    args.update(kwargs)
    with pytest.raises(ValueError, match=fragment):
        build_outgoing(**args)


# ------------------------------------------------------------------------------ over real HTTP


def test_headers_survive_a_real_http_hop() -> None:
    seen: list = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 (http.server API)
            seen.append(parse_incoming(self.headers))  # type: ignore[arg-type]
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        clock = {"client/1": 3, "client/2": 1}
        out = build_outgoing(TRACE_INT, "1111222233334444", "client", "c-1", clock, "k=v")
        resp = httpx.get(f"http://127.0.0.1:{server.server_address[1]}/x", headers=out)
        assert resp.status_code == 204
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
    (ctx,) = seen
    assert ctx is not None and ctx.trace_id == TRACE_INT and ctx.clock == clock
    assert ctx.tracestate == "k=v" and ctx.parent_span_id == "1111222233334444"
