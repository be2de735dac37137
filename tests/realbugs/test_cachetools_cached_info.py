"""cachetools: ``@cached(cache, info=True)`` without ``lock=`` counts ``hits``/``misses`` racily.

The wrapper updates ``nonlocal hits, misses`` with ``+=`` from every calling thread, so
``cache_info()`` under-counts (frontrun case study "cachetools exploration", B5).
"""

from __future__ import annotations

import cachetools
from _threads import run_threads

BUG = "cachetools @cached(info=True) hits/misses lost update"
URL = "https://github.com/lucaswiman/frontrun/blob/main/docs/CASE_STUDIES.rst#11-cachetools-exploration"
PACKAGE = "cachetools"
VERSION = "5.3.3"
EXPECT = {"variable": "misses", "func": "wrapper"}


def test_cache_info_counts_from_two_threads() -> None:
    @cachetools.cached(cachetools.LRUCache(maxsize=8), info=True)
    def square(n: int) -> int:
        return n * n

    run_threads(lambda: square(3), lambda: square(4))
    assert square.cache_info().misses == 2
