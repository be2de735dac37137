"""The HTTP API over real HTTP (uvicorn on 127.0.0.1, httpx), memory storage."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from raceway_sdk.protocol.events import uuid_str
from rw_events import body, bulk, ordered_trace, racing_trace, wire
from rw_server import RunningServer

JSON = {"content-type": "application/json"}


def post(server: RunningServer, payload: bytes, **kw: Any) -> httpx.Response:
    return httpx.post(server.url + "/events", content=payload, headers=JSON, **kw)


def get(server: RunningServer, path: str, **kw: Any) -> httpx.Response:
    return httpx.get(server.url + path, **kw)


def data(response: httpx.Response) -> Any:
    assert response.status_code == 200, response.text
    envelope = response.json()
    assert envelope["success"] is True and envelope["error"] is None
    return envelope["data"]


def test_ingest_then_every_trace_route(server: RunningServer) -> None:
    trace, events = racing_trace()
    assert data(post(server, body(events)))["ingested"] == 2
    tid = uuid_str(trace)
    bundle = data(get(server, f"/api/traces/{tid}"))
    assert bundle["trace_id"] == tid and len(bundle["events"]) == 2
    analysis = bundle["analysis"]
    assert analysis["potential_races"] == 1
    assert analysis["race_details"][0]["severity"] == "CRITICAL"
    assert analysis["race_details"][0]["variable"] == "counter"
    trail = data(get(server, f"/api/traces/{tid}/audit-trail/counter"))
    assert [a["thread_id"] for a in trail["accesses"]] == ["t/1", "t/2"]
    assert trail["accesses"][1]["is_race"] is True
    assert data(get(server, f"/api/traces/{tid}/audit-trail/nothing"))["accesses"] == []
    path = data(get(server, f"/api/traces/{tid}/critical-path"))
    assert path["trace_id"] == tid and path["path_events"] >= 1
    anomalies = data(get(server, f"/api/traces/{tid}/anomalies"))
    assert anomalies["anomaly_count"] == len(anomalies["anomalies"])
    deps = data(get(server, f"/api/traces/{tid}/dependencies"))
    assert deps["services"] == [{"name": "svc", "event_count": 2}]
    # the simple form of the id is accepted too
    assert data(get(server, f"/api/traces/{trace:032x}"))["trace_id"] == tid


def test_ordered_accesses_are_not_a_race(server: RunningServer) -> None:
    trace, events = ordered_trace()
    post(server, body(events))
    bundle = data(get(server, f"/api/traces/{uuid_str(trace)}"))
    assert bundle["analysis"]["potential_races"] == 0
    assert bundle["analysis"]["anomalies"] == ["No potential races detected for this trace"]


def test_trace_errors(server: RunningServer) -> None:
    bad = get(server, "/api/traces/not-a-uuid")
    assert bad.status_code == 400 and bad.json()["error"] == "Invalid trace ID format"
    missing = get(server, f"/api/traces/{uuid.uuid4()}")
    assert missing.status_code == 404 and missing.json()["success"] is False
    assert get(server, f"/api/traces/{uuid.uuid4()}/critical-path").status_code == 404
    unknown = get(server, "/api/nothing-here")
    assert unknown.status_code == 404 and unknown.json() == {
        "success": False, "data": None, "error": "Not Found"
    }
    assert httpx.delete(server.url + "/api/traces").status_code == 405


def test_trace_list_paging_and_bad_parameters(server: RunningServer) -> None:
    for _ in range(5):
        post(server, body(racing_trace()[1]))
    post(server, body(bulk(9, traces=1)))
    page = data(get(server, "/api/traces", params={"page": 2, "page_size": 2}))
    assert (page["total_traces"], page["page"], page["page_size"], page["total_pages"]) == (6, 2, 2, 3)
    assert len(page["traces"]) == 2
    everything = data(get(server, "/api/traces", params={"page_size": 100}))["traces"]
    lasts = [t["last_timestamp"] for t in everything]
    assert lasts == sorted(lasts, reverse=True)  # newest first
    big = data(get(server, "/api/traces", params={"min_events": 5}))
    assert big["total_traces"] == 1 and big["traces"][0]["event_count"] == 9
    for params in ({"page_size": 0}, {"page": 0}, {"page_size": "x"}, {"min_events": -1}):
        response = get(server, "/api/traces", params=params)
        assert response.status_code == 400, params
        assert response.json()["success"] is False
        assert next(iter(params)) in response.json()["error"]
    assert get(server, "/api/services/svc/traces", params={"page_size": 0}).status_code == 400


def test_services_and_system_views(server: RunningServer) -> None:
    post(server, body(racing_trace(service="alpha")[1] + racing_trace(service="beta")[1]))
    post(server, body(racing_trace(service="alpha")[1]))
    services = data(get(server, "/api/services"))
    assert services == {  # event counts are not multiplied by anything
        "total_services": 2,
        "services": [
            {"name": "alpha", "event_count": 4, "trace_count": 2},
            {"name": "beta", "event_count": 2, "trace_count": 1},
        ],
    }
    health = data(get(server, "/api/services/health", params={"time_window_minutes": 5}))
    assert {h["name"]: h["status"] for h in health} == {"alpha": "healthy", "beta": "healthy"}
    traces = data(get(server, "/api/services/alpha/traces"))
    assert traces["service_name"] == "alpha" and traces["total_traces"] == 2
    assert data(get(server, "/api/services/nobody/traces"))["total_traces"] == 0
    deps = data(get(server, "/api/services/alpha/dependencies"))
    assert deps == {"service_name": "alpha", "calls_to": [], "called_by": []}
    hot = data(get(server, "/api/distributed/hotspots"))
    assert hot["top_variables"][0] == {
        "variable": "counter", "access_count": 6, "trace_count": 3, "services": ["alpha", "beta"],
        "race_count": 3,  # one write-write race per racing trace
    }
    assert data(get(server, "/api/distributed/edges")) == {"total_edges": 0, "edges": []}


def test_performance_cache_respects_limit(server: RunningServer) -> None:
    now = time.time_ns()
    for i in range(3):
        trace, events = racing_trace()
        events[0].timestamp_ns = now + i * 10_000_000
        events[1].timestamp_ns = now + i * 10_000_000 + (i + 1) * 1_000_000  # 1, 2, 3 ms
        post(server, body(events))
    one = data(get(server, "/api/performance/metrics", params={"limit": 1}))
    three = data(get(server, "/api/performance/metrics", params={"limit": 3}))
    assert len(one["trace_latency"]["slowest_traces"]) == 1
    assert len(three["trace_latency"]["slowest_traces"]) == 3
    assert one["trace_latency"]["avg_ms"] == pytest.approx(3.0)
    assert three["trace_latency"]["avg_ms"] == pytest.approx(2.0)
    # a new trace invalidates the cached answer for the same parameters
    trace, events = racing_trace()
    events[0].timestamp_ns, events[1].timestamp_ns = now + 10**9, now + 10**9 + 9_000_000
    post(server, body(events))
    again = data(get(server, "/api/performance/metrics", params={"limit": 1}))
    assert again["trace_latency"]["avg_ms"] == pytest.approx(9.0)


def test_global_races_use_causality(server: RunningServer) -> None:
    """Two traces overlapping in time race on a shared variable; traces days apart do not."""
    now = time.time_ns()
    t1, t2, t3 = uuid.uuid4().int, uuid.uuid4().int, uuid.uuid4().int
    from rw_events import access

    events = [
        access(t1, "a/1", {"a/1": 1}, "shared", "Write", 1, "svc", now),
        access(t1, "a/1", {"a/1": 2}, "shared", "Write", 1, "svc", now + 2_000_000),
        access(t2, "b/1", {"b/1": 1}, "shared", "Write", 2, "svc", now + 1_000_000),
        access(t3, "c/1", {"c/1": 1}, "shared", "Write", 3, "svc", now - 3 * 86400 * 10**9),
    ]
    post(server, body(events))
    races = data(get(server, "/api/distributed/global-races"))
    assert races["total_races"] == 1
    assert sorted(races["races"][0]["trace_ids"]) == sorted([uuid_str(t1), uuid_str(t2)])
    analysis = data(get(server, "/api/analyze/global"))
    assert analysis["potential_races"] >= 1
    assert all(uuid_str(t3) not in (d["trace1_id"], d["trace2_id"]) for d in analysis["race_details"])


def test_status_reports_real_uptime_and_counters(server: RunningServer) -> None:
    first = data(get(server, "/status"))
    time.sleep(0.3)
    post(server, body(racing_trace()[1]))
    second = data(get(server, "/status"))
    assert second["uptime_seconds"] >= first["uptime_seconds"] + 0.25
    assert second["events_captured"] == 2 and second["traces_active"] == 1
    assert second["warmup"]["phase"] == "completed" and second["warmup"]["ready"] is True
    assert second["ingestion"]["ingested"] == 2
    assert data(get(server, "/health"))["ready"] is True


# --- ingestion ---------------------------------------------------------------------------


def test_partial_batch_stores_valid_events_and_names_bad_ones(server: RunningServer) -> None:
    trace, events = racing_trace()
    items = wire(events)
    items.insert(1, {**items[0], "id": "not-a-uuid"})
    bad_kind = dict(items[0])
    bad_kind["kind"] = {"StateChange": {**items[0]["kind"]["StateChange"], "access_type": "Scribble"}}
    bad_kind["id"] = str(uuid.uuid4())
    items.append(bad_kind)
    import orjson

    response = post(server, orjson.dumps({"events": items}))
    assert response.status_code == 207
    envelope = response.json()
    assert envelope["success"] is True and "2 events rejected" in envelope["error"]
    payload = envelope["data"]
    assert payload["ingested"] == 2 and payload["rejected"] == 2
    assert [(e["index"], e["field"]) for e in payload["errors"]] == [
        (1, "id"),
        (3, "kind.StateChange.access_type"),
    ]
    assert data(get(server, f"/api/traces/{uuid_str(trace)}"))["analysis"]["potential_races"] == 1


def test_all_invalid_is_422_and_empty_batch_is_fine(server: RunningServer) -> None:
    response = post(server, b'{"events": [{"id": 1}, 7]}')
    assert response.status_code == 422
    assert [e["index"] for e in response.json()["data"]["errors"]] == [0, 1]
    assert data(post(server, b'{"events": []}'))["ingested"] == 0
    status = data(get(server, "/status"))
    assert status["events_captured"] == 0 and status["ingestion"]["rejected"] == 2


def test_duplicate_ids_are_idempotent(server: RunningServer) -> None:
    trace, events = racing_trace()
    assert data(post(server, body(events)))["ingested"] == 2
    again = data(post(server, body(events + events)))
    assert again["ingested"] == 0 and again["duplicates"] == 4
    bundle = data(get(server, f"/api/traces/{uuid_str(trace)}"))
    assert len(bundle["events"]) == 2 and bundle["analysis"]["potential_races"] == 1


@pytest.mark.parametrize(
    ("payload", "status", "needle"),
    [
        (b"{not json", 400, "not valid JSON"),
        (b'{"events": "nope"}', 400, '"events" must be an array'),
        (b"[1, 2]", 400, "JSON object"),
        (b'{"other": []}', 400, 'no "events" field'),
        (b'{"events": [{"id": "\xff\xfe"}]}', 400, "not valid JSON"),
        (b'{"events": ' + b"[" * 5000 + b"]" * 5000 + b"}", 400, "not valid JSON"),
    ],
    ids=["syntax", "events-not-list", "not-object", "no-events", "non-utf8", "deeply-nested"],
)
def test_malformed_bodies_are_4xx(server: RunningServer, payload: bytes, status: int, needle: str) -> None:
    response = post(server, payload)
    assert response.status_code == status
    assert response.json()["success"] is False and needle in response.json()["error"]


def test_wrong_content_type_is_415(server: RunningServer) -> None:
    response = httpx.post(server.url + "/events", content=b"{}", headers={"content-type": "text/plain"})
    assert response.status_code == 415 and "application/json" in response.json()["error"]


def test_body_limit_is_413(serve: Callable[..., RunningServer]) -> None:
    server = serve(max_body_bytes=2000)
    big = body(bulk(50))
    assert len(big) > 2000
    response = post(server, big)
    assert response.status_code == 413 and "2000" in response.json()["error"]

    def chunks():  # no Content-Length: the limit holds while streaming too
        for i in range(0, len(big), 500):
            yield big[i : i + 500]

    response = httpx.post(server.url + "/events", content=chunks(), headers=JSON)
    assert response.status_code == 413
    assert data(get(server, "/status"))["events_captured"] == 0


def test_backpressure_is_503_with_retry_after(serve: Callable[..., RunningServer]) -> None:
    """While one batch waits for the ingest lock, a second one beyond the budget is refused."""
    import threading

    server = serve(max_pending_events=1000)
    results: list[int] = []
    server.service._lock.acquire()  # hold ingestion (as a slow commit would)
    try:
        first = threading.Thread(target=lambda: results.append(post(server, body(bulk(600))).status_code))
        first.start()
        deadline = time.monotonic() + 10
        while server.service._pending == 0 and time.monotonic() < deadline:
            time.sleep(0.01)
        refused = post(server, body(bulk(600)))
        assert refused.status_code == 503
        assert refused.headers["Retry-After"] == "1"
        assert "limit 1000" in refused.json()["error"]
    finally:
        server.service._lock.release()
    first.join(10)
    assert results == [200]  # the admitted batch was stored, nothing lost silently
    status = data(get(server, "/status"))
    assert status["events_captured"] == 600 and status["ingestion"]["busy_rejections"] == 1


# --- exports and the web UI shell ------------------------------------------------------


def test_exports(server: RunningServer) -> None:
    trace, events = racing_trace()
    post(server, body(events))
    tid = uuid_str(trace)
    session = get(server, f"/api/traces/{tid}/export").json()
    assert session["format"] == "raceway-session" and session["version"] == 1
    assert session["summary"]["races"] == 1 and session["tests"][0]["trace_id"] == tid
    assert len(session["traces"][tid]["events"]) == 2
    shiviz = get(server, f"/api/traces/{tid}/export", params={"format": "shiviz"}).text.splitlines()
    assert shiviz[0].startswith("(?<host>") and shiviz[1] == ""
    assert shiviz[2] == 't/1 {"t/1":1}' and shiviz[4] == 't/2 {"t/2":1}'
    raw = get(server, f"/api/traces/{tid}/export", params={"format": "events"}).json()
    assert [e["id"] for e in raw["events"]] == [e["id"] for e in wire(events)]
    assert get(server, f"/api/traces/{tid}/export", params={"format": "pdf"}).status_code == 400
    everything = get(server, "/api/export/session").json()
    assert list(everything["traces"]) == [tid]


def test_root_serves_the_web_ui_shell(server: RunningServer) -> None:
    page = get(server, "/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "placeholder" not in page.text
    assert 'src="ui/raceway-core.js?v=' in page.text
    assert "script-src 'self'" in page.headers["content-security-policy"]


def test_openapi_describes_every_route(server: RunningServer) -> None:
    from starlette.routing import Route

    document = data_raw = get(server, "/openapi.json").json()
    assert data_raw["openapi"].startswith("3.")
    documented = {
        (path, method.upper()) for path, ops in document["paths"].items() for method in ops
    }
    served = set()
    for route in server.app.routes:
        assert isinstance(route, Route)
        path = route.path.replace("{variable:path}", "{variable}")
        for method in route.methods or ():
            if method != "HEAD":
                served.add((path, method))
    assert served == documented
    assert len([p for p in documented if p[0].startswith(("/api/", "/health", "/status", "/events"))]) >= 18


def test_original_sdk_batch_is_accepted_and_analysed(server: RunningServer) -> None:
    """A batch as the original Python SDK sends it (no extensions, thread_id streams)."""
    trace = str(uuid.uuid4())
    root = str(uuid.uuid4())

    def event(eid: str, parent: str | None, thread: str, kind: dict, ts: str) -> dict:
        return {
            "id": eid, "trace_id": trace, "parent_id": parent, "timestamp": ts, "kind": kind,
            "metadata": {"thread_id": thread, "process_id": 7, "service_name": "banking-api",
                         "environment": "development", "tags": {"sdk_language": "python"},
                         "duration_ns": None, "instance_id": "host-1"},
            "causality_vector": [["banking-api#host-1", 1]], "lock_set": [],
        }

    write = {"variable": "alice.balance", "old_value": 1000, "new_value": 900,
             "location": "app.py:42", "access_type": "Write"}
    batch = {"events": [
        event(root, None, "main", {"FunctionCall": {"function_name": "transfer", "module": "app",
                                                    "args": {}, "file": "app.py", "line": 1}},
              "2024-01-01T12:00:00.000Z"),
        event(str(uuid.uuid4()), root, "thread-a", {"StateChange": write}, "2024-01-01T12:00:00.001+00:00"),
        event(str(uuid.uuid4()), root, "thread-b", {"StateChange": write}, "2024-01-01T12:00:00.002Z"),
    ]}
    import orjson

    assert data(post(server, orjson.dumps(batch)))["ingested"] == 3
    bundle = data(get(server, f"/api/traces/{trace}"))
    assert [e["metadata"]["thread_id"] for e in bundle["events"]] == ["main", "thread-a", "thread-b"]
    trail = bundle["audit_trails"]["alice.balance"]
    assert [a["thread_id"] for a in trail] == ["thread-a", "thread-b"]
    assert data(get(server, "/api/services"))["services"][0]["name"] == "banking-api"
    assert bundle["analysis"]["potential_races"] == 1  # sibling threads, no common lock
