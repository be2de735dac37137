"""Race rules of the engine, one test per happens-before rule (events of our SDK)."""

from __future__ import annotations

import random
import threading

import orjson
import pytest
from oracle import racing_pairs, summary
from tracebuilder import TraceBuilder, interleave

from raceway_server.engine import Engine, Race


def run(events, **kw) -> Engine:
    engine = Engine(**kw)
    engine.add_batch(events)
    return engine


def keys(engine: Engine) -> set[tuple[str, str]]:
    return summary(engine.races())


# ---------------------------------------------------------------- fork / join


def test_race_two_threads_write_write_report_contents() -> None:
    tb = TraceBuilder()
    main = tb.main()
    t1 = tb.fork(main, "worker-1", site="app.py:12")
    t2 = tb.fork(main, "worker-2", site="app.py:13")
    tb.write(t1, "c.x", "app.py:30", value=1)
    tb.write(t2, "c.x", "app.py:31", value=2)
    engine = run(tb.events)
    [race] = engine.races()
    assert race.severity == "write-write"
    assert race.key == ("app.py:30", "app.py:31")
    assert {race.first.task, race.second.task} == {t1, t2}
    assert race.first.task_name == "worker-1" and race.first.task_created_at == "app.py:12"
    assert race.second.task_created_at == "app.py:13"
    assert (race.first.value, race.second.value) == (1, 2)
    assert race.stale_read is None
    assert "No happens-before edge" in race.explanation
    assert "'worker-1'" in race.explanation and "app.py:12" in race.explanation
    d = race.to_dict()
    for field in (
        "id",
        "trace_id",
        "severity",
        "variable",
        "loc",
        "first",
        "second",
        "stale_read",
        "explanation",
        "key",
    ):
        assert field in d
    for field in (
        "event_id",
        "task",
        "task_name",
        "task_kind",
        "task_created_at",
        "task_stack",
        "origin_trace",
        "access_type",
        "location",
        "func",
        "stack",
        "value",
        "timestamp_ns",
        "vc",
    ):
        assert field in d["first"]
    assert d["first"]["stack"] == [["app.py", "30", "f"]]
    orjson.dumps(d)  # JSON-ready


def test_race_read_write_severity() -> None:
    tb = TraceBuilder()
    main = tb.main()
    t1 = tb.fork(main)
    tb.read(main, "x", "m.py:1")
    tb.write(t1, "x", "w.py:2")
    [race] = run(tb.events).races()
    assert race.severity == "read-write"


def test_norace_write_before_start_read_after_join() -> None:
    tb = TraceBuilder()
    main = tb.main()
    tb.write(main, "x", "m.py:1")
    t1 = tb.fork(main)
    tb.read(t1, "x", "w.py:1")
    tb.write(t1, "x", "w.py:2")
    tb.join(main, t1)
    tb.read(main, "x", "m.py:2")
    tb.write(main, "x", "m.py:3")
    assert run(tb.events).races() == []


def test_race_parent_access_after_start_without_join_names_the_spawn() -> None:
    tb = TraceBuilder()
    main = tb.main()
    t1 = tb.fork(main, "child", site="spawn.py:7")
    tb.write(t1, "x", "w.py:1")
    tb.read(main, "x", "m.py:2")
    [race] = run(tb.events).races()
    assert "was started by" in race.explanation and "spawn.py:7" in race.explanation


# ---------------------------------------------------------------- locks and hand-offs


def _two_workers(tb: TraceBuilder) -> tuple[str, str, str]:
    main = tb.main()
    return main, tb.fork(main, "w1"), tb.fork(main, "w2")


def test_norace_same_lock_race_different_locks() -> None:
    for lock_b, expect in (("L", 0), ("M", 2)):  # M: read-write and write-write
        tb = TraceBuilder()
        _, t1, t2 = _two_workers(tb)
        tb.acquire(t1, "L")
        tb.read(t1, "x", "a.py:1")
        tb.write(t1, "x", "a.py:2")
        tb.release(t1, "L")
        tb.acquire(t2, lock_b)
        tb.read(t2, "x", "a.py:1")
        tb.write(t2, "x", "a.py:2")
        tb.release(t2, lock_b)
        assert len(run(tb.events).races()) == expect


