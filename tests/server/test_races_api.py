"""The additions the UIs need (issue #6), over real HTTP: trace race counts, full race records in
the trace bundle, the paginated ``GET /api/races`` and enveloped exports (memory storage; the
PostgreSQL counterparts are in test_postgres.py)."""

from __future__ import annotations

import random
import uuid
from collections.abc import Callable
from typing import Any

import httpx
import orjson
import pytest
from raceway_sdk.protocol.events import Event, uuid_str
from rw_events import access, body, ordered_trace
from rw_server import RunningServer

BASE = 1_790_000_000_000_000_000  # fixed timestamps: the expected order does not depend on the clock


def racy(ts: int, variable: str = "counter", second: str = "Write", extra: str | None = None) -> tuple[int, list[Event]]:
    """Two unordered tasks on ``variable`` at ``ts`` and ``ts + 10``: one race (write-write, or
    read-write when ``second`` is a Read); ``extra`` adds a second race on another variable."""
    trace = uuid.uuid4().int
    events = [
        access(trace, "t/1", {"t/1": 1}, variable, "Write", 10, ts=ts),
        access(trace, "t/2", {"t/2": 1}, variable, second, 20, ts=ts + 10),
    ]
    if extra is not None:
        events += [
            access(trace, "t/1", {"t/1": 2}, extra, "Write", 30, ts=ts + 20),
            access(trace, "t/2", {"t/2": 2}, extra, "Write", 40, ts=ts + 30),
        ]
    return trace, events


def data(response: httpx.Response) -> Any:
    assert response.status_code == 200, response.text
    envelope = response.json()
    assert envelope["success"] is True and envelope["error"] is None
    return envelope["data"]


def get(server: RunningServer, path: str, **params: Any) -> httpx.Response:
    return httpx.get(server.url + path, params=params)


def post(server: RunningServer, events: list[Event]) -> None:
    assert httpx.post(server.url + "/events", content=body(events)).status_code == 200


def newest_first(server: RunningServer, **params: Any) -> list[tuple[str, str]]:
    """(trace, variable) of every race page by page, to check the paging is a stable slicing."""
    out: list[tuple[str, str]] = []
    page = 1
    while True:
        got = data(get(server, "/api/races", page=page, page_size=2, **params))
        out += [(r["trace_id"], r["variable"]) for r in got["races"]]
        if page >= got["total_pages"]:
            return out
        page += 1


def test_trace_summaries_carry_race_counts(server: RunningServer) -> None:
    double, e1 = racy(BASE, "a", extra="b")
    single, e2 = racy(BASE + 1000, "a")
    quiet, e3 = ordered_trace()
    post(server, e1 + e2 + e3)
    listed = {t["trace_id"]: t for t in data(get(server, "/api/traces"))["traces"]}
    assert {tid: t["race_count"] for tid, t in listed.items()} == {
        uuid_str(double): 2, uuid_str(single): 1, uuid_str(quiet): 0
    }
    # every original field is still there, unchanged
    assert set(listed[uuid_str(double)]) == {
        "trace_id", "event_count", "first_timestamp", "last_timestamp", "service_count", "services", "race_count"
    }
    assert listed[uuid_str(double)]["event_count"] == 4
    by_service = data(get(server, "/api/services/svc/traces"))["traces"]
    assert {t["trace_id"]: t["race_count"] for t in by_service} == {tid: t["race_count"] for tid, t in listed.items()}


def test_bundle_carries_full_race_records_and_tasks(server: RunningServer) -> None:
    trace, events = racy(BASE, "stock", extra="cash")
    post(server, events)
    tid = uuid_str(trace)
    bundle = data(get(server, f"/api/traces/{tid}"))
    # the original's analysis block is unchanged: two summary rows
    assert bundle["analysis"]["potential_races"] == 2
    assert [d["variable"] for d in bundle["analysis"]["race_details"]] == ["stock", "cash"]
    races = bundle["races"]
    assert [(r["variable"], r["severity"]) for r in races] == [("stock", "write-write"), ("cash", "write-write")]
    first, second = races[0]["first"], races[0]["second"]
    assert (first["task"], first["location"], first["vc"]) == ("t/1", "app.py:10", {"t/1": 1})
    assert (second["task"], second["location"], second["vc"]) == ("t/2", "app.py:20", {"t/2": 1})
    assert races[0]["key"] == ["app.py:10", "app.py:20"] and races[0]["trace_id"] == tid
    assert [d["race_id"] for d in bundle["analysis"]["race_details"]] == [r["id"] for r in races]
    assert sorted(bundle["tasks"]) == ["t/1", "t/2"] and bundle["tasks"]["t/1"]["kind"] == "thread"
    # the same records as the race list and the session export
    listed = data(get(server, "/api/races", trace_id=tid))["races"]
    assert sorted(listed, key=lambda r: r["id"]) == races
    session = get(server, f"/api/traces/{tid}/export").json()
    assert [{k: v for k, v in r.items() if k not in ("test", "status")} for r in session["races"]] == races
    assert session["traces"][tid]["tasks"] == bundle["tasks"]


