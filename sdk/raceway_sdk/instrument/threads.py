"""Happens-before edges from the thread world: threading, queue, concurrent.futures.

:func:`install` patches (wrapt wrappers, or instrumented factory classes for the C types and
``Condition``) and :func:`uninstall` puts every original object back. What each primitive
contributes:

==========================  ===============================================================
Thread.start / join         fork a ``thread`` (``timer`` for Timer) task / join it once ended
Lock, RLock                 release -> later acquire (factories replaced while installed)
Condition                   its lock, plus notify -> the waiter that wakes up (factory too)
Semaphore, BoundedSem.      release -> later acquire
Event                       set -> wait() / is_set() that return True
Barrier                     every party's arrival -> every party's departure (per cycle)
Queue, Lifo-, Priority-,    put(item) -> the get() that returns that item (per item, paired
SimpleQueue                 by identity); task_done() -> join()
ThreadPoolExecutor          submit/map fork one ``executor`` task per callable; Future
                            result/exception/done/wait/as_completed/done callbacks join it;
                            shutdown(wait=True) joins every callable that ran
Future (any)                set_result / set_exception -> result / exception / done
==========================  ===============================================================

Objects created *before* install, or by the standard library, installed libraries
(site-packages; see ``install(third_party_sync=True)``) or raceway itself for their own use (a
Queue's mutex, logging's handler locks, an executor's internal semaphore, the engine's lock),
stay uninstrumented: they work exactly as before and give no edges. Instrumenting such
internal locks would order unrelated threads (every ``logging`` call would look like
synchronisation) and hide races. Code that bound ``from threading import Lock`` before install
keeps the original factory. In modules rewritten by the import hook, ``with lock:`` and
``lock.acquire()/release()`` on such raw locks still give edges (see :mod:`.hooks`).
"""

from __future__ import annotations

import _thread
import concurrent.futures
import concurrent.futures._base as futures_base
import concurrent.futures.thread as futures_thread
import contextvars
import functools
import os
import queue
import sys
import sysconfig
import threading
import time
import types
from _thread import get_ident as _get_ident
from typing import Any

import wrapt

from raceway_sdk import _recorder as rec

__all__ = [
    "install",
    "uninstall",
    "is_installed",
    "Patches",
    "InstrumentedCondition",
    "InstrumentedLock",
    "InstrumentedRLock",
]

# Originals, captured at import: instrumentation never calls a patched version by mistake.
_raw_allocate_lock = _thread.allocate_lock
_raw_lock_type = _thread.LockType
_raw_rlock_factory = threading.RLock
_raw_rlock_type = type(_raw_rlock_factory())
_raw_simple_queue = queue.SimpleQueue


# --------------------------------------------------------------------------- patch bookkeeping


class Patches:
    """A list of (owner, attribute, original) replaced on install and restored on uninstall."""

    def __init__(self) -> None:
        self._saved: list[tuple[Any, str, Any]] = []

    def replace(self, owner: Any, name: str, new: Any) -> None:
        """Set ``owner.name = new``, remembering the exact original object (from ``vars``)."""
        original = vars(owner)[name] if isinstance(owner, type) else getattr(owner, name)
        self._saved.append((owner, name, original))
        setattr(owner, name, new)

    def wrap(self, owner: Any, name: str, wrapper: Any) -> None:
        """Wrap ``owner.name`` with a wrapt-style wrapper ``wrapper(wrapped, instance, args, kwargs)``.

        Plain Python methods of a class get a plain function that calls ``wrapper`` (binding a
        wrapt ``FunctionWrapper`` allocates a bound wrapper per call: ~2x the cost on hot
        methods such as ``Queue._put`` or ``Condition.notify``); anything else (module
        functions, C methods, descriptors) gets a ``wrapt.FunctionWrapper``.
        """
        original = vars(owner)[name] if isinstance(owner, type) else getattr(owner, name)
        if isinstance(owner, type) and type(original) is types.FunctionType:
            new: Any = _method_wrapper(original, wrapper)
        else:
            new = wrapt.FunctionWrapper(original, wrapper)
        self.replace(owner, name, new)

    def restore(self) -> None:
        """Put every original back, last patched first."""
        while self._saved:
            owner, name, original = self._saved.pop()
            setattr(owner, name, original)

    def __len__(self) -> int:
        return len(self._saved)


