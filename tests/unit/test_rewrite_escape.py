"""Escape analysis: accesses of a container no other task can reach yet are left native.

Each snippet marks its lines: ``# P`` an access of a private container (must not be recorded),
``# R`` an access that must be recorded (the container escaped, or may have). Every snippet
also runs plain, and must behave the same rewritten.
"""

from __future__ import annotations

import ast
import textwrap
import uuid
from typing import Any

import pytest
from raceway_sdk import _recorder
from raceway_sdk.instrument import rewrite
from raceway_sdk.testing import CollectingSink

PRELUDE = """\
from raceway_sdk import _recorder as _rec
import contextlib
G = []
def tick():  # a new epoch: a later access of the same location is not a same-epoch repeat
    _rec.release(object(), "tick")
def publish(x):
    G.append(x)
    return x
"""

SNIPPETS: dict[str, str] = {
    "built_then_returned": """
        def run(item=3):
            data = [(item * 7 + k) % 11 for k in range(30)]
            data.sort()  # P
            text = ",".join(str(x) for x in data[::10])  # P
            total = sum(x * x for x in data)  # P
            return total, text, len(data), data
    """,
    "escapes_through_a_call": """
        def run():
            n = [1, 2]
            n.append(3)  # P
            publish(n)
            n.append(4)  # R
            return n
    """,
    "escapes_through_a_store_and_an_alias": """
        class O: pass
        def run():
            o = O()
            n = {"a": 1}
            m = {}
            n["b"] = 2  # P
            o.n = n
            n["c"] = 3  # R
            m["x"] = 1  # P
            alias = m
            m["y"] = 2  # R
            return alias, o.n
    """,
    "escape_later_in_the_same_statement": """
        def run():
            n = [3, 1, 2]
            return (sorted(n), n, n.count(1))  # R
    """,
    "argument_order": """
        def run():
            n = {}
            n["k"] = publish(n)  # R
            d = {}
            d[len(d)] = 1  # P
            return n, d
    """,
    "captured_by_nested_scopes_never_private": """
        def run():
            n = []
            f = lambda: n
            n.append(1)  # R
            m = []
            def g():
                return m
            m.append(2)  # R
            k = []
            [k for _ in range(1)]
            k.append(3)  # R
            return f(), g()
    """,
    "loop_escape_reaches_the_next_iteration": """
        def run():
            n = []
            for i in range(3):
                n.append(i)  # R
                tick()
                if i == 1:
                    publish(n)
            return n
    """,
    "continue_carries_the_escape": """
        def run():
            n = []
            for i in range(3):
                n.append(i)  # R
                tick()
                if i == 0:
                    publish(n)
                    continue
                n = []
            return n
    """,
    "loop_private_when_the_body_leaves_it_alone": """
        def run():
            n = []
            for i in range(5):
                n.append(i)  # P
            out = 0
            for x in n:  # P
                out += x
            return out, n
    """,
    "builtin_constructors": """
        def run(items=(3, 1, 2)):
            seen = set()
            index = dict(a=1)
            out = list(items)
            seen.add(1)  # P
            index["b"] = 2  # P
            out.sort()  # P
            return sorted(seen), index, out
    """,
    "shadowed_constructor_is_not_fresh": """
        def set():
            return publish({1})
        def run():
            s = set()
            s.add(2)  # R
            return s
    """,
    "escapes_by_yield_star_bound_method_and_self_store": """
        def gen():
            buf = []
            buf.append(1)  # P
            yield buf
            buf.append(2)  # R
        def run():
            out = list(gen())
            a = [3, 1]
            print(*a, file=None) if False else None
            a.sort()  # R
            b = [2, 1]
            push = b.append
            push(0)
            b.sort()  # R
            c = [1]
            c[0] = c
            c.append(1)  # R
            d = [1, 2]
            e = sorted(d, key=d.index)
            d.append(3)  # R
            return out, a, len(b), len(c), e, d
    """,
    "fresh_each_iteration": """
        def run():
            keep = []
            for i in range(3):
                row = {}
                row["i"] = i  # P
                keep.append(row)
            return keep
    """,
    "while_loop": """
        def run():
            n = []
            while len(n) < 3:  # R
                n.append(len(n))  # R
                tick()
                publish(n)
            return n
    """,
    "branches_meet": """
        def run(flag=True):
            n = []
            if flag:
                publish(n)
            else:
                n.append(0)  # P
            n.append(1)  # R
            m = []
            if flag:
                m.append(1)  # P
            m.append(2)  # P
            return n, m
    """,
    "try_finally_continue": """
        def run():
            n = []
            for i in range(2):
                n.append(i)  # R
                tick()
                try:
                    continue
                finally:
                    publish(n)
            return n
    """,
    "handler_sees_a_partial_body": """
        def run():
            n = []
            try:
                publish(n)
                raise ValueError
            except ValueError:
                n.append(1)  # R
            return n
    """,
    "suppressed_exception_in_with": """
        def run():
            n = []
            with contextlib.suppress(ValueError):
                publish(n)
                raise ValueError
            n.append(1)  # R
            return n
    """,
    "generator_keeps_an_iterator": """
        def run():
            n = [1, 2, 3]
            g = (x for x in n)
            n.append(4)  # R
            return list(g)
    """,
    "dict_view_keeps_the_dict": """
        def run():
            n = {"a": 1}
            v = n.keys()  # P
            n["b"] = 2  # R
            return sorted(v)
    """,
    "locals_disables_the_analysis": """
        def run():
            n = []
            n.append(1)  # R
            return locals()["n"]
    """,
    "shadowed_builtin_is_a_call": """
        def len(x):
            publish(x)
            return 0
        def run():
            n = []
            len(n)
            n.append(1)  # R
            return n
    """,
    "global_and_parameters_never_private": """
        def run(p=None):
            global G
            G = []
            G.append(1)  # R
            p = p if p is not None else {}
            p["k"] = 1  # R
            return G, p
    """,
    "augmented_and_del_and_membership": """
        def run():
            n = {"a": 1}
            n["a"] += 1  # P
            n["a"] += len("xy")  # P
            found = "a" in n  # P
            del n["a"]  # P
            publish(n)
            n["b"] = 1  # R
            return found, n
    """,
}


