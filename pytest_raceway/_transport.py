"""Where the recorder's events go: the in-process engine, a remote server, child processes.

* :class:`EngineSink` -- embedded mode: ``emit`` is ``engine.add``, no serialisation.
* :class:`RemoteSink` -- remote mode: events are batched to ``POST {url}/events`` with httpx from
  a background thread (bounded buffer; overflow and failures are counted, never silent).
* :class:`Listener` -- an HTTP listener on 127.0.0.1 (ephemeral port) for events of subprocess
  services started by tests; its URL is exported to children as ``RACEWAY_SERVER_URL``.

The threads here are started before instrumentation is installed and run with the recorder
suspended, so the detector never records its own machinery.
"""

from __future__ import annotations

import collections
import contextlib
import http.server
import json
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

from pytest_raceway import _spine


class EngineSink:
    """Embedded mode: hand every event to the engine (and to a remote sink, if any)."""

    def __init__(self, engine: Any, remote: RemoteSink | None = None) -> None:
        self._add = engine.add
        self._add_batch = engine.add_batch
        self._remote = remote.emit if remote is not None else None

    def emit(self, event: Any) -> None:
        self._add(event)
        if self._remote is not None:
            self._remote(event)

    def emit_batch(self, events: list[Any]) -> None:
        self._add_batch(events)
        if self._remote is not None:
            for event in events:
                self._remote(event)


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    with _spine.suspended():
        yield


class RemoteSink:
    """Batches events to a remote raceway server in the background; survives its death."""

    BATCH = 1000
    MAX_PENDING = 200_000
    MAX_FAILURES = 3

    def __init__(self, url: str) -> None:
        self.url = url
        self.sent = 0
        self.dropped = 0  # buffer overflow or server gone: never sent
        self.failures = 0
        self.error: str | None = None
        self._pending: collections.deque[Any] = collections.deque()
        self._stop = False
        self._thread = threading.Thread(target=self._run, name="raceway-remote", daemon=True)
        self._thread.start()

    @property
    def alive(self) -> bool:
        return self.failures < self.MAX_FAILURES

    def emit(self, event: Any) -> None:
        if len(self._pending) >= self.MAX_PENDING or not self.alive:
            self.dropped += 1
            return
        self._pending.append(event)

    def _take(self) -> list[Any]:
        batch: list[Any] = []
        pending = self._pending
        while pending and len(batch) < self.BATCH:
            batch.append(pending.popleft())
        return batch

    def _run(self) -> None:
        import httpx

        with _quiet(), httpx.Client(timeout=5.0) as client:
            while True:
                batch = self._take()
                if not batch:
                    if self._stop:
                        return
                    time.sleep(0.02)
                    continue
                if not self.alive:
                    self.dropped += len(batch)
                    continue
                try:
                    response = client.post(self.url + "/events", content=_spine.dumps_batch(batch),
                                           headers={"content-type": "application/json"})
                    if response.status_code >= 500:
                        raise httpx.HTTPStatusError(
                            f"HTTP {response.status_code}", request=response.request,
                            response=response)
                    self.sent += len(batch)
                    self.failures = 0
                except httpx.HTTPError as exc:
                    self.failures += 1
                    self.dropped += len(batch)
                    self.error = f"{type(exc).__name__}: {exc}"
                    if self.alive:
                        time.sleep(0.2 * self.failures)

    def close(self, timeout: float = 10.0) -> None:
        """Flush what is pending (bounded by ``timeout``); the rest is counted as dropped."""
        self._stop = True
        self._thread.join(timeout)
        self.dropped += len(self._pending)
        self._pending.clear()


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
