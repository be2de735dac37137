"""The gate passes while every race is either in the baseline or suppressed; a new one fails it."""

from __future__ import annotations

from shop import Inventory, LegacyWarmup, Metrics, Orders, in_threads


def test_metrics_known_race() -> None:
    metrics = Metrics()
    in_threads(metrics.hit, metrics.hit)  # racy, but recorded in raceway-baseline.json
    assert metrics.requests >= 1


def test_legacy_warmup_suppressed() -> None:
    warm = LegacyWarmup()
    in_threads(lambda: warm.legacy_warm("eu"), lambda: warm.legacy_warm("eu"))  # raceway.supp
    assert warm.loaded == {"eu": "EU"}


def test_orders_are_synchronised() -> None:
    orders = Orders()
    in_threads(lambda: orders.place("book", 12), lambda: orders.place("pen", 3))
    assert orders.total == 15


def test_inventory() -> None:
    inventory = Inventory()
    in_threads(inventory.take, inventory.take)  # a NEW race when CI_GATE_NEW_RACE=1
    assert inventory.stock <= 10
