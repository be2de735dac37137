"""Vector clocks over logical task ids.

A vector clock is a ``dict[str, int]`` that is never mutated once published: every operation
returns a new dict, so events and task states can share one by reference.
"""

from __future__ import annotations

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
