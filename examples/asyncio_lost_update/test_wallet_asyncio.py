"""asyncio: the read-await-write is reported as a lost update; the locked and await-free versions pass."""

from __future__ import annotations

import asyncio

from wallet import Wallet


async def two_payments(pay) -> None:
    await asyncio.gather(pay(30), pay(20))


def test_lost_update_across_await() -> None:
    wallet = Wallet(100)
    asyncio.run(two_payments(wallet.pay))
    # Each task read 100 before the other wrote: one payment is lost, every time, and
    # Raceway reports "lost-update" on Wallet.balance with the stale read's location.
    assert wallet.balance in (70, 80)


def test_fix_asyncio_lock() -> None:
    wallet = Wallet(100)
    asyncio.run(two_payments(wallet.pay_locked))
    assert wallet.balance == 50


def test_await_free_update_is_not_a_race() -> None:
    wallet = Wallet(100)
    asyncio.run(two_payments(wallet.pay_without_await))
    assert wallet.balance == 50
