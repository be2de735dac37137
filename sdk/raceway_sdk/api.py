"""The manual API: record what automatic instrumentation cannot see.

Names follow the original Raceway Python SDK where they fit (``track_state_change``,
``track_function_call``, ``track_lock_acquire`` / ``track_lock_release``), but no client object
is needed: events go to the recorder's sink and carry the calling task's vector clock. With no
sink installed every call is a cheap no-op.

>>> import raceway_sdk as rw
>>> rw.track_state_change("alice.balance", 100, 90)       # a write of a named variable
>>> rw.track_lock_acquire("accounts")                        # manual lock -> happens-before
>>> rw.track_lock_release("accounts")
>>> accounts = rw.track({}, "accounts")                      # proxy recording item access
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

from raceway_sdk import _identity
from raceway_sdk import _recorder as rec
from raceway_sdk.protocol.events import ACCESS_TYPES

__all__ = [
    "track_state_change",
    "track_access",
    "track_function_call",
    "track_function",
    "track_lock_acquire",
    "track_lock_release",
    "tracked_lock",
    "mark_shared",
    "track",
    "current_trace",
]

T = TypeVar("T")


def _check_access_type(access_type: str) -> None:
    if access_type not in ACCESS_TYPES:
        raise ValueError(
            f"access_type must be one of {', '.join(ACCESS_TYPES)}, got {access_type!r}"
        )


def _caller_site(depth: int, name: str, kind: str) -> rec.Site:
    f = sys._getframe(depth + 1)
    code = f.f_code
    func = getattr(code, "co_qualname", code.co_name)
    return rec.register_site(code.co_filename, f.f_lineno, func, name, kind)


def track_state_change(
    variable: str, old_value: Any = None, new_value: Any = None, access_type: str = "Write"
) -> None:
    """Record an access of the variable called ``variable`` (its name is its location)."""
    if not isinstance(variable, str) or not variable:
        raise ValueError(f"variable must be a non-empty string, got {variable!r}")
    _check_access_type(access_type)
    if not rec.enabled():
        return
    site = _caller_site(1, "", rec.GLOBAL)
    rec.access_variable(variable, access_type, site, new_value, old_value)


def track_access(
    obj: object,
    key: Any,
    access_type: str = "Read",
    *,
    item: bool = False,
    value: Any = rec._NOVALUE,
) -> None:
    """Record an access of ``obj``'s attribute ``key`` (or item ``key`` with ``item=True``).

    The location is the object's identity, so this pairs with automatically recorded
    accesses of the same object.
    """
    _check_access_type(access_type)
    if not item and not isinstance(key, str):
        raise TypeError(f"an attribute name must be a string, got {key!r} (item=True for items)")
    if not rec.enabled():
        return
    site = _caller_site(1, "", rec.ITEM if item else rec.ATTR)
    rec.access(obj, key, access_type, site, value)


def track_function_call(
    function_name: str, args: dict[str, Any] | None = None, duration_ns: int | None = None
) -> None:
    """Record a ``FunctionCall`` event (optionally with its duration, for the critical path)."""
    if not isinstance(function_name, str) or not function_name:
        raise ValueError(f"function_name must be a non-empty string, got {function_name!r}")
    if duration_ns is not None and (not isinstance(duration_ns, int) or duration_ns < 0):
        raise ValueError(f"duration_ns must be a non-negative int, got {duration_ns!r}")
    if not rec.enabled():
        return
    f = sys._getframe(1)
    data = {
        "function_name": function_name,
        "module": f.f_globals.get("__name__", "?"),
        "args": dict(args) if args else {},
        "file": f.f_code.co_filename,
        "line": f.f_lineno,
    }
    rec.emit_event("FunctionCall", data, None, duration_ns)


def track_function(
    function_name: str, fn: Callable[[], T], args: dict[str, Any] | None = None
) -> T:
    """Run ``fn()`` and record a ``FunctionCall`` with its measured duration (also on error)."""
    start = time.perf_counter_ns()
    try:
        return fn()
    finally:
        track_function_call(function_name, args, time.perf_counter_ns() - start)


class _ManualLock:
    """The clock holder of a lock known only by its id (manual API)."""

    __slots__ = ("lock_id", "__weakref__")

    def __init__(self, lock_id: str) -> None:
        self.lock_id = lock_id


_manual_locks: dict[str, _ManualLock] = {}


def _manual_lock(lock_id: str) -> _ManualLock:
    if not isinstance(lock_id, str) or not lock_id:
        raise ValueError(f"lock_id must be a non-empty string, got {lock_id!r}")
    lock = _manual_locks.get(lock_id)
    if lock is None:
        lock = _manual_locks.setdefault(lock_id, _ManualLock(lock_id))
        ent = _identity.entry(lock)
        ent.label = lock_id  # the event's lock_id is the user's id
    return lock


def track_lock_acquire(lock_id: str, lock_type: str = "Mutex") -> None:
    """Record that the caller acquired ``lock_id``: it now happens after the last release."""
    lock = _manual_lock(lock_id)
    rec.acquire(lock, lock_type)


def track_lock_release(lock_id: str, lock_type: str = "Mutex") -> None:
    """Record that the caller is about to release ``lock_id`` (call it before releasing)."""
    lock = _manual_lock(lock_id)
    rec.release(lock, lock_type)


@contextmanager
def tracked_lock(lock: Any, lock_id: str, lock_type: str = "Mutex") -> Iterator[Any]:
    """``with tracked_lock(lock, "accounts"):`` acquires ``lock`` and records the edges.

    For locks the instrumentation does not see (created before install, or foreign types
    with ``acquire``/``release``).
    """
    if not (callable(getattr(lock, "acquire", None)) and callable(getattr(lock, "release", None))):
        raise TypeError(f"tracked_lock needs an object with acquire() and release(), got {lock!r}")
    lock.acquire()
    track_lock_acquire(lock_id, lock_type)
    try:
        yield lock
    finally:
        track_lock_release(lock_id, lock_type)
        lock.release()


def mark_shared(obj: T, name: str | None = None) -> T:
    """Declare ``obj`` shared state; ``name`` labels it in reports (``"accounts['alice']"``).

    Every object accessed by instrumented code is tracked anyway; marking pins its identity
    for the whole session, gives it a readable name, and sends every access of it even while
    only one task has touched it (the pytest plugin otherwise holds those back). Returns ``obj``.
    """
    if isinstance(obj, _identity.SKIP_TYPES):
        raise TypeError(f"{type(obj).__name__} holds per-thread/per-context state: never shared")
    if name is not None and (not isinstance(name, str) or not name):
        raise ValueError(f"name must be a non-empty string, got {name!r}")
    rec.share(_identity.name(obj, name or type(obj).__name__))
    return obj


def track(obj: T, name: str | None = None) -> T:
    """Return a proxy of ``obj`` that records its attribute and item accesses.

    For objects handled by uninstrumented or C code; see :mod:`raceway_sdk.instrument.proxy`.
    """
    from raceway_sdk.instrument.proxy import TrackedProxy

    if isinstance(obj, TrackedProxy):
        return obj
    mark_shared(obj, name)
    return TrackedProxy(obj)  # type: ignore[return-value]


def current_trace() -> int:
    """The trace id events are stamped with (the running test's, under the pytest plugin)."""
    return rec.current_trace()
