"""Clocks across HTTP: the hand-off rules, trace routing, and both middlewares in-process.

The middleware tests run real servers on 127.0.0.1 (uvicorn for a Starlette app, werkzeug's
threaded server for a Flask app) with the instrumentation installed, real client threads using
an instrumented httpx client, and the engine deciding from the recorded events.
"""

from __future__ import annotations

import asyncio
import base64
import json
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
import raceway_sdk as rw
from raceway_sdk import _recorder as rec
from raceway_sdk import propagation
from raceway_sdk.instrument import http_clients
from raceway_sdk.protocol.clock import vc_leq
from raceway_sdk.protocol.events import Event, Metadata, new_event_id
from raceway_sdk.protocol.headers import parse_incoming
from raceway_sdk.testing import CollectingSink, concurrent, ordered, recording

from raceway_server.engine import Engine


def decode(value: str) -> dict[str, Any]:
    raw = value[3:]
    return json.loads(base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4)))


def run_thread(fn: Callable[[], Any]) -> Any:
    box: dict[str, Any] = {}
    t = threading.Thread(target=lambda: box.setdefault("v", fn()))
    t.start()
    t.join()
    return box.get("v")


def handle(headers: dict[str, str], body: Callable[[], None]) -> tuple[dict[str, str], Any]:
    """A handler task as the middleware runs it: fork, acquire, work, respond."""
    ctx = parse_incoming(headers)
    tokens = propagation.enter_request(ctx)
    state = rec.fork("http", "POST /x")
    token = rec.activate(state)
    try:
        handler = propagation.start_handler(ctx, "POST", "/x")
        body()
        out = propagation.respond(handler, 200)
        rec.finish(state)
        return out, state
    finally:
        rec.deactivate(token)
        propagation.exit_request(tokens)


def test_request_and_response_carry_clocks_both_ways() -> None:
    with recording(instrument=False) as sink:
        out = propagation.begin_request("POST", "http://svc/x")
        assert out is not None
        headers, pending = out
        caller = rec.current()
        sent = decode(headers["raceway-clock"])
        assert sent["trace_id"] == str(uuid.UUID(int=rec.current_trace()))
        assert headers["traceparent"] == f"00-{sent['trace_id'].replace('-', '')}-{sent['span_id']}-01"
        assert sent["raceway"]["task"] == caller.id
        clock = dict(sent["clock"])
        assert clock[caller.id] == caller.vc[caller.id] - 1  # a release: the caller ticked after

        reply, state = run_thread(lambda: handle(headers, lambda: None))
        assert state.kind == "http" and vc_leq(clock, state.done_vc)
        back = decode(reply["raceway-clock"])
        assert back["span_id"] == sent["span_id"]  # the callee's span, as the originals
        propagation.end_request(pending, 200, reply)
        assert vc_leq(dict(back["clock"]), rec.current().vc)  # the caller joined the handler
        kinds = [e.kind for e in sink.events]
        assert kinds.count("HttpRequest") == 2 and kinds.count("HttpResponse") == 2
        releases = [e for e in sink.of_kind("LockRelease") if e.data["lock_type"] == "http"]
        assert {e.data["lock_id"] for e in releases} == {
            f"http:{sent['span_id']}", f"http:{sent['span_id']}:response"}


def test_concurrent_requests_are_concurrent_and_sequential_ones_ordered() -> None:
    with recording(instrument=False) as sink:
        def call() -> Any:
            headers, pending = propagation.begin_request("POST", "http://svc/x")
            reply, state = handle(headers, lambda: rw.track_state_change("acct", 1, 2))
            propagation.end_request(pending, 200, reply)
            return state

        a = run_thread(call)  # two callers that never synchronised
        b = run_thread(call)
        assert not vc_leq(a.done_vc, b.done_vc) and not vc_leq(b.done_vc, a.done_vc)
        c = call()  # the main thread: one call after the other
        d = call()
        access = {e.ext["task"]: e for e in sink.accesses("acct")}
        assert ordered(access[c.id], access[d.id])
        assert concurrent(access[a.id], access[b.id])
        engine = Engine()
        engine.add_batch(sink.events)
        tasks = {frozenset({r.first.task, r.second.task}) for r in engine.races()}
        assert frozenset({a.id, b.id}) in tasks
        assert frozenset({c.id, d.id}) not in tasks


def test_recorded_urls_drop_credentials_query_and_fragment() -> None:
    assert propagation.safe_url("https://u:pw@api.example:8443/v1/x?token=s#frag") == \
        "https://api.example:8443/v1/x"
    assert propagation.safe_url("/orders?id=1") == "/orders"
    with recording(instrument=False) as sink:
        out = propagation.begin_request("GET", "http://user:secret@svc/items?key=abc")
        assert out is not None
        assert sink.of_kind("HttpRequest")[0].data["url"] == "http://svc/items"


def test_nothing_happens_without_a_sink_or_while_suspended() -> None:
    previous = rec.set_sink(None)
    try:
        assert propagation.begin_request("GET", "http://x/") is None
    finally:
        rec.set_sink(previous)
    with recording(instrument=False) as sink:
        with rec.suspended():
            assert propagation.begin_request("GET", "http://x/") is None
        assert sink.events == []


def _event(kind: str, task: str, data: dict[str, Any], ext: dict[str, Any]) -> Event:
    meta = Metadata(task, 1, "svc", "test", {}, None, "i", None, None)
    ext = {"task": task, "trusted_vc": True, **ext}
    return Event(new_event_id(), 1, None, time.time_ns(), kind, data, meta, {task: 1}, [], ext)