def test_norace_lock_released_by_another_task() -> None:
    tb = TraceBuilder()
    main, t1, _ = _two_workers(tb)
    tb.acquire(main, "sem")
    tb.write(t1, "x", "w.py:1")
    tb.release(t1, "sem")  # a semaphore-like lock released by the worker
    tb.acquire(main, "sem")
    tb.read(main, "x", "m.py:1")
    assert run(tb.events).races() == []


def test_norace_rlock_reentry_nested_events() -> None:
    tb = TraceBuilder()
    _, t1, t2 = _two_workers(tb)
    tb.acquire(t1, "R", "threading.RLock")
    tb.acquire(t1, "R", "threading.RLock")
    tb.write(t1, "x", "a.py:1")
    tb.release(t1, "R", "threading.RLock")  # inner release
    tb.write(t1, "x", "a.py:2")
    tb.release(t1, "R", "threading.RLock")
    tb.acquire(t2, "R", "threading.RLock")
    tb.write(t2, "x", "a.py:3")
    tb.release(t2, "R", "threading.RLock")
    assert run(tb.events).races() == []


def test_norace_condition_wait_notify() -> None:
    tb = TraceBuilder()
    _, waiter, notifier = _two_workers(tb)
    tb.acquire(waiter, "cv.lock")
    tb.release(waiter, "cv.lock")  # wait(): releases the lock
    tb.acquire(notifier, "cv.lock")
    tb.write(notifier, "ready", "n.py:1")
    tb.release(notifier, "cv", "threading.Condition")  # notify()
    tb.release(notifier, "cv.lock")
    tb.acquire(waiter, "cv", "threading.Condition")  # woken
    tb.acquire(waiter, "cv.lock")
    tb.read(waiter, "ready", "w.py:1")
    assert run(tb.events).races() == []


@pytest.mark.parametrize("lock_type", ["queue.Queue", "threading.Event", "asyncio.Queue"])
def test_norace_handoff_race_without(lock_type: str) -> None:
    for handoff in (True, False):
        tb = TraceBuilder()
        _, producer, consumer = _two_workers(tb)
        tb.write(producer, "item.data", "p.py:1")
        if handoff:
            tb.release(producer, "q", lock_type)  # put / set
            tb.acquire(consumer, "q", lock_type)  # get / wait
        tb.read(consumer, "item.data", "c.py:1")
        assert len(run(tb.events).races()) == (0 if handoff else 1)


def test_race_executor_tasks_on_one_worker_thread() -> None:
    tb = TraceBuilder()
    main = tb.main()
    f1 = tb.fork(main, "job-1", "executor")
    f2 = tb.fork(main, "job-2", "executor")
    w1 = tb.write(f1, "total", "job.py:5")
    w2 = tb.write(f2, "total", "job.py:5")
    w1.meta.thread_id = w2.meta.thread_id = "ThreadPoolExecutor-0_0"  # same OS thread ran both
    [race] = run(tb.events).races()
    assert race.key == ("job.py:5", "job.py:5") and race.first.task_kind == "executor"


# ---------------------------------------------------------------- atomics and identity


@pytest.mark.parametrize(
    ("a", "b", "races"),
    [
        ("AtomicRMW", "AtomicRMW", 0),
        ("AtomicWrite", "AtomicRead", 0),
        ("AtomicRMW", "Read", 1),  # list.append vs iteration
        ("AtomicWrite", "Write", 1),
        ("AtomicRead", "Write", 1),
        ("Read", "Read", 0),
        ("AtomicRead", "Read", 0),
    ],
)
def test_atomic_rules(a: str, b: str, races: int) -> None:
    tb = TraceBuilder()
    _, t1, t2 = _two_workers(tb)
    tb.access(t1, "items", a, "a.py:1")
    tb.access(t2, "items", b, "b.py:1")
    assert len(run(tb.events).races()) == races


def test_norace_distinct_locs_never_mix_after_id_reuse() -> None:
    tb = TraceBuilder()
    _, t1, t2 = _two_workers(tb)
    # same variable name, same id() after GC: the SDK gives the new object a new loc
    tb.write(t1, "Obj@0x7f00#1.x", "a.py:1", variable="Obj.x")
    tb.write(t2, "Obj@0x7f00#2.x", "a.py:1", variable="Obj.x")
    assert run(tb.events).races() == []


