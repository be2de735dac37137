from __future__ import annotations

from raceway_sdk.protocol.events import Event, Metadata
from test_analysis_support import Trace, clock_of

from raceway_server.engine.dependencies import ServiceGraph, service_calls, trace_dependencies


def _http_call(t: Trace, client: str, server: str, service: str, n_server_events: int = 5) -> None:
    t.emit(
        client, "HttpRequest", {"method": "GET", "url": f"/{service}", "headers": {}, "body": None}
    )
    t.release(client, f"req-{server}", lock_type="http")
    t.task(server, service=service)
    t.acquire(server, f"req-{server}", lock_type="http")
    for k in range(n_server_events):
        t.access(server, f"{service}.v{k}", "Read")
    t.release(server, f"resp-{server}", lock_type="http")
    t.acquire(client, f"resp-{server}", lock_type="http")
    t.emit(client, "HttpResponse", {"status": 200, "headers": {}, "body": None, "duration_ms": 3})


def test_counts_calls_not_events_or_edges() -> None:
    t = Trace(service="web")
    t.task("c")
    for k in range(3):
        _http_call(t, "c", f"s{k}", "api", n_server_events=7)
    deps = trace_dependencies(1, t.events, clock_of)
    assert deps["dependencies"] == [
        {"from": "web", "to": "api", "call_count": 3, "link_types": {"HttpCall": 3}}
    ]
    names = {s["name"]: s["event_count"] for s in deps["services"]}
    assert names["api"] == 3 * (7 + 2) and names["web"] == 3 * 4
    assert deps["trace_id"] == "00000000-0000-0000-0000-000000000001"


def test_chain_is_not_a_direct_dependency() -> None:
    t = Trace(service="web")
    t.task("a")
    t.emit("a", "HttpRequest", {"method": "GET", "url": "/b", "headers": {}, "body": None})
    t.release("a", "r1", lock_type="http")
    t.task("b", service="orders")
    t.acquire("b", "r1", lock_type="http")
    _http_call(t, "b", "c", "stock")  # b calls c while handling a's request
    t.release("b", "p1", lock_type="http")
    t.acquire("a", "p1", lock_type="http")
    deps = trace_dependencies(1, t.events, clock_of)
    pairs = {(d["from"], d["to"]): d["call_count"] for d in deps["dependencies"]}
    assert pairs == {("web", "orders"): 1, ("orders", "stock"): 1}


def test_one_way_queue_messages_count_each() -> None:
    t = Trace(service="producer")
    t.task("p")
    t.task("q", service="consumer")
    for k in range(4):
        t.release("p", f"msg{k}", lock_type="queue.Queue")
        t.acquire("q", f"msg{k}", lock_type="queue.Queue")
    calls, unresolved = service_calls(t.events, clock_of)
    assert calls == [("producer", "consumer", "MessageQueue")] * 4 and unresolved == 0


def _orig(
    eid: int, service: str, span: str, upstream: str | None, kind: str = "StateChange", ts: int = 0
) -> Event:
    md = Metadata(f"{service}-ctx", 1, service, distributed_span_id=span, upstream_span_id=upstream)
    data = {"variable": "v", "new_value": 1, "location": "x", "access_type": "Write"}
    if kind == "HttpRequest":
        data = {"method": "POST", "url": "/pay", "headers": {}, "body": None}
    return Event(eid, 1, None, ts + eid, kind, data, md, {f"{service}#i": eid})


def _orig_clock(e: Event) -> tuple[str, dict[str, int]]:
    return e.meta.thread_id, e.vc


def test_original_span_pairs_count_once_per_call() -> None:
    evs = [_orig(1, "gateway", "aaaa", None), _orig(2, "gateway", "aaaa", None)]
    evs += [
        _orig(10 + k, "payments", "bbbb", "aaaa", "HttpRequest" if k == 0 else "StateChange")
        for k in range(6)
    ]
    evs += [_orig(20 + k, "payments", "cccc", "aaaa") for k in range(3)]  # a second call
    evs += [_orig(30, "ledger", "dddd", "zzzz")]  # caller span not in this trace
    deps = trace_dependencies(1, evs, _orig_clock)
    assert deps["dependencies"] == [
        {
            "from": "gateway",
            "to": "payments",
            "call_count": 2,
            "link_types": {"Custom": 1, "HttpCall": 1},
        }
    ]
    assert deps["unresolved_upstream_spans"] == 1


def test_service_graph_aggregates_and_replaces() -> None:
    g = ServiceGraph()
    t1 = Trace(trace_id=1, service="web")
    t1.task("c")
    _http_call(t1, "c", "s", "api")
    t2 = Trace(trace_id=2, service="web")
    t2.task("c")
    _http_call(t2, "c", "s1", "api")
    _http_call(t2, "c", "s2", "api")
    g.set_trace(1, trace_dependencies(1, t1.events, clock_of))
    g.set_trace(2, trace_dependencies(2, t2.events, clock_of))
    g.set_trace(2, trace_dependencies(2, t2.events, clock_of))  # re-analysed: replaced, not added
    assert g.edges() == {
        "total_edges": 1,
        "edges": [
            {"from_service": "web", "to_service": "api", "link_type": "HttpCall", "call_count": 3}
        ],
    }
    web = g.service_dependencies("web")
    assert web["calls_to"] == [{"to": "api", "total_calls": 3, "trace_count": 2}]
    api = g.service_dependencies("api")
    assert api["called_by"] == [{"to": "web", "from": "web", "total_calls": 3, "trace_count": 2}]
    assert g.services()["services"] == [
        {"name": "api", "event_count": 7 * 3, "trace_count": 2},
        {"name": "web", "event_count": 4 * 3, "trace_count": 2},
    ]
    assert g.top_calls() == [{"from_service": "web", "to_service": "api", "call_count": 3}]
    g.remove_trace(1)
    g.remove_trace(2)
    assert g.edges()["total_edges"] == 0 and g.services()["total_services"] == 0
