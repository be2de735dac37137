"""The functions that rewritten modules call in place of their attribute, item and global accesses.

Each hook records the access through the recorder and then performs it natively, so exceptions,
descriptors, ``__getattr__`` and properties behave exactly as before. Hooks are bound into the
rewritten module's globals under names no source code can spell (``_rw@ga``), together with one
pre-registered :class:`~raceway_sdk._recorder.Site` per access node (``_rw@s12``): the hot path
passes prebuilt objects and positional arguments only.

Containers are recognised at run time by type (dict, list, set, deque, OrderedDict, defaultdict,
Counter, and subclasses that do not override the method): ``d[k]``, ``k in d``, ``d.get(k)`` read
``(d, k)``; ``d[k] = v``, ``del d[k]`` write it (plus an atomic structural write of the whole
container when the key set may change); ``len``, iteration, ``keys()`` and copies read the whole
container; single-call mutators (``append``, ``setdefault``, ``popleft``, ...) are atomic.
"""

from __future__ import annotations

import _thread
import builtins
import itertools
import operator
import sys
import types
import weakref
from collections import Counter, OrderedDict, defaultdict, deque
from typing import Any

from raceway_sdk import _recorder
from raceway_sdk._recorder import ALL, ATTR, GLOBAL, ITEM

__all__ = ["bind", "Closure", "PREFIX", "OPS", "SITE_KINDS"]

PREFIX = "_rw@"
READ, WRITE, ARMW, AWRITE = "Read", "Write", "AtomicRMW", "AtomicWrite"
SITE_KINDS = {"attr": ATTR, "item": ITEM, "global": GLOBAL}

_access = _recorder.hook_access  # access() knowing it is called from a hook
_access_global = _recorder.access_global
_rec = _recorder  # module reference: ``_rec._sink`` is read at call time (cheap disabled path)
_BM = type(len)  # builtin_function_or_method: builtins and bound methods of C types
_MethodType = types.MethodType
_getattr, _setattr, _delattr, _type = getattr, setattr, delattr, type

#: Values of these types are immutable: subscripting them is never a shared-state access.
_IMMUTABLE = frozenset({str, bytes, tuple, range, frozenset, int, float, type(None), memoryview})

# Per container base: method name -> (access type, key rule). Key rules: "all" = the whole
# container; "k" = keyed by the first argument; "k+" / "k-" = keyed, and a structural atomic write
# of the whole container when the key is absent / present; "upd" = every key of the argument(s).
_LIST = {
    **dict.fromkeys(("append", "extend", "insert", "pop", "remove", "clear", "sort", "reverse"), (ARMW, "all")),
    **dict.fromkeys(("index", "count", "copy", "__iter__", "__len__"), (READ, "all")),
}
_DICT = {
    "get": (READ, "k"),
    "__contains__": (READ, "k"),
    "__getitem__": (READ, "k"),
    "setdefault": (ARMW, "k+"),
    "pop": (ARMW, "k-"),
    "popitem": (ARMW, "all"),
    "clear": (ARMW, "all"),
    "update": (AWRITE, "upd"),
    **dict.fromkeys(("keys", "values", "items", "copy", "__iter__", "__len__"), (READ, "all")),
}
_ODICT = {**_DICT, "move_to_end": (ARMW, "all")}
_COUNTER = {
    **_DICT,
    # Counter.update/subtract are Python loops, not atomic: a plain write of the whole counter.
    "update": (WRITE, "all"),
    "subtract": (WRITE, "all"),
    **dict.fromkeys(("most_common", "elements", "total"), (READ, "all")),
}
_SET = {
    "add": (ARMW, "k+"),
    "discard": (ARMW, "k-"),
    "remove": (ARMW, "k-"),
    "__contains__": (READ, "k"),
    **dict.fromkeys(
        ("pop", "clear", "update", "difference_update", "intersection_update", "symmetric_difference_update"),
        (ARMW, "all"),
    ),
    **dict.fromkeys(
        ("copy", "union", "intersection", "difference", "symmetric_difference", "issubset",
         "issuperset", "isdisjoint", "__iter__", "__len__"),
        (READ, "all"),
    ),
}
_DEQUE = {
    **dict.fromkeys(
        ("append", "appendleft", "pop", "popleft", "extend", "extendleft", "clear", "rotate",
         "remove", "insert", "reverse"),
        (ARMW, "all"),
    ),
    **dict.fromkeys(("index", "count", "copy", "__iter__", "__len__"), (READ, "all")),
}
_BASES: tuple[tuple[type, dict[str, tuple[str, str]]], ...] = (
    (Counter, _COUNTER),
    (OrderedDict, _ODICT),
    (defaultdict, _DICT),
    (dict, _DICT),
    (list, _LIST),
    (set, _SET),
    (deque, _DEQUE),
)
#: exact type -> method table (None: not a container). Filled lazily for subclasses.
_TABLES: dict[type, dict[str, tuple[str, str]] | None] = {t: m for t, m in _BASES}

