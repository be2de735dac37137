"""HttpSink: the recorder's events to a Raceway server, batched from a background thread.

``emit`` never blocks and never raises: it appends to a bounded buffer (a full buffer drops the
event and counts it). One sender thread, started with the recorder suspended so neither it nor
the HTTP client it drives is ever recorded, posts ``{"events": [...]}`` batches (the original
wire format plus our ``"raceway"`` extension) to ``{url}/events``:

* retries with exponential backoff and jitter on connection errors and 5xx; ``429``/``503``
  wait for ``Retry-After`` (capped); a ``413`` batch is split in halves; other 4xx are final;
* ``207`` (some events rejected) counts the rejected ones;
* :meth:`HttpSink.flush` waits (bounded) until everything emitted before the call was sent or
  dropped; :meth:`HttpSink.close` (also registered with :mod:`atexit`) does a final bounded flush
  and counts what is left as dropped.

Nothing is lost silently: every dropped event is counted by cause in :meth:`HttpSink.stats` and
logged (a warning the first time a cause occurs, and a summary at close).

The API key goes only to the configured server URL: the sink's own client has it, refuses
redirects (a redirect could hand it to another host), and nothing else in the SDK sees it.

At the process boundary the sink also does two things events need once they leave the process:
it stamps each event with its request's trace (:func:`raceway_sdk.propagation.route`), and it
qualifies process-local locations (object identities ``name@serial``, module globals) with the
process instance, so two processes that each have a ``dict@5`` never share a location.
"""

from __future__ import annotations

import _thread
import atexit
import collections
import logging
import os
import random
import re
import sys
import threading
import time
import weakref
from typing import Any

from raceway_sdk import _recorder as rec
from raceway_sdk import propagation
from raceway_sdk.protocol.events import Event, dumps_batch

__all__ = ["HttpSink", "TransportError"]

log = logging.getLogger("raceway_sdk.transport")

_raw_lock = _thread.allocate_lock  # captured before instrumentation can replace it
_IDENTITY = re.compile(r"[^\[]*?@\d+(?:[.\[]|\Z)").match
_RETRY_AFTER_CAP = 30.0
_DROP_CAUSES = ("buffer_full", "send_failed", "rejected", "closed", "shutdown")


class TransportError(ValueError):
    """A bad HttpSink setting (the message names it)."""


def _check_positive(name: str, value: Any, integer: bool = False) -> None:
    ok = isinstance(value, int) if integer else isinstance(value, (int, float))
    if isinstance(value, bool) or not ok or value <= 0:
        kind = "a positive int" if integer else "a positive number"
        raise TransportError(f"HttpSink {name} must be {kind}, got {value!r}")


