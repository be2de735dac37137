"""The SSE live feed: new traces and races arrive as they are ingested; lag is reported."""

from __future__ import annotations

import asyncio
import queue
import threading
from collections.abc import AsyncGenerator
from typing import cast

import httpx
import orjson
from raceway_sdk.protocol.events import uuid_str
from rw_events import body, ordered_trace, racing_trace
from rw_server import RunningServer

from raceway_server.api.live import LiveFeed
from raceway_server.config import Config
from raceway_server.service import Service


def _reader(url: str, out: queue.Queue[tuple[str, dict]], stop: threading.Event) -> None:
    with httpx.stream("GET", url, timeout=httpx.Timeout(10.0, read=30.0)) as response:
        out.put(("status", {"code": response.status_code, "type": response.headers["content-type"]}))
        kind = None
        for line in response.iter_lines():
            if stop.is_set():
                return
            if line.startswith("event: "):
                kind = line[7:]
            elif line.startswith("data: ") and kind:
                out.put((kind, orjson.loads(line[6:])))


def _next(out: queue.Queue[tuple[str, dict]], kind: str) -> dict:
    while True:
        got_kind, payload = out.get(timeout=15)
        if got_kind == kind:
            return payload


def test_live_feed_streams_new_traces_and_races(server: RunningServer) -> None:
    out: queue.Queue[tuple[str, dict]] = queue.Queue()
    stop = threading.Event()
    thread = threading.Thread(target=_reader, args=(server.url + "/api/live", out, stop), daemon=True)
    thread.start()
    status = _next(out, "status")
    assert status["code"] == 200 and status["type"].startswith("text/event-stream")
    assert _next(out, "hello")["types"] == ["race", "trace"]
    quiet_trace, quiet = ordered_trace()
    httpx.post(server.url + "/events", content=body(quiet))
    assert _next(out, "trace")["trace_id"] == uuid_str(quiet_trace)
    trace, events = racing_trace()
    httpx.post(server.url + "/events", content=body(events))
    race = _next(out, "race")
    assert race["trace_id"] in (trace, uuid_str(trace)) and race["variable"] == "counter"
    assert race["severity"] == "write-write"
    stop.set()


def test_unknown_type_filter_is_400(server: RunningServer) -> None:
    response = httpx.get(server.url + "/api/live", params={"types": "trace,gossip"})
    assert response.status_code == 400 and "gossip" in response.json()["error"]


def test_slow_subscriber_is_told_how_much_it_missed() -> None:
    service = Service(Config())
    service.start(background=False)
    feed = LiveFeed(service, queue_size=1)

    async def scenario() -> list[tuple[str, dict]]:
        stream = cast(AsyncGenerator[bytes, None], feed._stream({"trace"}))
        messages = []
        messages.append(await stream.__anext__())  # hello
        for n in range(4):
            service._publish("trace", {"n": n})
        await asyncio.sleep(0.05)  # let the thread-safe callbacks run
        messages.append(await stream.__anext__())
        messages.append(await stream.__anext__())
        await stream.aclose()
        return [_parse(m) for m in messages]

    got = asyncio.run(scenario())
    assert got[0][0] == "hello"
    assert got[1] == ("lagged", {"dropped": 3})
    assert got[2] == ("trace", {"n": 0})
    assert feed.dropped == 3 and feed.subscribers == 0
    service.close()


def _parse(message: bytes) -> tuple[str, dict]:
    fields = dict(line.split(": ", 1) for line in message.decode().strip().splitlines())
    return fields["event"], orjson.loads(fields["data"])
