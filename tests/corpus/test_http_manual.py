"""Race/NoRace kernels: a service instrumented with the manual API only (``raceway run --manual``).

No patches and no rewriting in the service: the handlers report their accesses with
``track_state_change`` and the middleware carries the clocks.
"""

import threading

import httpx
import raceway_sdk as rw
from flask import Flask, jsonify

stock = {"count": 10}
shop = Flask("shop")


@shop.post("/take")
def take():
    count = stock["count"]
    rw.track_state_change("stock.count", count, None, "Read")
    stock["count"] = count - 1
    rw.track_state_change("stock.count", count, count - 1, "Write")
    return jsonify({"count": stock["count"]})


def test_race_http_manual_api_concurrent_requests(raceway_services):
    svc = raceway_services.start(__file__, "shop", name="shop", manual=True)
    threads = [threading.Thread(target=httpx.post, args=(svc.url + "/take",)) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


def test_norace_http_manual_api_sequential_requests(raceway_services):
    svc = raceway_services.start(__file__, "shop", name="shop", manual=True)
    assert httpx.post(svc.url + "/take").json() == {"count": 9}
    assert httpx.post(svc.url + "/take").json() == {"count": 8}
