"""threadpoolctl: ``_get_libc`` checks then fills the class-level ``_system_libraries`` cache.

``libc = cls._system_libraries.get("libc"); if libc is None: ...; cls._system_libraries["libc"]
= libc`` runs with no lock in a library that has none: two threads inspecting thread pools at
once both load libc (frontrun case study "threadpoolctl").
"""

from __future__ import annotations

import threadpoolctl
from _threads import run_threads

BUG = "threadpoolctl _get_libc check-then-act"
URL = "https://github.com/lucaswiman/frontrun/blob/main/docs/CASE_STUDIES.rst#2-threadpoolctl"
PACKAGE = "threadpoolctl"
VERSION = "3.5.0"
EXPECT = {"variable": "dict", "func": "_get_libc"}


def test_two_threads_inspect_thread_pools() -> None:
    infos: list[list[dict]] = []

    run_threads(lambda: infos.append(threadpoolctl.threadpool_info()),
                lambda: infos.append(threadpoolctl.threadpool_info()))
    assert len(infos) == 2
