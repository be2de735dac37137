"""tenacity: every call of a ``@retry`` function stores ``wrapped_f.statistics = copy.statistics``.

Concurrent calls overwrite the function attribute, so ``fn.statistics`` read after a call may
describe another thread's call (frontrun case study "tenacity exploration", B3).
"""

from __future__ import annotations

import tenacity
from _threads import run_threads

BUG = "tenacity wrapped_f.statistics overwritten by concurrent calls"
URL = "https://github.com/lucaswiman/frontrun/blob/main/docs/CASE_STUDIES.rst#12-tenacity-exploration"
PACKAGE = "tenacity"
VERSION = "9.0.0"
EXPECT = {"variable": "statistics", "func": "wrapped_f"}


@tenacity.retry(stop=tenacity.stop_after_attempt(3), wait=tenacity.wait_none())
def fetch(n: int) -> int:
    return n


def test_two_threads_call_a_retrying_function() -> None:
    results: list[int] = []
    run_threads(lambda: results.append(fetch(1)), lambda: results.append(fetch(2)))
    assert sorted(results) == [1, 2]
