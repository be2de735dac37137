"""The ingestion service without HTTP: warm-up gating, memory retention, disabled analyses."""

from __future__ import annotations

import time
import uuid

import pytest
from rw_events import access, racing_trace

from raceway_server.config import Config
from raceway_server.service import Service, Unavailable


def test_nothing_is_served_before_the_warm_up_completes() -> None:
    service = Service(Config())
    with pytest.raises(Unavailable, match="warming up") as info:
        service.ingest(racing_trace()[1])
    assert info.value.retry_after == 1
    with pytest.raises(Unavailable):
        service.trace_page(1, 20)
    service.start(background=False)
    assert service.ingest(racing_trace()[1]).ingested == 2


def test_memory_retention_frees_the_engine_too() -> None:
    service = Service(Config(retention_max_traces=1))
    service.start(background=False)
    now = time.time_ns()
    traces = [uuid.uuid4().int for _ in range(3)]
    for i, trace in enumerate(traces):
        service.ingest([access(trace, "a/1", {"a/1": 1}, ts=now + i), access(trace, "b/1", {"b/1": 1}, ts=now + i)])
    assert len(service.engine.races()) == 3
    assert service.enforce_retention() == 2
    assert list(service.catalog.traces) == [traces[2]]
    assert service.engine.trace_ids() == [traces[2]]
    assert [r.trace_id for r in service.engine.races()] == [traces[2]]
    # the deleted ids may be sent again (they are new to the store now)
    again = service.ingest([access(traces[0], "a/1", {"a/1": 1}, ts=now + 5)])
    assert again.ingested == 1 and again.duplicates == 0
    service.close()


def test_disabled_analyses_are_honoured() -> None:
    service = Service(Config(race_detection=False, anomaly_detection=False))
    service.start(background=False)
    trace, events = racing_trace()
    service.ingest(events)
    bundle = service.trace_bundle(trace)
    assert bundle["analysis"]["potential_races"] == 0 and bundle["anomalies"] == []
    assert service.anomalies(trace)["anomalies"] == []


def test_baselines_count_each_stored_event_once() -> None:
    """The service's baselines rely on the deduplicated log (no per-event id guard of their
    own): a re-sent batch and duplicates inside a batch add no observations."""
    service = Service(Config())
    service.start(background=False)
    trace = uuid.uuid4().int
    events = [access(trace, "a/1", {"a/1": i + 1}, ts=time.time_ns() + i, duration_ns=1000 + i) for i in range(20)]
    assert service.ingest(events + events[:5]).ingested == 20
    assert service.ingest(events).duplicates == 20
    stats = service.baselines.stats()
    assert stats["observations"] == 20 and stats["duplicates"] == 0
    assert service.baselines._seen == {}  # no per-trace id sets kept
    service.close()
