"""Apps served as real subprocesses by the multi-service tests (``raceway run``).

Each app keeps its state in module globals, so two requests that touch it without a
happens-before order are a race the service's own instrumentation records.
"""

from __future__ import annotations

import asyncio
import os

import httpx
import raceway_sdk as rw
from flask import Flask, jsonify, request
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

balances = {"alice": 100}
hits = {"n": 0}

# --------------------------------------------------------------------------- Flask (WSGI)

flask_app = Flask("bank")


@flask_app.post("/withdraw")
def withdraw():
    amount = int(request.args.get("amount", "10"))
    balance = balances["alice"]  # read ...
    balances["alice"] = balance - amount  # ... then write: a lost update when concurrent
    return jsonify({"balance": balances["alice"]})


@flask_app.get("/balance")
def balance():
    return jsonify({"balance": balances["alice"]})


@flask_app.get("/pid")
def pid():
    return jsonify({"pid": os.getpid()})


@flask_app.post("/hop")
def hop():
    """``?next=URL1,URL2``: call the first with the rest as its ``next``; the last withdraws."""
    targets = [t for t in request.args.get("next", "").split(",") if t]
    if not targets:
        return withdraw()
    rest = ",".join(targets[1:])
    with httpx.Client(timeout=10) as client:
        reply = client.post(targets[0] + "/hop", params={"next": rest} if rest else None)
    return jsonify({"downstream": reply.json(), "sent_headers": dict(reply.request.headers)})


@flask_app.post("/echo-headers")
def echo_headers():
    return jsonify({k.lower(): v for k, v in request.headers.items()})


# --------------------------------------------------------------------------- manual API only

manual_app = Flask("inventory")
_stock = {"count": 5}


@manual_app.post("/take")
def take():
    rw.track_state_change("inventory.count", _stock["count"], None, "Read")
    value = _stock["count"]
    _stock["count"] = value - 1
    rw.track_state_change("inventory.count", value, value - 1, "Write")
    return jsonify({"count": _stock["count"]})


# --------------------------------------------------------------------------- Starlette (ASGI)


async def counter(request: Request) -> JSONResponse:
    value = hits["n"]  # read, suspend, write back: a lost update between concurrent handlers
    await asyncio.sleep(0.01)
    hits["n"] = value + 1
    return JSONResponse({"n": hits["n"]})


async def calm(request: Request) -> JSONResponse:
    hits["n"] = hits["n"] + 1  # no await between read and write: atomic on the loop
    return JSONResponse({"n": hits["n"]})


async def relay(request: Request) -> JSONResponse:
    """Like ``/hop`` with an instrumented httpx.AsyncClient."""
    targets = [t for t in request.query_params.get("next", "").split(",") if t]
    rest = ",".join(targets[1:])
    async with httpx.AsyncClient(timeout=10) as client:
        reply = await client.post(targets[0] + "/hop", params={"next": rest} if rest else None)
    return JSONResponse({"downstream": reply.json()})


asgi_app = Starlette(routes=[
    Route("/counter", counter, methods=["POST"]),
    Route("/calm", calm, methods=["POST"]),
    Route("/hop", relay, methods=["POST"]),
])