def _marks(src: str) -> tuple[set[int], set[int]]:
    private, recorded = set(), set()
    for i, line in enumerate(src.splitlines(), 1):
        if line.rstrip().endswith("# P"):
            private.add(i)
        elif line.rstrip().endswith("# R"):
            recorded.add(i)
    return private, recorded


def _run(code: Any) -> Any:
    ns: dict[str, Any] = {"__name__": "snippet", "__file__": "/snippets/escape.py"}
    exec(code, ns)
    return repr(ns["run"]())


def _recorded_lines(src: str) -> tuple[Any, set[int]]:
    sink = CollectingSink()
    prev = _recorder.set_sink(sink)
    _recorder.set_trace(uuid.uuid4().int)
    try:
        result = _run(rewrite.rewrite_source(src, "/snippets/escape.py"))
        _recorder.flush()
    finally:
        _recorder.set_sink(prev)
    lines = {int(e.data["location"].rpartition(":")[2]) for e in sink.accesses()}
    return result, lines


@pytest.mark.parametrize("name", sorted(SNIPPETS))
def test_private_accesses_are_native_and_escaped_ones_recorded(name: str) -> None:
    src = PRELUDE + textwrap.dedent(SNIPPETS[name]).lstrip("\n")
    private, recorded = _marks(src)
    assert private or recorded
    result, lines = _recorded_lines(src)
    assert result == _run(compile(src, "/snippets/escape.py", "exec", dont_inherit=True))
    assert not lines & private, f"private accesses recorded on lines {sorted(lines & private)}"
    assert recorded <= lines, f"escaped accesses not recorded on lines {sorted(recorded - lines)}"


def test_every_recorded_mark_is_recorded_without_the_analysis(monkeypatch) -> None:
    # the marks are meaningful: with the analysis off, the private lines are recorded too
    from raceway_sdk.instrument import _escape

    monkeypatch.setattr(_escape, "private_accesses", lambda *a: {})
    src = PRELUDE + textwrap.dedent(SNIPPETS["built_then_returned"]).lstrip("\n")
    private, _ = _marks(src)
    _, lines = _recorded_lines(src)
    assert private <= lines


RACE_SRC = PRELUDE + textwrap.dedent(
    """
    import threading
    SHARED = {}
    LOCK = threading.Lock()
    def worker(i, locked):
        rows = [i * k for k in range(10)]
        rows.sort()
        if locked:
            with LOCK:
                SHARED[i % 2] = rows
        else:
            SHARED[i % 2] = rows
    def run(locked=False):
        ts = [threading.Thread(target=worker, args=(i, locked)) for i in range(4)]
        for t in ts:
            t.start()
        for t in ts:
            t.join()
        return sorted(SHARED)
    """
)


@pytest.mark.parametrize("locked", [False, True])
def test_publication_of_private_containers_is_what_races(locked: bool) -> None:
    from raceway_sdk.instrument import threads

    from raceway_server.engine.core import Engine

    ns: dict[str, Any] = {"__name__": "snippet", "__file__": "/snippets/race.py"}
    exec(rewrite.rewrite_source(RACE_SRC, "/snippets/race.py"), ns)
    engine = Engine()
    prev = _recorder.set_sink(engine)
    trace = uuid.uuid4().int
    _recorder.set_trace(trace)
    threads.install()
    try:
        assert ns["run"](locked) == [0, 1]
        _recorder.flush()
    finally:
        threads.uninstall()
        _recorder.set_sink(prev)
    variables = {r.variable for r in engine.races(trace)}
    print(variables)
    if locked:
        assert not variables
    else:  # the unlocked stores race; the rows each worker built and sorted never do
        assert variables and all("list" not in v for v in variables), variables


def _nested_loops(depth: int, escape: bool) -> str:
    lines, ind = ["def run():", "    out = []"], "    "
    for d in range(depth):
        lines.append(f"{ind}y{d} = []")
        lines.append(f"{ind}for i{d} in range(1):")
        ind += "    "
        lines.append(f"{ind}y{d}.append(i{d})")
        if escape:
            lines.append(f"{ind}out.append(y{d})")
    return PRELUDE + "\n".join([*lines, "    return out", ""])


def test_nested_loops_stay_cheap_and_a_runaway_fixpoint_gives_up() -> None:
    from raceway_sdk.instrument import _escape

    def analysed(src: str) -> dict[int, Any]:
        tree = ast.parse(src)
        func = next(n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == "run")
        return _escape.private_accesses(func, set(), set())

    # private containers in 30 nested loops: one pass per loop, every append left native
    assert len(analysed(_nested_loops(30, escape=False))) == 30
    # each level's list escapes in its body: every level's fixpoint reruns the inner ones;
    # past the budget the function gets no private accesses at all (everything recorded)
    assert analysed(_nested_loops(30, escape=True)) == {}
    src = _nested_loops(18, escape=True)  # CPython compiles at most 20 nested blocks
    assert analysed(src) == {}
    result, lines = _recorded_lines(src)
    assert result == _run(compile(src, "/snippets/escape.py", "exec", dont_inherit=True))
    assert len(lines) >= 18
