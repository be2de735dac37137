"""trio and anyio instrumentation: tasks, steps, nurseries/task groups, primitives, threads.

trio: every task is spawned by ``Runner.spawn_impl``, which copies the calling context; the
wrapper forks the child and sets :data:`CURRENT` to it around the copy (as for asyncio). A
``trio.abc.Instrument`` added lazily to each run starts a new segment in ``before_task_step``
and freezes the clock in ``task_exited``. A nursery's exit joins every task spawned into it
(``Nursery.start`` children are counted in the nursery they move to), and ``task_status.started``
happens before ``nursery.start`` returns. ``trio.to_thread.run_sync`` runs a thread task; a
``TrioToken.run_sync_soon`` callback from another thread runs as a ``callback`` task forked by
that thread at the call.

anyio: on the asyncio backend tasks are asyncio tasks (see :mod:`.aio`) and on the trio backend
trio tasks; either way anyio task groups mark them ``kind="anyio"`` and join them at exit.
anyio's Event/Lock/Semaphore/CapacityLimiter wrap the backend primitives where they exist
(patched there) and are patched directly where anyio implements them (asyncio backend); the
generic Condition and memory object streams are patched in anyio itself.

Sync objects of channels/streams are their shared state object, so clones of a channel and
both ends see one clock. Neither library is imported by :func:`install`: each module is patched
when it is imported (at once if it already is), through :func:`raceway_sdk.instrument.when_imported`.

Known gaps: ``task_status.started()`` called by a task other than the started one gives no
start edge; names bound before install (``from trio.to_thread import run_sync``) stay
unpatched; ``run_sync_soon(..., idempotent=True)`` callbacks run as the run's system context.
"""

from __future__ import annotations

import contextvars
import functools
import inspect
import itertools
import os
import weakref
from collections.abc import Callable
from types import ModuleType
from typing import Any

from raceway_sdk import _recorder as rec
from raceway_sdk._recorder import CURRENT, TaskState
from raceway_sdk.instrument import ImportWatch, aio, when_imported
from raceway_sdk.instrument.aio import KIND, Patcher, acquire_after, acquire_if_true, release_before

__all__ = ["install", "uninstall", "is_installed", "deferred", "run_id"]

_PREFIX = os.urandom(3).hex()
_run_numbers = itertools.count(1)
_run_ids: weakref.WeakKeyDictionary[Any, str] = weakref.WeakKeyDictionary()
#: trio task -> its state (removed when the task exits)
_trio_states: dict[Any, TaskState] = {}
_runners: weakref.WeakSet[Any] = weakref.WeakSet()


class _StartBox:
    """One ``nursery.start`` call: its target nursery and the task it started."""

    __slots__ = ("nursery", "child")

    def __init__(self, nursery: Any) -> None:
        self.nursery = nursery
        self.child: TaskState | None = None


_START: contextvars.ContextVar[_StartBox | None] = contextvars.ContextVar(
    "raceway_trio_start", default=None
)


def run_id(runner: Any) -> str:
    """A process-unique id for one ``trio.run`` (the loop id of its tasks)."""
    rid = _run_ids.get(runner)
    if rid is None:
        rid = _run_ids[runner] = f"{_PREFIX}/trio-{next(_run_numbers)}"
    return rid


def _children(owner: Any) -> list[TaskState]:
    return owner.__dict__.setdefault("_rw_children", [])  # type: ignore[no-any-return]


class _StepInstrument:
    """trio instrument: a task step is a segment; a task's exit freezes its clock."""

    def before_task_step(self, task: Any) -> None:
        state = _trio_states.get(task)
        if state is not None:
            rec.new_segment(state)

    def task_exited(self, task: Any) -> None:
        state = _trio_states.pop(task, None)
        if state is not None and state.done_vc is None:
            rec.finish(state)


_INSTRUMENT: Any = None


def _make_instrument() -> Any:
    import trio

    class StepInstrument(_StepInstrument, trio.abc.Instrument):
        pass

    return StepInstrument()


