"""Containers, builtins and raw locks in rewritten code: what is recorded, and what races."""

from __future__ import annotations

import _thread
import textwrap
import threading
import types
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from raceway_sdk import _recorder
from raceway_sdk.instrument import rewrite
from raceway_sdk.testing import CollectingSink

SOURCE = textwrap.dedent(
    """
    import collections, threading

    def dict_ops(d, k):
        present = k in d
        v = d[k] if present else d.get(k)
        d[k] = 1
        d[k] = 2
        d.setdefault("s", 0)
        d.pop("s")
        n = len(d)
        ks = list(d.keys())
        del d[k]
        return present, v, n, ks

    def list_ops(lst):
        lst.append(1)
        lst.extend([2, 3])
        lst[-1] = 9
        first = lst[0]
        total = sum(lst)
        for x in lst:
            pass
        squares = [x * x for x in lst]
        lst.pop()
        return first, total, squares, sorted(lst)

    def set_deque_ops(s, dq):
        s.add(1)
        s.add(1)
        s.discard(5)
        dq.append(1)
        dq.appendleft(0)
        dq.popleft()
        return 1 in s, len(dq)

    def defaultdict_ops(dd):
        dd["a"].append(1)
        return dd["a"]

    def counter_ops(c):
        c.update("aab")
        c["z"] += 1
        return c.most_common(1)

    def shadowed(d):
        len = lambda x: "mine"
        sorted = None
        return len(d), sorted

    class Sub(dict):
        pass

    class Custom(dict):
        def get(self, k, default=None):
            return "custom"

    def subclass_ops(sub, custom):
        return sub.get("x"), custom.get("x")

    def user_method(obj):
        return obj.append(5)

    def raw_lock_ops(lock, box):
        with lock:
            box.v = 1
        lock.acquire()
        box.v = 2
        lock.release()
        return box.v

    def append_many(shared, n):
        for i in range(n):
            shared.append(i)

    def iterate(shared):
        return [x for x in shared]

    def unpacking(lst, d):
        a, *rest = lst
        merged = {**d, "z": 0}
        def f(*args, **kw):
            return args, kw
        called = f(*lst, **d)
        def gen():
            yield from lst
        return a, rest, merged, called, list(gen()), [*lst]

    def check_then_act(d, k):
        if k not in d:
            d[k] = threading.get_ident()
    """
)


@pytest.fixture(scope="module")
def mod() -> types.ModuleType:
    m = types.ModuleType("containers_snippet")
    m.__file__ = "/snippets/containers.py"
    exec(rewrite.rewrite_source(SOURCE, m.__file__), vars(m))
    return m


@contextmanager
def recorded() -> Iterator[CollectingSink]:
    sink = CollectingSink()
    prev = _recorder.set_sink(sink)
    _recorder.set_trace(uuid.uuid4().int)
    try:
        yield sink
    finally:
        _recorder.set_sink(prev)


def acc(sink: CollectingSink) -> list[tuple[str, str]]:
    return [(e.data["variable"], e.data["access_type"]) for e in sink.accesses()]


def test_dict_operations(mod) -> None:
    d = {"k": 0, "other": 1}
    with recorded() as sink:
        out = mod.dict_ops(d, "k")
    assert out == (True, 0, 2, ["k", "other"]) and d == {"other": 1}
    got = acc(sink)
    assert ("dict['k']", "Read") in got  # `k in d` and d[k]
    assert ("dict['k']", "Write") in got
    assert got.count(("dict['k']", "Write")) == 3  # d[k] = 1, d[k] = 2, del d[k]: three sites
    assert ("dict['s']", "AtomicRMW") in got  # setdefault / pop
    assert ("dict[*]", "AtomicWrite") in got  # structural: new key "s", deletions
    assert ("dict[*]", "Read") in got  # len / keys()


def test_dict_store_of_existing_key_is_not_structural(mod) -> None:
    d = {"k": 0}
    src = "def store(d):\n    d['k'] = 5\n"
    ns: dict[str, Any] = {"__name__": "s2", "__file__": "/snippets/s2.py"}
    exec(rewrite.rewrite_source(src, "/snippets/s2.py"), ns)
    with recorded() as sink:
        ns["store"](d)
    assert acc(sink) == [("dict['k']", "Write")]
    with recorded() as sink:
        ns["store"]({})
    assert acc(sink) == [("dict['k']", "Write"), ("dict[*]", "AtomicWrite")]


def test_list_operations(mod) -> None:
    lst: list[int] = []
    with recorded() as sink:
        out = mod.list_ops(lst)
    assert out == (1, 12, [1, 4, 81], [1, 2])
    got = acc(sink)
    assert ("list[*]", "AtomicRMW") in got  # append / extend / pop
    assert ("list[2]", "Write") in got  # lst[-1] normalised to its positive index
    assert ("list[0]", "Read") in got
    assert ("list[*]", "Read") in got  # sum / for / comprehension / sorted


def test_set_and_deque(mod) -> None:
    import collections

    s: set[int] = set()
    dq: collections.deque[int] = collections.deque()
    with recorded() as sink:
        assert mod.set_deque_ops(s, dq) == (True, 1)
    got = acc(sink)
    assert ("set[1]", "AtomicRMW") in got and ("set[*]", "AtomicWrite") in got
    assert got.count(("set[*]", "AtomicWrite")) == 1  # the second add does not change the key set
    assert ("deque[*]", "AtomicRMW") in got
    assert ("set[1]", "Read") in got