#: Builtins whose first positional argument, a container, is read whole.
_WHOLE_READERS = {
    name: getattr(builtins, name)
    for name in ("len", "sorted", "list", "tuple", "set", "frozenset", "dict", "iter", "sum", "min",
                 "max", "any", "all", "enumerate", "reversed")
}
_EVERY_ARG_READERS = {"zip": zip, "map": map, "filter": filter}
_ATTR_BUILTINS = {"getattr": getattr, "hasattr": hasattr, "setattr": setattr, "delattr": delattr}
#: Method / builtin names the rewriter routes through :func:`_call` (container + lock methods).
CALL_NAMES = frozenset(
    set(_LIST) | set(_DICT) | set(_ODICT) | set(_COUNTER) | set(_SET) | set(_DEQUE)
    | {"acquire", "release"}
) - {"__iter__", "__len__", "__contains__", "__getitem__"}
BUILTIN_CALL_NAMES = frozenset(set(_WHOLE_READERS) | set(_EVERY_ARG_READERS) | set(_ATTR_BUILTINS))

#: Lock types that the thread patches cannot have wrapped (created before install, or by C code).
_RAW_LOCKS: dict[type, str] = {
    type(_thread.allocate_lock()): "threading.Lock",
    _thread.RLock: "threading.RLock",
}

OPS = {
    "Add": operator.iadd, "Sub": operator.isub, "Mult": operator.imul, "MatMult": operator.imatmul,
    "Div": operator.itruediv, "FloorDiv": operator.ifloordiv, "Mod": operator.imod,
    "Pow": operator.ipow, "LShift": operator.ilshift, "RShift": operator.irshift,
    "BitOr": operator.ior, "BitXor": operator.ixor, "BitAnd": operator.iand,
}


def _table(tp: type) -> dict[str, tuple[str, str]] | None:
    """Method table of a container type; subclasses share their base's table (checked per call)."""
    try:
        return _TABLES[tp]
    except KeyError:
        pass
    found = None
    for base, methods in _BASES:
        if issubclass(tp, base):
            found = methods
            break
    _TABLES[tp] = found
    return found


_UNSEEN: Any = object()
_tables_get = _TABLES.get  # hit path of _table(); a miss returns _UNSEEN


def _keyed(tp: type) -> bool:
    """Containers addressed by key (dict family, set) rather than by position."""
    t = _table(tp)
    return t is _DICT or t is _ODICT or t is _COUNTER or t is _SET


# --------------------------------------------------------------------------- same-epoch cache
#
# Every cached site has a one-slot cache ``c`` (a list) holding ``(ref, seen, key)``: a callable
# returning the object last recorded there, the recorder's dedupe table of the task epoch it
# was recorded in, and the key. The recorder replaces ``TaskState.seen`` by a new dict whenever
# the task's clock or segment changes (and on every new trace), so ``seen is current().seen``
# means "same task, same epoch": repeating the access would be dropped by the recorder anyway.
# The object is held weakly (a dead object's ref returns None, so a reused id never matches);
# builtin containers that cannot be weakly referenced are held until the slot is overwritten.
# The tuple is stored with one assignment: threads sharing a site never see a torn entry.

