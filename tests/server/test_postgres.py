"""PostgreSQL storage against a real server: the log, migrations, restart, scale-out, retention."""

from __future__ import annotations

import datetime
import time
import uuid
from collections.abc import Callable

import httpx
import orjson
import psycopg
import pytest
from raceway_sdk.protocol.events import Event, uuid_str
from rw_events import access, body, bulk, racing_trace, wire
from rw_server import RunningServer

from raceway_server.config import Config
from raceway_server.service import Service
from raceway_server.storage.base import Deletion
from raceway_server.storage.postgres import PostgresStorage, migrations

pytestmark = pytest.mark.postgres


def _storage(url: str) -> PostgresStorage:
    storage = PostgresStorage(url, min_connections=1, max_connections=4, connect_timeout=5)
    storage.open()
    return storage


def _pg(url: str, **settings: object) -> dict[str, object]:
    return dict(storage_backend="postgres", database_url=url, pg_min_connections=1, pg_max_connections=4,
                pg_connect_timeout=5.0, **settings)


def test_migrations_apply_once_and_create_indexes(pg_url: str) -> None:
    first = _storage(pg_url)
    second = PostgresStorage(pg_url, min_connections=1, max_connections=2)
    second.open()
    assert second.migrate() == []  # already applied by the first process
    with psycopg.connect(pg_url) as conn:
        versions = [r[0] for r in conn.execute("SELECT version FROM raceway_schema_migrations")]
        indexes = {r[0] for r in conn.execute("SELECT indexname FROM pg_indexes WHERE tablename = 'raceway_events'")}
    assert versions == [v for v, _ in migrations()]
    assert {"raceway_events_seq", "raceway_events_trace_seq", "raceway_events_pkey"} <= indexes
    first.close()
    second.close()


def test_log_dedupes_orders_and_feeds_other_writers(pg_url: str) -> None:
    a, b = _storage(pg_url), _storage(pg_url)
    _, first = racing_trace()
    result = a.append(first)
    assert [e.id for e in result.new] == [e.id for e in first] and result.foreign == []
    again = b.append(first + first)
    assert again.new == [] and again.duplicates == 4
    assert [e.id for e in again.foreign if isinstance(e, Event)] == [e.id for e in first]  # b learns a's first
    second = bulk(5, traces=1)
    b.append(second)
    caught = a.catch_up()
    assert [e.id for e in caught if isinstance(e, Event)] == [e.id for e in second]
    assert all(isinstance(e, Event) for e in caught)
    assert a.catch_up() == []
    # a fresh reader replays everything in log order, with extensions intact
    c = PostgresStorage(pg_url, min_connections=1, max_connections=2)
    c.open()
    replay = [e for chunk in c.load() for e in chunk]
    assert [e.id for e in replay] == [e.id for e in first + second]
    assert replay[0].ext == first[0].ext and replay[0].vc == first[0].vc
    assert replay[0].timestamp_ns == first[0].timestamp_ns
    for s in (a, b, c):
        s.close()


def test_deletions_reach_other_processes_in_order(pg_url: str) -> None:
    a, b = _storage(pg_url), _storage(pg_url)
    trace, events = racing_trace()
    a.append(events)
    b.catch_up()
    a.delete_traces([trace])
    ops = b.catch_up()
    assert len(ops) == 1 and isinstance(ops[0], Deletion) and ops[0].trace_ids == [trace]
    with psycopg.connect(pg_url) as conn:
        assert conn.execute("SELECT count(*) FROM raceway_events").fetchone() == (0,)
    a.close()
    b.close()