def test_iterating_a_fresh_slice_or_display_records_only_the_slice(mod) -> None:
    src = (
        "def walk(lst):\n"
        "    a = [x for x in lst[::2]]\n"  # line 2: the slice reads lst; its copy is nobody's
        "    b = sum(x for x in [1, 2])\n"  # line 3: a display: nothing shared
        "    for x in lst:\n"  # line 4: iterating the shared list itself is a read
        "        pass\n"
        "    return a, b\n"
    )
    ns: dict[str, Any] = {"__name__": "s3", "__file__": "/snippets/s3.py"}
    exec(rewrite.rewrite_source(src, "/snippets/s3.py"), ns)
    lst = [1, 2, 3]
    with recorded() as sink:
        assert ns["walk"](lst) == ([1, 3], 3)
    got = [(e.data["variable"], e.data["location"]) for e in sink.accesses()]
    assert got == [("list[*]", "/snippets/s3.py:2"), ("list[*]", "/snippets/s3.py:4")]
    assert len({e.ext["loc"] for e in sink.accesses()}) == 1  # both are `lst`, not a copy


def test_unpacking_reads_whole_container(mod) -> None:
    lst, d = [1, 2, 3], {"k": 1}
    with recorded() as sink:
        out = mod.unpacking(lst, d)
    assert out == (1, [2, 3], {"k": 1, "z": 0}, ((1, 2, 3), {"k": 1}), [1, 2, 3], [1, 2, 3])
    got = [(e.data["variable"], e.data["location"].rsplit(":", 1)[1]) for e in sink.accesses()]
    lines = {line for var, line in got if var == "list[*]"}
    assert len(lines) == 4  # a, *rest = lst / f(*lst) / yield from lst / [*lst]
    assert len({line for var, line in got if var == "dict[*]"}) == 2  # {**d} / f(**d)


def test_defaultdict_missing_key_is_an_atomic_insert(mod) -> None:
    import collections

    dd: collections.defaultdict[str, list[int]] = collections.defaultdict(list)
    with recorded() as sink:
        assert mod.defaultdict_ops(dd) == [1]
    got = acc(sink)
    assert ("defaultdict['a']", "AtomicRMW") in got
    assert ("defaultdict[*]", "AtomicWrite") in got


def test_counter_update_is_a_plain_write(mod) -> None:
    import collections

    c: collections.Counter[str] = collections.Counter()
    with recorded() as sink:
        assert mod.counter_ops(c) == [("a", 2)]
    got = acc(sink)
    assert ("Counter[*]", "Write") in got  # Counter.update is a Python loop: not atomic
    assert ("Counter['z']", "Write") in got  # `c["z"] += 1`: a thread records the write only


def test_shadowed_builtins_and_user_methods_not_treated_as_containers(mod) -> None:
    class Appender:
        def __init__(self) -> None:
            self.got: list[int] = []

        def append(self, v: int) -> str:
            self.got.append(v)
            return "user"

    with recorded() as sink:
        assert mod.shadowed({"a": 1}) == ("mine", None)
        assert mod.user_method(Appender()) == "user"
    assert acc(sink) == []


def test_subclasses(mod) -> None:
    with recorded() as sink:
        assert mod.subclass_ops(mod.Sub(x=1), mod.Custom()) == (1, "custom")
    got = acc(sink)
    assert ("Sub['x']", "Read") in got
    assert not [a for a in got if a[0].startswith("Custom")]


def test_raw_lock_gives_acquire_release(mod) -> None:
    raw = _thread.allocate_lock()
    box = types.SimpleNamespace(v=0)
    with recorded() as sink:
        assert mod.raw_lock_ops(raw, box) == 2
    syncs = [(e.kind, e.data["lock_type"]) for e in sink.events if e.kind in ("LockAcquire", "LockRelease")]
    assert syncs == [("LockAcquire", "threading.Lock"), ("LockRelease", "threading.Lock")] * 2
    assert not raw.locked()


def test_instrumented_lock_not_recorded_twice(mod) -> None:
    from raceway_sdk.instrument import threads

    threads.install()
    try:
        lock = threading.Lock()
    finally:
        threads.uninstall()
    assert type(lock) is not _thread.LockType
    box = types.SimpleNamespace(v=0)
    with recorded() as sink:
        mod.raw_lock_ops(lock, box)
    acquires = [e for e in sink.events if e.kind == "LockAcquire"]
    assert len(acquires) == 2  # one per acquisition, from the instrumented lock itself


# --------------------------------------------------------------------------- with the engine


@pytest.fixture
def engine_recording() -> Iterator[Any]:
    engine_mod = pytest.importorskip("raceway_server.engine.core")
    from raceway_sdk.instrument import threads

    engine = engine_mod.Engine()
    prev = _recorder.set_sink(engine)
    trace = uuid.uuid4().int
    _recorder.set_trace(trace)
    threads.install()
    try:
        yield engine, trace
    finally:
        threads.uninstall()
        _recorder.set_sink(prev)


def _run_threads(*targets: Any) -> None:
    ts = [threading.Thread(target=t) for t in targets]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    _recorder.flush()  # the engine is a batching sink: hand it what was recorded


def test_atomic_appends_do_not_race_but_iteration_does(mod, engine_recording) -> None:
    engine, trace = engine_recording
    shared: list[int] = []
    _run_threads(lambda: mod.append_many(shared, 3), lambda: mod.append_many(shared, 3))
    assert engine.races(trace) == []
    _run_threads(lambda: mod.append_many(shared, 3), lambda: mod.iterate(shared))
    races = engine.races(trace)
    assert races and {r.variable for r in races} == {"list[*]"}


def test_check_then_act_is_caught(mod, engine_recording) -> None:
    engine, trace = engine_recording
    d: dict[str, int] = {}
    _run_threads(lambda: mod.check_then_act(d, "k"), lambda: mod.check_then_act(d, "k"))
    assert any(r.variable == "dict['k']" for r in engine.races(trace))