def _method_wrapper(original: Any, wrapper: Any) -> Any:
    """A method calling ``wrapper(bound original, self, args, kwargs)``, like wrapt does."""
    bind = types.MethodType

    def method(self: Any, *args: Any, **kwargs: Any) -> Any:
        return wrapper(bind(original, self), self, args, kwargs)

    functools.update_wrapper(method, original)
    return method


# --------------------------------------------------------------------------- who creates objects


def _prefixes() -> tuple[tuple[str, ...], tuple[str, ...]]:
    paths = sysconfig.get_paths()
    std = {os.path.realpath(paths[k]) + os.sep for k in ("stdlib", "platstdlib") if paths.get(k)}
    site = {os.path.realpath(paths[k]) + os.sep for k in ("purelib", "platlib") if paths.get(k)}
    for p in sys.path:
        if p.endswith(("site-packages", "dist-packages")):
            site.add(os.path.realpath(p) + os.sep)
    return tuple(std), tuple(site)


def _own_dirs() -> tuple[str, ...]:
    # raceway's packages (the SDK, the embedded engine, the plugin) never get edges.
    import importlib.util

    out = [os.path.dirname(os.path.abspath(rec.__file__)) + os.sep]
    for name in ("raceway_server", "pytest_raceway"):
        try:
            spec = importlib.util.find_spec(name)
        except (ImportError, ValueError):
            spec = None
        if spec is not None and spec.submodule_search_locations:
            out.extend(os.path.realpath(p) + os.sep for p in spec.submodule_search_locations)
    return tuple(out)


_STDLIB, _SITE = _prefixes()
_OWN = _own_dirs()
_WRAPT_DIR = os.path.dirname(os.path.abspath(wrapt.__file__)) + os.sep
_internal_cache: dict[str, bool] = {}
_third_party_sync = False


def _is_internal_file(fn: str) -> bool:
    hit = _internal_cache.get(fn)
    if hit is None:
        if fn.startswith("<"):  # <frozen importlib._bootstrap>, <string> is user code below
            hit = fn.startswith("<frozen")
        else:
            real = os.path.realpath(fn)
            if real.startswith(_OWN):
                hit = True
            elif real.startswith(_SITE):
                hit = not _third_party_sync
            else:
                hit = real.startswith(_STDLIB)
        _internal_cache[fn] = hit
    return hit


_THREADING_FILE = threading.__file__


def _created_internally(depth: int = 2, instance: object = None) -> bool:
    """True if the code that created an object is the stdlib or raceway itself.

    ``instance``: the object being initialised; ``super().__init__`` frames of threading's own
    classes (BoundedSemaphore -> Semaphore) are looked through to find the real creator.
    """
    f: Any = sys._getframe(depth)
    while f is not None:
        code = f.f_code
        fn = code.co_filename
        if fn.startswith(_WRAPT_DIR) or fn == __file__:
            f = f.f_back
            continue
        if fn.startswith("<") and not fn.startswith("<frozen") and f.f_back is not None:
            f = f.f_back  # generated code (attrs, dataclasses "<string>" __init__): its caller decides
            continue
        if (
            instance is not None
            and fn == _THREADING_FILE
            and code.co_name == "__init__"
            and f.f_locals.get("self") is instance
        ):
            f = f.f_back
            continue
        return _is_internal_file(fn)
    return True


# --------------------------------------------------------------------------- Lock / RLock


