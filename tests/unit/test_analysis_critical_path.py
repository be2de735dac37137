from __future__ import annotations

import random

from test_analysis_support import MS, Trace, clock_of

from raceway_server.engine.critical_path import HBGraph, critical_path, path_kind, self_times


def _names(cp: dict) -> list[str]:
    return [p["kind"] for p in cp["path"]]


def test_picks_the_slower_branch_of_a_fork() -> None:
    t = Trace()
    t.task("main")
    t.fork("main", "fast", at_ms=1)
    t.fork("main", "slow", at_ms=2)
    t.call("fast", "quick", end_ms=13, dur_ms=10)
    t.call("slow", "heavy", end_ms=52, dur_ms=50)
    t.join("main", "fast", at_ms=14)
    t.join("main", "slow", at_ms=53)
    t.call("main", "report", end_ms=58, dur_ms=5)
    cp = critical_path(t.trace_id, t.events, clock_of)
    kinds = _names(cp)
    assert "FunctionCall(heavy)" in kinds
    assert "FunctionCall(quick)" not in kinds
    assert kinds[-1] == "FunctionCall(report)"
    assert cp["total_duration_ms"] == 55.0
    assert cp["path_events"] == len(cp["path"])
    # wall clock: first start (fork at 1 ms) .. last end (58 ms)
    assert cp["trace_total_duration_ms"] == 57.0
    assert abs(cp["percentage_of_total"] - 55 / 57 * 100) < 1e-9


def test_nested_durations_are_not_double_counted() -> None:
    t = Trace()
    t.task("main")
    t.call("main", "inner_a", end_ms=30, dur_ms=20)  # [10, 30]
    t.call("main", "inner_b", end_ms=70, dur_ms=30)  # [40, 70]
    t.call("main", "outer", end_ms=100, dur_ms=100)  # [0, 100] contains both
    cp = critical_path(t.trace_id, t.events, clock_of)
    assert cp["total_duration_ms"] == 100.0  # not 150
    by_kind = {p["kind"]: p["duration_ms"] for p in cp["path"]}
    assert by_kind == {
        "FunctionCall(inner_a)": 20.0,
        "FunctionCall(inner_b)": 30.0,
        "FunctionCall(outer)": 50.0,
    }


def test_deeply_nested_and_overlapping_spans_use_the_union() -> None:
    t = Trace()
    t.task("main")
    a = t.call("main", "leaf", end_ms=20, dur_ms=10)  # [10, 20]
    b = t.call("main", "mid", end_ms=30, dur_ms=25)  # [5, 30] contains leaf
    c = t.call("main", "sibling", end_ms=40, dur_ms=15)  # [25, 40] overlaps mid's tail
    d = t.call("main", "root", end_ms=50, dur_ms=50)  # [0, 50]
    selft, _ = self_times(HBGraph(t.events, clock_of))
    got = dict(zip([a.id, b.id, c.id, d.id], selft, strict=True))
    assert got[a.id] == 10 * MS
    assert got[b.id] == 10 * MS  # 25 - leaf 10 - the 5 ms sibling shares with it
    assert got[c.id] == 15 * MS
    # root covered by the union [5, 40] = 35 ms (mid, then sibling's part past mid's end)
    assert got[d.id] == 15 * MS
    assert sum(selft) == 50 * MS
    assert critical_path(1, t.events, clock_of)["total_duration_ms"] == 50.0


def test_path_runs_through_a_cross_task_edge() -> None:
    t = Trace()
    t.task("A")
    t.task("B")
    t.call("B", "b_early", end_ms=5, dur_ms=5)
    t.call("A", "produce", end_ms=30, dur_ms=30)
    t.release("A", "lock", at_ms=31)
    t.acquire("B", "lock", at_ms=32)
    t.call("B", "consume", end_ms=52, dur_ms=20)
    cp = critical_path(t.trace_id, t.events, clock_of)
    kinds = _names(cp)
    assert kinds == [
        "FunctionCall(produce)",
        "LockRelease(threading.Lock)",
        "LockAcquire(threading.Lock)",
        "FunctionCall(consume)",
    ]
    assert cp["total_duration_ms"] == 50.0
    assert [p["task"] for p in cp["path"]] == ["A", "A", "B", "B"]


