"""HttpSink against a real HTTP server on 127.0.0.1 whose answers each test scripts."""

from __future__ import annotations

import http.server
import json
import logging
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator

import pytest
from raceway_sdk.protocol.events import Event, Metadata, new_event_id, parse_batch
from raceway_sdk.transport import HttpSink, TransportError


class Recorder:
    """A scripted ``POST /events`` endpoint: replies from a queue, then 200."""

    def __init__(self, threaded: bool = True) -> None:
        self.replies: list[tuple[int, dict[str, str], bytes]] = []
        self.received: list[list[Event]] = []
        self.headers: list[dict[str, str]] = []
        self.paths: list[str] = []
        self.lock = threading.Lock()
        owner = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                body = self.rfile.read(int(self.headers.get("content-length") or 0))
                with owner.lock:
                    owner.paths.append(self.path)
                    owner.headers.append({k.lower(): v for k, v in self.headers.items()})
                    status, extra, reply = owner.replies.pop(0) if owner.replies else (200, {}, b"{}")
                    if status in (200, 207):
                        batch = parse_batch(body)
                        owner.received.append(batch.events)
                self.send_response(status)
                for k, v in extra.items():
                    self.send_header(k, v)
                self.send_header("content-length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

            def log_message(self, *args: object) -> None:
                pass

        cls = http.server.ThreadingHTTPServer if threaded else http.server.HTTPServer
        self.server = cls(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        from raceway_sdk import _recorder as rec

        with rec.suspended():  # test harness: its own socket traffic is never recorded
            self.server.serve_forever(0.05)

    def events(self) -> list[Event]:
        with self.lock:
            return [e for batch in self.received for e in batch]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def endpoint() -> Iterator[Recorder]:
    rec = Recorder()
    yield rec
    rec.close()


def event(i: int = 0, loc: str | None = None) -> Event:
    meta = Metadata("t/1", 1, "svc", "test", {}, None, "inst", None, None)
    data = {"variable": "x", "old_value": None, "new_value": i, "location": "a.py:1",
            "access_type": "Write"}
    ext = {"task": "t/1", "trusted_vc": True, "loc": loc or "x"}
    return Event(new_event_id(), 7, None, time.time_ns(), "StateChange", data, meta, {"t/1": i + 1}, [], ext)


def make(url: str, **kw: object) -> HttpSink:
    kw.setdefault("register_atexit", False)
    kw.setdefault("flush_interval", 0.02)
    kw.setdefault("backoff", 0.01)
    return HttpSink(url, **kw)  # type: ignore[arg-type]


def test_batches_arrive_in_order_with_extension(endpoint: Recorder) -> None:
    sink = make(endpoint.url, batch_size=10)
    sent = [event(i) for i in range(35)]
    for e in sent:
        sink.emit(e)
    assert sink.flush(5)
    got = endpoint.events()
    assert [e.id for e in got] == [e.id for e in sent]
    assert got[0].ext["trusted_vc"] is True and got[0].vc == {"t/1": 1}
    assert all(p == "/events" for p in endpoint.paths)
    assert len(endpoint.received) >= 4  # batch_size bounds every post
    assert sink.stats()["sent"] == 35 and sink.stats()["dropped"] == 0
    sink.close()


def test_retry_after_on_429_and_503_is_honoured(endpoint: Recorder) -> None:
    endpoint.replies = [(429, {"Retry-After": "1"}, b"{}"), (503, {"Retry-After": "0"}, b"{}")]
    sink = make(endpoint.url)
    start = time.monotonic()
    sink.emit(event())
    assert sink.flush(10)
    assert time.monotonic() - start >= 0.9  # waited the server's Retry-After
    assert len(endpoint.events()) == 1
    assert sink.stats()["retries"] == 2 and sink.stats()["dropped"] == 0
    sink.close()


def test_5xx_retries_with_backoff_then_drops_and_counts(endpoint: Recorder, caplog) -> None:
    endpoint.replies = [(500, {}, b"boom")] * 3
    sink = make(endpoint.url, max_retries=2)
    with caplog.at_level(logging.WARNING, logger="raceway_sdk.transport"):
        sink.emit(event())
        assert sink.flush(5)
        sink.emit(event(1))  # the next batch gets through
        assert sink.flush(5)
        sink.close()
    stats = sink.stats()
    assert stats["dropped_by_cause"]["send_failed"] == 1 and stats["sent"] == 1
    assert "HTTP 500" in stats["last_error"]
    assert any("send_failed" in r.getMessage() for r in caplog.records)
    assert any("1 events were not delivered" in r.getMessage() for r in caplog.records)


def test_client_errors_are_final_and_207_counts_rejected(endpoint: Recorder) -> None:
    endpoint.replies = [
        (422, {}, b'{"success":false}'),
        (207, {"content-type": "application/json"},
         json.dumps({"success": True, "data": {"ingested": 2, "rejected": 1}}).encode()),
    ]
    sink = make(endpoint.url, batch_size=3)
    for i in range(3):
        sink.emit(event(i))
    assert sink.flush(5)
    for i in range(3):
        sink.emit(event(i))
    assert sink.flush(5)
    stats = sink.stats()
    assert stats["dropped_by_cause"]["rejected"] == 4 and stats["sent"] == 2
    assert stats["retries"] == 0
    sink.close()


def test_413_splits_the_batch(endpoint: Recorder) -> None:
    endpoint.replies = [(413, {}, b"too big")]
    sink = make(endpoint.url, batch_size=8)
    sent = [event(i) for i in range(8)]
    for e in sent:
        sink.emit(e)
    assert sink.flush(5)
    assert sorted(e.id for e in endpoint.events()) == sorted(e.id for e in sent)
    assert [len(b) for b in endpoint.received] == [4, 4]
    sink.close()


def test_full_buffer_drops_and_counts_without_blocking(endpoint: Recorder) -> None:
    endpoint.replies = [(503, {"Retry-After": "1"}, b"{}")]
    sink = make(endpoint.url, max_buffer=50, batch_size=10)
    sink.emit(event())
    time.sleep(0.1)  # the sender is now waiting out the Retry-After
    for i in range(500):  # the first event is in flight: 50 more fit in the buffer
        sink.emit(event(i))
    assert sink.stats()["dropped_by_cause"]["buffer_full"] == 450
    assert sink.stats()["pending"] == 50
    assert sink.flush(10)
    assert len(endpoint.events()) == 51
    sink.close()
    assert sink.stats()["dropped"] == 450


def test_api_key_goes_to_the_server_only_and_no_redirects(endpoint: Recorder) -> None:
    other = Recorder()
    try:
        endpoint.replies = [(307, {"Location": other.url + "/events"}, b"")]
        sink = make(endpoint.url, api_key="s3cret", max_retries=0)
        sink.emit(event())
        assert sink.flush(5)
        sink.emit(event(1))
        assert sink.flush(5)
        sink.close()
        assert endpoint.headers[0]["authorization"] == "Bearer s3cret"
        assert endpoint.headers[0]["x-raceway-key"] == "s3cret"
        assert other.headers == []  # the redirect was not followed: the key stayed home
        assert sink.stats()["dropped_by_cause"]["rejected"] == 1
    finally:
        other.close()


def test_unreachable_server_close_is_bounded_and_counted() -> None:
    recorder = Recorder()
    url = recorder.url
    recorder.close()  # nothing listens there any more
    sink = make(url, max_retries=50, backoff=0.05)
    for i in range(10):
        sink.emit(event(i))
    sink.close(timeout=1.0)  # returns although 50 retries would take far longer
    assert not sink._thread.is_alive()
    stats = sink.stats()
    assert stats["sent"] == 0 and stats["dropped"] == 10
    sink.emit(event())
    assert sink.stats()["dropped_by_cause"]["closed"] == 1


def test_process_local_locations_are_qualified(endpoint: Recorder) -> None:
    sink = make(endpoint.url)
    sink.emit(event(0, loc="dict@5['alice']"))
    sink.emit(event(1, loc="json.dumps"))  # a module global of this process
    sink.emit(event(2, loc="alice.balance"))  # a manual-API name: shared across processes
    assert sink.flush(5)
    locs = [e.ext["loc"] for e in endpoint.events()]
    assert locs[0].endswith(":dict@5['alice']") and locs[0] != "dict@5['alice']"
    assert locs[1].endswith(":json.dumps") and locs[1] != "json.dumps"
    assert locs[2] == "alice.balance"
    sink.close()


def test_bad_settings_name_the_setting() -> None:
    with pytest.raises(TransportError, match="url"):
        HttpSink("ftp://x", register_atexit=False)
    with pytest.raises(TransportError, match="batch_size"):
        HttpSink("http://127.0.0.1:1", batch_size=0, register_atexit=False)
    with pytest.raises(TransportError, match="max_retries"):
        HttpSink("http://127.0.0.1:1", max_retries=-1, register_atexit=False)


def test_final_flush_at_interpreter_exit(endpoint: Recorder, tmp_path) -> None:
    script = tmp_path / "exit_flush.py"
    script.write_text(textwrap.dedent(f"""
        import time
        from raceway_sdk.protocol.events import Event, Metadata, new_event_id
        from raceway_sdk.transport import HttpSink
        sink = HttpSink({endpoint.url!r}, flush_interval=60)  # only the exit flush sends
        meta = Metadata("t/1", 1, "svc", "test", {{}}, None, "i", None, None)
        for i in range(25):
            data = {{"name": "n", "data": i}}
            sink.emit(Event(new_event_id(), 7, None, time.time_ns(), "Custom", data, meta,
                            {{"t/1": 1}}, [], {{"task": "t/1", "trusted_vc": True}}))
    """))
    proc = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=30)
    assert proc.returncode == 0, proc.stderr
    assert len(endpoint.events()) == 25


def test_sender_thread_is_never_recorded() -> None:
    from raceway_sdk import _recorder as rec
    from raceway_sdk.testing import recording

    endpoint = Recorder(threaded=False)  # its own request threads would be recorded

    with recording() as collected:  # threads, locks, asyncio instrumented
        sink = make(endpoint.url)  # its thread starts while `collected` records
        previous = rec.set_sink(sink)
        try:
            rec.emit_custom("marker", 1)
            assert sink.flush(5)
            rec.emit_custom("marker", 2)
            assert sink.flush(5)  # a second post: the client's pool locks are reused
        finally:
            rec.set_sink(previous)
            sink.close()
    spawns = [e for e in collected.of_kind("AsyncSpawn")]
    assert not any("raceway-http-sink" in str(e.ext.get("child_name")) for e in spawns)
    kinds = [(e.kind, (e.data.get("name"))) for e in endpoint.events()]
    assert kinds == [("Custom", "marker"), ("Custom", "marker")]  # nothing of httpx's own work
    endpoint.close()


def test_forked_child_gets_its_own_sender(endpoint: Recorder) -> None:
    import os

    sink = make(endpoint.url, flush_interval=60)
    sink.emit(event(0))  # the parent's, still buffered at the fork
    pid = os.fork()
    if pid == 0:  # the child: send one event of its own, then leave without cleanup
        code = 1
        try:
            sink.emit(event(1))
            code = 0 if sink.flush(10) and sink.stats()["sent"] == 1 else 1
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert sink.flush(10)
    assert sorted(e.data["new_value"] for e in endpoint.events()) == [0, 1]
    sink.close()