class _FactoryMeta(type):
    """Instrumented factories stay usable in isinstance() checks, also for raw locks."""

    _raw_type: type

    def __instancecheck__(cls, obj: object) -> bool:
        return type.__instancecheck__(cls, obj) or isinstance(obj, cls._raw_type)


#: how many times a thread that finds a user's lock taken lets the others run before it blocks
_POLITE_TRIES = 5
_yield = time.sleep


def _polite_acquire(raw: Any) -> bool:
    """``raw.acquire()``, trying a few times with the GIL given away before blocking.

    Recording makes critical sections longer, so a thread switch more often catches a thread
    inside one. A thread that then blocks on the lock is woken as its owner the moment the
    lock is released and must wait for the GIL to go on, so the releasing thread, coming back
    for the lock, blocks as well: every acquisition becomes a hand-over through the OS (a lock
    convoy). Yielding first lets the preempted owner finish and release with nobody queued.
    Blocking after a few tries keeps the original liveness.
    """
    if raw.acquire(False):
        return True
    for _ in range(_POLITE_TRIES):
        _yield(0)
        if raw.acquire(False):
            return True
    return bool(raw.acquire())


class _InstrumentedLockBase(metaclass=_FactoryMeta):
    """What ``InstrumentedLock`` and ``InstrumentedRLock`` share: a raw lock inside, recorded
    acquisitions (polite when they would block without a time-out)."""

    __slots__ = ("_raw", "__weakref__")
    _raw: Any
    _raw_type: Any
    _kind: str  # the event's lock type
    _raw_new: Any  # the raw factory

    @classmethod
    def _make(cls) -> Any:
        self = object.__new__(cls)
        self._raw = cls._raw_new()
        return self

    def acquire(self, blocking: bool = True, timeout: float = -1) -> bool:
        if blocking is True and timeout == -1:
            ok = _polite_acquire(self._raw)
        else:
            ok = self._raw.acquire(blocking, timeout)
        if ok:
            rec.acquire(self, self._kind, None, 1)
        return ok

    def __enter__(self) -> bool:
        # acquire() inlined: one frame less between the user's ``with`` and the recorder
        raw = self._raw
        ok = raw.acquire(False) or _polite_acquire(raw)
        if ok:
            rec.acquire(self, self._kind, None, 1)
        return ok

    def _at_fork_reinit(self) -> None:
        self._raw._at_fork_reinit()

    def __repr__(self) -> str:
        return f"<raceway {self._raw!r}>"


class InstrumentedLock(_InstrumentedLockBase):
    """``threading.Lock`` while installed: a raw lock whose release -> acquire is an edge."""

    __slots__ = ()
    _raw_type = _raw_lock_type
    _kind = "threading.Lock"
    _raw_new = staticmethod(_raw_allocate_lock)

    def __new__(cls) -> Any:
        if _created_internally():
            return _raw_allocate_lock()
        return cls._make()

    def release(self) -> None:
        if self._raw.locked():
            rec.release(self, "threading.Lock", None, 1)
        self._raw.release()

    def __exit__(self, *exc: object) -> None:
        if self._raw.locked():
            rec.release(self, "threading.Lock", None, 1)
        self._raw.release()

    def locked(self) -> bool:
        return self._raw.locked()

    acquire_lock = _InstrumentedLockBase.acquire
    release_lock = release
    locked_lock = locked


