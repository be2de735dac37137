"""Object identity that survives ``id()`` reuse.

CPython reuses an object's ``id`` once the object is freed, so keying locations on ``id(obj)``
would let a new object inherit the access history (and the race reports) of a dead one. Every
object the recorder sees gets an :class:`Entry` with a process-unique ``serial`` instead:

* weakrefable objects are tracked with a weak reference whose callback removes the entry when the
  object dies (CPython runs the callback before the memory, hence the id, can be reused);
* objects that cannot be weakly referenced (``dict``, ``list``, ``object()``, ``__slots__``
  classes without ``__weakref__``) are kept alive by a strong reference until :func:`reset`
  (called when the trace changes), so their id cannot be reused while their history matters.

Every lookup also checks that the entry still refers to the very object asked about, so even a
missed callback (or a free-threaded build's race) can never hand out a stale serial.
An entry also carries the clock of a synchronisation object (``sync_vc``) so that it dies with
the object.
"""

from __future__ import annotations

import itertools
import sys
import threading
import types
import weakref
from typing import Any

import msgspec

__all__ = ["Entry", "lookup", "entry", "reset", "label", "name", "strong_count", "SKIP_TYPES"]

_serials = itertools.count(1)

#: Types whose instances are never shared state: per-thread / per-context storage.
SKIP_TYPES: tuple[type, ...] = (threading.local,)
try:  # pragma: no cover - always present on CPython
    import contextvars

    SKIP_TYPES = SKIP_TYPES + (contextvars.ContextVar, contextvars.Context, contextvars.Token)
except ImportError:  # pragma: no cover
    pass


#: the ``locs`` of an entry whose locations were never named (never written to)
NO_LOCS: dict[Any, tuple[str, str]] = {}


class Entry(msgspec.Struct, gc=False, eq=False):
    """What the recorder knows about one live object (made by :func:`entry`).

    A struct the cyclic garbage collector does not track: entries never form cycles (they
    refer to the object, its weak reference, a task, plain payloads), and a test that makes
    many short-lived lists or dicts creates one per object. Every tracked allocation that
    survives brings the next collection nearer, and each collection walks the program's own
    young containers again (with the flat ``pend``: a mixed-benchmark round's net tracked
    allocations went from 15.6k to 11.6k).
    """

    serial: int
    ref: Any  # weakref.ref | None
    #: the object itself when it cannot be weakly referenced (kept alive until reset())
    strong: Any
    label: str
    name: str
    #: key -> (loc, variable) cache, filled by the recorder; until then the shared empty
    #: NO_LOCS (most objects are never named: a dict less per object)
    locs: dict[Any, tuple[str, str]]
    #: skip: per-thread / per-context storage, never shared state; module: a module object
    skip: bool
    module: bool
    #: vector clock stored by release-like operations on this object
    sync_vc: dict[str, int] | None = None
    #: the recorder's last sync-event payload for this object (shared while unchanged)
    sync_data: list[dict[str, Any] | None] | None = None
    #: the only task that has accessed the object so far (None: shared, or not tracked)
    owner: Any = None
    #: that task's accesses not emitted yet, in program order, flat (the recorder's
    #: ``_PEND_ITEM`` fields per access)
    pend: list[Any] | None = None

    def alive_is(self, obj: object) -> bool:
        """True if this entry still describes ``obj`` (not a dead object with the same id)."""
        ref = self.ref
        return (ref() if ref is not None else self.strong) is obj


#: type -> (skip, module, is a class, type name, weakrefable): objects of one type share it
_types: dict[type, tuple[bool, bool, bool, str, bool]] = {}


def _type_info(tp: type) -> tuple[bool, bool, bool, str, bool]:
    info = _types.get(tp)
    if info is None:
        info = (
            issubclass(tp, SKIP_TYPES),
            issubclass(tp, types.ModuleType),
            issubclass(tp, type),
            tp.__name__,
            # 0: instances cannot be weakly referenced (list, dict, object(), __slots__ classes
            # without __weakref__); negative (3.12+): a managed weakref slot
            getattr(tp, "__weakrefoffset__", 1) != 0,
        )
        if len(_types) < 4096:  # bounded: classes created in a loop
            _types[tp] = info
    return info


def _new_entry(serial: int, obj: Any, ref: weakref.ref | None) -> Entry:
    tp = type(obj)
    if obj.__class__ is tp:
        info = _type_info(tp)
    else:  # a proxy that reports another class: isinstance() semantics, as for the rest
        info = (
            isinstance(obj, SKIP_TYPES),
            isinstance(obj, types.ModuleType),
            isinstance(obj, type),
            tp.__name__,
            True,
        )
    if info[1]:
        name = label = obj.__name__
    else:
        name = obj.__qualname__ if info[2] else info[3]
        label = f"{name}@{serial}"
    return Entry(serial, ref, None if ref is not None else obj, label, name, NO_LOCS, info[0], info[1])


