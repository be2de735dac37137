from __future__ import annotations

import random

import pytest
from test_analysis_support import MS, Trace

from raceway_server.engine.anomalies import (
    MIN_SAMPLES,
    Baselines,
    anomalies_response,
    detect_anomalies,
    event_kind_name,
    severity_of,
    summarise,
)


def _history(
    b: Baselines, n_traces: int = 30, base_ms: float = 100.0, jitter_ms: float = 2.0, seed: int = 1
) -> None:
    """Feed ``n_traces`` traces of one ``checkout`` call each, none of them ever analysed."""
    rng = random.Random(seed)
    for k in range(n_traces):
        t = Trace(trace_id=1000 + k)
        t.task("m")
        t.call("m", "checkout", end_ms=500, dur_ms=base_ms + rng.uniform(-jitter_ms, jitter_ms))
        b.observe_many(t.events)


def _one(dur_ms: float, trace_id: int = 1) -> Trace:
    t = Trace(trace_id=trace_id)
    t.task("m")
    t.call("m", "checkout", end_ms=500, dur_ms=dur_ms)
    return t


def test_slow_and_fast_outliers_flagged_normal_jitter_not() -> None:
    b = Baselines()
    _history(b)
    slow = _one(250)
    fast = _one(20, trace_id=2)
    normal = _one(101.5, trace_id=3)
    for t in (slow, fast, normal):
        b.observe_many(t.events)  # as ingestion does, before anyone looks
    s = detect_anomalies(slow.events, b)
    f = detect_anomalies(fast.events, b)
    assert len(s) == 1 and s[0]["severity"] == "Critical"
    assert s[0]["direction"] == "slow" and "slower" in s[0]["description"]
    assert s[0]["event_kind"] == "FunctionCall(checkout)"
    assert abs(s[0]["expected_duration_ms"] - 100.0) < 1.5
    assert s[0]["actual_duration_ms"] == 250.0
    assert len(f) == 1 and f[0]["direction"] == "fast" and f[0]["std_dev_from_mean"] > 3.5
    assert detect_anomalies(normal.events, b) == []
    assert s[0]["timestamp"].endswith("Z") and s[0]["location"] == "app.py:5"


def test_baselines_come_from_traces_nobody_viewed() -> None:
    b = Baselines()
    _history(b, n_traces=MIN_SAMPLES)  # fed at ingestion only; detect never called on them
    out = anomalies_response(9, _one(400, trace_id=9).events, b)
    assert out["anomaly_count"] == 1
    assert out["trace_id"] == "00000000-0000-0000-0000-000000000009"


def test_too_few_samples_flags_nothing() -> None:
    b = Baselines()
    _history(b, n_traces=MIN_SAMPLES - 1)
    assert detect_anomalies(_one(10_000).events, b) == []


def test_no_double_counting_when_a_trace_grows_or_is_resent() -> None:
    b = Baselines()
    t = Trace(trace_id=5)
    t.task("m")
    t.call("m", "checkout", end_ms=10, dur_ms=5)
    assert b.observe_many(t.events) == 1
    assert b.observe_many(t.events) == 0  # re-sent batch
    t.call("m", "checkout", end_ms=20, dur_ms=6)  # the trace receives one more event
    assert b.observe_many(t.events) == 1
    stats = b.stats()
    assert stats["observations"] == 2 and stats["duplicates"] == 2
    base = b.baseline(Baselines.key_of(t.events[0]))
    assert base is not None and base.count == 2


def test_untimed_events_do_not_count() -> None:
    b = Baselines()
    t = Trace()
    t.task("m")
    t.access("m", "x")
    assert b.observe_many(t.events) == 0
    assert b.stats()["operations"] == 0


def test_mad_zero_falls_back_and_floor_keeps_steady_ops_quiet() -> None:
    vals = [100 * MS] * 20 + [101 * MS, 99 * MS]
    s = summarise(vals)
    assert s.median_ns == 100 * MS
    assert s.scale_ns >= 0.05 * 100 * MS  # floor: 5 % of the median
    assert abs(s.score(105 * MS)) < 3.5  # 5 % off a steady op is not an anomaly
    assert s.score(150 * MS) > 3.5
    assert summarise([7, 7, 7]).scale_ns == 1000  # 1 µs absolute floor, never zero


def test_robust_to_outliers_already_in_the_baseline() -> None:
    vals = [100 * MS + k * 100_000 for k in range(-10, 11)] + [5000 * MS] * 3
    s = summarise(vals)
    assert abs(s.median_ns - 100.15 * MS) < MS  # mean would be ~ 700 ms
    assert s.scale_ns < 10 * MS  # the standard deviation would be ~ 1,700 ms


def test_severity_cutoffs() -> None:
    assert severity_of(4.0) == "Minor"
    assert severity_of(-7.0) == "Warning"
    assert severity_of(10.5) == "Critical"


def test_reservoir_bounds_memory_and_keeps_the_median() -> None:
    b = Baselines(reservoir_size=64)
    rng = random.Random(3)
    t = Trace(trace_id=77)
    t.task("m")
    for k in range(5000):
        t.call("m", "op", end_ms=k + 10, dur_ms=rng.gauss(50, 2))
    b.observe_many(t.events)
    assert b.stats()["observations"] == 5000
    rows = b.export()
    assert len(rows[0]["sample"]) == 64
    base = b.baseline(Baselines.key_of(t.events[0]))
    assert base is not None and abs(base.median_ns / MS - 50) < 1.5
    restored = Baselines(reservoir_size=64)
    restored.restore(rows)
    again = restored.baseline(Baselines.key_of(t.events[0]))
    assert again is not None and again.median_ns == base.median_ns and again.count == 5000


def test_operations_are_per_service_and_kind_name() -> None:
    t = Trace()
    t.task("m")
    t.task("other", service="billing")
    a = t.call("m", "f", end_ms=1, dur_ms=1)
    c = t.call("other", "f", end_ms=1, dur_ms=1)
    r = t.emit("m", "HttpResponse", {"status": 503, "headers": {}, "body": None, "duration_ms": 12})
    assert Baselines.key_of(a) != Baselines.key_of(c)
    assert event_kind_name(r) == "HttpResponse(503)"
    b = Baselines()
    assert b.observe(r)  # payload duration_ms counts when metadata has none


def test_bad_configuration_is_rejected() -> None:
    with pytest.raises(ValueError, match="reservoir_size"):
        Baselines(reservoir_size=2)
    with pytest.raises(ValueError, match="count"):
        Baselines().restore([{"service": "s", "operation": "o", "count": 1, "sample": [1, 2]}])
