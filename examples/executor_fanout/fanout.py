"""Fan-out over a thread pool: each job writes its result into a shared dict."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

PAGES = {
    "https://a.example/1": 120, "https://a.example/2": 80,
    "https://b.example/1": 300, "https://c.example/1": 40,
}


def host_of(url: str) -> str:
    return url.split("/")[2]


def bytes_per_host_racy(max_workers: int) -> dict[str, int]:
    """The bug: two jobs for one host both do ``totals[host] = totals.get(host, 0) + n``."""
    totals: dict[str, int] = {}

    def fetch(url: str) -> None:
        host = host_of(url)
        totals[host] = totals.get(host, 0) + PAGES[url]

    with ThreadPoolExecutor(max_workers=max_workers) as pool:
        for url in PAGES:
            pool.submit(fetch, url)
    return totals


def bytes_per_host_joined(max_workers: int) -> dict[str, int]:
    """Fix 1: jobs return values; the parent merges them after ``result()`` (a join)."""

    def fetch(url: str) -> tuple[str, int]:
        return host_of(url), PAGES[url]

    totals: dict[str, int] = {}
    with ThreadPoolExecutor(max_workers=max_workers) as pool:
        for host, n in pool.map(fetch, PAGES):
            totals[host] = totals.get(host, 0) + n
    return totals


def bytes_per_host_locked(max_workers: int) -> dict[str, int]:
    """Fix 2: keep the shared dict, guard the read-modify-write with a lock."""
    totals: dict[str, int] = {}
    lock = threading.Lock()

    def fetch(url: str) -> None:
        host = host_of(url)
        with lock:
            totals[host] = totals.get(host, 0) + PAGES[url]

    with ThreadPoolExecutor(max_workers=max_workers) as pool:
        for url in PAGES:
            pool.submit(fetch, url)
    return totals