class _Ref(weakref.ref):
    __slots__ = ("key", "serial")
    key: int
    serial: int


_table: dict[int, Entry] = {}
_strong_keys: set[int] = set()
_pinned: set[int] = set()  # named by the user (mark_shared): survive reset()


def _on_dead(wr: _Ref, _table: dict[int, Entry] = _table) -> None:
    # Runs when a tracked object dies: forget it so its id can never resolve to its history.
    # The table is bound as a default: at interpreter shutdown module globals become None
    # while weakref callbacks still fire.
    ent = _table.get(wr.key)
    if ent is not None and ent.serial == wr.serial:
        _table.pop(wr.key, None)


def lookup(obj: object) -> Entry | None:
    """The live entry of ``obj`` or None (cheap: one dict lookup and one identity check)."""
    ent = _table.get(id(obj))
    if ent is not None and ent.alive_is(obj):
        return ent
    return None


def entry(obj: object, owner: Any = None) -> Entry:
    """The entry of ``obj``, created on first sight. Safe to call from several threads.

    ``owner``: the task making the first access, recorded only if this call creates the entry.
    """
    key = id(obj)
    ent = _table.get(key)
    if ent is not None and ent.alive_is(obj):
        return ent
    serial = next(_serials)
    ref: _Ref | None = None
    if _type_info(type(obj))[4]:
        try:
            ref = _Ref(obj, _on_dead)
        except TypeError:
            pass
    new = _new_entry(serial, obj, ref)
    if owner is not None:  # set before the entry is published: one owner, whoever wins
        new.owner = owner
        new.pend = []
    if ref is not None:
        ref.key = key
        ref.serial = serial
    if ent is not None:
        # A stale entry for a dead object with this id (callback missed): replace it.
        _table[key] = new
        got = new
    else:
        got = _table.setdefault(key, new)  # atomic: two first accesses agree on one serial
        if not got.alive_is(obj):  # lost to a stale entry inserted concurrently
            _table[key] = new
            got = new
    if got is new and ref is None:
        _strong_keys.add(key)
        if len(_strong_keys) >= _sweep_at:
            _sweep()
    return got


#: strong entries at which the next creation sweeps out objects only the table keeps alive
_SWEEP_MIN = 10_000
_sweep_at = _SWEEP_MIN
_getrefcount = sys.getrefcount
#: refcounts are exact only with the GIL (a free-threaded build defers some of them)
_can_sweep = getattr(sys, "_is_gil_enabled", lambda: True)()


def _sweep() -> None:
    """Drop strong entries whose object nothing but the entry references any more.

    Such an object is garbage the table kept alive: no code can reach it to access it again,
    so its history is complete and its id may be reused (a new object gets a new serial).
    Without this, a test that goes through many temporary lists or dicts would keep every one
    of them until the trace ends. Amortised O(1): the next sweep waits until the count doubles.
    """
    global _sweep_at
    if _can_sweep:
        for key in list(_strong_keys):
            ent = _table.get(key)
            if ent is None or ent.ref is not None or key in _pinned:
                continue
            # 2: the entry's reference and getrefcount's own argument
            if _getrefcount(ent.strong) <= 2:
                _strong_keys.discard(key)
                if _table.get(key) is ent:
                    _table.pop(key, None)
    _sweep_at = max(_SWEEP_MIN, 2 * len(_strong_keys))


def label(obj: object) -> str:
    """A short, unique, readable name for ``obj``: ``"Account@3"``."""
    return entry(obj).label


def name(obj: object, display: str) -> Entry:
    """Give ``obj`` a readable name for locations (``"accounts@4['k']"``); kept across traces."""
    ent = entry(obj)
    ent.name = display
    ent.label = f"{display}@{ent.serial}"
    ent.locs = {}
    if ent.ref is None:
        _pinned.add(id(obj))
    return ent


def reset() -> None:
    """Drop the strong references (a trace ended): those objects get fresh serials later.

    Weakly tracked entries stay: their serials are still unique while the objects live.
    Objects named with :func:`name` stay pinned (the user asked for them explicitly).
    """
    keys = [k for k in _strong_keys if k not in _pinned]
    _strong_keys.difference_update(keys)
    for key in keys:
        ent = _table.get(key)
        if ent is not None and ent.ref is None:
            _table.pop(key, None)


def strong_count() -> int:
    """How many objects are kept alive for identity (surfaced in the recorder's stats)."""
    return len(_strong_keys)
