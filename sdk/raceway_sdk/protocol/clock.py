"""Vector clocks over logical task ids.

A vector clock is a ``dict[str, int]`` that is never mutated once published: every operation
returns a new dict, so events and task states can share one by reference.
"""

from __future__ import annotations

from collections.abc import Hashable

VC = dict[str, int]


def vc_tick(vc: VC, task: str) -> VC:
    """Return ``vc`` with ``task``'s own component advanced by one."""
    new = dict(vc)
    new[task] = new.get(task, 0) + 1
    return new


def vc_join(a: VC, b: VC) -> VC:
    """Element-wise maximum of two clocks (a new dict; ``a`` is returned as is if it dominates)."""
    new: VC | None = None
    for comp, n in b.items():
        if n > a.get(comp, 0):
            if new is None:
                new = dict(a)
            new[comp] = n
    return a if new is None else new


def vc_leq(a: VC, b: VC) -> bool:
    """``a <= b`` component-wise."""
    for comp, n in a.items():
        if n > b.get(comp, 0):
            return False
    return True


def happened_before(a_task: str, a_vc: VC, b_vc: VC) -> bool:
    """Epoch test: the access of ``a_task`` stamped ``a_vc`` happened before one stamped ``b_vc``."""
    return a_vc.get(a_task, 0) <= b_vc.get(a_task, 0)


class HBTracker:
    """The reference happens-before state machine over logical task ids.

    Rules (docs/internals.md "Clocks"): a task seen for the first time starts at ``{task: 1}``;
    fork: ``child = parent + {child: 1}``, then the parent ticks; join: the joiner joins the
    child's final clock (its current one if it has not ended), then ticks; release(s):
    ``s = join(s, task)``, then the task ticks; acquire(s): ``task = join(task, s)``.
    Published clocks are never mutated (copy-on-write), so :meth:`vc` results can be kept.

    Sync ids are any hashable (e.g. ``("lock", lock_id)``). Not thread-safe by design: the owner
    serialises calls (the engine holds its own lock).
    """

    __slots__ = ("_tasks", "_syncs", "_ended")

    def __init__(self) -> None:
        self._tasks: dict[str, VC] = {}
        self._syncs: dict[Hashable, VC] = {}
        self._ended: set[str] = set()

    @property
    def tasks(self) -> dict[str, VC]:
        """Current (or final) clock of every task seen so far (a copy of the mapping)."""
        return dict(self._tasks)

    def _live(self, task: str) -> VC:
        vc = self._tasks.get(task)
        if vc is None:
            vc = self._tasks[task] = {task: 1}
        elif task in self._ended:
            raise ValueError(f"task {task!r} has ended; it cannot act any more")
        return vc

    def vc(self, task: str) -> VC:
        """The clock of ``task`` now (starting it as a root task if unseen)."""
        vc = self._tasks.get(task)
        if vc is None:
            vc = self._tasks[task] = {task: 1}
        return vc

    def tick(self, task: str) -> VC:
        """Advance ``task``'s own component; return its new clock."""
        vc = self._tasks[task] = vc_tick(self._live(task), task)
        return vc

    def fork(self, parent: str, child: str) -> VC:
        """Start ``child`` as a copy of ``parent``'s clock; the parent ticks. Returns the child's clock."""
        if child in self._tasks:
            raise ValueError(f"task {child!r} already exists; task ids must be unique")
        pvc = self._live(parent)
        cvc = dict(pvc)
        cvc[child] = 1
        self._tasks[child] = cvc
        self._tasks[parent] = vc_tick(pvc, parent)
        return cvc

    def join(self, parent: str, child: str) -> VC:
        """``parent`` waits for ``child`` (join/result/await): it joins the child's clock, then ticks."""
        cvc = self._tasks.get(child)
        if cvc is None:
            raise KeyError(f"cannot join unknown task {child!r}")
        joined = vc_join(self._live(parent), cvc)
        vc = self._tasks[parent] = vc_tick(joined, parent)
        return vc

    def release(self, task: str, sync_id: Hashable) -> VC:
        """Release-like operation on ``sync_id``: it stores the task's clock; the task ticks."""
        tvc = self._live(task)
        svc = self._syncs.get(sync_id)
        self._syncs[sync_id] = tvc if svc is None else vc_join(svc, tvc)
        vc = self._tasks[task] = vc_tick(tvc, task)
        return vc

    def acquire(self, task: str, sync_id: Hashable) -> VC:
        """Acquire-like operation on ``sync_id``: the task joins the clock stored in it (if any)."""
        tvc = self._live(task)
        svc = self._syncs.get(sync_id)
        if svc is None:
            return tvc
        vc = self._tasks[task] = vc_join(tvc, svc)
        return vc

    def sync_vc(self, sync_id: Hashable) -> VC:
        """Clock stored in a sync object (empty if it was never released)."""
        return self._syncs.get(sync_id, {})

    def end(self, task: str) -> VC:
        """Mark ``task`` finished and return its final clock (idempotent)."""
        vc = self.vc(task)
        self._ended.add(task)
        return vc

    def ended(self, task: str) -> bool:
        """Whether :meth:`end` was called for ``task``."""
        return task in self._ended
