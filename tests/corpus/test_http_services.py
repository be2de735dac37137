"""Race/NoRace kernels: instrumented HTTP services in their own processes (``raceway run``).

Each kernel starts real services with the ``raceway_services`` fixture; their events reach this
test's trace through the plugin's listener, and every response waits until the handler's events
were delivered, so the verdict sees them. A service keeps its state in module globals.
"""

import asyncio
import threading

import httpx
from flask import Flask, jsonify
from starlette.applications import Starlette
from starlette.responses import JSONResponse
from starlette.routing import Route

balances = {"alice": 100}
visits = {"n": 0}

bank = Flask("bank")


@bank.post("/withdraw")
def withdraw():
    balance = balances["alice"]
    balances["alice"] = balance - 10
    return jsonify({"balance": balances["alice"]})


async def visit(request):
    n = visits["n"]
    await asyncio.sleep(0.01)  # the handler suspends between its read and its write
    visits["n"] = n + 1
    return JSONResponse({"n": visits["n"]})


counter = Starlette(routes=[Route("/visit", visit, methods=["POST"])])


def both(*calls):
    threads = [threading.Thread(target=c) for c in calls]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


def test_norace_http_two_services_share_nothing(raceway_services):
    one = raceway_services.start(__file__, "bank", name="bank-one")
    two = raceway_services.start(__file__, "bank", name="bank-two")  # same code, own memory
    both(lambda: httpx.post(one.url + "/withdraw"), lambda: httpx.post(two.url + "/withdraw"))


def test_race_http_global_dict_concurrent_requests(raceway_services):
    svc = raceway_services.start(__file__, "bank", name="bank")
    both(lambda: httpx.post(svc.url + "/withdraw"), lambda: httpx.post(svc.url + "/withdraw"))


def test_norace_http_global_dict_sequential_requests(raceway_services):
    svc = raceway_services.start(__file__, "bank", name="bank")
    assert httpx.post(svc.url + "/withdraw").json() == {"balance": 90}
    assert httpx.post(svc.url + "/withdraw").json() == {"balance": 80}


def test_race_http_async_handlers_lost_update(raceway_services):
    svc = raceway_services.start(__file__, "counter", name="counter")
    both(lambda: httpx.post(svc.url + "/visit"), lambda: httpx.post(svc.url + "/visit"))


def test_norace_http_async_handlers_sequential(raceway_services):
    svc = raceway_services.start(__file__, "counter", name="counter")
    with httpx.Client() as client:
        client.post(svc.url + "/visit")
        assert client.post(svc.url + "/visit").json() == {"n": 2}