_cur = _recorder.CURRENT.get
_ref = weakref.ref
_STRONG = frozenset({dict, list, set, OrderedDict, defaultdict, Counter, deque, bytearray})
_NO_WEAKREF = frozenset(t for t in _STRONG if not t.__weakrefoffset__)


def _never() -> None:
    return None


_EMPTY = (_never, None, None)


def new_cache() -> list[Any]:
    """A fresh per-site cache slot (bound into rewritten modules as ``_rw@c<i>``)."""
    return [_EMPTY]


def _remember(c: list[Any], obj: Any, key: Any) -> None:
    st = _cur()
    if st is None or _rec._sink is None:
        return
    if _type(obj) in _NO_WEAKREF:  # dict, list, ...: held strongly without raising first
        r: Any = itertools.repeat(obj).__next__
    else:
        try:
            r = _ref(obj)
        except TypeError:
            if _type(obj) not in _STRONG:
                return
            r = itertools.repeat(obj).__next__
    c[0] = (r, st.seen, key)


# --------------------------------------------------------------------------- attributes


def ga(obj: Any, name: str, site: Any, c: list[Any]) -> Any:
    """Before ``obj.name`` (load): records, returns ``obj``; the load itself stays native code
    (``_rw@ga(o, "x", s, c).x``), which keeps its inline cache and saves a ``getattr`` call."""
    p = c[0]
    st = _cur()
    if (st is None or p[1] is not st.seen or p[0]() is not obj) and _rec._sink is not None:
        _access(obj, name, READ, site)
        _remember(c, obj, None)
    return obj


def sa(value: Any, obj: Any, name: str, site: Any, c: list[Any]) -> None:
    """``obj.name = value`` (value evaluated first, as Python does)."""
    p = c[0]
    st = _cur()
    if (st is None or p[1] is not st.seen or p[0]() is not obj) and _rec._sink is not None:
        _access(obj, name, WRITE, site, value)
        _remember(c, obj, None)
    _setattr(obj, name, value)


def da(obj: Any, name: str, site: Any) -> None:
    """``del obj.name``."""
    if _rec._sink is not None:
        _access(obj, name, WRITE, site)
    _delattr(obj, name)


def _late_read(st: Any, vc: Any, obj: Any, key: Any, site: Any) -> None:
    """Record the read of an augmented assignment that synchronised before its write, with
    the clock it had (only the task's own thread ever touches ``st.vc``)."""
    now = st.vc
    st.vc = vc
    try:
        _access(obj, key, READ, site, up=4)
    finally:
        st.vc = now
        st.seen = {}


def auga(obj: Any, name: str, op: Any, operand: Any, site: Any, c: list[Any]) -> None:
    """``obj.name op= constant``: a read and a write at the same site.

    For a thread's task only the write is recorded when the two share one clock (nothing
    synchronised in between: the operand is a constant, but a property or the value's
    ``__iadd__`` could): at one clock and one site, every race of the read is a race of the
    write at the same pair of sites. Event-loop tasks keep both (the engine tells an
    await-free read-modify-write from a lost update by them).
    """
    p = c[0]
    st = _cur()
    if (st is None or p[1] is not st.seen or p[0]() is not obj) and _rec._sink is not None:
        if st is None or st.loop is not None:
            _access(obj, name, READ, site)
            value = op(_getattr(obj, name), operand)
        else:
            vc = st.vc
            value = op(_getattr(obj, name), operand)
            if st.vc is not vc:
                _late_read(st, vc, obj, name, site)
        _access(obj, name, WRITE, site, value)
        _remember(c, obj, None)
    else:
        value = op(_getattr(obj, name), operand)
    _setattr(obj, name, value)


# --------------------------------------------------------------------------- items


def _item_key(obj: Any, key: Any) -> Any:
    # Negative list/deque indices name the same element as their positive form.
    if _type(key) is int and key < 0 and _type(obj) in (list, deque):
        n = len(obj)
        return key + n if key >= -n else key
    return key


