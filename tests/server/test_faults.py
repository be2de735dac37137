"""Faults: PostgreSQL restarted in the middle of ingestion loses no acknowledged event."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import httpx
import psycopg
import pytest
from raceway_sdk.protocol.events import uuid_str
from rw_events import body, bulk
from rw_server import PgCluster, RunningServer

pytestmark = pytest.mark.postgres


def test_postgres_restart_mid_ingest_loses_no_acknowledged_event(
    serve: Callable[..., RunningServer], pg_cluster: PgCluster, pg_url: str
) -> None:
    server = serve(
        storage_backend="postgres", database_url=pg_url, pg_min_connections=1,
        pg_max_connections=4, pg_connect_timeout=2.0,
    )
    acked: set[str] = set()
    statuses: list[int] = []
    restarted = threading.Event()
    batches = [bulk(50, traces=5) for _ in range(60)]

    def restart() -> None:
        while len(statuses) < 5:
            time.sleep(0.01)
        pg_cluster.stop()  # every connection dies; down longer than the pool's 2 s timeout
        time.sleep(3)
        pg_cluster.start()
        restarted.set()

    restarter = threading.Thread(target=restart)
    restarter.start()
    deadline = time.monotonic() + 60
    with httpx.Client(base_url=server.url, timeout=10) as client:
        for batch in batches:
            payload = body(batch)
            while True:  # the client SDK's contract: retry until acknowledged
                assert time.monotonic() < deadline, "ingestion did not recover"
                try:
                    response = client.post("/events", content=payload, headers={"content-type": "application/json"})
                except httpx.TransportError:
                    time.sleep(0.1)
                    continue
                statuses.append(response.status_code)
                if response.status_code == 200:
                    acked.update(uuid_str(e.id) for e in batch)
                    break
                assert response.status_code == 503, response.text
                assert int(response.headers["Retry-After"]) >= 1
                time.sleep(0.2)
    restarter.join()
    assert restarted.is_set()
    assert 503 in statuses, "the restart never hit the ingest path (test proves nothing)"
    with psycopg.connect(pg_url) as conn:
        stored = {str(r[0]) for r in conn.execute("SELECT id FROM raceway_events")}
    assert acked <= stored  # every acknowledged event is durable
    assert len(acked) == 60 * 50
    status = httpx.get(server.url + "/status").json()["data"]
    assert status["events_captured"] == len(stored) == len(acked)  # nothing double-counted
    assert status["ingestion"]["storage_failures"] >= 1
    assert status["storage"]["pool"]["connections_lost"] + status["storage"]["pool"]["connections_errors"] >= 1
