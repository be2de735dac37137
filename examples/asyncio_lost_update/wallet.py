"""A wallet debited by concurrent tasks: the lost update across an ``await``, and its fix.

The same code shape in asyncio and in anyio (which runs on asyncio or trio).
"""

from __future__ import annotations

import asyncio

import anyio


async def fraud_check(amount: int) -> None:
    """Stands for any round trip (database, HTTP): a suspension point."""
    await anyio.sleep(0)


class Wallet:
    def __init__(self, balance: int) -> None:
        self.balance = balance
        self.lock = asyncio.Lock()

    async def pay(self, amount: int) -> None:
        balance = self.balance  # read ...
        await fraud_check(amount)  # ... suspend: another task may pay now ...
        self.balance = balance - amount  # ... write back a stale value: the lost update

    async def pay_locked(self, amount: int) -> None:
        async with self.lock:  # release -> acquire orders the two payments
            balance = self.balance
            await fraud_check(amount)
            self.balance = balance - amount

    async def pay_without_await(self, amount: int) -> None:
        await fraud_check(amount)
        self.balance -= amount  # read and write in one step: atomic for tasks of one loop


class AnyioWallet:
    def __init__(self, balance: int) -> None:
        self.balance = balance
        self.lock = anyio.Lock()

    async def pay(self, amount: int) -> None:
        balance = self.balance
        await fraud_check(amount)
        self.balance = balance - amount

    async def pay_locked(self, amount: int) -> None:
        async with self.lock:
            balance = self.balance
            await fraud_check(amount)
            self.balance = balance - amount