def test_one_report_per_site_pair() -> None:
    tb = TraceBuilder()
    _, t1, t2 = _two_workers(tb)
    for i in range(50):
        tb.write(t1, f"x{i % 5}", "a.py:1")
        tb.release(t1, "unrelated")
        tb.write(t2, f"x{i % 5}", "b.py:1")
        tb.acquire(t2, "other")
    races = run(tb.events).races()
    assert [r.key for r in races] == [("a.py:1", "b.py:1")]


# ---------------------------------------------------------------- asyncio rule


def _loop_tasks(tb: TraceBuilder) -> tuple[str, str, str]:
    main = tb.main(loop="loop-1")
    a = tb.fork(main, "A", "asyncio", "loop-1")
    b = tb.fork(main, "B", "asyncio", "loop-1")
    return main, a, b


def test_norace_await_free_read_modify_write_on_one_loop() -> None:
    tb = TraceBuilder()
    _, a, b = _loop_tasks(tb)
    for t in (a, b):
        tb.read(t, "counter", "c.py:1")
        tb.write(t, "counter", "c.py:2")
    assert run(tb.events).races() == []


def _lost_update() -> tuple[TraceBuilder, dict[str, object]]:
    tb = TraceBuilder()
    _, a, b = _loop_tasks(tb)
    ev = {
        "r": tb.read(a, "balance", "acct.py:10"),
        "await": tb.await_(a),
        "w": tb.write(a, "balance", "acct.py:12"),
        "b": tb.write(b, "balance", "acct.py:20"),
    }
    return tb, ev


@pytest.mark.parametrize("order", ["b-r-w", "r-b-w", "r-w-b"])
def test_race_lost_update_across_await_every_arrival_order(order: str) -> None:
    tb, ev = _lost_update()
    spawns = [e for e in tb.events if e.kind != "StateChange"]
    events = spawns + [ev[k] for k in order.split("-")]
    [race] = run(events).races()
    assert race.severity == "lost-update"
    assert race.key == ("acct.py:12", "acct.py:20")
    assert race.stale_read is not None and race.stale_read.location == "acct.py:10"
    assert race.first.location == "acct.py:12" and race.second.location == "acct.py:20"
    assert "Lost update" in race.explanation and "acct.py:10" in race.explanation


def test_norace_lost_update_shape_ordered_by_asyncio_lock() -> None:
    tb = TraceBuilder()
    _, a, b = _loop_tasks(tb)
    tb.acquire(a, "alock", "asyncio.Lock")
    tb.read(a, "balance", "acct.py:10")
    tb.await_(a)
    tb.write(a, "balance", "acct.py:12")
    tb.release(a, "alock", "asyncio.Lock")
    tb.acquire(b, "alock", "asyncio.Lock")
    tb.write(b, "balance", "acct.py:20")
    tb.release(b, "alock", "asyncio.Lock")
    assert run(tb.events).races() == []


def test_norace_fresh_read_after_await_even_at_the_same_site() -> None:
    """A re-read after the await (same site, same clock) refreshes the value: no lost update."""
    tb = TraceBuilder()
    _, a, b = _loop_tasks(tb)
    tb.read(a, "balance", "acct.py:10")
    tb.await_(a)
    tb.read(a, "balance", "acct.py:10")
    tb.write(a, "balance", "acct.py:12")
    tb.write(b, "balance", "acct.py:20")
    engine = run(tb.events)
    assert engine.races() == [] and racing_pairs(tb.events) == {}


def test_race_lost_update_older_plain_read_kept_beside_atomic_read() -> None:
    """A write moved to a newer read of another atomicity must not hide the older read."""
    tb = TraceBuilder()
    _, a, b = _loop_tasks(tb)
    tb.access(a, "d", "Read", "x.py:1")
    tb.await_(a)
    tb.access(a, "d", "Write", "x.py:2")
    tb.access(a, "d", "AtomicRead", "x.py:3")
    tb.await_(a)
    tb.access(a, "d", "Write", "x.py:2")
    tb.access(b, "d", "AtomicWrite", "y.py:1")
    expected = set(racing_pairs(tb.events))
    assert expected == {("x.py:2", "y.py:1")}
    assert keys(run(tb.events)) == expected


