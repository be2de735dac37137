"""pybreaker: ``CircuitMemoryStorage.increment_counter`` is ``self._fail_counter += 1``.

Each ``CircuitBreaker`` serialises its own calls with a private ``RLock``, but a storage object
passed as ``state_storage=`` to two breakers (the documented way to share breaker state) is
incremented under two different locks: failures are under-counted and the breaker may never
trip (frontrun case study "pybreaker", round 2, found on 1.4.1; 1.0.2 has the same code).
"""

from __future__ import annotations

import pybreaker
from _threads import run_threads

BUG = "pybreaker CircuitMemoryStorage._fail_counter lost update"
URL = "https://github.com/lucaswiman/frontrun/blob/main/docs/CASE_STUDIES.rst#6-pybreaker"
PACKAGE = "pybreaker"
VERSION = "1.0.2"
EXPECT = {"variable": "_fail_counter", "func": "increment_counter"}


def _fail() -> None:
    raise ConnectionError("backend down")


def test_shared_storage_counts_failures_under_two_locks() -> None:
    storage = pybreaker.CircuitMemoryStorage(pybreaker.STATE_CLOSED)
    breakers = [pybreaker.CircuitBreaker(fail_max=10, state_storage=storage) for _ in range(2)]

    def call(breaker: pybreaker.CircuitBreaker) -> None:
        try:
            breaker.call(_fail)
        except ConnectionError:
            pass

    run_threads(lambda: call(breakers[0]), lambda: call(breakers[1]))
    assert storage.counter == 2
