"""Happens-before through bytes: a send on a socket -> the receive of those bytes on its peer.

Inside one process (a test's server and client, a ``socketpair()`` between two tasks or
threads) the bytes a task sends are how the receiver learns what the sender did before: a
consumer that acts on a message it received is ordered after the producer's writes. Each
direction of a connection is a *channel*; every ``send``/``sendall``/``sendmsg`` stores the sender's clock
with the channel offset of its first byte (before the bytes leave, so no receiver can be ahead),
and every ``recv``/``recv_into`` joins the clocks of all sends whose first byte it has now
received (a partial read of a later message still orders after that message's send).

Peers are known for ``socket.socketpair()`` pairs created by the code under test (registered at
creation; the stdlib's own pairs, e.g. asyncio's self-pipe, stay out: they would order every
thread that wakes an event loop) and for TCP connections over loopback, looked up once per
socket by their address pair. Other sockets cost one lookup per call and give no edges: SSL
sockets (``ssl.SSLSocket`` has its own ``send``/``recv``), pipes, datagrams, connections to
other processes (their clocks travel in HTTP headers, see :mod:`raceway_sdk.propagation`).
This covers asyncio and anyio streams too: their transports call these methods.
"""

from __future__ import annotations

import _thread
import collections
import socket
import weakref
from typing import Any

from raceway_sdk import _recorder as rec

__all__ = ["install", "uninstall", "is_installed"]

_LOOPBACK = ("127.", "::1", "::ffff:127.")
_LOCK_TYPE = "socket"


class _Channel:
    """One direction of a connection: sends not yet received, with the offset of their start."""

    __slots__ = ("sent", "received", "sends", "__weakref__")

    def __init__(self) -> None:
        self.sent = 0  # bytes the sending end has handed to the kernel
        self.received = 0  # bytes the receiving end has read
        self.sends: collections.deque[tuple[int, rec.ClockSlot]] = collections.deque()


class _Ends:
    """A socket's two channels (either may be None: the peer is not in this process)."""

    __slots__ = ("out", "into")

    def __init__(self, out: _Channel | None, into: _Channel | None) -> None:
        self.out = out
        self.into = into


_NO_ENDS = _Ends(None, None)
_ends: weakref.WeakKeyDictionary[Any, _Ends] = weakref.WeakKeyDictionary()
#: (sender address, receiver address) -> channel, for TCP over loopback (alive while an end is)
_tcp: weakref.WeakValueDictionary[tuple[Any, Any], _Channel] = weakref.WeakValueDictionary()
_tcp_lock = _thread.allocate_lock()


def _ends_of(sock: Any) -> _Ends:
    ends = _ends.get(sock)
    if ends is not None:
        return ends
    if sock.family not in (socket.AF_INET, socket.AF_INET6) or sock.type != socket.SOCK_STREAM:
        _ends[sock] = _NO_ENDS
        return _NO_ENDS
    try:
        here, there = sock.getsockname(), sock.getpeername()
    except OSError:
        return _NO_ENDS  # not connected yet: ask again on the next call
    if not (str(here[0]).startswith(_LOOPBACK) and str(there[0]).startswith(_LOOPBACK)):
        _ends[sock] = _NO_ENDS
        return _NO_ENDS
    here, there = tuple(here[:2]), tuple(there[:2])
    with _tcp_lock:  # both ends of a connection must find the same two channels
        out = _tcp.get((here, there))
        if out is None:
            out = _tcp[(here, there)] = _Channel()
        into = _tcp.get((there, here))
        if into is None:
            into = _tcp[(there, here)] = _Channel()
    ends = _ends[sock] = _Ends(out, into)
    return ends


def _before_send(ch: _Channel) -> None:
    tok = rec.ClockSlot()
    rec.release(ch, _LOCK_TYPE, tok, 2)
    ch.sends.append((ch.sent, tok))