def test_dead_pooled_connections_are_replaced_without_failing_the_call(pg_url: str) -> None:
    """Connections are not checked on checkout: a dead one costs a retry, not a 503."""
    storage = _storage(pg_url)
    _, first = racing_trace()
    storage.append(first)
    with psycopg.connect(pg_url, autocommit=True) as admin:
        killed = admin.execute(
            "SELECT count(*) FROM (SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()) t"
        ).fetchone()
    assert killed is not None and killed[0] >= 1  # the pool's idle connection(s) died
    second = bulk(7, traces=1)
    result = storage.append(second)  # would raise StorageUnavailable without the retry
    assert [e.id for e in result.new] == [e.id for e in second] and result.duplicates == 0
    assert storage.catch_up() == []
    with psycopg.connect(pg_url) as conn:
        assert conn.execute("SELECT count(*), max(seq) FROM raceway_events").fetchone() == (
            len(first) + 7, len(first) + 7,
        )
    storage.close()


def test_restart_rebuilds_engine_state_from_the_database(serve: Callable[..., RunningServer], pg_url: str) -> None:
    first = serve(**_pg(pg_url))
    trace, events = racing_trace()
    assert httpx.post(first.url + "/events", content=body(events)).status_code == 200
    before = httpx.get(f"{first.url}/api/traces/{uuid_str(trace)}").json()["data"]
    first.stop()
    second = serve(**_pg(pg_url))
    status = httpx.get(second.url + "/status").json()["data"]
    assert status["warmup"]["phase"] == "completed" and status["warmup"]["processed_traces"] == 1
    after = httpx.get(f"{second.url}/api/traces/{uuid_str(trace)}").json()["data"]
    assert after["analysis"] == before["analysis"] and after["events"] == before["events"]
    assert after["analysis"]["potential_races"] == 1
    # the rebuilt process still deduplicates what was stored before the restart
    again = httpx.post(second.url + "/events", content=body(events)).json()["data"]
    assert again["duplicates"] == 2 and again["ingested"] == 0


def test_two_processes_sharing_one_database_agree(serve: Callable[..., RunningServer], pg_url: str) -> None:
    a, b = serve(**_pg(pg_url)), serve(**_pg(pg_url))
    traces = []
    for n in range(6):
        trace, events = racing_trace(service=f"svc{n % 2}")
        traces.append(trace)
        target = a if n % 2 else b
        # split one trace across both processes: the first event to one, the second to the other
        assert httpx.post(target.url + "/events", content=body(events[:1])).status_code == 200
        other = b if target is a else a
        assert httpx.post(other.url + "/events", content=body(events[1:])).status_code == 200
    for path in ["/api/traces?page_size=50", "/api/services", "/api/distributed/global-races",
                 "/api/distributed/hotspots", f"/api/traces/{uuid_str(traces[0])}",
                 "/api/races?page_size=4", "/api/races?page=2&page_size=4",
                 f"/api/races?trace_id={uuid_str(traces[2])}"]:
        got_a = httpx.get(a.url + path).json()["data"]
        got_b = httpx.get(b.url + path).json()["data"]
        assert got_a == got_b, path
    bundle = httpx.get(f"{a.url}/api/traces/{uuid_str(traces[3])}").json()["data"]
    assert bundle["analysis"]["potential_races"] == 1 and len(bundle["races"]) == 1
    listing = httpx.get(b.url + "/api/traces?page_size=50").json()["data"]["traces"]
    assert {t["trace_id"]: t["race_count"] for t in listing} == {uuid_str(t): 1 for t in traces}
    races = httpx.get(b.url + "/api/races?page_size=50").json()["data"]
    assert races["total_races"] == 6 and {r["trace_id"] for r in races["races"]} == {uuid_str(t) for t in traces}


