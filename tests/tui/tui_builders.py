"""Wire events for the TUI tests: our SDK's format (full vector clocks over task ids).

Clocks follow the rules of docs/internals.md so the real engine derives exactly the intended
happens-before order: a two-service HTTP call (one dependency edge), a write-write race between
two request handlers, and timed operations for the anomaly baselines.
"""

from __future__ import annotations

import itertools
import time
import uuid
from typing import Any

from raceway_sdk.protocol.events import Event, Metadata, dumps_batch, event_to_wire, new_event_id

_n = itertools.count(1)


class Trace:
    def __init__(self, service: str = "frontend") -> None:
        self.trace_id = uuid.uuid4().int
        self.tag = f"{next(_n)}x{self.trace_id % 10_000}"
        self.events: list[Event] = []
        self.ts = time.time_ns()
        self.service = service

    @property
    def id(self) -> str:
        return str(uuid.UUID(int=self.trace_id))

    def task(self, name: str) -> str:
        return f"{self.tag}/{name}"

    def emit(self, task: str, vc: dict[str, int], kind: str, data: dict[str, Any],
             service: str | None = None, duration_ns: int | None = None, **ext: Any) -> Event:
        self.ts += 1_000_000
        e = Event(
            id=new_event_id(), trace_id=self.trace_id, parent_id=None, timestamp_ns=self.ts,
            kind=kind, data=data,
            meta=Metadata(thread_id=task, process_id=1, service_name=service or self.service,
                          duration_ns=duration_ns),
            vc=dict(vc), ext={"task": task, "trusted_vc": True, **ext},
        )
        self.events.append(e)
        return e

    def write(self, task: str, vc: dict[str, int], variable: str, line: int,
              service: str | None = None, access: str = "Write", value: Any = 1) -> Event:
        return self.emit(task, vc, "StateChange",
                         {"variable": variable, "old_value": None, "new_value": value,
                          "location": f"shop/orders.py:{line}", "access_type": access},
                         service=service, loc=variable, func="place_order",
                         stack=[["shop/orders.py", line, "place_order"], ["shop/app.py", 7, "handle"]])

    def call(self, task: str, vc: dict[str, int], name: str, ms: float, service: str) -> Event:
        return self.emit(task, vc, "FunctionCall",
                         {"function_name": name, "module": "shop", "args": None,
                          "file": "shop/db.py", "line": 3},
                         service=service, duration_ns=int(ms * 1e6))


def shop_trace(query_ms: float = 1.0) -> Trace:
    """frontend calls backend over HTTP (one dependency); two backend handlers race on
    ``orders`` (write-write); backend runs a timed ``query``."""
    t = Trace()
    fe, h1, h2 = t.task("frontend"), t.task("handler-1"), t.task("handler-2")
    t.emit(fe, {fe: 1}, "HttpRequest", {"method": "POST", "url": "http://backend/orders",
                                        "headers": {}, "body": None})
    t.write(h1, {fe: 1, h1: 1}, "orders", 20, service="backend")
    t.call(h1, {fe: 1, h1: 1}, "query", query_ms, service="backend")
    t.write(h2, {h2: 1}, "orders", 31, service="backend")
    t.emit(fe, {fe: 2, h1: 1}, "HttpResponse", {"status": 201, "headers": {}, "body": None,
                                                "duration_ms": 3})
    return t


def quiet_trace(query_ms: float = 1.0) -> Trace:
    """No race: one backend task, one timed query (feeds the baselines)."""
    t = Trace("backend")
    w = t.task("worker")
    t.write(w, {w: 1}, "stock", 5)
    t.call(w, {w: 1}, "query", query_ms, service="backend")
    return t


def body(traces: list[Trace]) -> bytes:
    return dumps_batch([e for t in traces for e in t.events])


# --- a session document built through the real engine ---------------------------------------


