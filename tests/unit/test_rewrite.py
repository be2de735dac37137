"""The access rewriter: semantics preserved, accesses recorded, import hook, cache, pytest."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import types
import uuid
from typing import Any

import pytest
from raceway_sdk import _recorder
from raceway_sdk.instrument import rewrite
from raceway_sdk.instrument.selection import Selection
from raceway_sdk.testing import CollectingSink

# --------------------------------------------------------------------------- harness

PRELUDE = textwrap.dedent(
    """
    LOG = []
    def t(x, tag=None):
        LOG.append(repr(x) if tag is None else tag)
        return x
    """
)


def _execute(code: Any) -> tuple[Any, ...]:
    module = types.ModuleType("snippet")
    module.__file__ = "/snippets/snippet.py"
    ns = vars(module)
    sys.modules["snippet"] = module  # dataclasses, pickle, enum look the module up
    try:
        exec(code, ns)
    finally:
        sys.modules.pop("snippet", None)
    try:
        outcome: tuple[Any, ...] = ("ok", repr(ns["run"]()))
    except Exception as exc:  # compared between the two runs
        outcome = ("raised", type(exc).__name__, str(exc))
    return (*outcome, list(ns["LOG"]))


def both(body: str) -> tuple[tuple[Any, ...], tuple[Any, ...], CollectingSink]:
    """Run ``body`` plain and rewritten (recording into a fresh sink)."""
    body = textwrap.dedent(body).lstrip("\n")
    future = ""
    if body.startswith("from __future__"):
        future, _, body = body.partition("\n")
        future += "\n"
    src = future + PRELUDE + body
    plain = _execute(compile(src, "/snippets/snippet.py", "exec", dont_inherit=True))
    sink = CollectingSink()
    prev = _recorder.set_sink(sink)
    _recorder.set_trace(uuid.uuid4().int)
    try:
        rewritten = _execute(rewrite.rewrite_source(src, "/snippets/snippet.py"))
    finally:
        _recorder.set_sink(prev)
    return plain, rewritten, sink


def accesses(sink: CollectingSink) -> list[tuple[str, str]]:
    return [(e.data["variable"], e.data["access_type"]) for e in sink.accesses()]


# --------------------------------------------------------------------------- semantics corpus

CORPUS: dict[str, str] = {
    "evaluation_order_store": """
        class O: pass
        def run():
            o, d = O(), {}
            t(o, "obj").x = t(1, "value")
            t(d, "dict")[t("k", "key")] = t(2, "v2")
            t(o, "o2").y = t(d, "d2")[t("k", "k2")]
            return o.x, o.y, d
    """,
    "augmented_order_and_iadd": """
        class O:
            def __init__(self): self.n = 1; self.l = [1]
        def run():
            o, d = O(), {"k": 10}
            t(o, "o").n += t(5, "five")
            t(d, "d")[t("k", "key")] *= t(3, "three")
            keep = o.l
            o.l += [2]            # __iadd__ mutates in place, then stores back
            o.n -= 1
            d["k"] //= 4
            return o.n, d, keep is o.l, o.l
    """,
    "exceptions_and_missing": """
        class O:
            def __init__(self): self.a = 1
        def run():
            o = O()
            out = []
            for f in (lambda: o.missing, lambda: {}["k"], lambda: [][3], lambda: setattr(o, "b", 1/0)):
                try:
                    f()
                except Exception as e:
                    out.append(type(e).__name__)
            try:
                t(o, "never").x = t(1/0, "boom")
            except ZeroDivisionError:
                out.append("value first")
            return out, hasattr(o, "x")
    """,
    "exception_propagates": """
        class O: pass
        def run():
            o = O()
            o.count += 1
    """,
    "descriptors_properties_getattr": """
        class D:
            def __get__(self, inst, owner): return ("desc", inst is not None)
            def __set__(self, inst, v): t(v, "desc-set")
        class O:
            d = D()
            def __init__(self): self._v = 2
            @property
            def v(self): return self._v * 10
            @v.setter
            def v(self, new): self._v = new
            def __getattr__(self, name): return "fallback:" + name
        class S:
            def __setattr__(self, name, value):
                t(name, "setattr")
                object.__setattr__(self, name, value)
        def run():
            o, s = O(), S()
            o.d = 5
            o.v = 7
            s.z = 1
            return o.d, o.v, o.nothing, s.z
    """,
    "slices": """
        class Grid:
            def __getitem__(self, key): return repr(key)
            def __setitem__(self, key, v): t((key, v), "grid-set")
            def __delitem__(self, key): t(key, "grid-del")
        def run():
            l = list(range(10))
            g = Grid()
            a = l[t(1, "lo"):t(5, "hi"):t(2, "step")]
            l[::3] = ["x"] * 4
            del l[1:3]
            g[1:2, ::3, 4] = 0
            del g[::2]
            return a, l, g[1:2, 3], g[...], l[-1], l[-2:]
    """,
    "targets_unpacking": """
        class O: pass
        def run():
            o, d = O(), {}
            a, (o.x, *o.rest), d["k"] = 1, (2, 3, 4), 5
            i = 0
            i, d[i] = 1, "at-new-i"
            d[i], i = "at-old-i", 2
            o.p = d["q"] = t([7], "shared")
            [o.first, o.second] = "ab"
            return a, o.x, o.rest, d, i, o.p is d["q"], o.first, o.second
    """,
    "walrus_and_comprehensions": """
        class O:
            def __init__(self): self.items = [3, 1, 2]; self.k = 2
        def run():
            o = O()
            if (n := len(o.items)) > 2:
                pass
            sq = [x * o.k for x in o.items if x != o.k]
            st = {x for x in o.items}
            dc = {x: o.k for x in o.items}
            gen = list(y for x in o.items for y in range(x))
            nested = [[o.k * x for x in range(y)] for y in o.items]
            found = [v for x in o.items if (v := x * o.k) > 2]
            return n, sq, sorted(st), dc, gen, nested, found, v
    """,
    "lambdas_and_defaults": """
        class O:
            def __init__(self): self.v = 3
        o = O()
        def run(dflt=o.v):
            f = lambda a, b=o.v: a + b + o.v
            o.v = 10
            return dflt, f(1), (lambda: o.v)()
    """,
    "class_bodies_and_mangling": """
        class Conf:
            limit = 3
        class A:
            size = Conf.limit * 2
            names = [n for n in ("a", "b")]
            def __init__(self):
                self.__secret = 42
                self.__dunder__ = 1
            def peek(self):
                return self.__secret, getattr(self, "_A__secret"), self.__dunder__
        class B(A):
            def peek(self):
                return super().peek() + (self._A__secret,)
        def run():
            return A.size, A.names, B().peek(), sorted(k for k in vars(A()) if "secret" in k)
    """,
    "async_functions": """
        import asyncio
        class O:
            def __init__(self): self.v = 0; self.log = []
        class CM:
            async def __aenter__(self): return self
            async def __aexit__(self, *a): return False
        async def agen(o):
            for i in range(3):
                o.v += i
                yield o.v
        async def value():
            await asyncio.sleep(0)
            return 5
        async def main():
            o = O()
            o.v = await value()
            o.log.append(await value())
            async with CM() as cm:
                cm.inner = o.v
            got = [x async for x in agen(o)]
            async for x in agen(o):
                o.log.append(x)
            return o.v, o.log, got, cm.inner
        def run():
            return asyncio.run(main())
    """,
    "generators": """
        class O:
            def __init__(self): self.got = []
        def g(o):
            o.x = yield 1
            o.got.append((yield 2))
            yield from range(2)
            return o.x
        def run():
            o = O()
            it = g(o)
            a = next(it); b = it.send("sent-x"); c = it.send("sent-2")
            rest = list(it)
            return a, b, c, rest, o.x, o.got
    """,
    "match_statement": """
        import enum
        class Color(enum.Enum):
            RED = 1
            BLUE = 2
        class P:
            __match_args__ = ("x", "y")
            def __init__(self, x, y): self.x, self.y = x, y
        def classify(v, o):
            match v:
                case Color.RED:
                    return "red"
                case P(x=0, y=yy) if yy > o.limit:
                    return "p-high", yy
                case P(xx, yy):
                    return "p", xx, yy
                case {"k": kv, **rest}:
                    return "map", kv, rest
                case [first, *others]:
                    return "seq", first, others
                case _:
                    return "other"
        class Lim:
            limit = 5
        def run():
            o = Lim()
            return [classify(v, o) for v in (Color.RED, P(0, 9), P(1, 2), {"k": 1, "z": 2}, [1, 2], 3.5)]
    """,
    "decorators": """
        import functools
        class Reg:
            def __init__(self): self.seen = []
            def deco(self, f):
                self.seen.append(f.__name__)
                return f
        reg = Reg()
        def wrap(f):
            @functools.wraps(f)
            def inner(*a): return ("wrapped", f(*a))
            return inner
        class O:
            @reg.deco
            def m(self): return 1
            @wrap
            def w(self): return 2
            @property
            def p(self): return 3
            @p.setter
            def p(self, v): t(v, "p-set")
        def run():
            o = O()
            o.p = 9
            return reg.seen, o.m(), o.w(), o.p, O.w.__name__
    """,
    "fstrings_and_comparisons": """
        class O:
            def __init__(self): self.x = 3.14159; self.w = 8; self.d = {"k": 1}
        def run():
            o = O()
            s = f"{o.x:{o.w}.{o.d['k']}f}|{o.x!r}|{o.d}"
            chain = 1 < o.x < o.w < 100
            chain_in = 1 < o.d["k"] + 1 in {2: 0}
            short = 5 < o.x < t(10, "not-evaluated")
            return s, chain, chain_in, short, "k" in o.d, "z" not in o.d
    """,
    "globals_and_nonlocals": """
        counter = 0
        CONST = 7
        def bump(n):
            global counter
            counter += n
            return counter
        def reset():
            global counter, gone
            gone = 1
            del gone
            counter = 0
        def make():
            total = 0
            def add(v):
                nonlocal total
                total += v
                return total
            def read():
                return total
            return add, read
        def run():
            bump(2); bump(3)
            before = counter
            reset()
            add, read = make()
            add(4); add(5)
            return before, counter, read(), CONST
    """,
    "deletes_and_with_targets": """
        class O:
            def __init__(self): self.a = 1; self.b = 2
        class CM:
            def __init__(self, v): self.v = v
            def __enter__(self): return t(self.v, "enter")
            def __exit__(self, *a): t(self.v, "exit"); return False
        def run():
            o, d = O(), {"k": 1, "j": 2}
            del o.a, d["k"]
            with CM(1) as o.first, CM(2) as d["second"]:
                t(o.first, "body")
            for o.i in range(3):
                pass
            try:
                del o.a
            except AttributeError as e:
                err = "gone"
            return vars(o), d, err
    """,
    "annotations_untouched": """
        from __future__ import annotations
        import dataclasses, typing
        @dataclasses.dataclass
        class Point:
            x: int
            y: typing.Optional[int] = None
            tags: typing.ClassVar[list] = []
        class O:
            pass
        def f(a: typing.List[int], b: O.missing = None) -> typing.Dict[str, int]:
            return {}
        def run():
            o = O()
            o.z: int = 5
            return Point.__annotations__, f.__annotations__, o.z, dataclasses.fields(Point)[1].name
    """,
    "builtins_shadowing_and_dynamic_attrs": """
        class O: pass
        def run():
            o = O()
            setattr(o, "dyn", 1)
            got = getattr(o, "dyn"), hasattr(o, "nope"), getattr(o, "nope", "default")
            def len(x): return "shadowed"
            return got, len([1, 2]), sorted({3, 1}), list(map(abs, [-1, 2]))
    """,
    "walrus_global_star_args_slices": """
        state = None
        class Slotted:
            __slots__ = ("v",)
        def setstate(v):
            global state
            if (state := v) is not None:
                return state
        def run():
            lst, d = [1, 2, 3, 4], {}
            lst[1:3] += [t(9, "rhs")]
            args, kw = ([5, 6],), {"a": 1}
            lst.extend(*args)
            d.update(**kw)
            d.update([("b", 2)], c=3)
            s = Slotted()
            s.v = 1
            s.v += 1
            i = 0
            while s.v < 5 and lst[i] < 100:
                s.v += 1
                i += 1
            try:
                s.missing = 1
            except AttributeError:
                err = "slots"
            finally:
                lst.append("finally")
            return setstate(7), state, lst, d, s.v, err, "hello"[1:3], (1, 2)[-1]
    """,
    "closures_in_classes_and_comprehensions": """
        def make():
            hits = 0
            class Counter:
                def bump(self):
                    nonlocal hits
                    hits += 1
                    return [hits * k for k in range(2)]
            c = Counter()
            out = [c.bump() for _ in range(3)]
            return out, hits, (lambda: hits)()
        def run():
            return make()
    """,
}


@pytest.mark.parametrize("name", sorted(CORPUS))
def test_semantics_identical(name: str) -> None:
    plain, rewritten, _sink = both(CORPUS[name])
    assert rewritten == plain


def test_corpus_really_ran() -> None:
    # the harness compares outcomes: make sure a snippet that must raise does raise
    plain, rewritten, _ = both(CORPUS["exception_propagates"])
    assert plain[0] == "raised" and plain[1] == "AttributeError"
    assert rewritten == plain
    plain, rewritten, _ = both(CORPUS["evaluation_order_store"])
    assert plain[-1] == ["value", "obj", "v2", "dict", "key", "d2", "k2", "o2"]
    assert rewritten[-1] == plain[-1]


# --------------------------------------------------------------------------- recorded accesses


def test_method_accesses_recorded_with_sites() -> None:
    _p, _r, sink = both(
        """
        class Account:
            def __init__(self):
                self.balance = 0
            def deposit(self, n):
                self.balance += n
                return self.describe()
            def describe(self):
                return "ok"
        def run():
            a = Account()
            a.deposit(5)
            return a.balance
        """
    )
    evs = sink.accesses("Account.balance")
    kinds = [(e.data["access_type"], e.ext["func"]) for e in evs]
    assert kinds == [
        ("Write", "Account.__init__"),
        ("Read", "Account.deposit"),
        ("Write", "Account.deposit"),
        ("Read", "run"),
    ]
    read, write = evs[1], evs[2]
    assert read.data["location"] == write.data["location"]  # augmented: one site line
    assert read.data["location"].endswith(":10")  # line of `self.balance += n` in the snippet
    # self.describe() is a method call: its load is not recorded
    assert not [e for e in sink.accesses() if "describe" in e.data["variable"]]


def test_constant_augmented_assignment_is_one_write_for_threads_and_read_write_on_a_loop() -> None:
    src = """
        import asyncio
        class O:
            def __init__(self): self.n = 0; self.d = {"k": 1}
        def bump(o):
            o.n += 2
            o.d["k"] *= 3
        def run():
            a, b = O(), O()
            bump(a)                              # a thread's task: the write only
            async def main():
                bump(b)                          # an event-loop task: read and write
            asyncio.run(main())
            return a.n, a.d, b.n
        """
    from raceway_sdk.instrument import aio

    aio.install()
    try:
        plain, rewritten, sink = both(src)
    finally:
        aio.uninstall()
    assert plain == rewritten and rewritten[1] == "(2, {'k': 3}, 2)"
    bumps = [e for e in sink.accesses() if e.ext["func"] == "bump" and "O.d" not in e.data["variable"]]
    by_task: dict[str, list[tuple[str, str, object]]] = {}
    for e in bumps:
        by_task.setdefault(e.ext["task"], []).append(
            (e.data["variable"].split("@")[0], e.data["access_type"], e.data["new_value"])
        )
    thread_task, loop_task = list(by_task)
    assert by_task[thread_task] == [("O.n", "Write", 2), ("dict['k']", "Write", 3)]
    assert [(v, t) for v, t, _ in by_task[loop_task]] == [
        ("O.n", "Read"), ("O.n", "Write"), ("dict['k']", "Read"), ("dict['k']", "Write"),
    ]


def test_augmented_assignment_that_synchronises_keeps_its_read_at_the_earlier_clock() -> None:
    _p, rewritten, sink = both(
        """
        from raceway_sdk import _recorder
        class V:
            def __init__(self, n): self.n = n
            def __iadd__(self, k):
                _recorder.release(self, "threading.Lock")  # a release: the clock ticks
                return V(self.n + k)
        class O:
            def __init__(self): self.v = V(1)
        def run():
            o = O()
            o.v += 1
            return o.v.n
        """
    )
    assert rewritten[1] == "2"
    read, write = [e for e in sink.accesses() if e.data["variable"].startswith("O.v")][1:3]
    assert (read.data["access_type"], write.data["access_type"]) == ("Read", "Write")
    task = read.ext["task"]
    assert read.vc[task] + 1 == write.vc[task]  # the read is as of before the release


def test_globals_recorded_only_when_rebound_in_functions() -> None:
    _p, _r, sink = both(
        """
        hits = 0
        LIMIT = 3
        def helper():
            return LIMIT
        def hit():
            global hits
            hits = hits + helper()
        def run():
            hit()
            return hits
        """
    )
    names = {e.data["variable"] for e in sink.accesses()}
    assert "snippet.hits" in names
    assert not {"snippet.LIMIT", "snippet.helper", "snippet.hit"} & names
    assert ("snippet.hits", "Write") in accesses(sink)


def test_nonlocal_counter_recorded() -> None:
    _p, _r, sink = both(
        """
        def run():
            count = 0
            def inc():
                nonlocal count
                count += 1
            inc()
            return count
        """
    )
    got = [a for a in accesses(sink) if a[0].endswith("count")]
    assert ("run.<locals>.count", "Read") in got and ("run.<locals>.count", "Write") in got


def test_thread_local_not_recorded() -> None:
    _p, _r, sink = both(
        """
        import threading
        class O: pass
        def run():
            loc = threading.local()
            loc.value = 1
            o = O()
            o.value = loc.value
            return o.value
        """
    )
    assert ("O.value", "Write") in accesses(sink)
    assert not [a for a in accesses(sink) if a[0].startswith("local")]


def test_same_epoch_cache_does_not_hide_new_objects_or_epochs() -> None:
    src = PRELUDE + textwrap.dedent(
        """
        class O: pass
        def touch(o):
            o.v = 1
        def run():
            return None
        """
    )
    ns: dict[str, Any] = {"__name__": "snippet", "__file__": "/snippets/cache.py"}
    exec(rewrite.rewrite_source(src, "/snippets/cache.py"), ns)
    sink = CollectingSink()
    prev = _recorder.set_sink(sink)
    _recorder.set_trace(uuid.uuid4().int)
    try:
        objs = [ns["O"]() for _ in range(3)]
        for o in objs:
            ns["touch"](o)
            ns["touch"](o)  # same object, same epoch: dropped
        assert len(sink.accesses("O.v")) == 3
        _recorder.set_trace(uuid.uuid4().int)  # new epoch for every task
        ns["touch"](objs[0])
        assert len(sink.accesses("O.v")) == 4
        _recorder.release(object(), "test")  # the task ticks: a new epoch
        ns["touch"](objs[0])
        assert len(sink.accesses("O.v")) == 5
        del objs
        for _ in range(5):  # fresh objects that may reuse a dead object's id
            ns["touch"](ns["O"]())
        assert len(sink.accesses("O.v")) == 10
    finally:
        _recorder.set_sink(prev)


# --------------------------------------------------------------------------- import hook


@pytest.fixture
def project(tmp_path, monkeypatch):
    """A throw-away package on sys.path; the hook and the imported modules are undone after."""
    pkg = tmp_path / f"proj_{uuid.uuid4().hex[:8]}"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    monkeypatch.syspath_prepend(str(tmp_path))
    before = set(sys.modules)
    yield pkg
    rewrite.uninstall()
    for name in set(sys.modules) - before:
        del sys.modules[name]


def _write(pkg, name: str, body: str) -> str:
    (pkg / f"{name}.py").write_text(textwrap.dedent(body))
    return f"{pkg.name}.{name}"


MOD = """
class C:
    def __init__(self):
        self.v = 0
    def inc(self):
        self.v += 1
        return self.v
