"""SQLAlchemy: ``QueuePool._inc_overflow`` skips ``_overflow_lock`` when ``max_overflow=-1``.

``self._overflow += 1`` runs unlocked in unlimited-overflow mode. The race is real; its impact
is a wrong ``pool.overflow()`` / ``checkedout()`` diagnostic (frontrun case study "SQLAlchemy
(pool)", judged intentional by its authors) -- a true race with bounded impact.
"""

from __future__ import annotations

import sqlite3

from _threads import run_threads
from sqlalchemy.pool import QueuePool

BUG = "SQLAlchemy QueuePool._overflow unlocked in unlimited mode"
URL = "https://github.com/lucaswiman/frontrun/blob/main/docs/CASE_STUDIES.rst#8-sqlalchemy-pool"
PACKAGE = "sqlalchemy"
VERSION = "2.0.30"
EXPECT = {"variable": "_overflow", "func": "_inc_overflow"}


def test_two_threads_check_out_connections() -> None:
    pool = QueuePool(lambda: sqlite3.connect(":memory:", check_same_thread=False),
                     pool_size=1, max_overflow=-1)
    held = []

    def checkout() -> None:
        held.append(pool.connect())

    run_threads(checkout, checkout)
    assert len(held) == 2
    for conn in held:
        conn.close()
