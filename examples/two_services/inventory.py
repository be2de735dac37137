"""The inventory service (Flask, WSGI): reserving an item reads the stock, then writes it back.

Two reservations handled at the same time can both read 10 and both write 9: a lost update
that an ordinary test almost never sees. Raceway reports it from one run, across processes.
"""

from flask import Flask, jsonify

stock = {"widget": 10}

app = Flask("inventory")


@app.post("/reserve/<item>")
def reserve(item):
    left = stock[item]
    stock[item] = left - 1
    return jsonify({"item": item, "left": stock[item]})


@app.get("/stock/<item>")
def level(item):
    return jsonify({"item": item, "left": stock[item]})