class InstrumentedRLock(_InstrumentedLockBase):
    """``threading.RLock`` while installed (the methods Condition uses included)."""

    __slots__ = ()
    _raw_type = _raw_rlock_type
    _kind = "threading.RLock"
    _raw_new = staticmethod(_raw_rlock_factory)

    def __new__(cls, *args: Any, **kwargs: Any) -> Any:
        if _created_internally():
            return _raw_rlock_factory(*args, **kwargs)
        return cls._make()

    def release(self) -> None:
        if self._raw._is_owned():
            rec.release(self, "threading.RLock", None, 1)
        self._raw.release()

    def __exit__(self, *exc: object) -> None:
        if self._raw._is_owned():
            rec.release(self, "threading.RLock", None, 1)
        self._raw.release()

    def _is_owned(self) -> bool:
        return self._raw._is_owned()

    def _release_save(self) -> Any:
        if self._raw._is_owned():
            rec.release(self, "threading.RLock", None, 1)
        return self._raw._release_save()

    def _acquire_restore(self, state: Any) -> None:
        self._raw._acquire_restore(state)
        rec.acquire(self, "threading.RLock", None, 1)

    def __getattr__(self, name: str) -> Any:
        # _recursion_count, locked, ... (version dependent): plain delegation
        return getattr(self._raw, name)


# --------------------------------------------------------------------------- Condition, ...

_ON = "_raceway_on"  # set on primitives created by user code while installed


