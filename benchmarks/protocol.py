"""Throughput of raceway_sdk.protocol.events.parse_batch / dumps_batch on realistic batches.

Builds 100k events shaped like real traffic (70% StateChange with our extension object, the rest
locks, spawns/awaits, HTTP, function calls; original-SDK style metadata), serialises them with
dumps_batch, then times parse_batch on the bytes: the msgspec fast path (protocol/_fastwire.py)
and the precise per-event parser (the fast path switched off), CPU time per event included.
Last line: JSON.
"""

from __future__ import annotations

import gc
import json
import random
import sys
import time

from raceway_sdk.protocol import _fastwire
from raceway_sdk.protocol.events import Event, Metadata, dumps_batch, new_event_id, parse_batch

N = int(sys.argv[1]) if len(sys.argv) > 1 else 100_000


def build(n: int) -> list[Event]:
    rnd = random.Random(7)
    trace = new_event_id()
    tasks = [f"host-1/{i}" for i in range(8)]
    t0 = 1_764_000_000_000_000_000
    events = []
    parent = None
    for i in range(n):
        task = rnd.choice(tasks)
        r = rnd.random()
        ext = {"task": task, "trusted_vc": True}
        if r < 0.7:
            kind = "StateChange"
            var = f"obj{rnd.randrange(2000)}.attr"
            data = {"variable": var, "old_value": rnd.randrange(1000), "new_value": rnd.randrange(1000),
                    "location": f"app/module.py:{rnd.randrange(1, 500)}",
                    "access_type": rnd.choice(("Read", "Write", "Read", "AtomicRMW"))}
            ext.update({"loc": f"{rnd.randrange(1 << 40):x}:attr", "func": "handler",
                        "stack": [["app/module.py", 12, "handler"], ["app/main.py", 40, "run"]]})
        elif r < 0.85:
            kind = rnd.choice(("LockAcquire", "LockRelease"))
            data = {"lock_id": f"lock-{rnd.randrange(16)}", "lock_type": "threading.Lock",
                    "location": "app/module.py:30"}
            ext["sync"] = "acquire" if kind == "LockAcquire" else "release"
        elif r < 0.9:
            kind = "AsyncSpawn"
            data = {"task_id": "6f1c1d2e-0b8a-5c3d-9e4f-112233445566", "spawned_by": task}
            ext.update({"child": rnd.choice(tasks), "child_kind": "thread", "child_name": "Thread-3"})
        elif r < 0.95:
            kind = "HttpRequest"
            data = {"method": "GET", "url": "http://127.0.0.1:8000/items/1",
                    "headers": {"accept": "application/json"}, "body": None}
        else:
            kind = "FunctionCall"
            data = {"function_name": "compute", "module": "app", "args": {"x": 1},
                    "file": "app/module.py", "line": 88}
        vc = {t: rnd.randrange(1, 200) for t in rnd.sample(tasks, 4)}
        meta = Metadata(f"python-4242-{task[-1]}abcdef", 4242, "svc", "test", {"sdk_language": "python"},
                        None, "host-1", "0123456789abcdef", None)
        eid = new_event_id()
        events.append(Event(eid, trace, parent, t0 + i * 1_137_000, kind, data, meta, vc, [], ext))
        parent = eid
    return events


def time_parse(body: bytes, fast: bool) -> tuple[float, float]:
    """Best of 5 (wall seconds, CPU seconds) of parse_batch(body), fast path on or off."""
    _fastwire.ENABLED = fast
    best = cpu_best = float("inf")
    try:
        for _ in range(5):
            gc.collect()
            t, c = time.perf_counter(), time.process_time()
            res = parse_batch(body)
            best = min(best, time.perf_counter() - t)
            cpu_best = min(cpu_best, time.process_time() - c)
            assert len(res.events) == N and not res.errors, res
            del res
    finally:
        _fastwire.ENABLED = True
    return best, cpu_best


def main() -> None:
    events = build(N)
    t = time.perf_counter()
    body = dumps_batch(events)
    dump_s = time.perf_counter() - t
    del events
    fast_on = _fastwire.available()
    if fast_on:
        assert _fastwire.parse_fast(body) is not None, "the fast path declined a valid batch"
    best, cpu_best = time_parse(body, True)
    slow, cpu_slow = time_parse(body, False)
    print(f"events: {N}, body: {len(body) / N:.0f} bytes/event, fast path available: {fast_on}")
    print(
        f"parse_batch: {N / best:,.0f} events/s wall, {N / cpu_best:,.0f} events/s CPU, "
        f"{cpu_best / N * 1e6:.2f} us CPU/event (best of 5)"
    )
    print(
        f"precise parser only: {N / slow:,.0f} events/s wall, {N / cpu_slow:,.0f} events/s CPU, "
        f"{cpu_slow / N * 1e6:.2f} us CPU/event (best of 5)"
    )
    print(f"dumps_batch: {N / dump_s:,.0f} events/s")
    print(json.dumps({"parse_events_per_s": round(N / best), "parse_events_per_cpu_s": round(N / cpu_best),
                      "parse_cpu_us_per_event": round(cpu_best / N * 1e6, 2), "fast_path": fast_on,
                      "precise_events_per_s": round(N / slow), "precise_events_per_cpu_s": round(N / cpu_slow),
                      "precise_cpu_us_per_event": round(cpu_slow / N * 1e6, 2),
                      "dumps_events_per_s": round(N / dump_s), "bytes_per_event": round(len(body) / N)}))


if __name__ == "__main__":
    main()
