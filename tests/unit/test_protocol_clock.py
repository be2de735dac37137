"""Vector clock helpers and the reference happens-before state machine (HBTracker)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from raceway_sdk.protocol.clock import HBTracker, happened_before, vc_join, vc_leq, vc_tick


def concurrent(a_task: str, a_vc: dict[str, int], b_task: str, b_vc: dict[str, int]) -> bool:
    return not happened_before(a_task, a_vc, b_vc) and not happened_before(b_task, b_vc, a_vc)


# ------------------------------------------------------------------------------ helpers


def test_vc_helpers_are_copy_on_write() -> None:
    a = {"x": 1, "y": 2}
    b = {"y": 5, "z": 1}
    assert vc_join(a, b) == {"x": 1, "y": 5, "z": 1} and a == {"x": 1, "y": 2}
    assert vc_join(a, {"x": 1}) is a  # dominated: no copy
    assert vc_tick(a, "x") == {"x": 2, "y": 2} and a["x"] == 1
    assert vc_tick({}, "n") == {"n": 1}
    assert vc_leq({"x": 1}, a) and not vc_leq(b, a) and vc_leq({}, {})
    assert happened_before("x", {"x": 1}, {"x": 1}) and not happened_before("x", {"x": 2}, {"x": 1})


# ------------------------------------------------------------------------------ HBTracker rules


def test_unseen_task_starts_as_a_root() -> None:
    hb = HBTracker()
    assert hb.vc("main") == {"main": 1}
    assert hb.tasks == {"main": {"main": 1}}


def test_tick() -> None:
    hb = HBTracker()
    before = hb.vc("t")
    assert hb.tick("t") == {"t": 2}
    assert before == {"t": 1}  # published clocks are never mutated
    assert hb.vc("t") == {"t": 2}


def test_fork_child_inherits_parent_and_parent_ticks() -> None:
    hb = HBTracker()
    hb.tick("main")  # main at 2
    before_fork = hb.vc("main")
    child = hb.fork("main", "worker")
    assert child == {"main": 2, "worker": 1}
    assert hb.vc("main") == {"main": 3}
    assert before_fork == {"main": 2}
    # parent's work before the fork happens before the child's; after the fork it is concurrent
    assert happened_before("main", before_fork, child)
    assert concurrent("main", hb.vc("main"), "worker", child)


def test_fork_of_an_existing_task_is_rejected() -> None:
    hb = HBTracker()
    hb.fork("main", "a")
    with pytest.raises(ValueError, match="already exists"):
        hb.fork("main", "a")
    with pytest.raises(ValueError, match="already exists"):
        hb.fork("a", "main")


def test_join_orders_the_child_before_the_joiner() -> None:
    hb = HBTracker()
    hb.fork("main", "a")
    a_work = hb.tick("a")
    a_final = hb.end("a")
    assert a_final == a_work == {"main": 1, "a": 2}
    joined = hb.join("main", "a")
    assert joined == {"main": 3, "a": 2}  # join(main{2}, a) then tick
    assert happened_before("a", a_work, joined)


def test_join_of_a_running_child_uses_its_current_clock() -> None:
    hb = HBTracker()
    hb.fork("main", "a")
    a_now = hb.vc("a")
    hb.join("main", "a")
    later = hb.tick("a")
    assert happened_before("a", a_now, hb.vc("main"))
    assert not happened_before("a", later, hb.vc("main"))


def test_join_of_an_unknown_task_is_an_error() -> None:
    hb = HBTracker()
    with pytest.raises(KeyError, match="unknown task 'ghost'"):
        hb.join("main", "ghost")


def test_release_acquire_orders_the_critical_sections() -> None:
    hb = HBTracker()
    hb.fork("main", "a")
    hb.fork("main", "b")
    a_cs = hb.vc("a")  # a's access inside the critical section
    after_release = hb.release("a", "lock")
    assert after_release == {"main": 1, "a": 2}
    assert hb.sync_vc("lock") == a_cs
    b_cs = hb.acquire("b", "lock")
    assert b_cs == {"main": 2, "b": 1, "a": 1}
    assert happened_before("a", a_cs, b_cs)
    # a's work after its release is concurrent with b's critical section
    assert concurrent("a", hb.vc("a"), "b", b_cs)


def test_acquire_without_a_release_changes_nothing() -> None:
    hb = HBTracker()
    before = hb.vc("t")
    assert hb.acquire("t", "never-released") is before
    assert hb.sync_vc("never-released") == {}


def test_sync_object_accumulates_all_releasers() -> None:
    hb = HBTracker()
    hb.fork("main", "a")
    hb.fork("main", "b")
    a_vc, b_vc = hb.vc("a"), hb.vc("b")
    hb.release("a", "q")  # e.g. two producers put into one queue
    hb.release("b", "q")
    got = hb.acquire("c", "q")
    assert happened_before("a", a_vc, got) and happened_before("b", b_vc, got)


def test_lock_released_by_another_task_still_carries_its_releaser() -> None:
    hb = HBTracker()
    hb.fork("main", "a")
    hb.fork("main", "b")
    hb.acquire("a", "sem")
    b_work = hb.vc("b")
    hb.release("b", "sem")  # released by b, not by the acquirer a
    a_next = hb.acquire("a", "sem")
    assert happened_before("b", b_work, a_next)


def test_end_is_idempotent_and_freezes_the_task() -> None:
    hb = HBTracker()
    hb.fork("main", "a")
    final = hb.end("a")
    assert hb.end("a") == final and hb.ended("a") and not hb.ended("main")
    for op in (lambda: hb.tick("a"), lambda: hb.release("a", "s"), lambda: hb.acquire("a", "s")):
        with pytest.raises(ValueError, match="has ended"):
            op()
    with pytest.raises(ValueError, match="has ended"):
        hb.fork("a", "b")
    assert hb.join("main", "a")["a"] == final["a"]


def test_transitive_order_through_a_chain_of_tasks() -> None:
    hb = HBTracker()
    hb.fork("main", "a")
    a_work = hb.vc("a")
    hb.release("a", "e1")  # a sets event 1
    hb.fork("main", "b")
    hb.acquire("b", "e1")
    hb.release("b", "e2")
    c_vc = hb.acquire("main", "e2")
    assert happened_before("a", a_work, c_vc)


# ------------------------------------------------------------------------------ properties


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["fork", "join", "rel", "acq", "tick"]),
                          st.integers(0, 4), st.integers(0, 4), st.integers(0, 2)), max_size=40))  # fmt: skip
def test_clocks_only_grow_and_own_component_is_strictly_monotone(ops: list) -> None:
    hb = HBTracker()
    tasks = ["t0"]
    hb.vc("t0")
    history: dict[str, list[dict[str, int]]] = {"t0": [hb.vc("t0")]}
    for op, i, j, s in ops:
        actor = tasks[i % len(tasks)]
        if op == "fork":
            child = f"t{len(tasks)}"
            tasks.append(child)
            history[child] = [hb.fork(actor, child)]
        elif op == "join":
            other = tasks[j % len(tasks)]
            if other == actor:
                continue
            hb.join(actor, other)
        elif op == "rel":
            hb.release(actor, f"s{s}")
        elif op == "acq":
            hb.acquire(actor, f"s{s}")
        else:
            hb.tick(actor)
        history[actor].append(hb.vc(actor))
    for task, clocks in history.items():
        for before, after in zip(clocks, clocks[1:], strict=False):
            assert vc_leq(before, after)
            assert before[task] <= after[task]
    for task in tasks:
        assert hb.vc(task)[task] >= 1
