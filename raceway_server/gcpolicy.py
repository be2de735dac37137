"""Garbage-collector policy of ``raceway serve``: applied events leave the collector's view.

The server keeps every ingested event (its ``Metadata``, payload dicts, engine entries: several
GC-tracked, acyclic objects each; the ``Event`` itself is untracked) for as long as its trace lives. CPython's generational
collector rescans such survivors: in generation 0, again in generation 1 (measured: one
generation-1 pass over 150,000 events took 0.33 s) and in every full collection. Each visit
touches the headers of everything the object refers to, scattered over a heap of gigabytes, so
at 100,000 events/s that was about a third of the ingest CPU.

Policy (installed by ``raceway serve`` only; embedded services and tests keep the default GC):

* after a batch is applied, :func:`after_batch` collects the young generations (the objects
  created since the previous batch, still warm in the CPU caches: request garbage with
  reference cycles is freed here) and then calls ``gc.freeze()``: the survivors move to the
  permanent generation, which automatic collections never scan. The collector keeps running
  for objects created afterwards.
* Frozen objects are still freed by reference counting. Only an object that was alive when it
  was frozen and later became part of unreachable cycles waits for a full collection. To bound
  that, once ``FULL_RATIO`` times as many objects were frozen as survived the last full
  collection (and at least ``min_full``), the permanent generation is unfrozen, fully
  collected and frozen again. That costs one pass over the heap per ``FULL_RATIO`` heaps of
  additions, instead of the default collector's repeated passes.
"""

from __future__ import annotations

import gc
import logging
import threading
import time

log = logging.getLogger(__name__)

DEFAULT_MIN_FULL = 4_000_000  # tracked objects frozen before the first full collection
FULL_RATIO = 4  # then: a full collection when frozen additions reach this times the survivors


class FreezePolicy:
    """Collect young objects and freeze them after each applied batch (see the module doc)."""

    def __init__(self, min_full: int = DEFAULT_MIN_FULL, full_ratio: float = FULL_RATIO) -> None:
        self.min_full = min_full
        self.full_ratio = full_ratio
        self.frozen_since_full = 0  # objects frozen since the last full collection
        self.survivors = 0  # objects frozen right after the last full collection
        self.full_collections = 0
        self.full_seconds = 0.0
        self.collected = 0  # unreachable objects found by the full collections
        self._lock = threading.Lock()

    def after_batch(self) -> None:
        """Collect the young generations, freeze the survivors; a full collection when due."""
        with self._lock:
            gc.collect(1)  # survivors land in generation 2, which holds only them: freezing
            self.frozen_since_full += len(gc.get_objects(2))  # moves everything there
            gc.freeze()
            if self.frozen_since_full >= max(self.min_full, self.full_ratio * self.survivors):
                self.full_collection()

    def full_collection(self) -> int:
        """Unfreeze, collect every generation, freeze the survivors; returns objects collected."""
        started = time.perf_counter()
        gc.unfreeze()
        found = gc.collect()
        gc.freeze()
        self.survivors = gc.get_freeze_count()
        self.frozen_since_full = 0
        seconds = time.perf_counter() - started
        self.full_collections += 1
        self.full_seconds += seconds
        self.collected += found
        log.info(
            "full collection: %d unreachable, %d survivors frozen, %.3f s", found, self.survivors, seconds
        )
        return found

    def stats(self) -> dict[str, str | float | int]:
        """Figures for ``/status``."""
        return {
            "policy": "freeze",
            "full_collections": self.full_collections,
            "full_collection_seconds": round(self.full_seconds, 3),
            "collected": self.collected,
            "frozen_objects": self.survivors + self.frozen_since_full,
        }


_policy: FreezePolicy | None = None


def install(min_full: int = DEFAULT_MIN_FULL, full_ratio: float = FULL_RATIO) -> FreezePolicy:
    """Turn the policy on for this process (``raceway serve``); returns it."""
    global _policy
    _policy = FreezePolicy(min_full, full_ratio)
    return _policy


def uninstall() -> None:
    """Turn the policy off and hand every frozen object back to the collector."""
    global _policy
    _policy = None
    gc.unfreeze()


def after_batch() -> None:
    """Called by the service once a batch is applied; a no-op unless :func:`install` ran."""
    policy = _policy
    if policy is not None:
        policy.after_batch()


def stats() -> dict[str, str | float | int] | None:
    policy = _policy
    return None if policy is None else policy.stats()