def _structural(obj: Any, key: Any, present: bool, site: Any) -> None:
    # Writing a key that is absent (or deleting a present one) changes the key set: an atomic
    # structural write of the whole container (races with iteration, len, keys(), ...).
    try:
        if (key in obj) is present:
            _access(obj, ALL, AWRITE, site, up=4)
    except TypeError:
        pass


def gi(obj: Any, key: Any, site: Any, c: list[Any]) -> Any:
    """``obj[key]`` (load)."""
    p = c[0]
    st = _cur()
    if st is None or p[1] is not st.seen or p[2] is not key or p[0]() is not obj:
        tp = _type(obj)
        if _rec._sink is not None and tp not in _IMMUTABLE:
            if tp is defaultdict:
                _defaultdict_read(obj, key, site)
            else:
                _access(obj, _item_key(obj, key), READ, site)
                _remember(c, obj, key)
    return obj[key]


def _defaultdict_read(obj: Any, key: Any, site: Any) -> None:
    try:
        missing = key not in obj
    except TypeError:
        missing = False
    if missing and obj.default_factory is not None:
        # Reading a missing key inserts it: an atomic read-modify-write, structural too.
        _access(obj, key, ARMW, site, up=4)
        _access(obj, ALL, AWRITE, site, up=4)
    else:
        _access(obj, key, READ, site, up=4)


def si(value: Any, obj: Any, key: Any, site: Any, c: list[Any]) -> None:
    """``obj[key] = value`` (value evaluated first, as Python does)."""
    p = c[0]
    st = _cur()
    if st is None or p[1] is not st.seen or p[2] is not key or p[0]() is not obj:
        tp = _type(obj)
        if _rec._sink is not None and tp not in _IMMUTABLE:
            _access(obj, _item_key(obj, key), WRITE, site, value)
            if _keyed(tp):
                _structural(obj, key, False, site)
            _remember(c, obj, key)
    obj[key] = value


def di(obj: Any, key: Any, site: Any) -> None:
    """``del obj[key]``."""
    if _rec._sink is not None and _type(obj) not in _IMMUTABLE:
        _access(obj, _item_key(obj, key), WRITE, site)
        if _table(_type(obj)) is not None:
            _access(obj, ALL, AWRITE, site)
    del obj[key]


def augi(obj: Any, key: Any, op: Any, operand: Any, site: Any, c: list[Any]) -> None:
    """``obj[key] op= constant``: a read and a write at the same site (for a thread's task
    only the write, see :func:`auga`)."""
    p = c[0]
    st = _cur()
    tp = _type(obj)
    if (
        (st is None or p[1] is not st.seen or p[2] is not key or p[0]() is not obj)
        and _rec._sink is not None
        and tp not in _IMMUTABLE
    ):
        if tp is defaultdict:
            _defaultdict_read(obj, key, site)  # may insert the key: a structural write
            value = op(obj[key], operand)
        elif st is None or st.loop is not None:
            _access(obj, _item_key(obj, key), READ, site)
            value = op(obj[key], operand)
        else:
            vc = st.vc
            value = op(obj[key], operand)  # a __missing__ or __iadd__ may synchronise
            if st.vc is not vc:
                _late_read(st, vc, obj, _item_key(obj, key), site)
        _access(obj, _item_key(obj, key), WRITE, site, value)
        if _keyed(tp):
            _structural(obj, key, False, site)
        _remember(c, obj, key)
        obj[key] = value
    else:
        obj[key] = op(obj[key], operand)


def it(obj: Any, site: Any) -> Any:
    """The iterable of a ``for`` loop or comprehension: iterating a container reads it whole."""
    if _rec._sink is not None:
        t = _tables_get(_type(obj), _UNSEEN)
        if t is _UNSEEN:
            t = _table(_type(obj))
        if t is not None:
            _access(obj, ALL, READ, site)
    return obj


