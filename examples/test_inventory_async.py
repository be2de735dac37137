"""asyncio: a read-modify-write split by an ``await`` loses updates; one without await does not."""

import asyncio


class Inventory:
    def __init__(self):
        self.stock = {"widget": 10}

    async def reserve(self, item):
        available = self.stock[item]
        await asyncio.sleep(0)  # e.g. a database round trip
        self.stock[item] = available - 1

    async def reserve_atomically(self, item):
        self.stock[item] -= 1  # no await between the read and the write
        await asyncio.sleep(0)


def test_reserve_loses_updates():
    inventory = Inventory()

    async def main():
        await asyncio.gather(inventory.reserve("widget"), inventory.reserve("widget"))

    asyncio.run(main())


def test_reserve_atomically():
    inventory = Inventory()

    async def main():
        await asyncio.gather(*(inventory.reserve_atomically("widget") for _ in range(2)))

    asyncio.run(main())
    assert inventory.stock["widget"] == 8