def test_race_list_pages_agree_across_processes_and_restarts(
    serve: Callable[..., RunningServer], pg_url: str
) -> None:
    a, b = serve(**_pg(pg_url)), serve(**_pg(pg_url))
    base = 1_790_000_000_000_000_000
    made = []
    for n in range(5):  # timestamps decide the order, not which process received the events
        trace = uuid.uuid4().int
        made.append(trace)
        events = [access(trace, "t/1", {"t/1": 1}, f"v{n}", "Write", 10, ts=base + n * 100),
                  access(trace, "t/2", {"t/2": 1}, f"v{n}", "Read", 20, ts=base + n * 100 + 5)]
        target = (a, b)[(n * 3) % 2]
        assert httpx.post(target.url + "/events", content=body(events[::-1])).status_code == 200

    def pages(server: RunningServer) -> list[list[str]]:
        return [[r["trace_id"] for r in httpx.get(server.url + "/api/races",
                                                  params={"page": p, "page_size": 2}).json()["data"]["races"]]
                for p in (1, 2, 3)]

    expected = [[uuid_str(t) for t in made[::-1][i:i + 2]] for i in (0, 2, 4)]
    assert pages(a) == pages(b) == expected
    only = httpx.get(a.url + "/api/races", params={"variable": "v3", "severity": "read-write"}).json()["data"]
    assert [r["trace_id"] for r in only["races"]] == [uuid_str(made[3])]
    a.stop()
    restarted = serve(**_pg(pg_url))
    assert pages(restarted) == expected
    whole = httpx.get(restarted.url + "/api/races").json()["data"]["races"]
    assert whole == httpx.get(b.url + "/api/races").json()["data"]["races"]


def test_retention_by_count_and_age_is_enforced_everywhere(pg_url: str) -> None:
    keeper = Service(Config(**_pg(pg_url, retention_max_traces=2, retention_max_age_hours=1.0)))  # type: ignore[arg-type]
    keeper.start(background=False)
    watcher = Service(Config(**_pg(pg_url)))  # type: ignore[arg-type]
    watcher.start(background=False)
    now = time.time_ns()
    old = uuid.uuid4().int
    keeper.ingest([access(old, "o/1", {"o/1": 1}, ts=now - 2 * 3600 * 10**9)])
    fresh = []
    for i in range(3):
        trace = uuid.uuid4().int
        fresh.append(trace)
        keeper.ingest([access(trace, "f/1", {"f/1": 1}, ts=now + i)])
    watcher.refresh()
    assert len(watcher.catalog.traces) == 4
    assert keeper.enforce_retention(now_ns=now + 10) == 2  # the old one by age, the oldest fresh by count
    with psycopg.connect(pg_url) as conn:
        stored = {r[0].int for r in conn.execute("SELECT DISTINCT trace_id FROM raceway_events")}
    assert stored == set(fresh[1:])
    watcher.refresh()
    assert set(watcher.catalog.traces) == set(fresh[1:])
    assert watcher.catalog.event_count == 2
    assert keeper.status()["ingestion"]["retention_deleted_traces"] == 2
    keeper.close()
    watcher.close()


def test_posted_events_are_stored_as_received_and_replay_identically(
    serve: Callable[..., RunningServer], pg_url: str
) -> None:
    """A batch the fast path decodes is stored with each event's JSON text as sent (no second
    serialisation): indented JSON (newlines for COPY to escape), backslashes and tabs inside
    strings, upper-case UUIDs, an unknown field. The columns stay canonical; a restart rebuilds
    the same events."""
    trace, events = racing_trace(variable="a\\b\tc\u00e9")
    sent = wire(events)
    sent[0]["extra"] = {"kept": [1, 2]}  # unknown: ignored by the parser, kept in the stored text
    sent[1]["id"] = sent[1]["id"].upper()
    text = orjson.dumps({"events": sent}, option=orjson.OPT_INDENT_2)
    first = serve(**_pg(pg_url))
    assert httpx.post(first.url + "/events", content=text).status_code == 200
    before = httpx.get(f"{first.url}/api/traces/{uuid_str(trace)}").json()["data"]
    with psycopg.connect(pg_url) as conn:
        rows = conn.execute(
            "SELECT id, trace_id, parent_id, ts, kind, service_name, body::text "
            "FROM raceway_events ORDER BY seq"
        ).fetchall()
    assert [orjson.loads(r[6]) for r in rows] == sent  # the text as sent, every key
    assert b"\n" in text and all("\n" in r[6] for r in rows)  # the indentation survived COPY
    for row, event in zip(rows, events, strict=True):
        assert row[0].int == event.id and row[1].int == trace and row[2] is None
        micros = (row[3] - datetime.datetime(1970, 1, 1, tzinfo=datetime.timezone.utc)) // datetime.timedelta(
            microseconds=1
        )
        assert abs(micros * 1000 - event.timestamp_ns) <= 500  # PostgreSQL keeps microseconds
        assert row[4:6] == ("StateChange", "svc")
    first.stop()
    second = serve(**_pg(pg_url))
    after = httpx.get(f"{second.url}/api/traces/{uuid_str(trace)}").json()["data"]
    assert after["events"] == before["events"] and after["analysis"] == before["analysis"]
    assert after["events"][0]["kind"]["StateChange"]["variable"] == "a\\b\tc\u00e9"
    assert after["analysis"]["potential_races"] == 1


