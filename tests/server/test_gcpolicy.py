"""The garbage-collector policy of ``raceway serve`` (freeze applied batches, bounded garbage)."""

from __future__ import annotations

import gc
import weakref
from collections.abc import Iterator

import pytest
from rw_events import bulk

from raceway_server import gcpolicy
from raceway_server.config import Config
from raceway_server.service import Service
from raceway_server.storage.memory import MemoryStorage


class Node:
    def __init__(self) -> None:
        self.me = self  # a reference cycle: only the cyclic collector frees it


@pytest.fixture
def policy() -> Iterator[gcpolicy.FreezePolicy]:
    gc.collect()
    installed = gcpolicy.install(min_full=5_000, full_ratio=1)
    installed.after_batch()  # the first freeze takes the whole heap: one full collection
    assert installed.full_collections == 1
    try:
        yield installed
    finally:
        gcpolicy.uninstall()  # everything frozen goes back to the collector
        gc.collect()


def test_off_unless_installed() -> None:
    gc.unfreeze()
    assert gcpolicy.stats() is None
    gcpolicy.after_batch()
    assert gc.get_freeze_count() == 0


def test_young_cycles_are_freed_before_freezing(policy: gcpolicy.FreezePolicy) -> None:
    ref = weakref.ref(Node())  # already garbage when the batch ends
    policy.after_batch()
    assert ref() is None and policy.full_collections == 1


def test_applied_objects_leave_the_collector_and_frozen_cycles_are_freed_later(
    policy: gcpolicy.FreezePolicy,
) -> None:
    node = Node()
    ref = weakref.ref(node)
    policy.after_batch()  # frozen while alive
    assert gc.get_freeze_count() > 0 and gc.get_count()[0] < 100
    del node
    gc.collect()  # automatic and explicit collections never scan the frozen set
    assert ref() is not None
    keep = []
    while policy.full_collections == 1:  # frozen additions reach the survivors: a full collection
        keep.append([[] for _ in range(1_000)])
        policy.after_batch()
    assert ref() is None
    stats = policy.stats()
    assert stats["policy"] == "freeze" and stats["full_collections"] == 2 and stats["collected"] >= 1
    assert policy.survivors >= len(keep) * 1_000  # the live lists, frozen again
    # the next full collection waits until as many objects again were frozen
    policy.after_batch()
    assert policy.full_collections == 2 and policy.frozen_since_full < policy.survivors


def test_service_freezes_after_each_applied_batch(policy: gcpolicy.FreezePolicy) -> None:
    service = Service(Config(), MemoryStorage())
    service.start(background=False)
    events = bulk(300)
    assert service.ingest(events).ingested == 300
    scanned = {id(o) for generation in (0, 1, 2) for o in gc.get_objects(generation)}
    # events themselves are never tracked (protocol.events.Event); what they hold and what the
    # analysis made of them is, and all of it is frozen now
    assert not gc.is_tracked(events[0])
    kept = [e.meta for e in events] + [e.ext for e in events if e.ext is not None]
    kept += [tr for tr in service.engine._traces.values()]
    tracked = [o for o in kept if gc.is_tracked(o)]
    assert len(tracked) > 300 and not any(id(o) in scanned for o in tracked)
    assert service.status()["gc"]["policy"] == "freeze"
