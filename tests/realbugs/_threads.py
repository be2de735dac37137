"""Helper shared by the reproductions: run callables in named threads and join them all."""

from __future__ import annotations

import threading
from collections.abc import Callable


def run_threads(*targets: Callable[[], object]) -> None:
    """Start one thread per target, then join them: the targets are concurrent with each other."""
    threads = [threading.Thread(target=t, name=f"worker-{i}") for i, t in enumerate(targets)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