def test_race_list_is_newest_first_paged_and_filtered(server: RunningServer) -> None:
    made = [racy(BASE + k * 1000, f"v{k % 3}", second="Read" if k % 2 else "Write") for k in range(7)]
    shuffled = made[:]
    random.Random(7).shuffle(shuffled)  # arrival order is not the expected order
    for _, events in shuffled:
        post(server, events)
    expected = [(uuid_str(t), f"v{k % 3}") for k, (t, _) in reversed(list(enumerate(made)))]
    assert newest_first(server) == expected
    assert newest_first(server) == expected  # stable across calls
    everything = data(get(server, "/api/races"))
    assert everything["total_races"] == 7 and everything["page_size"] == 20 and everything["total_pages"] == 1
    assert everything["by_severity"] == {"write-write": 4, "read-write": 3}
    assert data(get(server, "/api/races", page=9))["races"] == []

    on_v1 = data(get(server, "/api/races", variable="v1"))
    assert [r["variable"] for r in on_v1["races"]] == ["v1", "v1"] and on_v1["total_races"] == 2
    reads = data(get(server, "/api/races", severity="read-write"))
    assert reads["total_races"] == 3 and {r["severity"] for r in reads["races"]} == {"read-write"}
    assert reads["by_severity"] == {"write-write": 4, "read-write": 3}  # counts before the severity filter
    one = uuid_str(made[4][0])
    assert [r["trace_id"] for r in data(get(server, "/api/races", trace_id=one))["races"]] == [one]
    assert data(get(server, "/api/races", trace_id=str(uuid.uuid4())))["total_races"] == 0
    assert data(get(server, "/api/races", variable="v1", severity="read-write"))["total_races"] == 1


@pytest.mark.parametrize(
    ("params", "needle"),
    [
        ({"page_size": 0}, "'page_size' must be between 1 and 1000"),
        ({"page_size": 1001}, "'page_size' must be between 1 and 1000"),
        ({"page": 0}, "'page' must be between"),
        ({"page": "x"}, "'page' must be an integer"),
        ({"trace_id": "nope"}, "'trace_id' must be a UUID"),
        ({"severity": "CRITICAL"}, "'severity' must be one of write-write, lost-update, read-write"),
    ],
)
def test_race_list_bad_parameters_are_400(server: RunningServer, params: dict[str, Any], needle: str) -> None:
    response = get(server, "/api/races", **params)
    assert response.status_code == 400
    assert response.json()["success"] is False and needle in response.json()["error"]


def test_race_detection_off_means_no_races_anywhere(serve: Callable[..., RunningServer]) -> None:
    server = serve(race_detection=False)
    trace, events = racy(BASE)
    post(server, events)
    assert data(get(server, "/api/traces"))["traces"][0]["race_count"] == 0
    assert data(get(server, "/api/races")) == {
        "total_races": 0, "page": 1, "page_size": 20, "total_pages": 0, "by_severity": {}, "races": []
    }
    assert data(get(server, f"/api/traces/{uuid_str(trace)}"))["races"] == []


def test_exports_stay_bare_and_can_be_enveloped(server: RunningServer) -> None:
    trace, events = racy(BASE)
    post(server, events)
    tid = uuid_str(trace)
    path = f"/api/traces/{tid}/export"

    def same(doc: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in doc.items() if k != "generated_at"}  # a session is stamped

    for fmt in ("session", "events"):
        bare = get(server, path, format=fmt)
        assert bare.status_code == 200 and "success" not in bare.json()
        assert same(data(get(server, path, format=fmt, envelope=1))) == same(bare.json())
        assert same(data(get(server, path, format=fmt, envelope="true"))) == same(bare.json())
        assert same(get(server, path, format=fmt, envelope=0).json()) == same(bare.json())
    shiviz = get(server, path, format="shiviz")
    assert shiviz.headers["content-type"].startswith("text/plain")
    assert "attachment" in shiviz.headers["content-disposition"]
    wrapped = get(server, path, format="shiviz", envelope=1)
    assert wrapped.headers["content-type"] == "application/json"
    assert data(wrapped) == shiviz.text
    session = get(server, "/api/export/session")
    assert "success" not in session.json()
    enveloped = data(get(server, "/api/export/session", envelope=1, trace_id=tid))
    assert enveloped["format"] == "raceway-session" and list(enveloped["traces"]) == [tid]
    bad = get(server, path, envelope="maybe")
    assert bad.status_code == 400 and "'envelope' must be 1/true or 0/false" in bad.json()["error"]
    assert get(server, "/api/export/session", envelope="2").status_code == 400
    # the enveloped document is valid JSON even for a trace id list
    assert orjson.loads(get(server, "/api/export/session", envelope=1).content)["success"] is True


def test_new_routes_sit_behind_the_api_key(serve: Callable[..., RunningServer]) -> None:
    server = serve(api_keys=("k-123",))
    trace, events = racy(BASE)
    keyed = {"Authorization": "Bearer k-123"}
    assert httpx.post(server.url + "/events", content=body(events), headers=keyed).status_code == 200
    for path in ("/api/races", f"/api/traces/{uuid_str(trace)}/export?envelope=1"):
        denied = httpx.get(server.url + path)
        assert denied.status_code == 401 and denied.json()["success"] is False
        assert data(httpx.get(server.url + path, headers=keyed))
    assert data(httpx.get(server.url + "/api/races", headers=keyed))["total_races"] == 1
