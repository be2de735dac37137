"""Happens-before through socket bytes: send -> the receive of those bytes, within one process."""

from __future__ import annotations

import asyncio
import socket
import threading
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from raceway_sdk import _recorder as rec
from raceway_sdk.instrument import sockets, threads

from raceway_server.engine.core import Engine

W = rec.register_site(__file__, 40, "producer", "")
R = rec.register_site(__file__, 41, "consumer", "")


class Box:
    def __init__(self) -> None:
        self.value = 0


@pytest.fixture
def engine() -> Iterator[Engine]:
    eng = Engine()
    prev = rec.set_sink(eng)
    rec.set_trace(uuid.uuid4().int)
    threads.install()
    sockets.install()
    try:
        yield eng
    finally:
        sockets.uninstall()
        threads.uninstall()
        rec.set_sink(prev)


def _races(engine: Engine) -> set[tuple[str, str]]:
    rec.flush()
    return {r.key for r in engine.races(rec.current_trace())}


def _both(*targets: Callable[[], Any]) -> None:
    ts = [threading.Thread(target=t) for t in targets]
    for t in ts:
        t.start()
    for t in ts:
        t.join(timeout=30)
    assert not any(t.is_alive() for t in ts)


RACE = (f"{__file__}:40", f"{__file__}:41")


def _recv_exactly(sock: socket.socket, n: int) -> bytes:
    got = b""
    while len(got) < n:
        chunk = sock.recv(n - len(got))
        assert chunk
        got += chunk
    return got


def test_what_was_written_before_the_send_is_ordered_before_the_receive(engine: Engine) -> None:
    a, b = socket.socketpair()
    box = Box()

    def producer() -> None:
        rec.access(box, "value", "Write", W, 1)
        a.sendall(b"ready")

    def consumer() -> None:
        assert _recv_exactly(b, 5) == b"ready"
        rec.access(box, "value", "Read", R)

    _both(consumer, producer)
    a.close()
    b.close()
    assert RACE not in _races(engine)


def test_a_write_after_the_send_still_races(engine: Engine) -> None:
    a, b = socket.socketpair()
    box = Box()

    def producer() -> None:
        a.sendall(b"ready")
        rec.access(box, "value", "Write", W, 1)

    def consumer() -> None:
        _recv_exactly(b, 5)
        rec.access(box, "value", "Read", R)

    _both(consumer, producer)
    a.close()
    b.close()
    assert RACE in _races(engine)


def test_a_receive_is_ordered_only_after_the_sends_it_has_read(engine: Engine) -> None:
    a, b = socket.socketpair()
    box = Box()
    first_read = threading.Event()

    def producer() -> None:
        a.send(b"one")
        rec.access(box, "value", "Write", W, 1)  # after "one", before "two"
        a.send(b"two")

    def consumer() -> None:
        _recv_exactly(b, 3)  # "one" only: not ordered after the write
        rec.access(box, "value", "Read", R)
        first_read.set()

    _both(consumer, producer)
    assert first_read.is_set()
    assert RACE in _races(engine)
    a.close()
    b.close()


def test_tcp_over_loopback_orders_request_and_response(engine: Engine) -> None:
    server = socket.create_server(("127.0.0.1", 0))
    port = server.getsockname()[1]
    box = Box()
    answer = Box()
    W2 = rec.register_site(__file__, 50, "server", "")
    R2 = rec.register_site(__file__, 51, "client", "")

    def serve() -> None:
        conn, _ = server.accept()
        with conn:
            request = _recv_exactly(conn, 4)
            rec.access(box, "value", "Read", R)  # after the client's write: ordered
            rec.access(answer, "value", "Write", W2, 2)
            conn.sendall(request.upper())

    def client() -> None:
        with socket.create_connection(("127.0.0.1", port)) as c:
            rec.access(box, "value", "Write", W, 1)
            c.sendall(b"ping")
            assert _recv_exactly(c, 4) == b"PING"
            rec.access(answer, "value", "Read", R2)  # after the server's write: ordered

    _both(serve, client)
    server.close()
    races = _races(engine)
    assert RACE not in races
    assert (f"{__file__}:50", f"{__file__}:51") not in races


def test_peeking_does_not_consume_and_event_loop_self_pipes_stay_out(engine: Engine) -> None:
    a, b = socket.socketpair()
    a.sendall(b"abc")
    assert b.recv(3, socket.MSG_PEEK) == b"abc"
    assert sockets._ends[b].into is not None and sockets._ends[b].into.received == 0
    assert b.recv(3) == b"abc" and sockets._ends[b].into.received == 3
    a.close()
    b.close()

    loop = asyncio.new_event_loop()
    try:
        loop.run_until_complete(asyncio.sleep(0))
        ssock = loop._ssock  # type: ignore[attr-defined]  # the stdlib's own pair
        assert sockets._ends.get(ssock) in (None, sockets._NO_ENDS)
    finally:
        loop.close()


def test_uninstall_puts_the_socket_class_back() -> None:
    before = {n: getattr(socket.socket, n) for n in sockets._METHODS}
    pair = socket.socketpair
    sockets.install()
    assert socket.socket.send is not before["send"] and socket.socketpair is not pair
    sockets.uninstall()
    assert {n: getattr(socket.socket, n) for n in sockets._METHODS} == before
    assert socket.socketpair is pair
    assert not any(n in vars(socket.socket) for n in sockets._METHODS)
