from __future__ import annotations

import random

import pytest
from raceway_sdk.protocol.events import ATOMIC_TYPES, WRITE_TYPES
from test_analysis_support import MS, T0, Trace, clock_of

from raceway_server.engine.global_races import GlobalRaceAnalysis

DAY = 86_400_000  # ms


def _session(n: int) -> list[Trace]:
    """``n`` traces (tests) of one process: they share task clocks, like one pytest session."""
    traces = [Trace(trace_id=k + 1) for k in range(n)]
    for t in traces[1:]:
        t.vc = traces[0].vc
        t.syncs = traces[0].syncs
        t.services = traces[0].services
    return traces


def test_leaked_task_races_with_the_next_test() -> None:
    t1, t2 = _session(2)
    t1.task("main")
    t1.fork("main", "leaked", at_ms=1)
    t1.access("leaked", "cache.size", at_ms=30, line=7)  # never joined by test 1
    t2.fork("main", "worker", at_ms=20)
    t2.access("worker", "cache.size", at_ms=25, line=9)
    g = GlobalRaceAnalysis(t1.events + t2.events, clock_of)
    out = g.analyze_response()
    assert out["potential_races"] == 1 and out["total_traces"] == 2
    d = out["race_details"][0]
    assert d["severity"] == "CRITICAL" and d["variable"] == "cache.size"
    assert {d["event1_location"], d["event2_location"]} == {"app.py:7", "app.py:9"}
    assert "vector clocks" in d["description"]
    races = g.candidates_response()
    assert races["total_races"] == 1
    r = races["races"][0]
    assert r["trace_count"] == 2 and r["access_count"] == 2 and r["thread_count"] == 2
    assert r["access_types"] == ["Write"] and r["severity"] == "CRITICAL"
    assert r["trace_ids"] == [
        "00000000-0000-0000-0000-000000000001",
        "00000000-0000-0000-0000-000000000002",
    ]


def test_second_trace_carrying_the_first_clock_does_not_race() -> None:
    t1, t2 = _session(2)
    t1.task("main")
    t1.fork("main", "w1", at_ms=1)
    t1.access("w1", "cache.size", at_ms=2)
    t1.join("main", "w1", at_ms=3)  # test 1 joins its thread
    t2.fork("main", "w2", at_ms=4)  # test 2's thread starts from main's clock, after the join
    t2.access("w2", "cache.size", at_ms=5)
    g = GlobalRaceAnalysis(t1.events + t2.events, clock_of)
    assert g.analyze_response()["potential_races"] == 0
    assert g.candidates_response() == {
        "total_races": 0,
        "races": [],
        "capped": False,
        "comparisons": 1,
    }


def test_no_shared_components_days_apart_is_not_a_race_but_overlap_is() -> None:
    old = Trace(trace_id=1, t0=T0)
    old.task("inst-a/1")
    old.access("inst-a/1", "alice.balance", at_ms=0)
    later = Trace(trace_id=2, t0=T0 + 3 * DAY * MS)
    later.task("inst-b/1")
    later.access("inst-b/1", "alice.balance", at_ms=0)
    assert (
        GlobalRaceAnalysis(old.events + later.events, clock_of).analyze_response()[
            "potential_races"
        ]
        == 0
    )
    # two requests in flight at the same time, clocks never propagated between them
    r1 = Trace(trace_id=3, t0=T0)
    r1.task("svc#1/req1")
    r1.access("svc#1/req1", "alice.balance", "Read", at_ms=1)
    r1.access("svc#1/req1", "alice.balance", at_ms=10)
    r2 = Trace(trace_id=4, t0=T0)
    r2.task("svc#1/req2")
    r2.access("svc#1/req2", "alice.balance", "Read", at_ms=2)
    r2.access("svc#1/req2", "alice.balance", at_ms=11)
    out = GlobalRaceAnalysis(r1.events + r2.events, clock_of).analyze_response()
    assert out["potential_races"] == 3  # W-W, R1-W2, W1-R2 (R-R is no conflict)
    assert all("overlapped in time" in d["description"] for d in out["race_details"])


