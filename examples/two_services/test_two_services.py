"""Two services in their own processes and a test that drives them.

``pytest --raceway examples/two_services`` starts both services instrumented (``raceway run``
under the hood), reports the lost update in the inventory service for the concurrent orders
(that test fails), and passes the sequential one: the first order's response carries the
inventory's clock back, so the second order happens after it.
"""

import os
import threading

import httpx
import pytest

HERE = os.path.dirname(os.path.abspath(__file__))


@pytest.fixture
def shop(raceway_services):
    inventory = raceway_services.start(os.path.join(HERE, "inventory.py"), "app",
                                       name="inventory")
    orders = raceway_services.start(os.path.join(HERE, "orders.py"), "app", name="orders",
                                    env={"INVENTORY_URL": inventory.url})
    return orders.url, inventory.url


def test_two_orders_at_once_lose_a_reservation(shop):
    orders, _ = shop
    clients = [threading.Thread(target=httpx.post, args=(f"{orders}/order/widget",))
               for _ in range(2)]
    for c in clients:
        c.start()
    for c in clients:
        c.join()


def test_orders_one_after_the_other(shop):
    orders, inventory = shop
    httpx.post(f"{orders}/order/widget")
    httpx.post(f"{orders}/order/widget")
    assert httpx.get(f"{inventory}/stock/widget").json()["left"] == 8