def _after_recv(ch: _Channel, n: int) -> None:
    ch.received += n
    sends = ch.sends
    while sends:
        try:
            start, tok = sends[0]
        except IndexError:
            return
        if start >= ch.received:
            return
        try:
            sends.popleft()
        except IndexError:
            return
        rec.acquire(ch, _LOCK_TYPE, tok, 2)


def _nbytes(data: Any) -> int:
    try:
        return memoryview(data).nbytes
    except TypeError:
        return len(data)


# --------------------------------------------------------------------------- the patched methods

_raw = socket.socket
_orig: dict[str, Any] = {}


def _counted_send(name: str, self: Any, args: tuple[Any, ...]) -> int:
    """A send that returns how many bytes it sent (``send``, ``sendmsg``)."""
    ch = _ends_of(self).out if rec.enabled() else None
    if ch is None:
        return _orig[name](self, *args)  # type: ignore[no-any-return]
    _before_send(ch)
    n: int = _orig[name](self, *args)
    ch.sent += n
    return n


def _send(self: Any, data: Any, *flags: Any) -> int:
    return _counted_send("send", self, (data, *flags))


def _sendall(self: Any, data: Any, *flags: Any) -> None:
    ch = _ends_of(self).out if rec.enabled() else None
    if ch is None:
        return _orig["sendall"](self, data, *flags)  # type: ignore[no-any-return]
    _before_send(ch)
    _orig["sendall"](self, data, *flags)
    ch.sent += _nbytes(data)
    return None


def _sendmsg(self: Any, buffers: Any, *rest: Any) -> int:
    # asyncio's selector transports flush buffered writes with sendmsg (3.12+)
    return _counted_send("sendmsg", self, (buffers, *rest))


def _peeking(flags: tuple[Any, ...]) -> bool:
    return bool(flags) and bool(flags[0] & socket.MSG_PEEK)


def _recv(self: Any, bufsize: int, *flags: Any) -> bytes:
    data: bytes = _orig["recv"](self, bufsize, *flags)
    if data and not _peeking(flags) and rec.enabled():
        ch = _ends_of(self).into
        if ch is not None:
            _after_recv(ch, len(data))
    return data


def _recv_into(self: Any, buffer: Any, *args: Any) -> int:
    n: int = _orig["recv_into"](self, buffer, *args)
    if n and not _peeking(args[1:]) and rec.enabled():
        ch = _ends_of(self).into
        if ch is not None:
            _after_recv(ch, n)
    return n


def _socketpair(*args: Any, **kwargs: Any) -> tuple[Any, Any]:
    a, b = _orig["socketpair"](*args, **kwargs)
    if rec.enabled() and a.type == socket.SOCK_STREAM:
        from raceway_sdk.instrument.threads import _created_internally

        if not _created_internally(2):
            ab, ba = _Channel(), _Channel()
            _ends[a] = _Ends(ab, ba)
            _ends[b] = _Ends(ba, ab)
    return a, b


_METHODS = {"send": _send, "sendall": _sendall, "recv": _recv, "recv_into": _recv_into}
if hasattr(_raw, "sendmsg"):  # not on Windows
    _METHODS["sendmsg"] = _sendmsg
_installed = False


def is_installed() -> bool:
    """True while ``socket.socket``'s send/receive methods are patched."""
    return _installed


def install() -> None:
    """Patch ``socket.socket`` send/receive and ``socket.socketpair`` (idempotent)."""
    global _installed
    if _installed:
        return
    for name, method in _METHODS.items():
        _orig[name] = getattr(_raw, name)
        setattr(_raw, name, method)
    _orig["socketpair"] = socket.socketpair
    socket.socketpair = _socketpair  # type: ignore[assignment]
    _installed = True


def uninstall() -> None:
    """Put the original methods back: the class's own ones are inherited from ``_socket``."""
    global _installed
    if not _installed:
        return
    for name in _METHODS:
        if name in vars(_raw):
            delattr(_raw, name)
        if getattr(_raw, name) is not _orig[name]:  # it had an own definition: restore it
            setattr(_raw, name, _orig[name])
    socket.socketpair = _orig["socketpair"]
    _orig.clear()
    _ends.clear()
    _installed = False