def test_race_thread_vs_loop_task_is_preemptive() -> None:
    tb = TraceBuilder()
    main, a, _ = _loop_tasks(tb)
    t = tb.fork(main, "bg", "thread")
    tb.read(a, "x", "a.py:1")
    tb.write(a, "x", "a.py:2")
    tb.write(t, "x", "t.py:1")
    assert keys(run(tb.events)) == {("a.py:1", "t.py:1"), ("a.py:2", "t.py:1")}


def test_race_tasks_of_different_loops() -> None:
    tb = TraceBuilder()
    main = tb.main()
    a = tb.fork(main, "A", "asyncio", "loop-1")
    b = tb.fork(main, "B", "asyncio", "loop-2")
    tb.write(a, "x", "a.py:1")
    tb.write(b, "x", "b.py:1")
    assert len(run(tb.events).races()) == 1


# ---------------------------------------------------------------- arrival order


def test_out_of_order_two_processes_same_race_set() -> None:
    tb = TraceBuilder()
    m1 = tb.main("p1")
    m2 = tb.main("p2")
    w1 = tb.fork(m1, "worker")
    h2 = tb.fork(m2, "handler")
    tb.write(w1, "db:accounts/alice", "svc1.py:1")
    tb.write(m1, "db:accounts/alice", "svc1.py:2")  # races with the worker
    tb.release(m1, "http:req-1", "http")  # request -> handler
    tb.acquire(h2, "http:req-1", "http")
    tb.write(h2, "db:accounts/alice", "svc2.py:1")  # ordered after m1's write, not w1's
    tb.release(h2, "http:resp-1", "http")
    tb.acquire(m1, "http:resp-1", "http")
    tb.read(m1, "db:accounts/alice", "svc1.py:3")
    tb.write(m2, "db:accounts/alice", "svc2.py:9")  # unordered with everything of p1
    expected = set(racing_pairs(tb.events))
    assert ("svc1.py:1", "svc2.py:1") in expected and ("svc1.py:2", "svc2.py:1") not in expected
    assert keys(run(tb.events)) == expected
    rng = random.Random(5)
    rebuilt = 0
    for _ in range(40):
        order = interleave(tb.events, rng, key=lambda e: e.ext["task"].split("/")[0])
        engine = run(order)
        assert keys(engine) == expected
        rebuilt += engine.stats()["rebuilds"]
    assert rebuilt > 0


# ---------------------------------------------------------------- engine behaviour


def test_fast_path_and_bounded_state_under_locking() -> None:
    tb = TraceBuilder()
    main = tb.main()
    workers = [tb.fork(main, f"w{i}") for i in range(8)]
    for i in range(400):
        t = workers[i % 8]
        tb.acquire(t, "L")
        tb.read(t, "x", "a.py:1")
        tb.read(t, "x", "a.py:1")  # same epoch, same site: fast path
        tb.write(t, "x", "a.py:2")
        tb.release(t, "L")
    engine = run(tb.events)
    assert engine.races() == []
    s = engine.stats()
    assert s["fast_path_hits"] == 400 and s["accesses"] == 1200
    trace = engine._traces[tb.trace_id]
    assert len(trace.state.locs["x"].entries) <= 2


def test_on_race_fires_incrementally_and_errors_are_counted() -> None:
    seen: list[Race] = []
    engine = Engine(on_race=seen.append)
    tb = TraceBuilder()
    _, t1, t2 = _two_workers(tb)
    tb.write(t1, "x", "a.py:1")
    tb.write(t2, "x", "b.py:1")
    for e in tb.events[:-1]:
        engine.add(e)
    assert seen == []
    engine.add(tb.events[-1])
    assert len(seen) == 1 and engine.races() == seen

    def boom(race: Race) -> None:
        assert engine.races()  # the callback may read the engine (re-entrant lock)
        raise RuntimeError("callback failed")

    engine2 = Engine(on_race=boom)
    engine2.add_batch(tb.events)
    assert engine2.stats()["callback_errors"] == 1 and len(engine2.races()) == 1


def test_concurrent_adders_give_the_same_result() -> None:
    traces = []
    for _ in range(8):
        tb = TraceBuilder()
        _, t1, t2 = _two_workers(tb)
        for i in range(100):
            tb.write(t1, f"v{i % 7}", f"a.py:{i % 3}")
            tb.read(t2, f"v{i % 7}", f"b.py:{i % 4}")
        traces.append(tb)
    engine = Engine()

    def feed(tb: TraceBuilder) -> None:
        for e in tb.events:
            engine.add(e)

    threads = [threading.Thread(target=feed, args=(tb,)) for tb in traces]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for tb in traces:
        assert summary(engine.races(tb.trace_id)) == set(racing_pairs(tb.events))
    assert engine.stats()["events"] == sum(len(tb.events) for tb in traces)


