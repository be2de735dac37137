"""Interop with the original SDKs: their exact batches and headers against a real server.

``OriginalPythonSDK`` below rebuilds, from the reference (raceway-original.md §2.1-2.4, §6.1),
what the original Python SDK puts on the wire: ``python-<pid>-<uuid8>`` thread ids, a
``parent_id`` chain per context, ``causality_vector`` ``[["service#instance", n]]`` with the own
component incremented per event, ``+00:00`` timestamps, span ids in the metadata, the auth
headers on ``POST /events``, and ``traceparent``/``raceway-clock`` as ``build_propagation_headers``
writes them. Nothing here imports the SDK's own builders: the bytes come from the reference.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import os
import secrets
import time
import uuid
from typing import Any

import httpx
from msutil import APPS, RunningServer
from raceway_sdk.testing_services import Services

KEY = "interop-key"


class Context:
    """``RacewayContext``: one request context (one thread id) of the original SDK."""

    def __init__(self, trace_id: str, span_id: str | None = None,
                 parent_span_id: str | None = None, clock: list[list[Any]] | None = None) -> None:
        self.trace_id = trace_id
        self.execution_id = f"python-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        self.parent_id: str | None = None
        self.span_id = span_id or secrets.token_hex(8)
        self.parent_span_id = parent_span_id
        self.clock_vector: list[list[Any]] = [list(c) for c in clock or []]


class OriginalPythonSDK:
    """The original client's event and header building (no networking of its own)."""

    def __init__(self, service: str, instance: str) -> None:
        self.service = service
        self.instance = instance
        self.buffer: list[dict[str, Any]] = []

    @property
    def component(self) -> str:
        return f"{self.service}#{self.instance}"

    def _tick(self, ctx: Context) -> list[list[Any]]:
        for entry in ctx.clock_vector:
            if entry[0] == self.component:
                entry[1] += 1
                break
        else:
            ctx.clock_vector.append([self.component, 1])
        return [list(e) for e in ctx.clock_vector]

    def _event(self, ctx: Context, kind: dict[str, Any], duration_ns: int | None = None) -> None:
        event_id = str(uuid.uuid4())
        self.buffer.append({
            "id": event_id,
            "trace_id": ctx.trace_id,
            "parent_id": ctx.parent_id,
            "timestamp": dt.datetime.now(dt.timezone.utc).isoformat(),
            "kind": kind,
            "metadata": {
                "thread_id": ctx.execution_id, "process_id": os.getpid(),
                "service_name": self.service, "environment": "development",
                "tags": {"sdk_language": "python"}, "duration_ns": duration_ns,
                "instance_id": self.instance, "distributed_span_id": ctx.span_id,
                "upstream_span_id": ctx.parent_span_id,
            },
            "causality_vector": self._tick(ctx),
            "lock_set": [],
        })
        ctx.parent_id = event_id
        time.sleep(0.001)

    def track_state_change(self, ctx: Context, variable: str, old: Any, new: Any,
                           access_type: str, line: int) -> None:
        self._event(ctx, {"StateChange": {"variable": variable, "old_value": old,
                                          "new_value": new, "location": f"app.py:{line}",
                                          "access_type": access_type}})

    def track_http_request(self, ctx: Context, method: str, url: str) -> None:
        self._event(ctx, {"HttpRequest": {"method": method, "url": url, "headers": {},
                                          "body": None}})

    def track_http_response(self, ctx: Context, status: int, ms: int) -> None:
        self._event(ctx, {"HttpResponse": {"status": status, "headers": {}, "body": None,
                                           "duration_ms": ms}}, ms * 1_000_000)

    def propagation_headers(self, ctx: Context) -> dict[str, str]:
        """``build_propagation_headers``: increments the own component, mints a child span."""
        clock = self._tick(ctx)
        child = secrets.token_hex(8)
        payload = {"trace_id": ctx.trace_id, "span_id": child, "parent_span_id": ctx.span_id,
                   "service": self.service, "instance": self.instance, "clock": clock}
        encoded = base64.urlsafe_b64encode(json.dumps(payload, separators=(",", ":")).encode())
        return {
            "traceparent": f"00-{ctx.trace_id.replace('-', '').ljust(32, '0')}-{child}-01",
            "raceway-clock": "v1;" + encoded.decode().rstrip("="),
        }

    def handle(self, headers: dict[str, str]) -> Context:
        """``parse_incoming_headers`` + middleware ``before_request`` in the callee."""
        value = headers["raceway-clock"][3:]
        payload = json.loads(base64.urlsafe_b64decode(value + "=" * (-len(value) % 4)))
        clock = [list(c) for c in payload["clock"]]
        if not any(c[0] == self.component for c in clock):
            clock.append([self.component, 0])
        return Context(payload["trace_id"], payload["span_id"], payload["parent_span_id"], clock)

    def flush(self, url: str) -> httpx.Response:
        body, self.buffer = {"events": self.buffer}, []
        return httpx.post(url + "/events", json=body,
                          headers={"Authorization": f"Bearer {KEY}", "X-Raceway-Key": KEY})


