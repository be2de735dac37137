"""Deterministic session documents for the report tests, built through the real engine.

Events are stamped with vector clocks by the happens-before rules of docs/internals.md (fork,
join, release/acquire; a release event carries the clock before its tick, an acquire/join event
the clock after the join), fed to the real :class:`Engine`, and the session is assembled like
the plugin does (``Race.to_dict()`` + ``test``/``status``/``anchor``). Ids and timestamps come from
counters so the rendered HTML is byte-for-byte stable (golden files).
"""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

from raceway_sdk.protocol.clock import vc_join, vc_tick
from raceway_sdk.protocol.events import Event, Metadata, event_to_wire, uuid_str

from raceway_server.engine.core import Engine

HOSTILE_VAR = "<img src=x onerror=\"window.__pwned='var'\">"
HOSTILE_TASK = "</script><script>window.__pwned='task'</script>"
HOSTILE_VALUE = "\u2028<img src=x onerror=\"window.__pwned='value'\">\u2029</script>"
HOSTILE_TEST = "tests/test_evil.py::test_<svg onload=\"window.__pwned='test'\">"
BASE_TS = 1_767_225_600_000_000_000  # 2026-01-01T00:00:00Z


class Builder:
    """One trace; ``ids`` is shared so event ids are unique and stable across traces."""

    def __init__(self, trace_n: int, ids: itertools.count, service: str = "app") -> None:
        self.trace_id = (0x5EED << 112) | trace_n
        self.ids = ids
        self.service = service
        self.events: list[Event] = []
        self.vcs: dict[str, dict[str, int]] = {}
        self.syncs: dict[str, dict[str, int]] = {}
        self.names: dict[str, str] = {}
        self.ts = BASE_TS + trace_n * 10_000_000_000
        self._tasks = itertools.count(1)

    def _emit(self, task: str, kind: str, data: dict[str, Any], ext: dict[str, Any],
              duration_ns: int | None = None, service: str | None = None, step: int = 1000) -> Event:
        self.ts += step
        e = Event(
            id=(0xE7 << 120) | next(self.ids),
            trace_id=self.trace_id,
            parent_id=None,
            timestamp_ns=self.ts,
            kind=kind,
            data=data,
            meta=Metadata(thread_id=task, process_id=1, service_name=service or self.service,
                          duration_ns=duration_ns, instance_id="p1"),
            vc=self.vcs[task],
            ext={**ext, "task": task, "trusted_vc": True},
        )
        self.events.append(e)
        return e

    def main(self) -> str:
        tid = f"p1/{next(self._tasks)}"
        self.vcs[tid] = {tid: 1}
        self.names[tid] = "MainThread"
        return tid

    def fork(self, parent: str, name: str, kind: str = "thread", site: tuple[str, int] = ("app.py", 3)) -> str:
        child = f"p1/{next(self._tasks)}"
        self._emit(parent, "AsyncSpawn",
                   {"task_id": "00000000-0000-4000-8000-000000000000", "spawned_by": parent},
                   {"child": child, "child_name": name, "child_kind": kind,
                    "stack": [[site[0], site[1], "spawner"]], "origin_trace": uuid_str(self.trace_id)})
        self.vcs[child] = vc_tick(self.vcs[parent], child)
        self.vcs[parent] = vc_tick(self.vcs[parent], parent)
        self.names[child] = name
        return child

    def access(self, task: str, variable: str, access_type: str, site: tuple[str, int],
               value: Any = None, func: str = "work") -> Event:
        return self._emit(task, "StateChange",
                          {"variable": variable, "old_value": None, "new_value": value,
                           "location": f"{site[0]}:{site[1]}", "access_type": access_type},
                          {"loc": variable, "func": func, "stack": [[site[0], site[1], func]], "value": value})

    def release(self, task: str, sync: str, lock_type: str = "threading.Lock") -> None:
        self._emit(task, "LockRelease", {"lock_id": sync, "lock_type": lock_type, "location": "app.py:1"}, {"sync": "release"})
        self.syncs[sync] = vc_join(self.syncs.get(sync, {}), self.vcs[task])
        self.vcs[task] = vc_tick(self.vcs[task], task)

    def acquire(self, task: str, sync: str, lock_type: str = "threading.Lock") -> None:
        self.vcs[task] = vc_join(self.vcs[task], self.syncs.get(sync, {}))
        self._emit(task, "LockAcquire", {"lock_id": sync, "lock_type": lock_type, "location": "app.py:1"}, {"sync": "acquire"})

    def end(self, task: str) -> None:
        self._emit(task, "Custom", {"name": "raceway.task_end", "data": {"task": task}}, {})

    def join(self, parent: str, child: str) -> None:
        self.vcs[parent] = vc_tick(vc_join(self.vcs[parent], self.vcs[child]), parent)
        self._emit(parent, "AsyncAwait", {"future_id": "00000000-0000-4000-8000-000000000000", "awaited_at": "app.py:2"}, {"child": child})

    def call(self, task: str, name: str, duration_ns: int, service: str | None = None) -> None:
        self._emit(task, "FunctionCall", {"function_name": name, "module": "app", "args": {}, "file": "app.py", "line": 7},
                   {}, duration_ns=duration_ns, service=service, step=duration_ns)


