"""Property: the engine's racing site pairs equal the all-pairs oracle's, in any arrival order."""

from __future__ import annotations

import random

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from oracle import racing_pairs, summary
from tracebuilder import TraceBuilder, interleave

from raceway_server.engine import Engine

SITES = ["a.py:1", "a.py:2", "b.py:3", "b.py:4"]
TYPES = ["Read", "Write", "Read", "Write", "AtomicRead", "AtomicWrite", "AtomicRMW"]
LOCKS = ["L0", "L1", "L2"]
QUEUES = ["Q0", "Q1"]

op = st.tuples(
    st.sampled_from(
        ["fork", "join", "acq", "rel", "put", "get", "acc", "acc", "acc", "acc", "await", "rmw"]
    ),
    st.integers(0, 63),
    st.integers(0, 63),
    st.integers(0, 63),
)


def build(ops: list[tuple[str, int, int, int]], loops: bool) -> TraceBuilder:
    """Run a random program; ``loops``: tasks live on one of two event loops or are threads."""
    tb = TraceBuilder()
    root = tb.main("p1", loop="L-a" if loops else None)
    live = [root]
    started = [root]
    for name, a, b, c in ops:
        t = live[a % len(live)]
        if name == "fork":
            if len(started) >= 7:
                continue
            loop = None
            if loops:
                loop = [None, "L-a", "L-a", "L-b"][b % 4]
            child = tb.fork(t, f"w{len(started)}", "asyncio" if loop else "thread", loop)
            live.append(child)
            started.append(child)
        elif name == "join":
            others = [x for x in live if x != t]
            if others:
                child = others[b % len(others)]
                tb.join(t, child)
                live.remove(child)
        elif name == "acq":
            tb.acquire(t, LOCKS[b % len(LOCKS)])
        elif name == "rel":
            tb.release(t, LOCKS[b % len(LOCKS)])
        elif name == "put":
            tb.release(t, QUEUES[b % len(QUEUES)], "queue.Queue")
        elif name == "get":
            tb.acquire(t, QUEUES[b % len(QUEUES)], "queue.Queue")
        elif name == "await":
            if tb.loops[t] is not None:
                tb.await_(t)
        elif name == "rmw":  # read, maybe suspend, write back: the lost-update shape
            var = f"v{b % 2}"
            tb.access(t, var, TYPES[c % 2 * 4], SITES[b % len(SITES)])
            if c % 3 and tb.loops[t] is not None:
                tb.await_(t)
            tb.access(t, var, TYPES[1 + c % 3 * 2 if c % 3 < 2 else 6], SITES[(b + 1) % len(SITES)])
        else:
            tb.access(t, f"v{b % 3}", TYPES[c % len(TYPES)], SITES[(b // 3 + c) % len(SITES)])
    return tb


def check(tb: TraceBuilder, seed: int) -> None:
    expected = set(racing_pairs(tb.events))
    orders = [tb.events, interleave(tb.events, random.Random(seed))]
    for order in orders:
        engine = Engine()
        engine.add_batch(order)
        assert summary(engine.races()) == expected
    # one event at a time, shuffled across tasks, reading results in between
    engine = Engine()
    for e in interleave(tb.events, random.Random(seed + 1)):
        engine.add(e)
    assert summary(engine.races()) == expected


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(op, min_size=5, max_size=60), st.integers(0, 2**32))
def test_threads_match_oracle(ops: list[tuple[str, int, int, int]], seed: int) -> None:
    check(build([("fork", 0, 0, 0)] * 3 + ops, loops=False), seed)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(op, min_size=5, max_size=60), st.integers(0, 2**32))
def test_event_loops_match_oracle(ops: list[tuple[str, int, int, int]], seed: int) -> None:
    check(build([("fork", 0, 1, 0), ("fork", 0, 2, 0), ("fork", 0, 3, 0)] + ops, loops=True), seed)


def test_shuffles_exercise_the_rebuild_path() -> None:
    """The out-of-order path is really taken by shuffled inputs (the property covers it)."""
    rng = random.Random(7)
    rebuilds = 0
    for _ in range(30):
        ops = [
            (
                rng.choice(["acq", "rel", "acc", "acc", "fork"]),
                rng.randrange(64),
                rng.randrange(64),
                rng.randrange(64),
            )
            for _ in range(40)
        ]
        tb = build([("fork", 0, 0, 0)] * 3 + ops, loops=False)
        engine = Engine()
        engine.add_batch(interleave(tb.events, rng))
        rebuilds += engine.stats()["rebuilds"]
        assert summary(engine.races()) == set(racing_pairs(tb.events))
    assert rebuilds > 0


NAMES = [
    "fork",
    "join",
    "acq",
    "rel",
    "put",
    "get",
    "acc",
    "acc",
    "acc",
    "acc",
    "await",
    "rmw",
    "rmw",
]


@settings(max_examples=200, deadline=None)
@given(st.integers(0, 2**64), st.booleans())
def test_seeded_programs_match_oracle(seed: int, loops: bool) -> None:
    """Seed-driven programs: less shrinkable, more diverse than the op lists above."""
    rng = random.Random(seed)
    ops = [
        (rng.choice(NAMES), rng.randrange(64), rng.randrange(64), rng.randrange(64))
        for _ in range(rng.randrange(5, 60))
    ]
    pre = [("fork", 0, 1, 0), ("fork", 0, 2, 0), ("fork", 0, 3, 0)]
    check(build(pre + ops, loops), rng.randrange(2**32))