class HttpSink:
    """Recorder sink posting batches to ``{url}/events`` (see the module docstring)."""

    def __init__(
        self,
        url: str,
        *,
        api_key: str | None = None,
        batch_size: int = 500,
        max_buffer: int = 100_000,
        flush_interval: float = 0.2,
        timeout: float = 5.0,
        max_retries: int = 4,
        backoff: float = 0.1,
        max_backoff: float = 5.0,
        route_traces: bool = True,
        qualify_locations: bool = True,
        register_atexit: bool = True,
    ) -> None:
        if not isinstance(url, str) or not url.startswith(("http://", "https://")):
            raise TransportError(f"HttpSink url must start with http:// or https://, got {url!r}")
        if api_key is not None and (not isinstance(api_key, str) or not api_key):
            raise TransportError("HttpSink api_key must be a non-empty string or None")
        for name, value, integer in (
            ("batch_size", batch_size, True),
            ("max_buffer", max_buffer, True),
            ("flush_interval", flush_interval, False),
            ("timeout", timeout, False),
            ("backoff", backoff, False),
            ("max_backoff", max_backoff, False),
        ):
            _check_positive(name, value, integer)
        if isinstance(max_retries, bool) or not isinstance(max_retries, int) or max_retries < 0:
            raise TransportError(f"HttpSink max_retries must be an int >= 0, got {max_retries!r}")
        self.url = url.rstrip("/")
        self._endpoint = self.url + "/events"
        self._api_key = api_key
        self.batch_size = batch_size
        self.max_buffer = max_buffer
        self.flush_interval = float(flush_interval)
        self.timeout = float(timeout)
        self.max_retries = max_retries
        self.backoff = float(backoff)
        self.max_backoff = float(max_backoff)
        self._route = route_traces
        self._qualify = qualify_locations
        self._instance = str(getattr(rec, "_INSTANCE", "p"))
        self._loc_cache: dict[str, str] = {}
        self._buffer: collections.deque[Event] = collections.deque()
        self._wake = _raw_lock()
        self._wake.acquire()  # held = nothing to do; a release wakes the sender
        self._stat_lock = _raw_lock()
        self._enqueued = 0  # events accepted into the buffer (monotonic)
        self._done = 0  # events taken out of the buffer and settled (sent or dropped)
        self.sent = 0
        self.batches = 0
        self.retries = 0
        self.dropped: dict[str, int] = dict.fromkeys(_DROP_CAUSES, 0)
        self._logged: set[str] = set()
        self.last_error: str | None = None
        self._closed = False
        self._stopping = False
        self._deadline: float | None = None
        self._stop_signal = _raw_lock()
        self._stop_signal.acquire()  # released by close(): cuts a backoff short
        self._inflight = 0
        self._abandoned = False
        with rec.suspended():  # the sender thread is a quiet task: never recorded
            self._thread = threading.Thread(
                target=self._run, name="raceway-http-sink", daemon=True
            )
            self._thread.start()
        if register_atexit:
            ref = weakref.ref(self)
            atexit.register(_close_at_exit, ref)
        _sinks.add(self)

    def _after_fork(self) -> None:
        # The child of os.fork(): the sender thread did not survive and the buffered events
        # are the parent's to send. Start over with fresh locks, counters and a new sender.
        self._buffer = collections.deque()
        self._wake = _raw_lock()
        self._wake.acquire()
        self._stop_signal = _raw_lock()
        self._stop_signal.acquire()
        self._stat_lock = _raw_lock()
        self._enqueued = self._done = self.sent = self.batches = self.retries = 0
        self._inflight = 0
        self.dropped = dict.fromkeys(_DROP_CAUSES, 0)
        self._logged = set()
        self._instance = str(getattr(rec, "_INSTANCE", "p"))
        self._loc_cache = {}
        if self._closed:
            return
        with rec.suspended():
            self._thread = threading.Thread(
                target=self._run, name="raceway-http-sink", daemon=True
            )
            self._thread.start()

    def __repr__(self) -> str:
        return f"HttpSink({self.url!r}, sent={self.sent}, dropped={sum(self.dropped.values())})"

    # ------------------------------------------------------------------ the application side

    def emit(self, event: Event) -> None:
        """Queue ``event`` (never blocks): a full buffer or a closed sink drops and counts it."""
        if self._route:
            propagation.route(event)
        if self._qualify and event.kind == "StateChange":
            ext = event.ext
            if ext is not None:
                loc = ext.get("loc")
                if type(loc) is str:
                    ext["loc"] = self._qualified(loc)
        if self._closed:
            self._count_drop("closed", 1)
            return
        if len(self._buffer) >= self.max_buffer:
            self._count_drop("buffer_full", 1)
            return
        self._buffer.append(event)
        with self._stat_lock:
            self._enqueued += 1
        if len(self._buffer) >= self.batch_size:
            self._poke()

    def _qualified(self, loc: str) -> str:
        cache = self._loc_cache
        q = cache.get(loc)
        if q is None:
            local = _IDENTITY(loc) is not None
            if not local:
                module = loc.rpartition(".")[0]
                local = bool(module) and module in sys.modules
            q = f"{self._instance}:{loc}" if local else loc
            if len(cache) >= 50_000:
                cache.clear()
            cache[loc] = q
        return q

    def flush(self, timeout: float = 5.0) -> bool:
        """Wait until every event emitted before this call is sent or dropped (or ``timeout``).

        Returns True when they all settled in time. Safe from any thread but the sender's.
        """
        with self._stat_lock:
            target = self._enqueued
        deadline = time.monotonic() + timeout
        self._poke()
        delay = 0.0005
        while True:
            with self._stat_lock:
                if self._done >= target:
                    return True
            if time.monotonic() >= deadline or not self._thread.is_alive():
                return False
            time.sleep(delay)
            delay = min(delay * 2, 0.01)

    def close(self, timeout: float = 10.0) -> None:
        """Final flush (bounded by ``timeout``), stop the sender, count what was left."""
        if self._closed:
            return
        self._closed = True
        self._deadline = time.monotonic() + timeout
        self._stopping = True
        self._stop_signal.release()
        self._poke()
        if threading.current_thread() is not self._thread:
            self._thread.join(timeout + 1.0)
        if self._thread.is_alive() and self._inflight:
            # the sender is stuck in a request past the deadline: its batch counts as lost
            self._settle_drop("shutdown", self._inflight)
            self._abandoned = True
        left = len(self._buffer)
        if left:
            self._buffer.clear()
            self._settle_drop("shutdown", left)
        total = sum(self.dropped.values())
        if total:
            causes = ", ".join(f"{k}: {v}" for k, v in self.dropped.items() if v)
            log.warning(
                "raceway: %d events were not delivered to %s (%s)%s", total, self.url, causes,
                f"; last error: {self.last_error}" if self.last_error else "",
            )

    def stats(self) -> dict[str, Any]:
        """Delivery counters: sent, dropped (total and by cause), pending, batches, retries."""
        with self._stat_lock:
            dropped = dict(self.dropped)
        out: dict[str, Any] = {
            "url": self.url,
            "sent": self.sent,
            "dropped": sum(dropped.values()),
            "dropped_by_cause": dropped,
            "pending": len(self._buffer),
            "batches": self.batches,
            "retries": self.retries,
            "last_error": self.last_error,
            "closed": self._closed,
        }
        out.update(propagation.routing_stats())
        return out

    # ------------------------------------------------------------------ bookkeeping

    def _poke(self) -> None:
        if self._wake.locked():
            try:
                self._wake.release()
            except RuntimeError:  # another thread woke it first
                pass

    def _count_drop(self, cause: str, n: int) -> None:
        # events that never entered the buffer
        with self._stat_lock:
            self.dropped[cause] += n

    def _settle_drop(self, cause: str, n: int) -> None:
        # events taken out of the buffer and given up
        if self._abandoned:
            return
        with self._stat_lock:
            self.dropped[cause] += n
            self._done += n

    def _log_new_drops(self) -> None:
        for cause, n in self.dropped.items():
            if n and cause not in self._logged:
                self._logged.add(cause)
                log.warning(
                    "raceway: dropping events for %s (%s; %d so far)%s", self.url, cause, n,
                    f": {self.last_error}" if self.last_error else "",
                )

    # ------------------------------------------------------------------ the sender thread

    def _run(self) -> None:
        with rec.suspended():
            import httpx

            headers = {"content-type": "application/json"}
            if self._api_key is not None:
                headers["authorization"] = f"Bearer {self._api_key}"
                headers["x-raceway-key"] = self._api_key
            with httpx.Client(
                timeout=self.timeout, headers=headers, follow_redirects=False, trust_env=False
            ) as client:
                self._loop(client)

    def _loop(self, client: Any) -> None:
        buffer = self._buffer
        while True:
            if not buffer:
                if self._stopping:
                    return
                self._wake.acquire(timeout=self.flush_interval)
                self._log_new_drops()
                continue
            batch: list[Event] = []
            while buffer and len(batch) < self.batch_size:
                batch.append(buffer.popleft())
            if self._stopping and self._past_deadline():
                self._settle_drop("shutdown", len(batch))
                continue
            self._inflight = len(batch)
            self._deliver(client, batch)
            self._inflight = 0
            self._log_new_drops()

    def _past_deadline(self) -> bool:
        return self._deadline is not None and time.monotonic() >= self._deadline

    def _sleep(self, seconds: float) -> bool:
        """Back off; False when the sink is closing and its deadline has passed."""
        if not self._stopping and self._stop_signal.acquire(timeout=seconds):
            self._stop_signal.release()  # close() began during the wait: keep it signalled
        return not (self._stopping and self._past_deadline())

    def _deliver(self, client: Any, batch: list[Event]) -> None:
        import httpx

        body = dumps_batch(batch)
        attempt = 0
        while True:
            wait: float | None
            try:
                response = client.post(self._endpoint, content=body)
            except httpx.HTTPError as exc:
                self.last_error = f"{type(exc).__name__}: {exc}"
                wait = self._backoff(attempt)
            else:
                code = response.status_code
                if code in (200, 201, 202, 204, 206):
                    self._sent(len(batch))
                    return
                if code == 207:
                    rejected = _rejected_count(response, len(batch))
                    self.last_error = f"HTTP 207: {rejected} events rejected by the server"
                    self._sent(len(batch) - rejected)
                    self._settle_drop("rejected", rejected)
                    return
                if code == 413 and len(batch) > 1:
                    half = len(batch) // 2
                    self._deliver(client, batch[:half])
                    self._deliver(client, batch[half:])
                    return
                self.last_error = f"HTTP {code}: {response.text[:200]}"
                if code in (429, 503):
                    wait = _retry_after(response, self._backoff(attempt))
                elif code >= 500:
                    wait = self._backoff(attempt)
                else:  # 400, 401, 403, 413 (one event), 415, 422: the server will not take it
                    self._settle_drop("rejected", len(batch))
                    return
            attempt += 1
            if attempt > self.max_retries or not self._sleep(wait):
                self._settle_drop("send_failed", len(batch))
                return
            self.retries += 1

    def _backoff(self, attempt: int) -> float:
        base = min(self.max_backoff, self.backoff * (2**attempt))
        return base * (0.5 + random.random() / 2)

    def _sent(self, n: int) -> None:
        if self._abandoned:
            return
        with self._stat_lock:
            self.sent += n
            self.batches += 1
            self._done += n


def _retry_after(response: Any, default: float) -> float:
    value = response.headers.get("retry-after")
    if value is None:
        return default
    try:
        seconds = float(value)
    except ValueError:
        return default  # an HTTP date: not worth parsing for a cap of seconds
    return max(0.0, min(seconds, _RETRY_AFTER_CAP))


def _rejected_count(response: Any, n: int) -> int:
    # the server's envelope {"data": {"rejected": n}}, or a listener's {"errors": [...]}
    try:
        doc = response.json()
        data = doc.get("data") or {}
        rejected = data.get("rejected")
        if rejected is None and isinstance(doc.get("errors"), list):
            rejected = len(doc["errors"])
    except Exception:
        rejected = None
    if isinstance(rejected, int) and 0 <= rejected <= n:
        return rejected
    return 0


_sinks: weakref.WeakSet[HttpSink] = weakref.WeakSet()


def _reinit_after_fork() -> None:
    for sink in list(_sinks):
        sink._after_fork()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_reinit_after_fork)


def _close_at_exit(ref: weakref.ref[HttpSink]) -> None:
    sink = ref()
    if sink is not None:
        sink.close(timeout=5.0)