def test_close_trace_frees_state_and_keeps_results() -> None:
    tb = TraceBuilder()
    _, t1, t2 = _two_workers(tb)
    tb.write(t1, "x", "a.py:1")
    tb.write(t2, "x", "b.py:1")
    engine = run(tb.events)
    engine.close_trace(tb.trace_id)
    assert engine.stats()["locations"] == 0
    assert len(engine.races(tb.trace_id)) == 1
    assert engine.trace_events(tb.trace_id) == tb.events
    assert tb.trace_id in engine.trace_ids()
    tb.write(t1, "x", "a.py:1")
    engine.add(tb.events[-1])  # late event: analysed, counted, no duplicate report
    s = engine.stats()
    assert s["events_after_close"] == 1 and len(engine.races()) == 1


def test_task_registry_and_clock_of() -> None:
    tb = TraceBuilder()
    main = tb.main(loop="loop-9")
    child = tb.fork(main, "fetch", "asyncio", "loop-9", site="svc.py:44")
    e = tb.read(child, "x", "svc.py:50")
    engine = run(tb.events)
    info = engine.tasks()[child]
    assert (info.name, info.kind, info.parent, info.created_at, info.loop) == (
        "fetch",
        "asyncio",
        main,
        "svc.py:44",
        "loop-9",
    )
    assert info.origin_trace == tb.trace_id and info.stack == [["svc.py", 44, "spawner"]]
    assert engine.tasks(tb.trace_id)[child] is info
    assert engine.clock_of(e) == (child, e.vc)


def test_bad_accesses_are_counted_not_lost_silently() -> None:
    tb = TraceBuilder()
    main = tb.main()
    bad = tb.access(main, "x", "Read", "a.py:1")
    bad.data["access_type"] = "Peek"
    nov = tb.access(main, "y", "Read", "a.py:1")
    nov.vc = {}
    engine = run(tb.events)
    s = engine.stats()
    assert s["dropped"] == 2
    assert set(s["dropped_by_reason"]) == {
        "StateChange with an unknown access_type",
        "trusted StateChange whose vector clock lacks its own task",
    }
    assert len(engine.trace_events(tb.trace_id)) == 2  # kept for the trace view


def test_race_thread_read_then_write_same_clock_vs_loop_task() -> None:
    """The second access of a thread under one clock reuses the first's scan (loop rule too)."""
    tb = TraceBuilder()
    main, a, _ = _loop_tasks(tb)
    t = tb.fork(main, "bg", "thread")
    tb.write(a, "x", "a.py:1")
    tb.read(t, "x", "t.py:1")
    tb.write(t, "x", "t.py:2")  # same task, same clock object as the read
    assert keys(run(tb.events)) == {("a.py:1", "t.py:1"), ("a.py:1", "t.py:2")}