def test_prepare_writes_the_same_columns_with_and_without_raw(pg_url: str) -> None:
    """Both row writers (serialised, as received) fill identical columns and dedupe alike."""
    storage = _storage(pg_url)
    events = bulk(6, traces=2) + racing_trace()[1]
    events[3].parent_id = events[2].id
    raw = [orjson.dumps(w) for w in wire(events)]
    storage.append(events[:2] + events[:1], storage.prepare(events[:2] + events[:1]))
    result = storage.append(events, storage.prepare(events, raw))
    assert [e.id for e in result.new] == [e.id for e in events[2:]] and result.duplicates == 2
    with psycopg.connect(pg_url) as conn:
        rows = conn.execute(
            "SELECT id, trace_id, parent_id, ts, kind, service_name, body::jsonb FROM raceway_events "
            "ORDER BY seq"
        ).fetchall()
    assert [r[0].int for r in rows] == [e.id for e in events]
    assert rows[3][2].int == events[2].id
    assert [r[6] for r in rows] == wire(events)
    replay = PostgresStorage(pg_url, min_connections=1, max_connections=2)
    replay.open()
    loaded = [e for chunk in replay.load() for e in chunk]
    assert [(e.id, e.timestamp_ns, e.vc, e.ext) for e in loaded] == [
        (e.id, e.timestamp_ns, e.vc, e.ext) for e in events
    ]
    storage.close()
    replay.close()


def test_concurrent_ingests_are_applied_in_log_order(pg_url: str) -> None:
    """Commits and analysis overlap across threads, yet every process applies the log in seq
    order: the in-memory order of each trace equals the database's, for a reader and a writer
    running retention meanwhile."""
    import threading

    writer = Service(Config(**_pg(pg_url)))  # type: ignore[arg-type]
    writer.start(background=False)
    reader = Service(Config(**_pg(pg_url)))  # type: ignore[arg-type]
    reader.start(background=False)
    traces = [uuid.uuid4().int for _ in range(3)]
    now = time.time_ns()

    def post(worker: int) -> None:
        for b in range(6):
            batch = [
                access(traces[i % 3], f"w{worker}/{i % 3}", {f"w{worker}/{i % 3}": b * 40 + i + 1},
                       f"v{i % 5}", ts=now + worker * 10_000 + b * 100 + i)
                for i in range(40)
            ]
            writer.ingest(batch)
            if b % 2:
                reader.refresh()

    threads = [threading.Thread(target=post, args=(w,)) for w in range(4)]
    for t in threads:
        t.start()
    while any(t.is_alive() for t in threads):
        writer.enforce_retention()  # retention is configured off: takes the exclusive path anyway
        writer.refresh()
    for t in threads:
        t.join()
    reader.refresh()
    with psycopg.connect(pg_url) as conn:
        for k, trace in enumerate(traces):
            stored = [r[0].int for r in conn.execute(
                "SELECT id FROM raceway_events WHERE trace_id = %s ORDER BY seq", (uuid.UUID(int=trace),)
            )]
            assert len(stored) == 4 * 6 * len(range(k, 40, 3))
            assert [e.id for e in writer.trace_events(trace)] == stored
            assert [e.id for e in reader.trace_events(trace)] == stored
    assert writer.status()["ingestion"]["ingested"] == 4 * 6 * 40
    assert writer._applied == writer._issued
    writer.close()
    reader.close()

