"""A small service with one race the team has accepted and one in code it does not own."""

from __future__ import annotations

import os
import threading


class Metrics:
    """Best-effort request counter: a lost increment is acceptable (kept in the baseline)."""

    def __init__(self) -> None:
        self.requests = 0

    def hit(self) -> None:
        self.requests += 1


class LegacyWarmup:
    """Stands for vendored code the team cannot change yet (silenced by raceway.supp)."""

    def __init__(self) -> None:
        self.loaded: dict[str, str] = {}

    def legacy_warm(self, key: str) -> None:
        if key not in self.loaded:
            self.loaded[key] = key.upper()


class Orders:
    """Correctly synchronised code: never reported."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.placed: list[str] = []
        self.total = 0

    def place(self, item: str, price: int) -> None:
        with self.lock:
            self.placed.append(item)
            self.total += price


class Inventory:
    """A race nobody has reviewed yet: only built when CI_GATE_NEW_RACE=1 (see README)."""

    def __init__(self) -> None:
        self.stock = 10

    def take(self) -> None:
        if os.environ.get("CI_GATE_NEW_RACE") == "1":
            self.stock = self.stock - 1


def in_threads(*calls) -> None:
    threads = [threading.Thread(target=c, name=f"worker-{i}") for i, c in enumerate(calls)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
