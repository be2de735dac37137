from __future__ import annotations

import orjson
import pytest
from raceway_sdk.protocol.events import uuid_str
from test_analysis_support import Trace, clock_of

from raceway_server.engine.analysis import analyze_trace, race_details, race_lines, severity_label
from raceway_server.engine.anomalies import Baselines


def _acc(e, name: str) -> dict:
    return {
        "event_id": uuid_str(e.id),
        "task": e.ext["task"],
        "task_name": name,
        "access_type": e.data["access_type"],
        "location": e.data["location"],
        "value": e.data["new_value"],
        "timestamp_ns": e.timestamp_ns,
    }


def _racy_trace() -> tuple[Trace, dict]:
    t = Trace(service="bank")
    t.task("main")
    t.fork("main", "w1", at_ms=1)
    t.fork("main", "w2", at_ms=1)
    a = t.access("w1", "alice.balance", at_ms=2, line=41, value=900)
    b = t.access("w2", "alice.balance", at_ms=3, line=42, value=800)
    t.call("main", "transfer", end_ms=10, dur_ms=9)
    race = {
        "id": 1,
        "trace_id": uuid_str(1),
        "severity": "write-write",
        "variable": "alice.balance",
        "loc": "loc:alice.balance",
        "first": _acc(a, "Thread-1"),
        "second": _acc(b, "Thread-2"),
        "stale_read": None,
        "explanation": "Thread-1 and Thread-2 wrote alice.balance with no lock, join or hand-off between them.",
    }
    return t, race


def test_bundle_has_the_original_fields_and_is_json() -> None:
    t, race = _racy_trace()
    b = Baselines()
    b.observe_many(t.events)
    out = analyze_trace(1, t.events, [race], clock_of, b)
    assert set(out) == {
        "trace_id",
        "events",
        "audit_trails",
        "analysis",
        "critical_path",
        "anomalies",
        "dependencies",
    }
    assert out["trace_id"] == uuid_str(1)
    assert len(out["events"]) == len(t.events)
    assert out["events"][0]["kind"] == {"AsyncSpawn": t.events[0].data}
    assert out["events"][0]["raceway"]["task"] == "main"
    an = out["analysis"]
    assert an["concurrent_events"] == an["potential_races"] == 1
    assert an["race_details"][0]["severity"] == "CRITICAL"
    assert an["race_details"][0]["event1_thread"] == "Thread-1"
    assert an["race_details"][0]["event2_location"] == "app.py:42"
    text = "\n".join(an["anomalies"])
    assert "CRITICAL RACE on alice.balance" in text and "WRITE (Write): 900" in text
    assert "Some(" not in text and "Number(" not in text
    trail = out["audit_trails"]["alice.balance"]
    assert [x["is_race"] for x in trail] == [True, True]
    assert out["critical_path"]["path"][-1]["kind"] == "FunctionCall(transfer)"
    assert out["dependencies"]["services"] == [{"name": "bank", "event_count": len(t.events)}]
    assert out["anomalies"] == []  # one sample per operation: no baseline yet
    orjson.dumps(out)


def test_severity_mapping_and_quiet_trace() -> None:
    assert severity_label("write-write") == "CRITICAL"
    assert severity_label("lost-update") == "CRITICAL"
    assert severity_label("read-write") == "WARNING"
    with pytest.raises(ValueError, match="unknown race severity 'maybe'"):
        severity_label("maybe")
    assert race_lines([]) == ["No potential races detected for this trace"]
    t, race = _racy_trace()
    lost = dict(race, severity="lost-update", stale_read=race["first"])
    assert "Event 3:" in "\n".join(race_lines([lost]))
    rw = dict(race, severity="read-write", explanation=None)
    row = race_details([rw])[0]
    assert row["severity"] == "WARNING" and "read-write race on alice.balance" in row["description"]
    empty = analyze_trace(2, [], [], clock_of, Baselines())
    assert empty["critical_path"] is None and empty["dependencies"] is None
    assert empty["analysis"]["anomalies"] == ["No potential races detected for this trace"]