class Tasks:
    """Happens-before clocks by the rules of docs/internals.md (fork and join)."""

    def __init__(self, trace: Trace) -> None:
        self.t = trace
        self.vc: dict[str, dict[str, int]] = {}
        self.info: dict[str, dict[str, Any]] = {}

    def root(self, name: str) -> str:
        task = self.t.task(name)
        self.vc[task] = {task: 1}
        self.info[task] = {"id": task, "name": name, "kind": "main", "parent": None,
                           "created_at": None, "stack": None, "origin_trace": None, "loop": None}
        return task

    def fork(self, parent: str, name: str, kind: str, line: int, loop: str | None = None) -> str:
        child = self.t.task(f"{name}-{len(self.vc)}")
        stack = [["tests/test_shop.py", line, "test_body"]]
        ext: dict[str, Any] = {"child": child, "child_name": name, "child_kind": kind, "stack": stack}
        if loop is not None:
            ext["child_loop"] = loop
        self.t.emit(parent, self.vc[parent], "AsyncSpawn",
                    {"task_id": str(uuid.uuid5(uuid.NAMESPACE_URL, child)), "spawned_by": parent}, **ext)
        self.vc[child] = {**self.vc[parent], child: 1}
        self.vc[parent] = {**self.vc[parent], parent: self.vc[parent][parent] + 1}
        self.info[child] = {"id": child, "name": name, "kind": kind, "parent": parent,
                            "created_at": f"tests/test_shop.py:{line}", "stack": stack,
                            "origin_trace": self.t.id, "loop": loop}
        return child

    def join(self, parent: str, child: str) -> None:
        joined = {k: max(self.vc[parent].get(k, 0), self.vc[child].get(k, 0))
                  for k in self.vc[parent].keys() | self.vc[child].keys()}
        joined[parent] = joined[parent] + 1
        self.vc[parent] = joined
        self.t.emit(parent, joined, "AsyncAwait",
                    {"future_id": str(uuid.uuid5(uuid.NAMESPACE_URL, child)),
                     "awaited_at": "tests/test_shop.py:30"}, child=child)

    def access(self, task: str, variable: str, access: str, line: int, func: str,
               value: Any = None, loop: str | None = None, seg: int | None = None) -> Event:
        ext: dict[str, Any] = {"loc": variable, "func": func,
                               "stack": [["shop/cart.py", line, func], ["tests/test_shop.py", 12, "test_body"]]}
        if loop is not None:
            ext.update(loop=loop, seg=seg)
        if value is not None:
            ext["value"] = value
        return self.t.emit(task, self.vc[task], "StateChange",
                           {"variable": variable, "old_value": None, "new_value": value,
                            "location": f"shop/cart.py:{line}", "access_type": access}, **ext)


def engine_session(path: Any) -> dict[str, Any]:
    """Three tests: threads racing on ``cart.total`` (and a raced-on ``cart.items``), an asyncio
    lost update on ``Account.balance``, and a race-free test; written like the plugin does."""
    from raceway_server.engine.core import Engine

    engine = Engine()
    tests: list[dict[str, Any]] = []
    traces: dict[str, Any] = {}
    races: list[dict[str, Any]] = []

    threads = Trace("python")
    ts = Tasks(threads)
    main = ts.root("MainThread")
    a = ts.fork(main, "checkout-a", "thread", 14)
    b = ts.fork(main, "checkout-b", "thread", 15)
    for task, line in ((a, 40), (b, 40)):
        ts.access(task, "cart.total", "Read", line, "add_item", 0)
        ts.access(task, "cart.total", "Write", line + 1, "add_item", 5)
    ts.access(a, "cart.items", "Write", 50, "append", 1)
    ts.access(b, "cart.items", "Read", 52, "count")
    ts.join(main, a)
    ts.join(main, b)

    lost = Trace("python")
    tl = Tasks(lost)
    loop_main = tl.root("MainThread")
    d1 = tl.fork(loop_main, "deposit", "asyncio", 21, loop="loop-1")
    d2 = tl.fork(loop_main, "deposit", "asyncio", 21, loop="loop-1")
    tl.access(d1, "Account.balance", "Read", 60, "deposit", 0, "loop-1", 1)
    tl.access(d2, "Account.balance", "Read", 60, "deposit", 0, "loop-1", 1)
    tl.access(d1, "Account.balance", "Write", 62, "deposit", 10, "loop-1", 2)
    tl.access(d2, "Account.balance", "Write", 62, "deposit", 10, "loop-1", 2)
    tl.join(loop_main, d1)
    tl.join(loop_main, d2)

    quiet = Trace("python")
    tq = Tasks(quiet)
    solo = tq.root("MainThread")
    tq.access(solo, "cart.total", "Write", 70, "reset", 0)

    for nodeid, trace, tasks in (("tests/test_shop.py::test_threads_race", threads, ts),
                                 ("tests/test_shop.py::test_lost_update", lost, tl),
                                 ("tests/test_shop.py::test_quiet", quiet, tq)):
        engine.add_batch(trace.events)
        found = [dict(r.to_dict()) for r in engine.races(trace.trace_id)]
        ids = []
        for race in found:
            race.update(id=len(races) + 1, trace_id=trace.id, test=nodeid, status="new",
                        anchor=f"race-{len(races) + 1}", fails=True)
            races.append(race)
            ids.append(race["id"])
        tests.append({"nodeid": nodeid, "trace_id": trace.id, "outcome": "failed" if ids else "passed",
                      "race_failure": bool(ids), "races": ids})
        if ids:
            traces[trace.id] = {"test": nodeid, "events": [event_to_wire(e) for e in trace.events],
                                "tasks": tasks.info}
    by_severity: dict[str, int] = {}
    for race in races:
        by_severity[race["severity"]] = by_severity.get(race["severity"], 0) + 1
    doc = {
        "format": "raceway-session", "version": 1, "generated_at": "2026-01-01T00:00:00.000Z",
        "settings": {}, "tests": tests, "races": races, "traces": traces,
        "summary": {"tests": 3, "racing_tests": sum(1 for t in tests if t["races"]),
                    "races": len(races), "by_severity": by_severity, "new": len(races),
                    "baseline": 0, "suppressed": 0, "failing": len(races),
                    "events": sum(len(t.events) for t in (threads, lost, quiet)), "dropped": 0,
                    "not_instrumented": [], "notes": []},
    }
    import orjson

    with open(path, "wb") as f:
        f.write(orjson.dumps(doc, default=str))
    return doc