def cn(key: Any, obj: Any, site: Any, c: list[Any]) -> bool:
    """``key in obj``."""
    p = c[0]
    st = _cur()
    if (st is None or p[1] is not st.seen or p[2] is not key or p[0]() is not obj) and _rec._sink is not None:
        t = _table(_type(obj))
        if t is not None:
            _access(obj, key if _keyed(_type(obj)) else ALL, READ, site)
            _remember(c, obj, key)
    return key in obj


# --------------------------------------------------------------------------- calls


def call(fn: Any, name: str, site: Any, *args: Any, **kwargs: Any) -> Any:
    """``x.name(...)`` for container and lock method names.

    ``fn`` is the bound method, loaded natively before the arguments were evaluated; only C
    methods of real containers (or Counter's own methods) and of raw locks are recorded, right
    before the call runs.
    """
    if _rec._sink is not None:
        tf = _type(fn)
        if tf is _BM:
            owner = fn.__self__
            tp = _type(owner)
            lock_type = _RAW_LOCKS.get(tp)
            if lock_type is not None:
                return _lock_call(fn, name, owner, lock_type, args, kwargs)
            table = _tables_get(tp, _UNSEEN)
            if table is _UNSEEN:
                table = _table(tp)
            if table is not None:
                spec = table.get(name)
                if spec is not None:
                    _container_op(owner, spec, site, args, kwargs)
        elif tf is _MethodType:
            owner = fn.__self__
            if isinstance(owner, Counter) and getattr(Counter, name, None) is fn.__func__:
                spec = _COUNTER.get(name)
                if spec is not None:
                    _container_op(owner, spec, site, args, kwargs)
    return fn(*args, **kwargs)


def bc(fn: Any, name: str, site: Any, *args: Any, **kwargs: Any) -> Any:
    """``len(x)``, ``sorted(x)``, ``getattr(o, n)``...: recorded only if ``fn`` is the builtin."""
    if _rec._sink is not None and args:
        if _WHOLE_READERS.get(name) is fn:
            if _table(_type(args[0])) is not None:
                _access(args[0], ALL, READ, site)
        elif _EVERY_ARG_READERS.get(name) is fn:
            for a in args[1:] if name != "zip" else args:
                if _table(_type(a)) is not None:
                    _access(a, ALL, READ, site)
        elif _ATTR_BUILTINS.get(name) is fn and len(args) >= 2 and _type(args[1]) is str:
            kind = READ if name in ("getattr", "hasattr") else WRITE
            _access(args[0], args[1], kind, _attr_site(site))
    return fn(*args, **kwargs)


_attr_sites: dict[Any, Any] = {}


def _attr_site(site: Any) -> Any:
    # getattr()/setattr() calls are registered as item-kind sites; the attribute they name
    # needs an attribute-kind twin so the recorder labels the location ``Type.attr``.
    twin = _attr_sites.get(site)
    if twin is None:
        twin = _recorder.register_site(site.file, site.line, site.func, "", ATTR)
        _attr_sites[site] = twin
    return twin


def _container_op(owner: Any, spec: tuple[str, str], site: Any, args: tuple, kwargs: dict) -> None:
    kind, rule = spec
    if rule == "all" or not args and rule != "upd":
        _access(owner, ALL, kind, site, up=4)
        return
    if rule == "upd":
        keys: list[Any] = list(kwargs)
        if args:
            src = args[0]
            if isinstance(src, dict) and len(src) <= 64:
                keys.extend(src)
            else:
                keys.append(ALL)
        for k in keys[:65]:
            _access(owner, k, kind, site, up=4)
        _access(owner, ALL, ARMW, site, up=4)
        return
    key = args[0]
    _access(owner, key, kind, site, up=4)
    if rule == "k+":
        _structural(owner, key, False, site)
    elif rule == "k-":
        _structural(owner, key, True, site)


def _lock_call(fn: Any, name: str, lock: Any, lock_type: str, args: tuple, kwargs: dict) -> Any:
    if name == "release":
        _recorder.release(lock, lock_type)
        return fn(*args, **kwargs)
    got = fn(*args, **kwargs)
    if name == "acquire" and got:
        _recorder.acquire(lock, lock_type)
    return got


