from __future__ import annotations

import pytest
from raceway_sdk.protocol.events import uuid_str
from test_analysis_support import Trace, clock_of

from raceway_server.engine.audit import audit_trail, audit_trails, causal_order, race_index


def _race(rid: int, first, second, severity: str = "write-write") -> dict:
    def acc(e):
        return {
            "event_id": uuid_str(e.id),
            "task": e.ext["task"],
            "access_type": e.data["access_type"],
            "location": e.data["location"],
        }

    return {
        "id": rid,
        "severity": severity,
        "variable": first.data["variable"],
        "first": acc(first),
        "second": acc(second),
        "stale_read": None,
    }


def test_causal_links_follow_clocks_not_adjacency() -> None:
    t = Trace()
    t.task("A")
    t.task("B")
    a1 = t.access("A", "x", at_ms=1)
    t.release("A", "L", at_ms=2)
    t.acquire("B", "L", at_ms=3)
    b1 = t.access("B", "x", at_ms=4)  # ordered after a1 by the lock
    t.task("C")
    c1 = t.access("C", "x", at_ms=5)  # concurrent with b1
    trail = audit_trail(1, t.events, "x", clock_of, [])
    acc = trail["accesses"]
    assert [a["event_id"] for a in acc] == [uuid_str(e.id) for e in (a1, b1, c1)]
    assert [a["has_causal_link_to_previous"] for a in acc] == [True, True, False]
    assert [a["task"] for a in acc] == ["A", "B", "C"]
    assert acc[0]["thread_id"] == "thread-A" and acc[0]["service_name"] == "svc"
    assert acc[0]["access_type"] == "Write" and acc[0]["location"] == "app.py:10"
    assert acc[0]["timestamp"].endswith("Z")


def test_race_flags_come_from_engine_reports_only() -> None:
    t = Trace()
    t.task("A")
    t.task("B")
    a1 = t.access("A", "x", at_ms=1, line=1)
    b1 = t.access("B", "x", at_ms=2, line=2)
    a2 = t.access("A", "x", at_ms=3, line=3)
    # b1/a2 are also an unordered adjacent pair, but the engine reported only a1/b1
    trail = audit_trail(1, t.events, "x", clock_of, [_race(7, a1, b1)])["accesses"]
    assert [a["is_race"] for a in trail] == [True, True, False]
    assert trail[0]["race_ids"] == [7]
    assert [a["has_causal_link_to_previous"] for a in trail] == [True, False, False]
    assert uuid_str(a2.id) == trail[2]["event_id"]


def test_order_is_causal_even_when_wall_clocks_disagree() -> None:
    t = Trace()
    t.task("client", service="web")
    t.task("server", service="api")
    first = t.access("client", "row", at_ms=50)  # client's clock runs 40 ms ahead
    t.release("client", "req", at_ms=51, lock_type="http")
    t.acquire("server", "req", at_ms=12)
    second = t.access("server", "row", at_ms=13)
    trail = audit_trail(1, t.events, "row", clock_of, [])["accesses"]
    assert [a["event_id"] for a in trail] == [uuid_str(first.id), uuid_str(second.id)]
    assert trail[1]["has_causal_link_to_previous"] is True
    # concurrent accesses fall back to time order
    u = Trace()
    u.task("A")
    u.task("B")
    late = u.access("A", "v", at_ms=9)
    early = u.access("B", "v", at_ms=3)
    order = causal_order([late, early], [clock_of(late), clock_of(early)])
    assert order == [1, 0]


def test_bulk_form_and_location_identity() -> None:
    t = Trace()
    t.task("A")
    t.task("B")
    t.access("A", "x", at_ms=1)
    t.access("B", "y", "Read", at_ms=2)
    # two objects with the same attribute name: links are per location, not per name
    o1 = t.emit(
        "A",
        "StateChange",
        {"variable": "Acct.bal", "location": "a.py:1", "access_type": "Write", "new_value": 1},
        3,
        ext={"loc": "obj1.bal"},
    )
    o2 = t.emit(
        "B",
        "StateChange",
        {"variable": "Acct.bal", "location": "a.py:1", "access_type": "Write", "new_value": 2},
        4,
        ext={"loc": "obj2.bal"},
    )
    trails = audit_trails(t.events, clock_of, [])
    assert sorted(trails) == ["Acct.bal", "x", "y"]
    bal = trails["Acct.bal"]
    assert [a["loc"] for a in bal] == ["obj1.bal", "obj2.bal"]
    assert [a["has_causal_link_to_previous"] for a in bal] == [True, True]  # each first at its loc
    assert bal[1]["new_value"] == 2
    by_loc = audit_trail(1, t.events, "obj2.bal", clock_of, [])["accesses"]
    assert [a["event_id"] for a in by_loc] == [uuid_str(o2.id)]
    assert o1.id != o2.id
    assert audit_trail(1, t.events, "nope", clock_of, [])["accesses"] == []


def test_race_objects_and_bad_ids() -> None:
    class R:
        def to_dict(self) -> dict:
            return {
                "id": 3,
                "first": {"event_id": 5},
                "second": {"event_id": uuid_str(6)},
                "stale_read": {"event_id": 9},
            }

    assert race_index([R()]) == {5: [3], 6: [3], 9: [3]}
    with pytest.raises(TypeError, match="event id"):
        race_index([{"id": 1, "first": {"event_id": 1.5}}])
    with pytest.raises(TypeError, match="Race or a dict"):
        race_index([object()])