"""


def test_import_hook_rewrites_and_caches(project, monkeypatch) -> None:
    monkeypatch.setattr(sys, "dont_write_bytecode", False)
    name = _write(project, "mod", MOD)
    hook = rewrite.install(None, None, [str(project.parent)])
    mod = __import__(name, fromlist=["x"])
    assert name in hook.rewritten and hook.cache_writes >= 1
    cache = project / "__pycache__" / f"mod.{rewrite.TAG}.pyc"
    assert cache.exists() and "raceway" in cache.name
    assert mod.C().inc() == 1
    import inspect

    assert "self.v += 1" in inspect.getsource(mod.C.inc)  # the source stays the user's

    # a fresh hook and a fresh import reuse the cache
    del sys.modules[name]
    hook2 = rewrite.install(None, None, [str(project.parent)])
    mod2 = __import__(name, fromlist=["x"])
    assert hook2.cache_hits == 1 and hook2.cache_writes == 0 and name in hook2.rewritten
    sink = CollectingSink()
    prev = _recorder.set_sink(sink)
    try:
        mod2.C().inc()
    finally:
        _recorder.set_sink(prev)
    # __init__'s write; ``self.v += 1`` is one write for a thread (see hooks.auga); the read
    assert [a[1] for a in accesses(sink)] == ["Write", "Write", "Read"]

    # editing the source invalidates the cache
    del sys.modules[name]
    (project / "mod.py").write_text(MOD.replace("self.v += 1", "self.v += 2  # edited"))
    os.utime(project / "mod.py", (1, 1))
    hook3 = rewrite.install(None, None, [str(project.parent)])
    mod3 = __import__(name, fromlist=["x"])
    assert hook3.cache_hits == 0 and mod3.C().inc() == 2


def test_read_only_cache_dir_still_rewrites(project, monkeypatch) -> None:
    monkeypatch.setattr(sys, "dont_write_bytecode", False)
    name = _write(project, "ro", MOD)
    (project / "__pycache__").write_text("a file where the cache directory should be")
    hook = rewrite.install(None, None, [str(project.parent)])
    mod = __import__(name, fromlist=["x"])
    assert name in hook.rewritten and hook.cache_writes == 0
    assert mod.C().inc() == 1 and rewrite.not_instrumented() == []


def test_opt_out_exclude_and_preloaded(project) -> None:
    opted = _write(project, "opted", '"""Docs.\n\nRACEWAY_DONT_INSTRUMENT\n"""\n' + MOD)
    skipped = _write(project, "skipped", MOD)
    early = _write(project, "early", MOD)
    __import__(early)
    hook = rewrite.install(None, [f"{project.name}.skip*"], [str(project.parent)])
    m1 = __import__(opted, fromlist=["x"])
    m2 = __import__(skipped, fromlist=["x"])
    assert opted not in hook.rewritten and skipped not in hook.rewritten
    assert "_rw@ga" not in vars(m1) and "_rw@ga" not in vars(m2)
    assert m1.C().inc() == 1
    assert (early, "imported before instrumentation was installed") in rewrite.not_instrumented()
    assert not [n for n, _ in rewrite.not_instrumented() if n in (opted, skipped)]


def test_unrewritable_module_reported_and_still_works(project) -> None:
    chain = "o" + ".nxt" * 1500  # nests deeper than the rewriter's recursion allows
    name = _write(project, "deep", f"class N: pass\no = N(); o.nxt = o\ndef f():\n    return {chain}\n")
    rewrite.install(None, None, [str(project.parent)])
    mod = __import__(name, fromlist=["x"])
    assert mod.f() is mod.o
    reasons = dict(rewrite.not_instrumented())
    assert "RecursionError" in reasons[name]


def test_selection_protects_stdlib_site_packages_and_raceway(tmp_path) -> None:
    stdlib_dir = os.path.dirname(os.__file__)
    sel = Selection(None, None, [stdlib_dir, str(tmp_path), os.path.dirname(_recorder.__file__)])
    assert not sel.matches("json", sys.modules["json"].__file__ if "json" in sys.modules else os.path.join(stdlib_dir, "json", "__init__.py"))
    assert not sel.matches("foo", str(tmp_path / "venv" / "lib" / "site-packages" / "foo.py"))
    assert not sel.matches("raceway_sdk._recorder", _recorder.__file__)
    assert sel.matches("app.models", str(tmp_path / "app" / "models.py"))
    assert not sel.matches("elsewhere", "/nonexistent/elsewhere.py")
    explicit = Selection(["raceway_sdk._identity", "json*"], None, [])
    assert explicit.matches("raceway_sdk._identity", "/x/raceway_sdk/_identity.py")
    assert explicit.matches("json.decoder", os.path.join(stdlib_dir, "json", "decoder.py"))
    paths = Selection(None, ["tests/*", "*/gen_*.py"], [str(tmp_path)])
    assert not paths.matches("tests.test_a", str(tmp_path / "tests" / "test_a.py"))
    assert not paths.matches("pkg.gen_x", str(tmp_path / "pkg" / "gen_x.py"))
    assert paths.matches("pkg.x", str(tmp_path / "pkg" / "x.py"))
    with pytest.raises(ValueError, match="empty"):
        Selection([""], None, [])


def test_stdlib_module_not_rewritten_even_under_root(project) -> None:
    stdlib_dir = os.path.dirname(os.__file__)
    sys.modules.pop("colorsys", None)
    hook = rewrite.install(None, None, [stdlib_dir])
    import colorsys

    assert "colorsys" not in hook.rewritten
    assert type(colorsys.__loader__).__name__ != "_RewritingLoader"


# --------------------------------------------------------------------------- pytest coexistence


def test_pytest_assertion_rewriting_still_works(tmp_path) -> None:
    (tmp_path / "conftest.py").write_text(
        textwrap.dedent(
            """
            from raceway_sdk.instrument import rewrite

            def pytest_configure(config):
                rewrite.install(None, None, [str(config.rootpath)])
            """
        )
    )
    (tmp_path / "helper.py").write_text("class Box:\n    def __init__(self):\n        self.v = 1\n")
    (tmp_path / "test_inst.py").write_text(
        textwrap.dedent(
            """
            from helper import Box

            def test_rewritten_by_both():
                assert "_rw@ga" in globals()
                assert type(__loader__).__name__ == "_RewritingLoader"
                import helper
                assert "_rw@ga" in vars(helper)

            def test_introspection():
                b = Box()
                b.v += 1
                assert b.v == 5
            """
        )
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST")}
    sdk_root = os.path.dirname(os.path.dirname(os.path.abspath(_recorder.__file__)))
    env["PYTHONPATH"] = os.pathsep.join([str(tmp_path), sdk_root, env.get("PYTHONPATH", "")])
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", str(tmp_path)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    out = proc.stdout + proc.stderr
    assert "1 failed, 1 passed" in out, out
    assert "assert 2 == 5" in out, out
    assert "where 2 = <helper.Box object" in out, out
