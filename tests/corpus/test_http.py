"""Race/NoRace kernels: an HTTP service on 127.0.0.1 (stdlib server threads) and its clients.

The two-service kernels (headers carrying clocks between processes) come with the multi-service
issue; these run the server in-process, one thread per request.
"""

import http.server
import threading
import urllib.request


class Stats:
    def __init__(self):
        self.hits = 0
        self.greeting = "none"


def serve(stats, count_hits):
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            if count_hits:
                stats.hits += 1  # every request runs in its own thread
            body = stats.greeting.encode()
            self.send_response(200)
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    return server, thread


def get(server):
    url = f"http://127.0.0.1:{server.server_address[1]}/"
    with urllib.request.urlopen(url, timeout=10) as response:
        return response.read().decode()


def stop(server, thread):
    server.shutdown()
    server.server_close()
    thread.join()


def test_race_http_handlers_shared_counter():
    stats = Stats()
    server, thread = serve(stats, count_hits=True)
    try:
        clients = [threading.Thread(target=get, args=(server,)) for _ in range(2)]
        for c in clients:
            c.start()
        for c in clients:
            c.join()
    finally:
        stop(server, thread)


def test_norace_http_config_written_before_start():
    stats = Stats()
    stats.greeting = "hello"
    server, thread = serve(stats, count_hits=False)
    try:
        assert get(server) == "hello"
        assert get(server) == "hello"
    finally:
        stop(server, thread)


def two_services(locked):
    """Service A forwards every request to service B, which counts them."""
    stats = Stats()
    lock = threading.Lock()

    class Backend(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            if locked:
                with lock:
                    stats.hits += 1
            else:
                stats.hits += 1
            self.send_response(200)
            self.send_header("content-length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, *args):
            pass

    backend = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Backend)

    class Frontend(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            body = get(backend).encode()
            self.send_response(200)
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    frontend = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Frontend)
    servers = []
    for server in (backend, frontend):
        thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
        thread.start()
        servers.append((server, thread))
    try:
        clients = [threading.Thread(target=get, args=(frontend,)) for _ in range(2)]
        for c in clients:
            c.start()
        for c in clients:
            c.join()
    finally:
        for server, thread in servers:
            stop(server, thread)


def test_race_two_services_shared_counter():
    two_services(locked=False)


def test_norace_two_services_counter_under_lock():
    two_services(locked=True)
