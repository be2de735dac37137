"""Events from the original Raceway SDKs: thread-id streams, propagated clocks, parent links."""

from __future__ import annotations

from typing import Any

from raceway_sdk.protocol.events import Event, new_event_id, parse_batch
from tracebuilder import original_event

from raceway_server.engine import Engine

TRACE = new_event_id()


def sc(thread: str, var: str, at: str, loc: str, vc: dict[str, int], **kw: Any) -> Event:
    data = {
        "variable": var,
        "old_value": 1000,
        "new_value": 900,
        "location": loc,
        "access_type": at,
    }
    return original_event(TRACE, thread, "StateChange", data, vc, **kw)


def lock(kind: str, thread: str, lock_id: str, vc: dict[str, int], **kw: Any) -> Event:
    data = {"lock_id": lock_id, "lock_type": "Mutex", "location": "app.py:1"}
    return original_event(TRACE, thread, kind, data, vc, **kw)


def transfer(thread: str, base: int, **kw: Any) -> list[Event]:
    """One request context of the banking demo: read then write alice.balance."""
    comp = "banking-api#host-123"
    r = sc(thread, "alice.balance", "Read", "app.py:41", {comp: base + 1}, **kw)
    w = sc(thread, "alice.balance", "Write", "app.py:42", {comp: base + 2}, parent_id=r.id, **kw)  # type: ignore[attr-defined]
    return [r, w]


def test_race_banking_demo_two_request_contexts() -> None:
    engine = Engine()
    engine.add_batch(transfer("python-1-aaaa", 0) + transfer("python-1-bbbb", 0))
    races = engine.races()
    assert {r.key for r in races} == {("app.py:41", "app.py:42"), ("app.py:42", "app.py:42")}
    ww = next(r for r in races if r.severity == "write-write")
    assert {ww.first.task, ww.second.task} == {"python-1-aaaa", "python-1-bbbb"}
    assert ww.variable == "alice.balance" and ww.first.value == 900


def test_race_banking_demo_parsed_from_the_wire() -> None:
    """The same demo as the original SDK posts it (JSON batch, no extension)."""
    body: dict[str, list[dict[str, Any]]] = {"events": []}
    for ctx in ("python-7-aaaa", "python-7-bbbb"):
        body["events"].append(
            {
                "id": f"{new_event_id():032x}",
                "trace_id": f"{TRACE:032x}",
                "parent_id": None,
                "timestamp": "2024-01-01T12:00:00.123456Z",
                "kind": {
                    "StateChange": {
                        "variable": "alice.balance",
                        "old_value": 1000,
                        "new_value": 900,
                        "location": "app.py:42",
                        "access_type": "Write",
                    }
                },
                "metadata": {
                    "thread_id": ctx,
                    "process_id": 7,
                    "service_name": "banking-api",
                    "environment": "development",
                    "tags": {},
                    "duration_ns": None,
                    "instance_id": "host-7",
                },
                "causality_vector": [["banking-api#host-7", 3]],
                "lock_set": [],
            }
        )
    batch = parse_batch(body)
    assert not batch.errors
    engine = Engine()
    engine.add_batch(batch.events)
    assert [r.key for r in engine.races()] == [("app.py:42", "app.py:42")]


def test_norace_sequential_requests_second_clock_carries_the_first() -> None:
    # context 1 (frontend) writes, then calls banking-api with its clock in raceway-clock
    f = "frontend#f-1"
    b = "banking-api#host-123"
    c1 = [
        sc(
            "py-f-1",
            "alice.balance",
            "Write",
            "front.py:5",
            {f: 1},
            service="frontend",
            instance="f-1",
            span="s1",
        ),
        original_event(
            TRACE,
            "py-f-1",
            "HttpRequest",
            {"method": "POST", "url": "/t", "headers": {}, "body": None},
            {f: 2},
            service="frontend",
            instance="f-1",
            span="s1",
        ),
    ]
    c2 = [
        sc("py-b-1", "alice.balance", "Read", "app.py:41", {f: 2, b: 1}, span="s2", upstream="s1"),
        sc("py-b-1", "alice.balance", "Write", "app.py:42", {f: 2, b: 2}, span="s2", upstream="s1"),
    ]
    engine = Engine()
    engine.add_batch(c1 + c2)
    assert engine.races() == []
    # a second frontend context of the same instance was not the caller: it still races
    other = sc(
        "py-f-2",
        "alice.balance",
        "Write",
        "front.py:9",
        {f: 1},
        service="frontend",
        instance="f-1",
        span="s9",
    )
    engine2 = Engine()
    engine2.add_batch([other] + c1 + c2)
    assert {r.key for r in engine2.races()} == {
        ("app.py:41", "front.py:9"),
        ("app.py:42", "front.py:9"),
        ("front.py:5", "front.py:9"),
    }


def test_norace_lock_release_acquire_orders_thread_ids() -> None:
    comp = "banking-api#host-123"
    events = [
        lock("LockAcquire", "ctx-1", "acct:alice", {comp: 1}),
        sc("ctx-1", "alice.balance", "Write", "app.py:42", {comp: 2}),
        lock("LockRelease", "ctx-1", "acct:alice", {comp: 3}),
        lock("LockAcquire", "ctx-2", "acct:alice", {comp: 1}),
        sc("ctx-2", "alice.balance", "Write", "app.py:42", {comp: 2}),
        lock("LockRelease", "ctx-2", "acct:alice", {comp: 3}),
    ]
    engine = Engine()
    engine.add_batch(events)
    assert engine.races() == []
    # different lock ids: concurrent
    events[3].data["lock_id"] = "acct:bob"  # type: ignore[attr-defined]
    engine2 = Engine()
    engine2.add_batch(events)
    assert len(engine2.races()) == 1


def test_norace_parent_link_across_thread_ids_and_late_parent_still_analysed() -> None:
    comp = "svc#1"
    root = sc("main", "cfg", "Write", "main.py:1", {comp: 1}, service="svc", instance="1")
    child = sc(
        "worker",
        "cfg",
        "Read",
        "worker.py:2",
        {comp: 1},
        parent_id=root.id,
        service="svc",
        instance="1",
    )  # type: ignore[attr-defined]
    engine = Engine()
    engine.add_batch([root, child])
    assert engine.races() == []
    # the child arrives before its parent: it is analysed at once (never orphaned)
    engine2 = Engine()
    engine2.add(child)
    assert engine2.stats()["accesses"] == 1
    assert engine2.clock_of(child)[0] == "worker"  # type: ignore[arg-type]
    engine2.add(root)
    assert engine2.stats()["accesses"] == 2
    assert len(engine2.trace_events(TRACE)) == 2
    # without a link to the writer, the edge is missing: reported as a race
    assert len(engine2.races()) == 1


def test_clock_of_and_program_order_per_thread_id() -> None:
    events = transfer("ctx-a", 0)
    engine = Engine()
    engine.add_batch(events)
    (ta, va), (tb, vb) = engine.clock_of(events[0]), engine.clock_of(events[1])
    assert ta == tb == "ctx-a" and va[ta] < vb[tb]
    assert engine.tasks(TRACE)["ctx-a"].kind == "context"
