"""Where the recorder's events go: the in-process engine, a remote server, child processes.

* :class:`EngineSink` -- remote mode: every event to the embedded engine (verdicts stay local)
  and to the SDK's ``HttpSink`` (:func:`remote_sink`), which posts batches to
  ``POST {url}/events`` from its own thread (bounded buffer, retries, every drop counted).
* :class:`Listener` -- an HTTP listener on 127.0.0.1 (ephemeral port) for events of subprocess
  services started by tests; its URL is exported to children as ``RACEWAY_SERVER_URL``.

The threads here are started before instrumentation is installed and run with the recorder
suspended, so the detector never records its own machinery.
"""

from __future__ import annotations

import contextlib
import http.server
import json
import os
import threading
from collections.abc import Callable, Iterator
from typing import Any

from pytest_raceway import _spine


class EngineSink:
    """Embedded mode with a remote copy: every event to the engine and to the remote sink."""

    def __init__(self, engine: Any, remote: Any) -> None:
        self._add = engine.add
        self._add_batch = engine.add_batch
        self._remote = remote.emit

    def emit(self, event: Any) -> None:
        self._add(event)
        self._remote(event)

    def emit_batch(self, events: list[Any]) -> None:
        self._add_batch(events)
        remote = self._remote
        for event in events:
            remote(event)


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    with _spine.suspended():
        yield


def remote_sink(url: str) -> Any:
    """The SDK's HttpSink, set up for a copy of the session's events: the key from
    ``RACEWAY_API_KEY``, events left as they are (the engine holds the same objects), few
    retries (verdicts never wait for the server), no atexit hook (the session closes it)."""
    from raceway_sdk.transport import HttpSink

    return HttpSink(
        url,
        api_key=os.environ.get("RACEWAY_API_KEY") or None,
        batch_size=1000,
        max_retries=2,
        max_backoff=1.0,
        route_traces=False,
        qualify_locations=False,
        register_atexit=False,
    )


class Listener:
    """``POST /events`` on 127.0.0.1 for instrumented child processes (original batch format)."""

    def __init__(self, deliver: Callable[[list[Any]], None]) -> None:
        self.accepted = 0
        self.rejected = 0
        self.errors: list[str] = []
        listener = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
                if self.path.split("?", 1)[0] not in ("/events", "/api/events"):
                    self._reply(404, {"error": f"no such endpoint: {self.path}"})
                    return
                length = int(self.headers.get("content-length") or 0)
                body = self.rfile.read(length)
                with _quiet():
                    result = _spine.parse_batch(body)
                    deliver(result.events)
                listener.accepted += len(result.events)
                listener.rejected += len(result.errors)
                errors = [str(e) for e in result.errors]
                listener.errors.extend(errors[: max(0, 20 - len(listener.errors))])
                self._reply(200 if not errors else 207,
                            {"accepted": len(result.events), "errors": errors})

            def do_GET(self) -> None:  # noqa: N802
                self._reply(200 if self.path == "/health" else 404, {"status": "ok"})

            def _reply(self, status: int, doc: dict[str, Any]) -> None:
                body = json.dumps(doc).encode()
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass  # the test run's output is not a server log

        # One thread serves requests in turn: per-request threads would be born outside the
        # recorder's suspension and show up as tasks of the test.
        Handler.timeout = 10
        self._server = http.server.HTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._serve, name="raceway-listener", daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        with _quiet():
            self._server.serve_forever(poll_interval=0.2)

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
