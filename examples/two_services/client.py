"""The demo's client: two orders at once, then one more after they both returned.

Run it with instrumentation (``raceway run ... -- python client.py ORDERS_URL``) so its
requests carry its clock, like any service.
"""

import sys
import threading

import httpx


def main(orders_url):
    clients = [threading.Thread(target=httpx.post, args=(f"{orders_url}/order/widget",))
               for _ in range(2)]
    for c in clients:
        c.start()
    for c in clients:
        c.join()
    print("third order:", httpx.post(f"{orders_url}/order/widget").json())


if __name__ == "__main__":
    main(sys.argv[1])