APP_SOURCE = "\n".join(
    [
        "import threading",
        "",
        "counter = 0",
        "",
        "def work():",
        "    global counter",
        "    value = counter  # read",
        "    counter = value + 1  # write",
        "",
        "def safe():",
        "    with lock:",
        "        shared.append(1)",
        "",
    ]
)


def counter_trace(ids: itertools.count, n: int = 1) -> Builder:
    """Two threads increment ``counter`` unguarded (a race); ``queue`` and lock hand-offs are ordered."""
    b = Builder(n, ids)
    m = b.main()
    w1 = b.fork(m, "worker-1", site=("app.py", 11))
    w2 = b.fork(m, "worker-2", site=("app.py", 12))
    b.access(w1, "counter", "Read", ("app.py", 7), 0)
    b.access(w1, "counter", "Write", ("app.py", 8), 1)
    b.call(w1, "slow_io", 2_000_000)
    b.release(w1, "L", "threading.Lock")
    b.access(w2, "counter", "Write", ("app.py", 8), 1)
    b.acquire(w2, "L", "threading.Lock")
    b.access(w2, "shared", "Write", ("app.py", 12), 1, func="safe")
    b.release(w2, "Q", "queue.Queue")
    b.acquire(m, "Q", "queue.Queue")
    b.access(m, "shared", "Read", ("app.py", 12), 1, func="safe")
    b.end(w1)
    b.end(w2)
    b.join(m, w1)
    b.join(m, w2)
    b.access(m, "counter", "Read", ("app.py", 7), 1)
    return b


def hostile_trace(ids: itertools.count, n: int = 2) -> Builder:
    """Names and values that would run script if any of them reached the DOM as HTML."""
    b = Builder(n, ids, service="<b>svc</b>")
    m = b.main()
    t = b.fork(m, HOSTILE_TASK, site=("app.py", 5))
    b.access(t, HOSTILE_VAR, "Write", ("app.py", 8), HOSTILE_VALUE)
    b.access(m, HOSTILE_VAR, "Write", ("app.py", 8), HOSTILE_VALUE)
    return b


def session_for(builders: list[tuple[str, Builder]], root: Path | None = None,
                statuses: dict[int, str] | None = None) -> dict[str, Any]:
    """A ``raceway-session`` v1 document, assembled the way the plugin assembles it."""
    tests: list[dict[str, Any]] = []
    races: list[dict[str, Any]] = []
    traces: dict[str, Any] = {}
    by_sev: dict[str, int] = {}
    n_events = 0
    statuses = statuses or {}
    for nodeid, b in builders:
        engine = Engine()
        engine.add_batch(b.events)
        ids = []
        for race in engine.races(b.trace_id):
            doc = race.to_dict()
            doc["id"] = len(races) + 1
            doc["anchor"] = f"race-{doc['id']}"
            doc["test"] = nodeid
            doc["status"] = statuses.get(doc["id"], "new")
            for side in ("first", "second"):
                doc[side]["origin_test"] = None
            races.append(doc)
            ids.append(doc["id"])
            by_sev[doc["severity"]] = by_sev.get(doc["severity"], 0) + 1
        tasks = {k: v.to_dict() for k, v in engine.tasks(b.trace_id).items()}
        tests.append({"nodeid": nodeid, "trace_id": uuid_str(b.trace_id), "outcome": "failed" if ids else "passed",
                      "races": ids, "race_failure": bool(ids)})
        if ids:
            traces[uuid_str(b.trace_id)] = {"test": nodeid, "events": [event_to_wire(e) for e in b.events], "tasks": tasks}
        n_events += len(b.events)
    return {
        "format": "raceway-session",
        "version": 1,
        "generated_at": "2026-01-01T00:00:00Z",
        "settings": {"rootdir": str(root) if root else "", "fail_on": "any"},
        "summary": {
            "tests": len(tests), "racing_tests": sum(1 for t in tests if t["races"]), "races": len(races),
            "by_severity": by_sev, "new": sum(1 for r in races if r["status"] == "new"),
            "baseline": sum(1 for r in races if r["status"] == "baseline"),
            "suppressed": sum(1 for r in races if r["status"] == "suppressed"),
            "events": n_events, "dropped": 0,
            "not_instrumented": [{"module": "cext_mod", "reason": "extension module <no source>"}],
            "failing": len(races), "notes": ["server unreachable: 127.0.0.1:9 <refused>"],
        },
        "tests": tests,
        "races": races,
        "traces": traces,
    }


def demo_session(root: Path | None = None) -> dict[str, Any]:
    """The counter race and the hostile trace, plus a passing test; writes app.py under root."""
    if root is not None:
        (root / "app.py").write_text(APP_SOURCE, encoding="utf-8")
    ids = itertools.count(1)
    builders = [
        ("tests/test_app.py::test_counter", counter_trace(ids, 1)),
        (HOSTILE_TEST, hostile_trace(ids, 2)),
    ]
    quiet = Builder(3, ids)
    q = quiet.main()
    quiet.access(q, "alone", "Write", ("app.py", 3), 1)
    builders.append(("tests/test_app.py::test_quiet", quiet))
    return session_for(builders, root)
