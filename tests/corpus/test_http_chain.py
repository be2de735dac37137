"""Race/NoRace kernels: a three-service chain (gateway -> orders -> ledger), clocks both ways.

The ledger's balance is written by the last hop. Two chains started at once race there, three
hops away from the test; one chain after the other is ordered by the responses' clocks.
"""

import threading

import httpx
from flask import Flask, jsonify, request

ledger = {"balance": 100}

hop_app = Flask("hop")


@hop_app.post("/hop")
def hop():
    targets = [t for t in request.args.get("next", "").split(",") if t]
    if not targets:
        value = ledger["balance"]
        ledger["balance"] = value - 1
        return jsonify({"balance": ledger["balance"]})
    rest = ",".join(targets[1:])
    with httpx.Client(timeout=10) as client:
        reply = client.post(targets[0] + "/hop", params={"next": rest} if rest else None)
    return jsonify(reply.json())


def chain(services):
    gateway = services.start(__file__, "hop_app", name="gateway")
    orders = services.start(__file__, "hop_app", name="orders")
    led = services.start(__file__, "hop_app", name="ledger")
    return gateway.url + "/hop", {"next": f"{orders.url},{led.url}"}


def test_race_http_three_service_chain_concurrent(raceway_services):
    url, params = chain(raceway_services)
    threads = [threading.Thread(target=httpx.post, args=(url,), kwargs={"params": params})
               for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


def test_norace_http_three_service_chain_sequential(raceway_services):
    url, params = chain(raceway_services)
    assert httpx.post(url, params=params).json() == {"balance": 99}
    assert httpx.post(url, params=params).json() == {"balance": 98}
