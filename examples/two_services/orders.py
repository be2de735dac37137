"""The orders service (Starlette, ASGI): an order reserves its item at the inventory service.

``INVENTORY_URL`` says where the inventory service listens. The outgoing httpx call carries the
order handler's clock; the inventory's response carries the reservation's clock back.
"""

import os

import httpx
from starlette.applications import Starlette
from starlette.responses import JSONResponse
from starlette.routing import Route

orders_placed = {"count": 0}


async def order(request):
    item = request.path_params["item"]
    async with httpx.AsyncClient(timeout=10) as client:
        reply = await client.post(f"{os.environ['INVENTORY_URL']}/reserve/{item}")
    orders_placed["count"] += 1  # await-free read-modify-write: atomic on the event loop
    return JSONResponse({"order": orders_placed["count"], "reservation": reply.json()})


app = Starlette(routes=[Route("/order/{item}", order, methods=["POST"])])
