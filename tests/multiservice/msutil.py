"""Helpers of the multi-service tests: a real Raceway server in a thread, an instrumented caller
(this test process: recorder + HttpSink + httpx instrumentation), concurrent calls."""


from __future__ import annotations

import threading
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from raceway_sdk import _recorder as rec
from raceway_sdk.instrument import http_clients
from raceway_sdk.transport import HttpSink

from raceway_server.testing import ThreadedServer

APPS = str(Path(__file__).with_name("apps.py"))


class RunningServer(ThreadedServer):
    """The real server app in a thread, with the views these tests read."""

    def races(self, trace: int) -> list[Any]:
        return list(self.service.trace_races(trace))

    def events(self, trace: int) -> list[Any]:
        return list(self.service.trace_events(trace))



class Caller:
    """This process as an instrumented client: its clock rides on every httpx request."""

    def __init__(self, url: str, api_key: str | None = None) -> None:
        self.trace = uuid.uuid4().int
        self.sink = HttpSink(url, api_key=api_key, register_atexit=False)
        self._prev_trace = rec.current_trace()
        rec.configure(service_name="tests")
        rec.set_trace(self.trace)
        self._prev_sink = rec.set_sink(self.sink)
        http_clients.install()

    def flush(self) -> None:
        assert self.sink.flush(10)

    def close(self) -> None:
        http_clients.uninstall()
        rec.set_sink(self._prev_sink)
        rec.set_trace(self._prev_trace)
        rec.configure(service_name="python")
        self.sink.close()


def concurrently(*calls: Callable[[], Any]) -> list[Any]:
    """Run the calls in threads at once (the threads never synchronise with each other)."""
    out: list[Any] = [None] * len(calls)
    barrier = threading.Barrier(len(calls))

    def run(i: int) -> None:
        barrier.wait()
        out[i] = calls[i]()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(calls))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    return out