def _spawn_impl_wrapper(orig: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(orig)
    def spawn_impl(
        self: Any, async_fn: Any, args: Any, nursery: Any, name: Any, *a: Any, **kw: Any
    ) -> Any:
        if self not in _runners:
            _runners.add(self)
            self.instruments.add_instrument(_INSTRUMENT)
        if kw.get("system_task"):
            return orig(self, async_fn, args, nursery, name, *a, **kw)
        kind = KIND.get() or "trio"
        label = str(name) if name is not None else aio.callable_name(async_fn)
        child = rec.fork(kind, label, run_id(self))
        box = _START.get()
        target = nursery
        if box is not None and box.child is None:
            box.child = child
            target = box.nursery
        ctx = kw.get("context")
        if ctx is not None:
            ctx.run(CURRENT.set, child)
            task = orig(self, async_fn, args, nursery, name, *a, **kw)
        else:
            tokens = (CURRENT.set(child), _START.set(None), KIND.set(None))
            try:
                task = orig(self, async_fn, args, nursery, name, *a, **kw)
            finally:
                KIND.reset(tokens[2])
                _START.reset(tokens[1])
                CURRENT.reset(tokens[0])
        _trio_states[task] = child
        if target is not None:
            _children(target).append(child)
        return task

    return spawn_impl


def _nursery_exit_wrapper(orig: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(orig)
    async def __aexit__(self: Any, *exc_info: Any) -> Any:
        try:
            return await orig(self, *exc_info)
        finally:
            nursery = getattr(self, "_nursery", None)
            if nursery is not None:
                aio.join_states(nursery.__dict__.pop("_rw_children", ()))

    return __aexit__


def _nursery_start_wrapper(orig: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(orig)
    async def start(self: Any, *args: Any, **kwargs: Any) -> Any:
        box = _StartBox(self)
        token = _START.set(box)
        try:
            value = await orig(self, *args, **kwargs)
        finally:
            _START.reset(token)
        if box.child is not None:
            rec.acquire(box.child, "trio.Nursery.start")
        return value

    return start


def _started_wrapper(orig: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(orig)
    def started(self: Any, *args: Any, **kwargs: Any) -> Any:
        state = CURRENT.get()
        if state is not None:
            rec.release(state, "trio.TaskStatus")  # keyed on the started task itself
        return orig(self, *args, **kwargs)

    return started


#: set while an outer to_thread wrapper (anyio's) awaits the inner one (trio's): fork once
_IN_THREAD_CALL: contextvars.ContextVar[bool] = contextvars.ContextVar(
    "raceway_thread_call", default=False
)


def _to_thread_wrapper(orig: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(orig)
    async def run_sync(func: Any, *args: Any, **kwargs: Any) -> Any:
        if _IN_THREAD_CALL.get() or getattr(func, "_raceway_child", None) is not None:
            return await orig(func, *args, **kwargs)
        child = rec.fork("thread", aio.callable_name(func), None)
        token = _IN_THREAD_CALL.set(True)
        try:
            return await orig(aio.run_as(child, func), *args, **kwargs)
        finally:
            _IN_THREAD_CALL.reset(token)
            aio.join_state(child)

    return run_sync


def _run_sync_soon_wrapper(orig: Callable[..., Any], context: Any) -> Callable[..., Any]:
    """A callback a thread hands to a trio run is a task forked by that thread at the call.

    trio runs it in a system task whose context is the one ``trio.run`` was called in: without
    this it would act as that task, unordered with what the calling thread did before.
    Callbacks of trio itself (to_thread/from_thread plumbing, whose sender waits for them)
    and ``idempotent`` ones (deduplicated by identity) are left alone.
    """

    @functools.wraps(orig)
    def run_sync_soon(self: Any, sync_fn: Any, *args: Any, idempotent: bool = False) -> Any:
        runner = _runner_of(self)
        if (
            runner is None
            or idempotent
            or getattr(context, "runner", None) is runner  # from the run's own thread
            or getattr(sync_fn, "_raceway_child", None) is not None
            or str(getattr(sync_fn, "__module__", None) or "").startswith("trio.")
        ):
            return orig(self, sync_fn, *args, idempotent=idempotent)
        child = rec.fork("callback", aio.callable_name(sync_fn), run_id(runner))
        return orig(self, aio.run_as(child, sync_fn), *args, idempotent=idempotent)

    return run_sync_soon


def _runner_of(token: Any) -> Any:
    try:
        runners = list(_runners)
    except RuntimeError:  # the run's thread registered a runner meanwhile
        return None
    for runner in runners:
        if getattr(runner, "trio_token", None) is token:
            return runner
    return None


def _kind_wrapper(orig: Callable[..., Any], kind: str) -> Callable[..., Any]:
    """Tasks spawned inside ``orig`` (sync or async) get ``kind``."""
    if inspect.iscoroutinefunction(orig):

        @functools.wraps(orig)
        async def awrapper(*args: Any, **kwargs: Any) -> Any:
            token = KIND.set(kind)
            try:
                return await orig(*args, **kwargs)
            finally:
                KIND.reset(token)

        return awrapper

    @functools.wraps(orig)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        token = KIND.set(kind)
        try:
            result = orig(*args, **kwargs)
        finally:
            KIND.reset(token)
        if inspect.iscoroutine(result):  # a decorated async method: spawns when awaited
            return _with_kind(result, kind)
        return result

    return wrapper


async def _with_kind(coro: Any, kind: str) -> Any:
    token = KIND.set(kind)
    try:
        return await coro
    finally:
        KIND.reset(token)


def _patch_methods(
    p: Patcher, cls: type, rel: tuple[str, ...], acq: tuple[str, ...], name: str, key: Any = None
) -> None:
    d = vars(cls)
    for meth in rel:
        if meth in d:
            p.patch(cls, meth, release_before(d[meth], name, key))
    for meth in acq:
        if meth in d:
            p.patch(cls, meth, acquire_after(d[meth], name, key))


def _state_key(obj: Any) -> Any:
    return obj._state


def _install_trio(p: Patcher) -> None:
    global _INSTRUMENT
    import trio
    import trio._channel as channel
    import trio._core._run as run
    import trio._sync as sync

    _INSTRUMENT = _make_instrument()
    p.patch(run.Runner, "spawn_impl", _spawn_impl_wrapper(vars(run.Runner)["spawn_impl"]))
    p.patch(
        run.NurseryManager,
        "__aexit__",
        _nursery_exit_wrapper(vars(run.NurseryManager)["__aexit__"]),
    )
    p.patch(run.Nursery, "start", _nursery_start_wrapper(vars(run.Nursery)["start"]))
    p.patch(run._TaskStatus, "started", _started_wrapper(vars(run._TaskStatus)["started"]))
    p.patch(trio.to_thread, "run_sync", _to_thread_wrapper(trio.to_thread.run_sync))
    token = trio.lowlevel.TrioToken
    p.patch(
        token,
        "run_sync_soon",
        _run_sync_soon_wrapper(vars(token)["run_sync_soon"], run.GLOBAL_RUN_CONTEXT),
    )
    _patch_methods(p, sync.Event, ("set",), ("wait",), "trio.Event")
    p.patch(sync.Event, "is_set", acquire_if_true(vars(sync.Event)["is_set"], "trio.Event"))
    _patch_methods(p, sync._LockImpl, ("release",), ("acquire", "acquire_nowait"), "trio.Lock")
    _patch_methods(p, sync.Semaphore, ("release",), ("acquire", "acquire_nowait"), "trio.Semaphore")
    _patch_methods(
        p,
        sync.CapacityLimiter,
        ("release_on_behalf_of",),
        ("acquire_on_behalf_of", "acquire_on_behalf_of_nowait"),
        "trio.CapacityLimiter",
    )
    _patch_methods(p, sync.Condition, ("notify", "notify_all"), ("wait",), "trio.Condition")
    _patch_methods(
        p, channel.MemorySendChannel, ("send", "send_nowait"), (), "trio.MemoryChannel", _state_key
    )
    _patch_methods(
        p,
        channel.MemoryReceiveChannel,
        (),
        ("receive", "receive_nowait"),
        "trio.MemoryChannel",
        _state_key,
    )


def _anyio_asyncio_group(p: Patcher, tg: type) -> None:
    d = vars(tg)
    spawn = d.get("_spawn")
    if spawn is not None:

        @functools.wraps(spawn)
        def _spawn(self: Any, *args: Any, **kwargs: Any) -> Any:
            token = KIND.set("anyio")
            try:
                result = spawn(self, *args, **kwargs)
            finally:
                KIND.reset(token)
            state = aio.last_created()
            if state is not None:
                _children(self).append(state)
            return result

        p.patch(tg, "_spawn", _spawn)
    orig_exit = d["__aexit__"]

    @functools.wraps(orig_exit)
    async def __aexit__(self: Any, *exc_info: Any) -> Any:
        try:
            return await orig_exit(self, *exc_info)
        finally:
            aio.join_states(self.__dict__.pop("_rw_children", ()))

    p.patch(tg, "__aexit__", __aexit__)


def _anyio_to_thread(p: Patcher, module: Any) -> None:
    p.patch(module, "run_sync", _to_thread_wrapper(module.run_sync))


def _anyio_synchronization(p: Patcher, module: Any) -> None:
    _patch_methods(p, module.Condition, ("notify", "notify_all"), ("wait",), "anyio.Condition")


def _anyio_memory(p: Patcher, module: Any) -> None:
    _patch_methods(
        p,
        module.MemoryObjectSendStream,
        ("send", "send_nowait"),
        (),
        "anyio.MemoryObjectStream",
        _state_key,
    )
    _patch_methods(
        p,
        module.MemoryObjectReceiveStream,
        (),
        ("receive", "receive_nowait"),
        "anyio.MemoryObjectStream",
        _state_key,
    )


def _anyio_asyncio_backend(p: Patcher, backend: Any) -> None:
    # anyio's own loop callbacks (never those that run user code, like from_thread's)
    plumbing = (
        ("TaskGroup", "_spawn"),
        ("WorkerThread", "_report_result"),
        ("CancelScope", "_deliver_cancellation"),
        ("CancelScope", "_timeout"),
    )
    aio.internal_callbacks(
        *[vars(getattr(backend, c)).get(m) for c, m in plumbing if hasattr(backend, c)]
    )
    _anyio_asyncio_group(p, backend.TaskGroup)
    for cls_name, lock_type in (("Lock", "anyio.Lock"), ("Semaphore", "anyio.Semaphore")):
        cls = getattr(backend, cls_name, None)
        if cls is not None:
            _patch_methods(p, cls, ("release",), ("acquire", "acquire_nowait"), lock_type)
    limiter = getattr(backend, "CapacityLimiter", None)
    if limiter is not None:
        _patch_methods(
            p,
            limiter,
            ("release_on_behalf_of",),
            ("acquire_on_behalf_of", "acquire_on_behalf_of_nowait"),
            "anyio.CapacityLimiter",
        )


def _anyio_trio_backend(p: Patcher, backend: Any) -> None:
    tg = backend.TaskGroup
    for meth in ("start_soon", "create_task", "start"):
        if meth in vars(tg):
            p.patch(tg, meth, _kind_wrapper(vars(tg)[meth], "anyio"))


#: module -> its patches; each runs when the module is imported (at install if it already is)
_PARTS: dict[str, Callable[[Patcher, Any], None]] = {
    "trio": lambda p, _module: _install_trio(p),
    "anyio.to_thread": _anyio_to_thread,
    "anyio._core._synchronization": _anyio_synchronization,
    "anyio.streams.memory": _anyio_memory,
    "anyio._backends._asyncio": _anyio_asyncio_backend,
    "anyio._backends._trio": _anyio_trio_backend,
}


# --------------------------------------------------------------------------- install

_patcher: Patcher | None = None
_watch: ImportWatch | None = None


def is_installed() -> bool:
    """True between :func:`install` and :func:`uninstall`."""
    return _patcher is not None


def deferred() -> list[str]:
    """Modules whose patches wait for their first import."""
    return _watch.pending() if _watch is not None else []


def install() -> None:
    """Patch trio and anyio (idempotent; asyncio itself is :mod:`.aio`).

    Modules already imported are patched now, the others right after their first import (an
    import hook): a session that never imports trio or anyio does not pay for importing them.
    """
    global _patcher, _watch
    if _patcher is not None:
        return
    p = _patcher = Patcher()

    def part(patch: Callable[[Patcher, Any], None]) -> Callable[[ModuleType], None]:
        def run(module: ModuleType) -> None:
            if _patcher is p:  # an import racing uninstall() patches nothing
                patch(p, module)

        return run

    try:
        _watch = when_imported({name: part(patch) for name, patch in _PARTS.items()})
    except BaseException:
        _patcher = None
        p.restore()
        raise


def uninstall() -> None:
    """Restore every patched attribute, drop the import hook, unhook live trio runs."""
    global _patcher, _watch
    p, _patcher = _patcher, None
    watch, _watch = _watch, None
    if watch is not None:
        watch.remove()
    if p is None:
        return
    p.restore()
    for runner in list(_runners):
        try:
            runner.instruments.remove_instrument(_INSTRUMENT)
        except (KeyError, ValueError):
            pass
    _runners.clear()
