"""asyncio instrumentation: tasks are logical tasks, steps are segments, primitives carry clocks.

Why each hook is where it is (CPython 3.10-3.13):

* **Tasks.** ``asyncio.Task`` is a C type, so ``asyncio.Task``/``asyncio.tasks.Task`` are replaced
  by a subclass whose ``__init__`` forks the child and sets :data:`CURRENT` to it around the real
  constructor: the task's context is copied there, so the task (and only the task) carries the
  child state. ``loop.create_task`` looks ``tasks.Task`` up at call time; a task factory's
  result is covered by the ``create_task`` wrapper (same trick), eager tasks too.
  ``await task``, ``task.result()``/``exception()`` join the child's final clock.
* **Segments.** Every task step runs as a ``Handle`` whose callback is bound to the task, in the
  task's context: the (pure-Python) ``Handle._run`` wrapper starts a new segment of the task's
  state there and freezes its clock when the step finished the task. An ``await`` that does not
  yield never reaches the loop and so never starts a segment.
* **Futures.** ``loop.create_future`` builds ``futures.Future`` (looked up at call time), replaced
  by a subclass: ``set_result``/``set_exception``/``cancel`` release, ``await``/``result``/
  ``exception`` acquire. Futures completed by asyncio's own plumbing callbacks (gather, shield,
  wait, wrap_future, TaskGroup, sleep timers) release nothing; the observer instead joins the
  futures' *sources* (gather children, the shielded task, the executor job), so a task is never
  ordered after work it did not wait for.
* **Primitives.** Lock, Event (set -> wait / is_set() True), Condition (notify -> wait, plus its
  lock), Semaphore/BoundedSemaphore, Barrier, Queue family (put -> get, task_done -> join):
  release-like operations call ``recorder.release`` first, acquire-like ones ``recorder.acquire``
  after; the waiter futures they complete carry no clock of their own. The patches are on the
  classes, so objects created before :func:`install` give edges too, except that a Condition
  built before install keeps its lock's original bound acquire/release (notify -> wait remains).
* **Threads.** ``to_thread``/``run_in_executor`` callables run as their own ``thread`` /
  ``executor`` task (no loop: preemptive), joined when the awaiting task gets the result.
  The other direction: ``run_coroutine_threadsafe`` forks the coroutine's task in the calling
  thread at the call (not when the loop gets to it), and a ``call_soon_threadsafe`` callback
  from another thread runs as a ``callback`` task forked there (on the loop: one segment).

Attribution: a plain callback (``call_soon``/``call_later``/done callback) runs as the task whose
context it copied, in that task's current segment numbering; it is never a separate task.

Known gaps: futures and tasks of another loop implementation (uvloop builds them in C) and its
handles (no segments, no ``call_soon_threadsafe`` fork); user Task subclasses defined before install (forked, segmented and
joined by gather/wait/TaskGroup, but ``await`` on them does not join); names bound with
``from asyncio import wait`` before install; ProcessPoolExecutor jobs are left alone.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextvars
import functools
import inspect
import itertools
import os
import sys
import threading
import types
import weakref
from asyncio import base_events, coroutines, events, futures, locks, queues, tasks
from collections.abc import Callable, Iterable
from typing import Any

from raceway_sdk import _recorder as rec
from raceway_sdk._recorder import CURRENT, TaskState

__all__ = [
    "KIND",
    "Patcher",
    "acquire_after",
    "acquire_if_true",
    "callable_name",
    "internal_callbacks",
    "install",
    "is_installed",
    "join_state",
    "join_states",
    "join_task",
    "last_created",
    "loop_id",
    "release_before",
    "run_as",
    "state_of",
    "uninstall",
]

_ORIG_TASK: Any = tasks.Task
_ORIG_FUTURE: Any = futures.Future
_ORIG_GATHERING: Any = getattr(tasks, "_GatheringFuture")
_LOOP_PREFIX = os.urandom(3).hex()
_loop_numbers = itertools.count(1)
_loop_ids: weakref.WeakKeyDictionary[Any, str] = weakref.WeakKeyDictionary()
_foreign: weakref.WeakKeyDictionary[Any, TaskState] = weakref.WeakKeyDictionary()


class Patcher:
    """Set attributes and put back exactly what was there (the very same objects)."""

    def __init__(self) -> None:
        self._saved: list[tuple[Any, str, bool, Any]] = []

    def patch(self, owner: Any, name: str, new: Any) -> None:
        """Replace ``owner.name`` by ``new`` (class dict entries are saved raw)."""
        d = vars(owner)
        had = name in d
        self._saved.append((owner, name, had, d.get(name)))
        setattr(owner, name, new)

    def restore(self) -> None:
        """Undo every patch, newest first."""
        while self._saved:
            owner, name, had, old = self._saved.pop()
            if had:
                setattr(owner, name, old)
            else:
                delattr(owner, name)


#: kind to give tasks spawned from this context right now (anyio's spawn sets "anyio")
KIND: contextvars.ContextVar[str | None] = contextvars.ContextVar("raceway_kind", default=None)


class _Local(threading.local):
    #: >0 while asyncio's own plumbing callbacks run: their completions carry no clock
    internal = 0
    #: state forked by the create_task wrapper for a task factory to pick up
    pending: TaskState | None = None
    #: the creator of ``pending`` (an eager first step starts a new segment of it)
    pending_parent: TaskState | None = None
    #: state of the (outermost) task constructed last on this thread
    last: TaskState | None = None


_tl = _Local()


def loop_id(loop: Any) -> str:
    """A process-unique id string for an event loop (never reused, unlike ``id(loop)``)."""
    try:
        lid = _loop_ids.get(loop)
    except TypeError:
        return f"{_LOOP_PREFIX}/asyncio-{id(loop):x}"
    if lid is None:
        # setdefault: a thread forking onto this loop races the loop's own first lookup
        lid = _loop_ids.setdefault(loop, f"{_LOOP_PREFIX}/asyncio-{next(_loop_numbers)}")
    return lid


def last_created() -> TaskState | None:
    """State of the outermost task constructed last on this thread (for spawn wrappers)."""
    return _tl.last


def state_of(task: Any) -> TaskState | None:
    """The logical-task state of an asyncio task (None if it was created uninstrumented)."""
    state = getattr(task, "_raceway_state", None)
    if state is None:
        try:
            state = _foreign.get(task)
        except TypeError:
            return None
    return state


def _coro_name(coro: Any, name: Any) -> str:
    if name is not None:
        return str(name)
    return str(getattr(coro, "__qualname__", None) or type(coro).__name__)


def _fork_task(coro: Any, name: Any, loop: Any) -> TaskState:
    kind = KIND.get() or "asyncio"
    return rec.fork(kind, _coro_name(coro, name), loop_id(loop) if loop else None)


def _finish_done(task: Any, state: TaskState) -> None:
    if state.done_vc is None and task.done():
        rec.finish(state)


def join_task(task: Any) -> None:
    """The running task learnt that ``task`` ended: join its final clock."""
    state = state_of(task)
    if state is None:
        return
    if state.done_vc is None:
        if not task.done():
            return
        rec.finish(state)
    join_state(state)


def join_state(state: TaskState) -> None:
    """Join a finished state unless the running task already has its clock (no event then).

    Epoch test, O(1): a clock holding the child's final own component was joined from a clock
    that dominated the child's final clock.
    """
    done = state.done_vc
    if done is not None and rec.current().vc.get(state.id, 0) < done[state.id]:
        rec.join(state)


def _observe(fut: Any) -> None:
    """Join whatever completed ``fut``: a task's end, a releaser's clock, the sources."""
    observe = getattr(fut, "_rw_observe", None)
    if observe is not None:
        observe()
    elif isinstance(fut, _ORIG_TASK):
        join_task(fut)


def _join_source(src: Any) -> None:
    if type(src) is TaskState:
        join_state(src)
    elif isinstance(src, _ORIG_TASK):
        join_task(src)
    elif getattr(src, "done", None) is not None and src.done():
        _observe(src)


# --------------------------------------------------------------------------- futures and tasks


class _StandIn(type):
    """Metaclass: the replacement class answers isinstance/issubclass like the original.

    Only the stand-in itself does: user subclasses defined while installed keep the usual
    checks (they inherit the metaclass, not the stand-in's identity).
    """

    def __instancecheck__(cls, inst: Any) -> bool:
        original = cls.__dict__.get("_rw_original")
        if original is None:
            return type.__instancecheck__(cls, inst)
        return isinstance(inst, original)

    def __subclasscheck__(cls, sub: type) -> bool:
        original = cls.__dict__.get("_rw_original")
        if original is None:
            return type.__subclasscheck__(cls, sub)
        return issubclass(sub, original)


class _Observed:
    """``await``/``result()``/``exception()`` record that the caller observed completion."""

    __slots__ = ()

    def _rw_observe(self) -> None:  # pragma: no cover - overridden
        raise NotImplementedError

    def __await__(self) -> Any:
        try:
            result = yield from super().__await__()  # type: ignore[misc]
        except BaseException:
            if self.done() and not _tl.internal:  # type: ignore[attr-defined]
                self._rw_observe()
            raise
        if not _tl.internal:
            self._rw_observe()
        return result

    __iter__ = __await__

    def result(self) -> Any:
        if not _tl.internal and self.done():  # type: ignore[attr-defined]
            self._rw_observe()
        return super().result()  # type: ignore[misc]

    def exception(self) -> Any:
        if not _tl.internal and self.done():  # type: ignore[attr-defined]
            self._rw_observe()
        return super().exception()  # type: ignore[misc]


class Future(_Observed, _ORIG_FUTURE, metaclass=_StandIn):  # type: ignore[misc,valid-type]
    """``asyncio.Future`` that carries the completer's clock to its observers."""

    _rw_original = _ORIG_FUTURE
    _rw_rel = False
    _rw_sources: tuple[Any, ...] | None = None

    def _rw_release(self) -> None:
        if not _tl.internal and not self.done():
            rec.release(self, "asyncio.Future")
            self._rw_rel = True

    def set_result(self, result: Any) -> None:
        self._rw_release()
        super().set_result(result)

    def set_exception(self, exception: Any) -> None:
        self._rw_release()
        super().set_exception(exception)

    def cancel(self, *args: Any, **kwargs: Any) -> bool:
        self._rw_release()
        return super().cancel(*args, **kwargs)

    def _rw_observe(self) -> None:
        if self._rw_rel:
            rec.acquire(self, "asyncio.Future")
        sources = self._rw_sources
        if sources:
            for src in sources:
                _join_source(src)


Future.__name__ = Future.__qualname__ = "Future"


class Task(_Observed, _ORIG_TASK, metaclass=_StandIn):  # type: ignore[misc,valid-type]
    """``asyncio.Task`` whose coroutine runs as its own logical task."""

    _rw_original = _ORIG_TASK
    _raceway_state: TaskState | None = None

    def __init__(self, coro: Any, *args: Any, **kwargs: Any) -> None:
        tl = _tl
        state = tl.pending
        parent = None
        if state is not None:
            tl.pending = None
            parent = tl.pending_parent
        elif not coroutines.iscoroutine(coro):
            super().__init__(coro, *args, **kwargs)  # raises the usual TypeError
            return
        else:
            loop = kwargs.get("loop") or events._get_running_loop()
            state = _fork_task(coro, kwargs.get("name"), loop)
            parent = CURRENT.get()
        self._raceway_state = state
        eager = kwargs.get("eager_start", False)
        ctx = kwargs.get("context")
        internal = tl.internal
        if eager and internal:
            tl.internal = 0  # an eager first step is user code, even inside plumbing
        try:
            if ctx is None:
                kind_token = KIND.set(None) if KIND.get() is not None else None
                token = CURRENT.set(state)
                try:
                    super().__init__(coro, *args, **kwargs)
                finally:
                    CURRENT.reset(token)
                    if kind_token is not None:
                        KIND.reset(kind_token)
            else:
                ctx.run(CURRENT.set, state)
                super().__init__(coro, *args, **kwargs)
        finally:
            tl.internal = internal
        if state.loop is None:
            state.loop = loop_id(self.get_loop())
        if eager:
            _after_eager(self, state, parent)
        tl.last = state

    def set_name(self, value: Any) -> None:
        super().set_name(value)
        state = self._raceway_state
        if state is not None:  # 3.10/3.11 create_task names the task after constructing it
            state.name = str(value)

    def _rw_observe(self) -> None:
        join_task(self)


Task.__name__ = Task.__qualname__ = "Task"


def _after_eager(task: Any, state: TaskState, parent: TaskState | None) -> None:
    # The first step ran inside the constructor: other code of this loop ran in the creator's
    # segment, so the creator continues in a new one.
    _finish_done(task, state)
    if parent is not None and parent.loop is not None:
        rec.new_segment(parent)


class _GatheringFuture(_Observed, _ORIG_GATHERING, metaclass=_StandIn):  # type: ignore[misc,valid-type]
    """gather()'s outer future: observing it joins every finished child."""

    _rw_original = _ORIG_GATHERING

    def _rw_observe(self) -> None:
        for child in self._children:
            if child.done():
                _observe(child)


# --------------------------------------------------------------------------- the loop


_orig_handle_run = events.Handle._run
_internal_codes: set[types.CodeType] = set()


def _handle_run(self: Any) -> None:
    cb = self._callback
    owner: Any = getattr(cb, "__self__", None)
    if isinstance(owner, _ORIG_TASK):
        state = state_of(owner)
        if state is not None and state.loop is not None and self._context.get(CURRENT) is state:
            rec.new_segment(state)
            _orig_handle_run(self)
            if state.done_vc is None and owner.done():
                rec.finish(state)
            return
        _orig_handle_run(self)
        return
    if getattr(cb, "__code__", None) in _internal_codes:
        tl = _tl
        tl.internal += 1
        try:
            _orig_handle_run(self)
        finally:
            tl.internal -= 1
        return
    _orig_handle_run(self)


def _collect_codes(obj: Any, out: set[types.CodeType], depth: int = 0) -> None:
    """Code objects of ``obj`` (function, class or code) and of everything nested in them."""
    if depth > 4:
        return
    if isinstance(obj, types.CodeType):
        out.add(obj)
        for const in obj.co_consts:
            if isinstance(const, types.CodeType):
                _collect_codes(const, out, depth + 1)
    elif isinstance(obj, type):
        for v in vars(obj).values():
            _collect_codes(getattr(v, "__func__", v), out, depth + 1)
    elif isinstance(obj, (staticmethod, classmethod)):
        _collect_codes(obj.__func__, out, depth + 1)
    elif isinstance(obj, types.FunctionType):
        _collect_codes(obj.__code__, out, depth + 1)


def internal_callbacks(*objs: Any) -> None:
    """Declare library plumbing callbacks (their future completions carry no clock)."""
    for obj in objs:
        _collect_codes(obj, _internal_codes)


def _asyncio_plumbing() -> list[Any]:
    out: list[Any] = [getattr(base_events, "_run_until_complete_cb")]
    for mod in (tasks, futures):
        for name, value in vars(mod).items():
            if isinstance(value, types.FunctionType) and value.__module__ == mod.__name__:
                out.append(value)
            elif (
                isinstance(value, type)
                and value.__module__ == mod.__name__
                and name not in ("Task", "Future")
                and not name.startswith("_Py")  # pure-Python tasks run user code in steps
            ):
                out.append(value)
    taskgroups = sys.modules.get("asyncio.taskgroups")
    if taskgroups is not None:
        out.append(taskgroups.TaskGroup._on_task_done)
    return out


def _create_task_wrapper(orig: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(orig)
    def create_task(self: Any, coro: Any, *args: Any, **kwargs: Any) -> Any:
        if self._task_factory is None or not coroutines.iscoroutine(coro):
            return orig(self, coro, *args, **kwargs)
        # A task factory may build any Task class: fork here, let our Task pick the state up.
        tl = _tl
        state = tl.pending
        if state is not None:  # forked ahead (run_coroutine_threadsafe, in the calling thread)
            parent = tl.pending_parent
        else:
            state = _fork_task(coro, kwargs.get("name"), self)
            parent = CURRENT.get()
        ctx = kwargs.get("context")
        if ctx is not None:
            ctx.run(CURRENT.set, state)
        tl.pending = state
        tl.pending_parent = parent
        token = CURRENT.set(state)
        try:
            task = orig(self, coro, *args, **kwargs)
        finally:
            CURRENT.reset(token)
            unused = tl.pending is state
            tl.pending = tl.pending_parent = None
        if unused and state_of(task) is None:
            try:
                _foreign[task] = state
            except TypeError:
                pass
            tl.last = state
            if _started(coro):
                _after_eager(task, state, parent)
        return task

    return create_task


def _started(coro: Any) -> bool:
    """True if an eager task factory already ran the coroutine's first step."""
    if not inspect.iscoroutine(coro):
        return False
    return inspect.getcoroutinestate(coro) != inspect.CORO_CREATED


def run_as(child: TaskState, func: Callable[..., Any]) -> Callable[..., Any]:
    """``func`` running as ``child`` in whatever context and thread calls it."""

    @functools.wraps(func)
    def run(*args: Any, **kwargs: Any) -> Any:
        token = rec.activate(child)
        try:
            return func(*args, **kwargs)
        finally:
            rec.finish(child)
            rec.deactivate(token)

    run._raceway_child = child  # type: ignore[attr-defined]
    return run


def callable_name(func: Any) -> str:
    """A display name for a callable (the wrapped function of a partial)."""
    inner = getattr(func, "func", None)  # functools.partial
    target = inner if inner is not None and not hasattr(func, "__qualname__") else func
    return str(getattr(target, "__qualname__", None) or type(target).__name__)


def _add_source(fut: Any, src: Any) -> None:
    """Observing ``fut`` (an instrumented Future) will also join ``src``."""
    if isinstance(fut, _ORIG_FUTURE) and not isinstance(fut, _ORIG_TASK):
        try:
            fut._rw_sources = (*(getattr(fut, "_rw_sources", None) or ()), src)
        except AttributeError:  # an original Future (created before install): no hook
            pass


def _run_in_executor_wrapper(orig: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(orig)
    def run_in_executor(self: Any, executor: Any, func: Any, *args: Any) -> Any:
        child = getattr(func, "_raceway_child", None)
        if child is None:
            if (
                coroutines.iscoroutine(func)
                or coroutines.iscoroutinefunction(func)
                or isinstance(executor, concurrent.futures.ProcessPoolExecutor)
            ):
                return orig(self, executor, func, *args)  # errors / other process: unchanged
            child = rec.fork("executor", callable_name(func), None)
            func = run_as(child, func)
        fut = orig(self, executor, func, *args)
        _add_source(fut, child)
        return fut

    return run_in_executor


async def to_thread(func: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Any:
    """``asyncio.to_thread`` with the thread side as its own (preemptive) logical task."""
    loop = events.get_running_loop()
    child = rec.fork("thread", callable_name(func), None)
    ctx = contextvars.copy_context()
    call = functools.partial(ctx.run, run_as(child, func), *args, **kwargs)
    call._raceway_child = child  # type: ignore[attr-defined]
    return await loop.run_in_executor(None, call)


def _wait_wrapper(orig: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(orig)
    async def wait(fs: Any, *args: Any, **kwargs: Any) -> Any:
        done, pending = await orig(fs, *args, **kwargs)
        for f in done:
            _observe(f)
        return done, pending

    return wait


def _shield_wrapper(orig: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(orig)
    def shield(arg: Any) -> Any:
        inner = tasks.ensure_future(arg)
        outer = orig(inner)
        if outer is not inner:
            _add_source(outer, inner)
        return outer

    return shield


def _run_coroutine_threadsafe(coro: Any, loop: Any) -> concurrent.futures.Future[Any]:
    """asyncio's version, plus: the task is forked by the caller, its end released to the future.

    The fork happens here, in the calling thread: the coroutine is ordered after what the
    caller did before the call and concurrent with what it does after, however late the loop
    runs the callback that creates the task.
    """
    if not coroutines.iscoroutine(coro):
        raise TypeError("A coroutine object is required")
    future: concurrent.futures.Future[Any] = concurrent.futures.Future()
    caller = rec.current()
    state = _fork_task(coro, None, loop)
    # a loop not running yet may be run by this very thread later: decided when it runs
    caller_tid = threading.get_ident() if getattr(loop, "_thread_id", 0) is None else None

    def callback() -> None:
        try:
            if caller_tid == threading.get_ident():  # program order of the caller: fork now
                rec.finish(state)  # (never acts)
                token = CURRENT.set(caller)
                try:
                    task = tasks.ensure_future(coro, loop=loop)
                finally:
                    CURRENT.reset(token)
                forked = state_of(task)
            else:
                task = _create_forked(state, coro, loop)
                forked = state
            if forked is not None:
                task.add_done_callback(functools.partial(_release_end, forked, future))
            futures._chain_future(task, future)  # type: ignore[attr-defined]
        except (SystemExit, KeyboardInterrupt):
            raise
        except BaseException as exc:
            if future.set_running_or_notify_cancel():
                future.set_exception(exc)
            raise

    callback._raceway_child = state  # type: ignore[attr-defined]  # not forked again below
    ctx = contextvars.copy_context()
    ctx.run(CURRENT.set, state)  # the loop-side plumbing runs as the new task, not the caller
    loop.call_soon_threadsafe(callback, context=ctx)
    return future


def _create_forked(state: TaskState, coro: Any, loop: Any) -> Any:
    """``ensure_future(coro)`` with ``state`` (forked earlier) as the task's logical task."""
    tl = _tl
    saved = tl.pending, tl.pending_parent
    tl.pending, tl.pending_parent = state, None
    try:
        task = tasks.ensure_future(coro, loop=loop)
    finally:
        tl.pending, tl.pending_parent = saved
    if state_of(task) is None:  # a factory built a Task class of its own
        try:
            _foreign[task] = state
        except TypeError:
            pass
    return task


def _call_soon_threadsafe_wrapper(orig: Callable[..., Any]) -> Callable[..., Any]:
    """A callback handed to the loop by another thread runs as a task forked by that thread.

    Without this it would run in a copy of the caller's context, i.e. as the caller's task, on
    the loop thread: one logical task acting from two threads at once.
    """

    @functools.wraps(orig)
    def call_soon_threadsafe(self: Any, callback: Any, *args: Any, context: Any = None) -> Any:
        owner = getattr(self, "_thread_id", None)
        me = threading.get_ident()
        if (
            owner == me
            or self.is_closed()
            or getattr(callback, "_raceway_child", None) is not None
            or getattr(callback, "__code__", None) in _internal_codes
            or coroutines.iscoroutine(callback)
            or coroutines.iscoroutinefunction(callback)
        ):
            return orig(self, callback, *args, context=context)
        target: Any = getattr(callback, "__self__", None)
        entered = target if type(target) is contextvars.Context and args else None
        child = rec.fork("callback", callable_name(args[0] if entered else callback), loop_id(self))
        # a loop not running yet may be run by this very thread later: decided when it runs
        caller = me if owner is None else None
        wrapped = _threadsafe_callback(child, callback, caller, entered)
        return orig(self, wrapped, *args, context=context)

    return call_soon_threadsafe


def _threadsafe_callback(
    child: TaskState, callback: Any, caller: int | None, entered: Any
) -> Callable[..., Any]:
    """``callback`` running as ``child``; as plain ``callback`` on the ``caller`` thread.

    ``entered``: the context a ``ctx.run`` callback switches to (the child must be current
    there, not only in the handle's context).
    """

    @functools.wraps(callback)
    def run(*args: Any) -> Any:
        if caller is not None and threading.get_ident() == caller:
            rec.finish(child)  # the caller's own thread runs it in program order: no new task
            return callback(*args)
        if entered is not None:
            entered.run(CURRENT.set, child)
        token = rec.activate(child)
        try:
            return callback(*args)
        finally:
            rec.finish(child)
            rec.deactivate(token)

    run._raceway_child = child  # type: ignore[attr-defined]
    return run


def _release_end(state: TaskState, target: Any, task: Any) -> None:
    # Runs before asyncio copies the result over: whoever waits on ``target`` joins the task.
    if state.done_vc is None:
        rec.finish(state)
    token = rec.activate(state)
    try:
        rec.release(target, "concurrent.futures.Future")
    finally:
        rec.deactivate(token)


def _taskgroup_patches(p: Patcher) -> None:
    taskgroups = sys.modules.get("asyncio.taskgroups")
    if taskgroups is None:
        return
    tg = taskgroups.TaskGroup
    orig_create = tg.create_task
    orig_exit = tg.__aexit__

    @functools.wraps(orig_create)
    def create_task(self: Any, *args: Any, **kwargs: Any) -> Any:
        task = orig_create(self, *args, **kwargs)
        state = state_of(task)
        if state is not None:
            self.__dict__.setdefault("_rw_children", []).append(state)
        return task

    @functools.wraps(orig_exit)
    async def __aexit__(self: Any, *exc_info: Any) -> Any:
        try:
            return await orig_exit(self, *exc_info)
        finally:
            join_states(self.__dict__.pop("_rw_children", ()))

    p.patch(tg, "create_task", create_task)
    p.patch(tg, "__aexit__", __aexit__)


def join_states(states: Iterable[TaskState]) -> None:
    """Join every finished state (a task group / nursery exit)."""
    for state in states:
        join_state(state)


# --------------------------------------------------------------------------- primitives


def _lock_type(obj: Any, base: str) -> str:
    for cls in type(obj).__mro__:
        if cls.__module__ in ("asyncio.locks", "asyncio.queues"):
            return f"asyncio.{cls.__name__}"
    return base


def release_before(
    orig: Callable[..., Any], lock_type: str, key: Callable[[Any], Any] | None = None
) -> Callable[..., Any]:
    """Wrap a release-like method: the clock is stored before the real operation."""

    @functools.wraps(orig)
    def wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
        tl = _tl
        if not tl.internal:
            rec.release(self if key is None else key(self), _lock_type(self, lock_type))
        # the waiter futures it completes carry no clock of their own: this release does
        tl.internal += 1
        try:
            return orig(self, *args, **kwargs)
        finally:
            tl.internal -= 1

    return wrapper


def acquire_after(
    orig: Callable[..., Any], lock_type: str, key: Callable[[Any], Any] | None = None
) -> Callable[..., Any]:
    """Wrap an acquire-like method (sync or async): the clock is joined once it succeeded."""
    if inspect.iscoroutinefunction(orig):

        @functools.wraps(orig)
        async def awrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
            result = await orig(self, *args, **kwargs)
            if not _tl.internal:
                rec.acquire(self if key is None else key(self), _lock_type(self, lock_type))
            return result

        return awrapper

    @functools.wraps(orig)
    def wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
        tl = _tl
        tl.internal += 1  # e.g. get_nowait wakes a putter: that waiter carries no clock
        try:
            result = orig(self, *args, **kwargs)
        finally:
            tl.internal -= 1
        if inspect.iscoroutine(result):  # a decorated async method (trio's KI protection)
            return _acquire_when_done(result, self if key is None else key(self), lock_type)
        if not _tl.internal:
            rec.acquire(self if key is None else key(self), _lock_type(self, lock_type))
        return result

    return wrapper


async def _acquire_when_done(coro: Any, obj: Any, lock_type: str) -> Any:
    result = await coro
    if not _tl.internal:
        rec.acquire(obj, _lock_type(obj, lock_type))
    return result


def acquire_if_true(orig: Callable[..., Any], lock_type: str) -> Callable[..., Any]:
    """Wrap a predicate such as ``Event.is_set``: observing True is an acquire."""

    @functools.wraps(orig)
    def wrapper(self: Any) -> Any:
        result = orig(self)
        if result and not _tl.internal:
            rec.acquire(self, lock_type)
        return result

    return wrapper


def _primitive_patches(p: Patcher) -> None:
    for cls, rel, acq, name in (
        (locks.Lock, ("release",), ("acquire",), "asyncio.Lock"),
        (locks.Event, ("set",), ("wait",), "asyncio.Event"),
        (locks.Condition, ("notify", "notify_all"), ("wait",), "asyncio.Condition"),
        (locks.Semaphore, ("release",), ("acquire",), "asyncio.Semaphore"),
        (queues.Queue, ("put_nowait", "task_done"), ("get_nowait", "join"), "asyncio.Queue"),
    ):
        for meth in rel:
            p.patch(cls, meth, release_before(vars(cls)[meth], name))
        for meth in acq:
            p.patch(cls, meth, acquire_after(vars(cls)[meth], name))
    p.patch(locks.Event, "is_set", acquire_if_true(vars(locks.Event)["is_set"], "asyncio.Event"))
    barrier = getattr(locks, "Barrier", None)
    if barrier is not None:  # 3.11+: every party's arrival happens before every party leaves
        orig_wait = vars(barrier)["wait"]

        @functools.wraps(orig_wait)
        async def wait(self: Any) -> Any:
            if not _tl.internal:
                rec.release(self, "asyncio.Barrier")
            result = await orig_wait(self)
            if not _tl.internal:
                rec.acquire(self, "asyncio.Barrier")
            return result

        p.patch(barrier, "wait", wait)


# --------------------------------------------------------------------------- install


_patcher: Patcher | None = None


def is_installed() -> bool:
    """True between :func:`install` and :func:`uninstall`."""
    return _patcher is not None


def install() -> None:
    """Patch asyncio (idempotent)."""
    global _patcher
    if _patcher is not None:
        return
    p = Patcher()
    try:
        internal_callbacks(*_asyncio_plumbing())
        p.patch(events.Handle, "_run", _handle_run)
        for mod in (tasks, asyncio):
            p.patch(mod, "Task", Task)
            p.patch(mod, "wait", _wait_wrapper(tasks.wait))
            p.patch(mod, "shield", _shield_wrapper(tasks.shield))
            p.patch(mod, "run_coroutine_threadsafe", _run_coroutine_threadsafe)
            if hasattr(tasks, "create_eager_task_factory"):
                p.patch(mod, "eager_task_factory", tasks.create_eager_task_factory(Task))
        p.patch(tasks, "_GatheringFuture", _GatheringFuture)
        p.patch(futures, "Future", Future)
        p.patch(asyncio, "Future", Future)
        threads_mod = sys.modules.get("asyncio.threads")
        if threads_mod is not None:
            p.patch(threads_mod, "to_thread", to_thread)
            p.patch(asyncio, "to_thread", to_thread)
        be = base_events.BaseEventLoop
        p.patch(be, "create_task", _create_task_wrapper(vars(be)["create_task"]))
        p.patch(be, "run_in_executor", _run_in_executor_wrapper(vars(be)["run_in_executor"]))
        p.patch(
            be,
            "call_soon_threadsafe",
            _call_soon_threadsafe_wrapper(vars(be)["call_soon_threadsafe"]),
        )
        _taskgroup_patches(p)
        _primitive_patches(p)
    except BaseException:
        p.restore()
        raise
    _patcher = p


def uninstall() -> None:
    """Restore every patched attribute (tasks created meanwhile keep working)."""
    global _patcher
    p, _patcher = _patcher, None
    if p is not None:
        p.restore()
