"""anyio (asyncio and trio backends): the same lost update and its fix with ``anyio.Lock``."""

from __future__ import annotations

import anyio
import pytest
from wallet import AnyioWallet

BACKENDS = ["asyncio", "trio"]


async def two_payments(pay) -> None:
    async with anyio.create_task_group() as tg:
        tg.start_soon(pay, 30)
        tg.start_soon(pay, 20)


@pytest.mark.parametrize("backend", BACKENDS)
def test_lost_update_across_await(backend: str) -> None:
    wallet = AnyioWallet(100)
    anyio.run(two_payments, wallet.pay, backend=backend)
    assert wallet.balance in (70, 80)  # one payment lost; Raceway reports the lost update


@pytest.mark.parametrize("backend", BACKENDS)
def test_fix_anyio_lock(backend: str) -> None:
    wallet = AnyioWallet(100)
    anyio.run(two_payments, wallet.pay_locked, backend=backend)
    assert wallet.balance == 50