def test_benchmark_quick_mode_prints_figures() -> None:
    """benchmarks/engine.py --quick runs end to end; figures only, no timing assertions."""
    import json
    import subprocess
    import sys
    from pathlib import Path

    script = Path(__file__).resolve().parents[2] / "benchmarks" / "engine.py"
    out = subprocess.run(
        [sys.executable, str(script), "--quick"],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    figures = json.loads(out.stdout.strip().splitlines()[-1])
    assert figures["quick"] is True and figures["events"] == 200_000
    for key in ("events_per_s", "oracle_speedup_10k", "scaling_4x", "peak_rss_mb"):
        assert figures[key] > 0


def test_malformed_events_are_counted_and_the_batch_goes_on() -> None:
    tb = TraceBuilder()
    _, t1, t2 = _two_workers(tb)
    broken = tb.write(t1, "x", "a.py:1")
    broken.vc = [["p1/2", 1]]  # type: ignore[assignment]  # not a dict
    tb.write(t1, "x", "a.py:1")
    tb.write(t2, "x", "b.py:1")
    engine = Engine()
    engine.add_batch([*tb.events[:3], {"not": "an event"}, *tb.events[3:]])  # type: ignore[list-item]
    s = engine.stats()
    assert s["dropped"] == 2 and s["last_error"]
    assert set(s["dropped_by_reason"]) == {"malformed event (AttributeError)"}
    assert [r.key for r in engine.races()] == [("a.py:1", "b.py:1")]


def test_embedded_sink_with_the_recorder_and_real_threads() -> None:
    """The engine as the recorder's sink: real threads, real lock, clocks from the SDK."""
    from raceway_sdk import _recorder as rec

    engine = Engine()
    trace = 0x1234_5678
    old_trace = rec.current_trace()
    old_sink = rec.set_sink(engine)
    rec.set_trace(trace)
    site_r = rec.register_site("bank.py", 10, "deposit", "Account.balance")
    site_w = rec.register_site("bank.py", 11, "deposit", "Account.balance")

    class Account:
        balance = 0

    acct = Account()
    lock = threading.Lock()

    def deposit(state: object, locked: bool) -> None:
        token = rec.activate(state)  # type: ignore[arg-type]
        try:
            if locked:
                lock.acquire()
                rec.acquire(lock, "threading.Lock")
            rec.access(acct, "balance", "Read", site_r)
            value = acct.balance
            rec.access(acct, "balance", "Write", site_w)
            acct.balance = value + 1
            if locked:
                rec.release(lock, "threading.Lock")
                lock.release()
        finally:
            rec.finish(state)  # type: ignore[arg-type]
            rec.deactivate(token)

    try:
        found: list[set[tuple[str, str]]] = []
        for locked in (True, False):
            before = len(engine.races())
            states = [rec.fork("thread", f"depositor-{i}") for i in range(2)]
            threads = [threading.Thread(target=deposit, args=(s, locked)) for s in states]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            for s in states:
                rec.join(s)
            rec.flush()  # the engine is a batching sink: hand it what was recorded
            found.append({r.key for r in engine.races()[before:]})
    finally:
        rec.set_sink(old_sink)
        rec.set_trace(old_trace)
    assert found[0] == set()  # locked: ordered by the lock's clock
    assert found[1] == {("bank.py:10", "bank.py:11"), ("bank.py:11", "bank.py:11")}
    race = engine.races(trace)[0]
    assert race.first.task_name.startswith("depositor-") and race.first.task_kind == "thread"


def test_forget_trace_frees_events_but_keeps_races_and_never_repeats_a_pair() -> None:
    from tracebuilder import TraceBuilder

    from raceway_server.engine import Engine

    tb = TraceBuilder()
    main = tb.main()
    a, b = tb.fork(main), tb.fork(main)
    tb.write(a, "x", site="app.py:1")
    tb.write(b, "x", site="app.py:2")
    engine = Engine()
    engine.add_batch(tb.events)
    assert len(engine.races(tb.trace_id)) == 1 and engine.trace_events(tb.trace_id)
    engine.forget_trace(tb.trace_id)
    assert engine.trace_events(tb.trace_id) == []
    assert len(engine.races(tb.trace_id)) == 1
    late = TraceBuilder(trace_id=tb.trace_id)
    main2 = late.main(process="p2")
    c, d = late.fork(main2), late.fork(main2)
    late.write(c, "x", site="app.py:1")
    late.write(d, "x", site="app.py:2")
    late.write(d, "x", site="app.py:3")
    engine.add_batch(late.events)
    # the reopened trace still finds the new pair, and never reports the old one twice
    pairs = sorted(r.key for r in engine.races(tb.trace_id))
    assert len(pairs) == len(set(pairs)) == 2, pairs


def test_forget_trace_without_races_drops_the_trace_entirely() -> None:
    from tracebuilder import TraceBuilder

    from raceway_server.engine import Engine

    kept, dropped = TraceBuilder(), TraceBuilder()
    engine = Engine()
    for tb in (kept, dropped):
        main = tb.main()
        a, b = tb.fork(main), tb.fork(main)
        tb.write(a, "x", site="app.py:1")
        tb.write(b, "x", site="app.py:2")
        engine.add_batch(tb.events)
    engine.forget_trace(dropped.trace_id, keep_races=False)
    assert dropped.trace_id not in engine.trace_ids()
    assert [r.trace_id for r in engine.races()] == [kept.trace_id]
    assert engine.races(dropped.trace_id) == []