def test_reads_atomics_and_same_trace_pairs_are_not_global_races() -> None:
    t1, t2 = _session(2)
    t1.task("main")
    t1.fork("main", "a", at_ms=1)
    t1.fork("main", "b", at_ms=1)
    t1.access("a", "x", "Read", at_ms=2)
    t1.access("b", "x", "Write", at_ms=2)  # in-trace race: the engine's business, not global
    t1.access("a", "n", "AtomicRMW", at_ms=2)
    t2.fork("main", "c", at_ms=3)
    t2.access("c", "x", "Read", at_ms=4)
    t2.access("c", "n", "AtomicRMW", at_ms=4)
    g = GlobalRaceAnalysis(t1.events + t2.events, clock_of)
    out = g.analyze_response()
    assert out["potential_races"] == 1  # only b's Write vs c's Read
    assert out["race_details"][0]["severity"] == "WARNING"
    assert g.candidates_response()["races"][0]["access_types"] == ["Read", "Write"]


def test_budget_caps_the_work_and_says_so() -> None:
    traces = [Trace(trace_id=k + 1) for k in range(40)]
    for k, t in enumerate(traces):
        t.task(f"i{k}/1")
        t.access(f"i{k}/1", "hot", at_ms=k)
        t.access(f"i{k}/1", "hot", at_ms=k + 50)  # all 40 traces overlap in time
    events = [e for t in traces for e in t.events]
    full = GlobalRaceAnalysis(events, clock_of)
    assert full.capped is False and full.pairs == 40 * 39 // 2 * 4
    capped = GlobalRaceAnalysis(events, clock_of, max_comparisons=100, max_details=5)
    out = capped.analyze_response()
    assert out["capped"] is True and out["comparisons"] == 100
    assert len(out["race_details"]) == 5
    assert any("budget" in line for line in out["anomalies"])
    assert 0 < out["potential_races"] < full.pairs
    with pytest.raises(ValueError, match="max_comparisons"):
        GlobalRaceAnalysis([], clock_of, max_comparisons=-1)


def test_a_long_ordered_session_costs_linear_work() -> None:
    traces = _session(300)
    traces[0].task("main")
    for k, t in enumerate(traces):
        t.now = traces[k - 1].now if k else t.now  # one wall clock for the session
        w = t.fork("main", f"w{k}")
        for _ in range(3):
            t.access(w, "registry", "Read")
            t.access(w, "registry", "Write")
        t.access("main", "registry", "Read")
        t.join("main", w)
    g = GlobalRaceAnalysis([e for t in traces for e in t.events], clock_of)
    assert g.pairs == 0 and g.capped is False
    assert g.comparisons <= 3 * 600  # O(1) per run, not O(runs²)


def _oracle(events, spans) -> int:
    acc = [e for e in events if e.kind == "StateChange"]
    n = 0
    for i, a in enumerate(acc):
        for b in acc[i + 1 :]:
            if a.trace_id == b.trace_id or a.ext["loc"] != b.ext["loc"]:
                continue
            ta, tb = a.data["access_type"], b.data["access_type"]
            if not (ta in WRITE_TYPES or tb in WRITE_TYPES) or (
                ta in ATOMIC_TYPES and tb in ATOMIC_TYPES
            ):
                continue
            (xa, va), (xb, vb) = clock_of(a), clock_of(b)
            if xa == xb or va[xa] <= vb.get(xa, 0) or vb[xb] <= va.get(xb, 0):
                continue
            if set(va).isdisjoint(vb):
                sa, sb = spans[a.trace_id], spans[b.trace_id]
                if not (sa[0] <= sb[1] and sb[0] <= sa[1]):
                    continue
            n += 1
    return n


@pytest.mark.parametrize("seed", range(60))
def test_run_grouping_counts_exactly_the_oracle_pairs(seed: int) -> None:
    rng = random.Random(seed)
    traces = _session(3) + [Trace(trace_id=9, t0=T0 + rng.choice([0, DAY * MS]))]
    traces[0].task("main")
    traces[3].task("alone")
    live = {0: ["main"], 1: ["main"], 2: ["main"], 3: ["alone"]}
    n = 0
    for k, t in enumerate(traces):
        for _ in range(rng.randint(5, 25)):
            task = rng.choice(live[k])
            op = rng.random()
            if op < 0.15 and k < 3:
                n += 1
                live[k].append(t.fork(task, f"t{n}", at_ms=rng.randint(0, 100)))
            elif op < 0.3:
                t.release(task, rng.choice("LM"), at_ms=rng.randint(0, 100))
            elif op < 0.4:
                t.acquire(task, rng.choice("LM"), at_ms=rng.randint(0, 100))
            else:
                kind = rng.choice(["Read", "Write", "AtomicRMW", "Read"])
                t.access(task, rng.choice("xy"), kind, at_ms=rng.randint(0, 100))
    events = [e for t in traces for e in t.events]
    g = GlobalRaceAnalysis(events, clock_of)
    assert g.pairs == _oracle(events, g.spans)