def transfer(bank: OriginalPythonSDK, ctx: Context) -> None:
    """The banking demo's handler: read alice's balance, write it back lower."""
    bank.track_http_request(ctx, "POST", "/api/transfer")
    bank.track_state_change(ctx, "alice.balance", None, 1000, "Read", 41)
    bank.track_state_change(ctx, "alice.balance", 1000, 900, "Write", 42)
    bank.track_http_response(ctx, 200, 3)


def get(server: RunningServer, path: str) -> dict[str, Any]:
    reply = httpx.get(server.url + path, headers={"X-Raceway-Key": KEY})
    assert reply.status_code == 200, reply.text
    return reply.json()["data"]


def test_banking_demo_race_reported_in_its_trace(make_server) -> None:
    server = make_server(api_keys=(KEY,))
    front = OriginalPythonSDK("frontend", "web-1")
    bank = OriginalPythonSDK("banking-api", "host-1")
    trace = str(uuid.uuid4())
    client = Context(trace)
    front.track_http_request(client, "POST", "/checkout")
    h1 = bank.handle(front.propagation_headers(client))  # two transfers sent at once
    h2 = bank.handle(front.propagation_headers(client))
    transfer(bank, h1)
    transfer(bank, h2)
    assert front.flush(server.url).status_code == 200
    assert bank.flush(server.url).status_code == 200
    data = get(server, f"/api/traces/{trace}")
    assert len(data["events"]) == 9
    details = data["analysis"]["race_details"]
    assert details and {d["variable"] for d in details} == {"alice.balance"}
    assert {d["race_kind"] for d in details} >= {"write-write"}
    assert {d["event1_location"] for d in details} | {d["event2_location"] for d in details} \
        <= {"app.py:41", "app.py:42"}


def test_sequential_requests_in_their_own_traces_are_not_races(make_server) -> None:
    """The demo's curl requests: no headers, so each request is a new trace, as in the SDK."""
    server = make_server(api_keys=(KEY,))
    bank = OriginalPythonSDK("banking-api", "host-1")
    first, second = Context(str(uuid.uuid4())), Context(str(uuid.uuid4()))
    transfer(bank, first)
    time.sleep(0.05)  # the second request arrives after the first one's response
    transfer(bank, second)
    assert bank.flush(server.url).status_code == 200
    for ctx in (first, second):
        assert get(server, f"/api/traces/{ctx.trace_id}")["analysis"]["race_details"] == []
    assert get(server, "/api/analyze/global")["potential_races"] == 0
    # the same two requests overlapping in time do race (across traces)
    a, b = Context(str(uuid.uuid4())), Context(str(uuid.uuid4()))
    bank.track_http_request(a, "POST", "/api/transfer")
    bank.track_http_request(b, "POST", "/api/transfer")
    for ctx in (a, b):
        bank.track_state_change(ctx, "alice.balance", None, 1000, "Read", 41)
        bank.track_state_change(ctx, "alice.balance", 1000, 900, "Write", 42)
    for ctx in (a, b):
        bank.track_http_response(ctx, 200, 3)
    assert bank.flush(server.url).status_code == 200
    overlapping = get(server, "/api/analyze/global")
    assert overlapping["potential_races"] > 0
    assert {d["variable"] for d in overlapping["race_details"]} == {"alice.balance"}


def test_original_headers_into_our_middleware_and_back(make_server) -> None:
    """An original-SDK caller calls our instrumented service with its own header bytes."""
    server = make_server(api_keys=(KEY,))
    services = Services(server_url=server.url, workdir=str(os.path.dirname(APPS)))
    try:
        bank = services.start(APPS, "flask_app", name="bank", env={"RACEWAY_API_KEY": KEY})
        front = OriginalPythonSDK("frontend", "web-1")
        client = Context(str(uuid.uuid4()))
        headers = front.propagation_headers(client)
        reply = httpx.post(bank.url + "/withdraw", headers=headers)
        assert reply.status_code == 200
        # the response's raceway-clock decodes exactly like the original parser reads headers
        value = reply.headers["raceway-clock"]
        assert value.startswith("v1;") and "=" not in value
        payload = json.loads(base64.urlsafe_b64decode(value[3:] + "=" * (-len(value[3:]) % 4)))
        sent = json.loads(base64.urlsafe_b64decode(
            headers["raceway-clock"][3:] + "=" * (-len(headers["raceway-clock"][3:]) % 4)))
        assert payload["trace_id"] == client.trace_id and payload["span_id"] == sent["span_id"]
        assert payload["parent_span_id"] == client.span_id and payload["service"] == "bank"
        assert all(isinstance(c, str) and isinstance(n, int) for c, n in payload["clock"])
        assert ["frontend#web-1", 1] in payload["clock"]  # the caller's clock went through
        events = get(server, f"/api/traces/{client.trace_id}")["events"]
        services_seen = {e["metadata"]["service_name"] for e in events}
        assert services_seen == {"bank"}
        requests = [e for e in events if "HttpRequest" in e["kind"]]
        assert requests and requests[0]["raceway"]["span"] == sent["span_id"]
        assert requests[0]["raceway"]["caller_service"] == "frontend"
    finally:
        services.stop_all()