def test_http_wait_reached_from_the_server_counts_only_its_remainder() -> None:
    t = Trace()
    t.task("client", service="web")
    t.emit(
        "client",
        "HttpRequest",
        {"method": "GET", "url": "/x", "headers": {}, "body": None},
        at_ms=0,
    )
    t.release("client", "req", at_ms=0.1, lock_type="http")
    t.task("server", service="api")  # the handler task starts from the request's clock
    t.acquire("server", "req", at_ms=1)
    t.call("server", "handle", end_ms=41, dur_ms=40)
    t.release("server", "resp", at_ms=41, lock_type="http")
    t.acquire("client", "resp", at_ms=45)
    t.emit(
        "client",
        "HttpResponse",
        {"status": 200, "headers": {}, "body": None, "duration_ms": 50},
        at_ms=50,
    )
    cp = critical_path(t.trace_id, t.events, clock_of)
    assert "FunctionCall(handle)" in _names(cp)
    # 40 ms of handler + the 10 ms of the client's 50 ms wait the handler did not cover; not 90
    assert cp["total_duration_ms"] == 50.0
    assert cp["path"][-1]["kind"] == "HttpResponse(200)"
    assert cp["path"][-1]["duration_ms"] == 10.0
    assert cp["total_duration_ms"] <= cp["trace_total_duration_ms"]


def test_ties_are_deterministic_regardless_of_input_order() -> None:
    t = Trace()
    t.task("main")
    t.fork("main", "left", at_ms=1)
    t.fork("main", "right", at_ms=2)
    t.call("right", "r", end_ms=30, dur_ms=20)
    t.call("left", "l", end_ms=31, dur_ms=20)
    t.join("main", "left", at_ms=40)
    t.join("main", "right", at_ms=41)
    first = critical_path(1, t.events, clock_of)
    rng = random.Random(7)
    for _ in range(5):
        evs = list(t.events)
        # keep each task's own events in order (arrival order is program order) but interleave tasks
        by_task: dict[str, list] = {}
        for e in evs:
            by_task.setdefault(e.ext["task"], []).append(e)
        mixed = []
        while any(by_task.values()):
            k = rng.choice([k for k, v in by_task.items() if v])
            mixed.append(by_task[k].pop(0))
        assert critical_path(1, mixed, clock_of) == first
    # equal 20 ms branches: the earlier-ending one (timestamp tie-break) is chosen
    assert "FunctionCall(r)" in _names(first)


def test_immediate_cross_predecessors_are_reduced() -> None:
    t = Trace()
    t.task("A")
    t.task("B")
    t.task("C")
    rel_a = t.release("A", "s1", at_ms=1)
    t.acquire("B", "s1", at_ms=2)
    rel_b = t.release("B", "s2", at_ms=3)
    acq_c = t.acquire("C", "s2", at_ms=4)
    g = HBGraph(t.events, clock_of)
    idx = {e.id: i for i, e in enumerate(t.events)}
    preds = [t.events[j].id for j in g.cross_preds[idx[acq_c.id]]]
    assert preds == [rel_b.id]  # A's release is implied through B
    assert rel_a.id not in preds


def test_cycle_from_inconsistent_clocks_is_reported_not_hidden() -> None:
    t = Trace()
    t.task("A")
    t.task("B")
    a = t.emit("A", "Custom", {"name": "a", "data": None}, at_ms=1)
    b = t.emit("B", "Custom", {"name": "b", "data": None}, at_ms=2)
    a.vc = {"A": 1, "B": 1}
    b.vc = {"B": 1, "A": 1}
    cp = critical_path(1, t.events, clock_of)
    assert cp["cyclic_events"] == 2
    assert cp["ignored_edges"] >= 1


def test_kind_strings_and_empty_trace() -> None:
    t = Trace()
    t.task("m")
    e = t.emit("m", "HttpRequest", {"method": "POST", "url": "/pay", "headers": {}, "body": None})
    s = t.access("m", "acct.balance")
    assert path_kind(e) == "HttpRequest(POST /pay)"
    assert path_kind(s) == "StateChange(acct.balance)"
    empty = critical_path(5, [], clock_of)
    assert empty["path"] == [] and empty["total_duration_ms"] == 0.0
    cp = critical_path(5, t.events, clock_of)
    assert cp["path"][0]["timestamp"].endswith("+00:00")
    assert cp["path"][0]["location"] == "/pay"
