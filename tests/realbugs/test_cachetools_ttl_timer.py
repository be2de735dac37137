"""cachetools: ``TTLCache``'s ``_Timer`` nests with ``self.__nesting += 1`` / ``-= 1`` unlocked.

Every ``TTLCache`` write enters the timer; two writers race on ``__nesting``, and a lost
decrement freezes the cache's clock so entries never expire (frontrun case study "cachetools
exploration", B8).
"""

from __future__ import annotations

import cachetools
from _threads import run_threads

BUG = "cachetools TTLCache _Timer.__nesting lost update"
URL = "https://github.com/lucaswiman/frontrun/blob/main/docs/CASE_STUDIES.rst#11-cachetools-exploration"
PACKAGE = "cachetools"
VERSION = "5.3.3"
EXPECT = {"variable": "nesting", "func": "__enter__"}


def test_two_writers_enter_the_timer() -> None:
    cache: cachetools.TTLCache = cachetools.TTLCache(maxsize=10, ttl=60)

    def put(key: str) -> None:
        cache[key] = 1

    run_threads(lambda: put("a"), lambda: put("b"))
    assert set(cache) == {"a", "b"}