def big_session(path: Any, accesses: int) -> dict[str, Any]:
    """One racing test with ``accesses`` accesses by 4 threads (a large trace)."""
    from raceway_server.engine.core import Engine

    t = Trace("python")
    ts = Tasks(t)
    main = ts.root("MainThread")
    workers = [ts.fork(main, f"w{i}", "thread", 10 + i) for i in range(4)]
    for i in range(accesses):
        ts.access(workers[i % 4], f"slot{i % 97}", "Write", 100 + i % 13, "fill", i)
    for w in workers:
        ts.join(main, w)
    engine = Engine()
    engine.add_batch(t.events)
    races = []
    for n, r in enumerate(engine.races(t.trace_id), 1):
        races.append(dict(r.to_dict(), id=n, trace_id=t.id, test="tests/test_big.py::test_big",
                          status="new", anchor=f"race-{n}"))
    doc = {"format": "raceway-session", "version": 1, "summary": {"races": len(races)},
           "tests": [{"nodeid": "tests/test_big.py::test_big", "trace_id": t.id,
                      "outcome": "failed", "races": [r["id"] for r in races]}],
           "races": races,
           "traces": {t.id: {"test": "tests/test_big.py::test_big",
                             "events": [event_to_wire(e) for e in t.events], "tasks": ts.info}}}
    import orjson

    with open(path, "wb") as f:
        f.write(orjson.dumps(doc, default=str))
    return doc


def original_trace() -> Trace:
    """Events as the original SDKs send them: no ``raceway`` extension, one thread id per
    stream, nesting by ``parent_id`` (request -> handler call -> state change)."""
    t = Trace("legacy-api")

    def emit(thread: str, kind: str, data: dict[str, Any], parent: Event | None) -> Event:
        t.ts += 1_000_000
        e = Event(id=new_event_id(), trace_id=t.trace_id,
                  parent_id=parent.id if parent is not None else None, timestamp_ns=t.ts,
                  kind=kind, data=data,
                  meta=Metadata(thread_id=thread, process_id=7, service_name="legacy-api"),
                  vc={}, ext=None)
        t.events.append(e)
        return e

    root = emit("thread-1", "HttpRequest", {"method": "GET", "url": "/cart", "headers": {},
                                            "body": None}, None)
    call = emit("thread-1", "FunctionCall", {"function_name": "load_cart", "module": "cart",
                                             "args": None, "file": "cart.py", "line": 9}, root)
    emit("thread-1", "StateChange", {"variable": "cart", "old_value": None, "new_value": 1,
                                     "location": "cart.py:10", "access_type": "Write"}, call)
    emit("thread-2", "StateChange", {"variable": "cart", "old_value": None, "new_value": 2,
                                     "location": "cart.py:10", "access_type": "Write"}, None)
    return t
