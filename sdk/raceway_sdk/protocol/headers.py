"""Trace propagation over HTTP: W3C ``traceparent``/``tracestate`` and ``raceway-clock``.

Byte-compatible with the original SDKs (reference §2.4), including their quirks:

* ``traceparent: 00-<32 hex>-<16 hex>-01``. The trace id is the trace UUID without hyphens;
  on receipt hyphens are re-inserted 8-4-4-4-12 (so a Python SDK trace id that was not a UUID
  and got ``ljust(32, "0")``-padded comes back as that padded UUID). Version and flags are not
  checked; the lengths and hex of the two ids are.
* Non-standard span semantics: the caller mints a fresh *child* span id and puts it in
  ``traceparent``; the callee adopts it as its **own** span id (W3C would call it the parent).
* ``tracestate`` is passed through verbatim.
* ``raceway-clock: "v1;" + base64url_nopad(JSON)`` with, in this key order,
  ``{"trace_id", "span_id" (the child span = callee's span), "parent_span_id" (caller's span),
  "service", "instance", "clock": [[component, n], ...]}``, compact separators, ASCII escapes
  (exactly ``json.dumps(..., separators=(",", ":"))`` as the Python SDK writes it). Its
  ``trace_id``/``span_id``/``parent_span_id`` override the ones from ``traceparent``.
  Lenient like the originals: a wrong prefix, bad base64 or bad JSON ⇒ the header is ignored;
  clock entries are kept only if they are ``[string, non-negative number]``.

Our SDK puts its full vector clock over task ids in the same ``clock`` field, and may add one
extra key ``"raceway"`` (an object, ignored by the original parsers) for its own metadata.

Unlike the original SDKs, :func:`build_outgoing` does not tick anything: the caller applies
the happens-before rule (a send is a release) before building the headers.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import secrets
from collections.abc import Mapping
from typing import Any

from .events import parse_uuid, uuid_str

TRACEPARENT = "traceparent"
TRACESTATE = "tracestate"
RACEWAY_CLOCK = "raceway-clock"
CLOCK_PREFIX = "v1;"

_HEX16 = re.compile(r"[0-9a-fA-F]{16}\Z").match
_HEX32 = re.compile(r"[0-9a-fA-F]{32}\Z").match
_B64URL = re.compile(r"[A-Za-z0-9_-]*\Z").match


class IncomingContext:
    """What the propagation headers of one incoming request carry.

    ``span_id`` is the span the caller assigned to *this* request (its own span, in the
    originals' semantics); ``parent_span_id``, ``service`` and ``instance`` describe the caller
    (only ``raceway-clock`` carries them). ``trace_id`` is ``None`` when neither header had a
    usable one (the receiver then starts a new trace, as the originals do).
    """

    __slots__ = (
        "trace_id",
        "span_id",
        "parent_span_id",
        "service",
        "instance",
        "clock",
        "tracestate",
        "ext",
        "has_traceparent",
        "has_clock",
    )

    def __init__(
        self,
        trace_id: int | None,
        span_id: str | None = None,
        parent_span_id: str | None = None,
        service: str | None = None,
        instance: str | None = None,
        clock: dict[str, int] | None = None,
        tracestate: str | None = None,
        ext: dict[str, Any] | None = None,
        has_traceparent: bool = False,
        has_clock: bool = False,
    ) -> None:
        self.trace_id = trace_id
        self.span_id = span_id
        self.parent_span_id = parent_span_id
        self.service = service
        self.instance = instance
        self.clock = clock if clock is not None else {}
        self.tracestate = tracestate
        self.ext = ext
        self.has_traceparent = has_traceparent
        self.has_clock = has_clock

    def __repr__(self) -> str:
        tid = None if self.trace_id is None else uuid_str(self.trace_id)
        return (
            f"IncomingContext(trace_id={tid!r}, span_id={self.span_id!r}, "
            f"parent_span_id={self.parent_span_id!r}, clock={self.clock!r})"
        )


def _header(headers: Mapping[str, str], name: str) -> str | None:
    value = headers.get(name)
    if value is None:
        for key, val in headers.items():
            if key.lower() == name:
                return val
    return value


def parse_traceparent(value: str) -> tuple[int, str] | None:
    """``(trace_id, span_id)`` from a ``traceparent`` value, or ``None`` if it is unusable."""
    parts = value.strip().split("-")
    if len(parts) != 4:
        return None
    trace_hex, span_hex = parts[1], parts[2]
    if not (_HEX32(trace_hex) and _HEX16(span_hex)):
        return None
    return int(trace_hex, 16), span_hex.lower()


def parse_clock_header(value: str) -> dict[str, Any] | None:
    """Decoded ``raceway-clock`` payload (a JSON object), or ``None`` if it is unusable."""
    if not value.startswith(CLOCK_PREFIX):
        return None
    encoded = value[len(CLOCK_PREFIX) :].strip().rstrip("=")
    if not _B64URL(encoded):
        return None
    try:
        raw = base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4))
        payload = json.loads(raw.decode("utf-8"))
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return None
    return payload if isinstance(payload, dict) else None


def _clock_entries(entries: Any) -> dict[str, int]:
    clock: dict[str, int] = {}
    if not isinstance(entries, list):
        return clock
    for item in entries:
        if not (isinstance(item, list) and len(item) == 2 and isinstance(item[0], str)):
            continue
        n = item[1]
        if isinstance(n, bool) or not isinstance(n, (int, float)) or not n >= 0:
            continue
        if isinstance(n, float):
            if n == float("inf"):
                continue
            n = int(n)  # the Python SDK truncates fractional counts the same way
        if n > clock.get(item[0], -1):
            clock[item[0]] = n
    return clock


def _opt_str(v: Any) -> str | None:
    return v if isinstance(v, str) else None


def parse_incoming(headers: Mapping[str, str]) -> IncomingContext | None:
    """Read ``traceparent``/``tracestate``/``raceway-clock`` (header names case-insensitive).

    Returns ``None`` when neither ``traceparent`` nor ``raceway-clock`` is usable: the request
    is not part of a distributed trace (a lone ``tracestate`` is meaningless and dropped).
    """
    ctx = IncomingContext(None)
    tp = _header(headers, TRACEPARENT)
    if tp:
        parsed = parse_traceparent(tp)
        if parsed is not None:
            ctx.trace_id, ctx.span_id = parsed
            ctx.has_traceparent = True
    rc = _header(headers, RACEWAY_CLOCK)
    if rc:
        payload = parse_clock_header(rc)
        if payload is not None:
            ctx.has_clock = True
            trace = payload.get("trace_id")
            if isinstance(trace, str):
                try:
                    ctx.trace_id = parse_uuid(trace)
                except ValueError:
                    pass  # e.g. a non-UUID Python SDK trace id: keep traceparent's padded form
            span = _opt_str(payload.get("span_id"))
            if span is not None:
                ctx.span_id = span
            ctx.parent_span_id = _opt_str(payload.get("parent_span_id"))
            ctx.service = _opt_str(payload.get("service"))
            ctx.instance = _opt_str(payload.get("instance"))
            ctx.clock = _clock_entries(payload.get("clock"))
            ext = payload.get("raceway")
            ctx.ext = ext if isinstance(ext, dict) else None
    if not (ctx.has_traceparent or ctx.has_clock):
        return None
    ctx.tracestate = _header(headers, TRACESTATE) or None
    return ctx


def new_span_id() -> str:
    """A fresh random 16-hex span id (as the original SDKs mint them)."""
    return secrets.token_hex(8)


def build_outgoing(
    trace_id: int,
    span_id: str,
    service: str,
    instance: str,
    clock: Mapping[str, int],
    tracestate: str | None = None,
    *,
    child_span_id: str | None = None,
    ext: dict[str, Any] | None = None,
) -> dict[str, str]:
    """Headers for an outgoing request of the caller ``span_id`` (of ``service``/``instance``).

    ``child_span_id`` (the callee's span; random if omitted) goes into ``traceparent`` and the
    clock payload's ``span_id``. ``clock`` is sent as is (ticking is the caller's business).
    ``ext`` adds our ``"raceway"`` key to the clock payload; without it the bytes are exactly
    what the original Python SDK sends.
    """
    child = new_span_id() if child_span_id is None else child_span_id
    if not _HEX16(child):
        raise ValueError(f"child_span_id must be 16 hex digits, got {child!r}")
    if not 0 <= trace_id < 1 << 128:
        raise ValueError(f"trace_id must be a 128-bit unsigned int, got {trace_id!r}")
    entries = []
    for comp, n in clock.items():
        if not isinstance(comp, str) or isinstance(n, bool) or not isinstance(n, int) or n < 0:
            raise ValueError(f"clock entries must be str -> non-negative int, got {comp!r}: {n!r}")
        entries.append([comp, n])
    trace = uuid_str(trace_id)
    payload: dict[str, Any] = {
        "trace_id": trace,
        "span_id": child,
        "parent_span_id": span_id,
        "service": service,
        "instance": instance,
        "clock": entries,
    }
    if ext is not None:
        payload["raceway"] = ext
    encoded = base64.urlsafe_b64encode(json.dumps(payload, separators=(",", ":")).encode("utf-8"))
    headers = {
        TRACEPARENT: f"00-{trace.replace('-', '')}-{child}-01",
        RACEWAY_CLOCK: CLOCK_PREFIX + encoded.decode("ascii").rstrip("="),
    }
    if tracestate:
        headers[TRACESTATE] = tracestate
    return headers