class _LockContext:
    """``with lock:`` on a raw lock: the real enter/exit plus the recorder's acquire/release."""

    __slots__ = ("lock", "lock_type")

    def __init__(self, lock: Any, lock_type: str) -> None:
        self.lock = lock
        self.lock_type = lock_type

    def __enter__(self) -> Any:
        got = self.lock.__enter__()
        if _rec._sink is not None:
            _recorder.acquire(self.lock, self.lock_type)
        return got

    def __exit__(self, *exc: Any) -> Any:
        if _rec._sink is not None:
            _recorder.release(self.lock, self.lock_type)
        return self.lock.__exit__(*exc)


def wl(obj: Any) -> Any:
    """The context manager of a ``with`` item: raw locks get acquire/release events."""
    lock_type = _RAW_LOCKS.get(_type(obj))
    if lock_type is None:
        return obj
    return _LockContext(obj, lock_type)


# --------------------------------------------------------------------------- globals, cells


class Closure:
    """Identity of one activation's closure cells: ``nonlocal`` accesses are keyed on it."""

    __slots__ = ("__weakref__",)


def _global_hooks(module: str) -> tuple[Any, Any]:
    def gl(value: Any, name: str, site: Any, c: list[Any]) -> Any:
        """A read of a rebound module global (returns the value read)."""
        st = _cur()
        if (st is None or c[0][1] is not st.seen) and _rec._sink is not None:
            _access_global(module, name, READ, site)
            _remember_epoch(c)
        return value

    def gs(name: str, site: Any, c: list[Any]) -> None:
        """A write of a rebound module global (after the native store)."""
        st = _cur()
        if (st is None or c[0][1] is not st.seen) and _rec._sink is not None:
            _access_global(module, name, WRITE, site)
            _remember_epoch(c)

    return gl, gs


def _remember_epoch(c: list[Any]) -> None:
    st = _cur()
    if st is not None:
        c[0] = (_never, st.seen, None)


def cl(value: Any, cell: Any, name: str, site: Any, c: list[Any]) -> Any:
    """A read of a ``nonlocal``-shared variable (returns the value read)."""
    p = c[0]
    st = _cur()
    if (st is None or p[1] is not st.seen or p[0]() is not cell) and _rec._sink is not None:
        _access(cell, name, READ, site)
        _remember(c, cell, None)
    return value


def cs(cell: Any, name: str, site: Any, c: list[Any]) -> None:
    """A write of a ``nonlocal``-shared variable (after the native store)."""
    p = c[0]
    st = _cur()
    if (st is None or p[1] is not st.seen or p[0]() is not cell) and _rec._sink is not None:
        _access(cell, name, WRITE, site)
        _remember(c, cell, None)


# --------------------------------------------------------------------------- binding

_STATIC: dict[str, Any] = {
    PREFIX + n: f
    for n, f in {
        "ga": ga, "sa": sa, "da": da, "auga": auga, "gi": gi, "si": si, "di": di, "augi": augi,
        "it": it, "cn": cn, "call": call, "bc": bc, "wl": wl, "cl": cl, "cs": cs, "Closure": Closure,
        "slice": slice,
    }.items()
}
_STATIC.update({PREFIX + "op" + k: v for k, v in OPS.items()})


def bind(table: tuple[tuple[int, str, str, str], ...]) -> None:
    """Called first by every rewritten module: binds hooks and registers its sites.

    ``table`` rows are ``(line, func, name, kind)``; row ``i`` becomes the global ``_rw@s<i>``.
    """
    g = sys._getframe(1).f_globals
    file = g.get("__file__") or "<unknown>"
    module = g.get("__name__") or "<unknown>"
    g.update(_STATIC)
    g[PREFIX + "gl"], g[PREFIX + "gs"] = _global_hooks(module)
    register = _recorder.register_site
    for i, (line, func, name, kind) in enumerate(table):
        g[f"{PREFIX}s{i}"] = register(file, line, func, name, SITE_KINDS[kind])
        g[f"{PREFIX}c{i}"] = [_EMPTY]