def test_route_follows_the_request_context_and_its_forks() -> None:
    ctx = parse_incoming({"traceparent": f"00-{'ab' * 16}-{'cd' * 8}-01"})
    assert ctx is not None
    tokens = propagation.enter_request(ctx)
    try:
        spawn = _event("AsyncSpawn", "p/1", {"task_id": str(uuid.uuid4()), "spawned_by": "p/1"},
                       {"child": "p/2"})
        propagation.route(spawn)
        assert spawn.trace_id == int("ab" * 16, 16)
        assert propagation.request_trace() == int("ab" * 16, 16)
    finally:
        propagation.exit_request(tokens)
    # a thread forked by the handler starts with an empty context: followed by task id
    child = _event("StateChange", "p/2", {"variable": "x"}, {})
    propagation.route(child)
    assert child.trace_id == int("ab" * 16, 16)
    end = _event("Custom", "p/2", {"name": "raceway.task_end", "data": None}, {})
    propagation.route(end)
    later = _event("StateChange", "p/2", {"variable": "x"}, {})
    propagation.route(later)
    assert later.trace_id == 1  # the task ended: no longer followed
    unrelated = _event("StateChange", "p/9", {"variable": "x"}, {})
    propagation.route(unrelated)
    assert unrelated.trace_id == 1


# --------------------------------------------------------------------------- real servers


@pytest.fixture
def instrumented() -> Iterator[CollectingSink]:
    with recording() as sink:
        http_clients.install()
        try:
            yield sink
        finally:
            http_clients.uninstall()


def races_of(sink: CollectingSink) -> list[Any]:
    engine = Engine()
    engine.add_batch(list(sink.events))
    return engine.races()


def concurrently(*calls: Callable[[], Any]) -> None:
    threads = [threading.Thread(target=c) for c in calls]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


@pytest.fixture
def starlette_server(instrumented: CollectingSink) -> Iterator[tuple[str, dict[str, int]]]:
    import uvicorn
    from raceway_sdk.middleware.asgi import RacewayASGIMiddleware
    from starlette.applications import Starlette
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    counter = rw.track({"n": 0}, "counter")

    async def slow(request: Any) -> JSONResponse:
        value = counter["n"]
        await asyncio.sleep(0.02)
        counter["n"] = value + 1
        return JSONResponse({"n": counter["n"]})

    async def quick(request: Any) -> JSONResponse:
        counter["n"] = counter["n"] + 1
        return JSONResponse({"n": counter["n"]})

    app = Starlette(routes=[Route("/slow", slow, methods=["POST"]),
                            Route("/quick", quick, methods=["POST"])])
    server = uvicorn.Server(uvicorn.Config(RacewayASGIMiddleware(app), host="127.0.0.1", port=0,
                                           log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}", counter
    finally:
        server.should_exit = True
        thread.join(20)


def test_asgi_concurrent_read_await_write_is_a_lost_update(
    starlette_server: tuple[str, dict[str, int]], instrumented: CollectingSink
) -> None:
    url, _ = starlette_server
    concurrently(lambda: httpx.post(url + "/slow"), lambda: httpx.post(url + "/slow"))
    races = races_of(instrumented)
    assert any(r.severity == "lost-update" and r.variable.startswith("counter") for r in races)
    spawns = [e for e in instrumented.of_kind("AsyncSpawn") if e.ext.get("child_kind") == "http"]
    assert len(spawns) == 2 and all(e.ext.get("child_loop") for e in spawns)


def test_asgi_sequential_and_await_free_requests_do_not_race(
    starlette_server: tuple[str, dict[str, int]], instrumented: CollectingSink
) -> None:
    url, counter = starlette_server
    with httpx.Client() as client:
        r1 = client.post(url + "/slow")
        r2 = client.post(url + "/slow")
    assert "raceway-clock" in r1.headers and r2.json() == {"n": 2}
    concurrently(lambda: httpx.post(url + "/quick"), lambda: httpx.post(url + "/quick"))
    assert races_of(instrumented) == []
    assert len([e for e in instrumented.of_kind("HttpResponse")]) == 8  # 4 calls, both sides


def test_wsgi_flask_threaded_concurrent_race_sequential_not(instrumented: CollectingSink) -> None:
    from flask import Flask, jsonify
    from raceway_sdk.middleware.wsgi import RacewayWSGIMiddleware
    from werkzeug.serving import make_server

    balance = rw.track({"alice": 100}, "balances")
    app = Flask("bank")

    @app.post("/withdraw")
    def withdraw() -> Any:
        value = balance["alice"]
        balance["alice"] = value - 10
        return jsonify({"balance": balance["alice"]})

    app.wsgi_app = RacewayWSGIMiddleware(app.wsgi_app)  # type: ignore[method-assign]
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    url = f"http://127.0.0.1:{server.server_port}"
    try:
        with httpx.Client() as client:
            client.post(url + "/withdraw")
            reply = client.post(url + "/withdraw")
        assert reply.json() == {"balance": 80} and "raceway-clock" in reply.headers
        requests = pytest.importorskip("requests")  # the same hand-offs through requests

        answer = requests.post(url + "/withdraw", timeout=10)
        assert answer.json() == {"balance": 70} and "raceway-clock" in answer.headers
        sent = answer.request.headers
        assert "traceparent" in sent and "raceway-clock" in sent
        assert races_of(instrumented) == []
        concurrently(lambda: httpx.post(url + "/withdraw"), lambda: httpx.post(url + "/withdraw"))
        races = races_of(instrumented)
        assert any(r.severity == "write-write" for r in races)
        assert all(r.first.task_kind == "http" and r.second.task_kind == "http" for r in races)
    finally:
        server.shutdown()
        thread.join(10)