def _mark_if_user(wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
    result = wrapped(*args, **kwargs)
    if not _created_internally(2, instance):
        instance.__dict__[_ON] = True
    return result


def _is_on(instance: Any) -> bool:
    d = getattr(instance, "__dict__", None)
    return d is not None and _ON in d


_raw_condition = threading.Condition


class InstrumentedCondition(_raw_condition, metaclass=_FactoryMeta):
    """``threading.Condition`` while installed: notify -> the waiter that wakes up.

    Conditions the standard library or raceway create for their own use (every ``Queue`` has
    three, every ``Event`` one) come out as plain ``Condition`` objects: no wrapper runs when
    a queue notifies its consumers. A user's condition without a lock gets an instrumented
    ``RLock``, so its lock orders too.
    """

    _raw_type = _raw_condition
    _raceway_on = False

    def __new__(cls, *args: Any, **kwargs: Any) -> Any:
        if cls is InstrumentedCondition and _created_internally():
            return _raw_condition(*args, **kwargs)
        return super().__new__(cls)

    def __init__(self, lock: Any = None) -> None:
        # a subclass (defined while installed) may still be a library's own
        user = type(self) is InstrumentedCondition or not _created_internally(2, self)
        if user and lock is None:
            lock = InstrumentedRLock._make()
        super().__init__(lock)
        self._raceway_on = user

    def notify(self, n: int = 1) -> None:
        if self._raceway_on:
            rec.release(self, "threading.Condition", None, 1)
        _raw_condition.notify(self, n)

    def wait(self, timeout: float | None = None) -> bool:
        woke = _raw_condition.wait(self, timeout)
        if woke and self._raceway_on:
            rec.acquire(self, "threading.Condition", None, 1)
        return woke


def _make_release(lock_type: str) -> Any:
    def release(wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
        if _is_on(instance):
            rec.release(instance, lock_type)
        return wrapped(*args, **kwargs)

    return release


def _make_release_always(lock_type: str) -> Any:
    def release(wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
        rec.release(instance, lock_type)
        return wrapped(*args, **kwargs)

    return release


def _make_acquire_always(lock_type: str) -> Any:
    def acquire(wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
        result = wrapped(*args, **kwargs)
        rec.acquire(instance, lock_type)
        return result

    return acquire


def _make_acquire(lock_type: str) -> Any:
    def acquire(wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
        ok = wrapped(*args, **kwargs)
        if ok and _is_on(instance):
            rec.acquire(instance, lock_type)
        return ok

    return acquire


class _BarrierCycle(rec.ClockSlot):
    """The clock holder of one filling of a Barrier (so a fast thread's next round is apart)."""

    __slots__ = ("arrived",)

    def __init__(self) -> None:
        super().__init__()
        self.arrived = 0


_barrier_lock = _raw_allocate_lock()  # private: guards the cycle counters only


def _barrier_wait(wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
    if not _is_on(instance):
        return wrapped(*args, **kwargs)
    with _barrier_lock:
        cycle = instance.__dict__.get("_raceway_cycle")
        if cycle is None:
            cycle = instance.__dict__["_raceway_cycle"] = _BarrierCycle()
        cycle.arrived += 1
        last = cycle.arrived >= instance.parties
        if last:
            instance.__dict__["_raceway_cycle"] = _BarrierCycle()
        # inside the lock: when the last party arrives, every earlier arrival is in the slot
        rec.release(instance, "threading.Barrier", cycle)
    action = instance._action if last else None
    if action is None:
        index = wrapped(*args, **kwargs)
    else:
        # Barrier(action=...) runs the action in the last arriving thread, inside wait(), after
        # every arrival and before any departure: order it so, and publish what it wrote.
        rec.acquire(instance, "threading.Barrier", cycle)
        instance._action = _released_after(action, instance, cycle)
        try:
            index = wrapped(*args, **kwargs)
        finally:
            instance._action = action
    rec.acquire(instance, "threading.Barrier", cycle)
    return index


def _released_after(action: Any, barrier: Any, cycle: _BarrierCycle) -> Any:
    def run_action() -> Any:
        try:
            return action()
        finally:
            rec.release(barrier, "threading.Barrier", cycle)

    return run_action


def _barrier_reset(wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
    with _barrier_lock:
        instance.__dict__.pop("_raceway_cycle", None)
    return wrapped(*args, **kwargs)


# --------------------------------------------------------------------------- threads


def _thread_start(wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
    started = getattr(instance, "_started", None)
    if started is None or started.is_set():
        return wrapped(*args, **kwargs)  # not initialised / started twice: the original raises
    kind = "timer" if isinstance(instance, threading.Timer) else "thread"
    instance.__dict__["_raceway_task"] = rec.fork(kind, instance.name)
    return wrapped(*args, **kwargs)


def _thread_bootstrap_inner(wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
    child = instance.__dict__.get("_raceway_task")
    if child is None:
        return wrapped(*args, **kwargs)
    rec.activate(child)  # the thread's own context: never reset
    rec._tls.state = child
    try:
        if child.quiet:
            with rec.suspended():
                return wrapped(*args, **kwargs)
        return wrapped(*args, **kwargs)
    finally:
        rec.finish(child)


def _thread_join(wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
    result = wrapped(*args, **kwargs)
    child = instance.__dict__.get("_raceway_task")
    if child is not None and not instance.is_alive():
        rec.join(child)
    return result


# --------------------------------------------------------------------------- queues


#: Carries the clock of one put until the matching get (a bare clock holder, no identity).
_ItemToken = rec.ClockSlot


_queue_lock = _raw_allocate_lock()  # private: guards the item -> token maps only


def _push_token(q: Any, item: Any, lock_type: str, up: int) -> None:
    # up: frames above the caller known not to be the user's (see rec.release's _up)
    tok = _ItemToken()
    rec.release(q, lock_type, tok, up)
    with _queue_lock:
        items = q.__dict__.get("_raceway_items")
        if items is None:
            items = q.__dict__["_raceway_items"] = {}
        items.setdefault(id(item), []).append(tok)


def _pop_token(q: Any, item: Any, lock_type: str, up: int) -> None:
    with _queue_lock:
        items = q.__dict__.get("_raceway_items")
        toks = items.get(id(item)) if items else None
        if not toks:
            return  # put before install
        tok = toks.pop(0)
        if not toks:
            del items[id(item)]
    rec.acquire(q, lock_type, tok, up)


# Queue, LifoQueue, PriorityQueue: the recorder's work runs in put()/get(), outside the queue's
# mutex; only the item -> token bookkeeping runs inside it, in _put()/_get(), where the mutex
# orders it exactly like the items. (Recording inside the mutex made every worker queue up on
# it: a lock convoy that cost more than the recording itself.)
_put_tokens: dict[int, Any] = {}  # thread ident -> token of the put() running on that thread
_got_tokens: dict[int, Any] = {}  # thread ident -> token found by the _get() of that thread
_queue_types: dict[type, str] = {
    queue.Queue: "queue.Queue",
    queue.LifoQueue: "queue.LifoQueue",
    queue.PriorityQueue: "queue.PriorityQueue",
}


_queue_labels: dict[type, str] = dict(_queue_types)  # and users' subclasses, once seen


def _queue_label(q: Any) -> str:
    t = type(q)
    name = _queue_labels.get(t)
    if name is None:  # a user's subclass: its stdlib base's name, looked up once
        name = next((_queue_types[b] for b in t.__mro__ if b in _queue_types), "queue.Queue")
        if len(_queue_labels) < 1024:
            _queue_labels[t] = name
    return name


def _make_queue_put_outer(original: Any) -> Any:
    def put(self: Any, item: Any, block: bool = True, timeout: float | None = None) -> None:
        if rec._sink is None or _get_ident() in rec._busy:  # rec.enabled(), inlined
            return original(self, item, block, timeout)
        tok = _ItemToken()
        rec.release(self, _queue_label(self), tok, 1)
        tid = _get_ident()
        outer = _put_tokens.get(tid)
        _put_tokens[tid] = tok
        try:
            return original(self, item, block, timeout)
        finally:
            if outer is None:
                _put_tokens.pop(tid, None)
            else:
                _put_tokens[tid] = outer

    functools.update_wrapper(put, original)
    return put


def _make_queue_get_outer(original: Any) -> Any:
    def get(self: Any, block: bool = True, timeout: float | None = None) -> Any:
        tid = _get_ident()
        outer = _got_tokens.pop(tid, None)
        try:
            item = original(self, block, timeout)
            tok = _got_tokens.pop(tid, None)
        finally:
            if outer is not None:
                _got_tokens[tid] = outer
        if tok is not None:
            rec.acquire(self, _queue_label(self), tok, 1)
        return item

    functools.update_wrapper(get, original)
    return get


def _make_queue_put_inner(original: Any) -> Any:
    def _put(self: Any, item: Any) -> None:
        original(self, item)
        tok = _put_tokens.pop(_get_ident(), None)
        if tok is not None:  # under the queue's mutex: the map needs no lock of its own
            d = self.__dict__
            items = d.get("_raceway_items")
            if items is None:
                items = d["_raceway_items"] = {}
            toks = items.get(id(item))
            if toks is None:
                items[id(item)] = [tok]
            else:
                toks.append(tok)

    functools.update_wrapper(_put, original)
    return _put


def _make_queue_get_inner(original: Any) -> Any:
    def _get(self: Any) -> Any:
        item = original(self)
        items = self.__dict__.get("_raceway_items")
        if items:
            toks = items.get(id(item))
            if toks:
                tok = toks.pop(0)
                if not toks:
                    del items[id(item)]
                _got_tokens[_get_ident()] = tok
        return item

    functools.update_wrapper(_get, original)
    return _get


class _SimpleQueueMeta(type):
    def __instancecheck__(cls, obj: object) -> bool:
        return isinstance(obj, _raw_simple_queue)


class InstrumentedSimpleQueue(_raw_simple_queue, metaclass=_SimpleQueueMeta):  # type: ignore[misc]
    """``queue.SimpleQueue`` while installed: per-item put -> get edges."""

    def __new__(cls, *args: Any, **kwargs: Any) -> Any:
        if _created_internally():
            return _raw_simple_queue()
        return super().__new__(cls)

    def put(self, item: Any, block: bool = True, timeout: float | None = None) -> None:
        _push_token(self, item, "queue.SimpleQueue", 2)
        super().put(item, block, timeout)

    def put_nowait(self, item: Any) -> None:
        self.put(item, False)

    def get(self, block: bool = True, timeout: float | None = None) -> Any:
        item = super().get(block, timeout)
        _pop_token(self, item, "queue.SimpleQueue", 2)
        return item

    def get_nowait(self) -> Any:
        return self.get(False)


# --------------------------------------------------------------------------- futures


def _run_as(child: rec.TaskState, fn: Any, args: Any, kwargs: Any, executor: Any) -> Any:
    token = rec.activate(child)
    try:
        return fn(*args, **kwargs)
    finally:
        if executor is not None:
            rec.release(executor, "concurrent.futures.Executor")
        rec.finish(child)
        rec.deactivate(token)


def _task_body(child: rec.TaskState, fn: Any, executor: Any) -> Any:
    """The callable the worker runs: ``fn`` inside ``child`` (also through ``ctx.run``)."""
    if isinstance(fn, functools.partial):
        runner = fn.func
        ctx = getattr(runner, "__self__", None)
        if isinstance(ctx, contextvars.Context) and getattr(runner, "__name__", "") == "run":
            # asyncio.to_thread / copied contexts: activate the child inside that context
            inner, inner_args = fn.args[0], fn.args[1:]
            return functools.partial(
                ctx.run, _run_as, child, inner, inner_args, fn.keywords, executor
            )
    return functools.partial(_run_as, child, fn, (), {}, executor)


def _callable_name(fn: Any) -> str:
    while isinstance(fn, functools.partial):
        fn = (
            fn.args[0]
            if isinstance(getattr(fn.func, "__self__", None), contextvars.Context)
            else fn.func
        )
    return getattr(fn, "__qualname__", None) or getattr(fn, "__name__", None) or type(fn).__name__


def _executor_submit(wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
    fn, rest = args[0], args[1:]
    ready = getattr(fn, "_raceway_child", None)
    if isinstance(ready, rec.TaskState):
        # already runs as its own task (asyncio run_in_executor / to_thread wrap it): no 2nd fork
        future = wrapped(*args, **kwargs)
        future.__dict__["_raceway_task"] = ready
        return future
    child = rec.fork("executor", _callable_name(fn))
    body = _task_body(
        child, functools.partial(fn, *rest, **kwargs) if (rest or kwargs) else fn, instance
    )
    future = wrapped(body)
    future.__dict__["_raceway_task"] = child
    return future


def _executor_shutdown(wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
    result = wrapped(*args, **kwargs)
    wait = args[0] if args else kwargs.get("wait", True)
    if wait:
        rec.acquire(instance, "concurrent.futures.Executor")
    return result


def _future_completed(future: Any) -> None:
    """The running task learnt that ``future`` finished: join its task or its completion."""
    child = future.__dict__.get("_raceway_task")
    if child is not None and child.done_vc is not None:
        rec.join(child)
    else:
        rec.acquire(future, "concurrent.futures.Future")


def _future_set(wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
    rec.release(instance, "concurrent.futures.Future")
    return wrapped(*args, **kwargs)


def _future_result(wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
    # result() / exception(): also an edge when result() re-raises the callable's exception
    try:
        result = wrapped(*args, **kwargs)
    except BaseException:
        if instance._state == futures_base.FINISHED:
            _future_completed(instance)
        raise
    _future_completed(instance)
    return result


def _future_done(wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
    done = wrapped(*args, **kwargs)
    if done and not instance.cancelled():
        _future_completed(instance)
    return done


def _future_add_done_callback(wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
    fn = args[0] if args else kwargs["fn"]
    child = rec.fork("callback", _callable_name(fn))

    def callback(future: Any) -> Any:
        token = rec.activate(child)
        try:
            if not future.cancelled():
                _future_completed(future)
            return fn(future)
        finally:
            rec.finish(child)
            rec.deactivate(token)

    return wrapped(callback)


def _futures_wait(wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
    result = wrapped(*args, **kwargs)
    for f in result.done:
        if not f.cancelled():
            _future_completed(f)
    return result


def _futures_as_completed(wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
    def gen() -> Any:
        for f in wrapped(*args, **kwargs):
            if not f.cancelled():
                _future_completed(f)
            yield f

    return gen()


# --------------------------------------------------------------------------- install

_patches = Patches()


def is_installed() -> bool:
    """True while the thread-world patches are in place."""
    return len(_patches) > 0


def install(third_party_sync: bool = False) -> None:
    """Patch threading, queue and concurrent.futures (idempotent).

    ``third_party_sync``: also instrument locks, conditions, semaphores, events and barriers
    that installed libraries (site-packages) create for themselves. Off by default: a
    library's internal lock (a logger's, a connection pool's) would order every thread that
    calls it and hide the races of the code under test.
    """
    global _third_party_sync
    if is_installed():
        return
    if _third_party_sync != bool(third_party_sync):
        _third_party_sync = bool(third_party_sync)
        _internal_cache.clear()
    p = _patches
    try:
        T = threading.Thread
        p.wrap(T, "start", _thread_start)
        p.wrap(T, "_bootstrap_inner", _thread_bootstrap_inner)
        p.wrap(T, "join", _thread_join)

        p.replace(threading, "Lock", InstrumentedLock)
        p.replace(threading, "RLock", InstrumentedRLock)
        p.replace(_thread, "allocate_lock", InstrumentedLock)

        p.replace(threading, "Condition", InstrumentedCondition)

        S = threading.Semaphore
        p.wrap(S, "__init__", _mark_if_user)
        p.wrap(S, "acquire", _make_acquire("threading.Semaphore"))
        p.wrap(S, "__enter__", _make_acquire("threading.Semaphore"))
        p.wrap(S, "release", _make_release("threading.Semaphore"))
        p.wrap(threading.BoundedSemaphore, "release", _make_release("threading.BoundedSemaphore"))

        E = threading.Event
        p.wrap(E, "__init__", _mark_if_user)
        p.wrap(E, "set", _make_release("threading.Event"))
        p.wrap(E, "wait", _make_acquire("threading.Event"))
        p.wrap(E, "is_set", _make_acquire("threading.Event"))

        B = threading.Barrier
        p.wrap(B, "__init__", _mark_if_user)
        p.wrap(B, "wait", _barrier_wait)
        p.wrap(B, "reset", _barrier_reset)

        Q = queue.Queue
        p.replace(Q, "put", _make_queue_put_outer(vars(Q)["put"]))
        p.replace(Q, "get", _make_queue_get_outer(vars(Q)["get"]))
        for cls in _queue_types:
            p.replace(cls, "_put", _make_queue_put_inner(vars(cls)["_put"]))
            p.replace(cls, "_get", _make_queue_get_inner(vars(cls)["_get"]))
        p.wrap(queue.Queue, "task_done", _make_release_always("queue.Queue.task_done"))
        p.wrap(queue.Queue, "join", _make_acquire_always("queue.Queue.task_done"))
        p.replace(queue, "SimpleQueue", InstrumentedSimpleQueue)

        X = futures_thread.ThreadPoolExecutor
        p.wrap(X, "submit", _executor_submit)
        p.wrap(X, "shutdown", _executor_shutdown)
        F = futures_base.Future
        p.wrap(F, "set_result", _future_set)
        p.wrap(F, "set_exception", _future_set)
        p.wrap(F, "result", _future_result)
        p.wrap(F, "exception", _future_result)
        p.wrap(F, "done", _future_done)
        p.wrap(F, "add_done_callback", _future_add_done_callback)
        for owner in (futures_base, concurrent.futures):
            p.wrap(owner, "wait", _futures_wait)
            p.wrap(owner, "as_completed", _futures_as_completed)
    except BaseException:
        p.restore()
        raise


def uninstall() -> None:
    """Restore every patched attribute to its original object."""
    _patches.restore()
