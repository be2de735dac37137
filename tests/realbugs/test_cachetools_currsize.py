"""cachetools: ``Cache.__setitem__`` updates ``self.__currsize += diffsize`` without a lock.

Two threads inserting different keys can both read the old size: ``currsize`` ends lower than
the real size and eviction never happens (frontrun case study "cachetools", B1). cachetools
documents that caches need an external lock; the race is what happens when that is missed.
"""

from __future__ import annotations

import cachetools
from _threads import run_threads

BUG = "cachetools Cache.currsize lost update"
URL = "https://github.com/lucaswiman/frontrun/blob/main/docs/CASE_STUDIES.rst#3-cachetools"
PACKAGE = "cachetools"
VERSION = "5.3.3"
EXPECT = {"variable": "currsize", "func": "__setitem__"}


def test_two_writers_share_a_cache() -> None:
    cache: cachetools.Cache = cachetools.Cache(maxsize=10)

    def put(key: str) -> None:
        cache[key] = key.upper()

    run_threads(lambda: put("a"), lambda: put("b"))
    assert len(cache) == 2
