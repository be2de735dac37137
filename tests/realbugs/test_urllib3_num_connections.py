"""urllib3: ``HTTPConnectionPool._new_conn`` does ``self.num_connections += 1`` without a lock.

Two threads that find the pool empty both open a connection; the unsynchronised increment can
lose one (frontrun case study "urllib3", round 2). The counter is what urllib3 logs when it
warns about a full pool, so an under-count hides connection churn.
"""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import urllib3
from _threads import run_threads

BUG = "urllib3 HTTPConnectionPool.num_connections lost update"
URL = "https://github.com/lucaswiman/frontrun/blob/main/docs/CASE_STUDIES.rst#7-urllib3"
PACKAGE = "urllib3"
VERSION = "2.0.7"
EXPECT = {"variable": "num_connections", "func": "_new_conn"}


class _Slow(BaseHTTPRequestHandler):
    both_in_flight = threading.Barrier(2, timeout=5)  # both requests are open at once

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        self.both_in_flight.wait()
        body = b"ok"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


def test_two_threads_open_connections() -> None:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Slow)
    serving = threading.Thread(target=server.serve_forever, daemon=True)
    serving.start()
    try:
        pool = urllib3.HTTPConnectionPool("127.0.0.1", server.server_address[1], maxsize=2)
        statuses = []

        def get() -> None:
            statuses.append(pool.request("GET", "/").status)

        run_threads(get, get)
        assert statuses == [200, 200]
        assert pool.num_connections == 2  # holds in this run; the increment is still racy
    finally:
        server.shutdown()
        server.server_close()
