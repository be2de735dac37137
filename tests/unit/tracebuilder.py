"""Build engine inputs by hand: events stamped with vector clocks by ``HBTracker``.

Rules (docs/internals.md "Clocks"): fork: child = parent + {child: 1}, parent ticks; join:
joiner = join(joiner, child's final clock), joiner ticks; release(s): s = join(s, task), task
ticks; acquire(s): task = join(task, s). Events carry the clock the task has when it emits them
(a release event the clock before its tick, an acquire/join event the clock after the join),
exactly as the SDK recorder stamps them. Task ids are ``"<process>/<n>"``.
"""

from __future__ import annotations

import itertools
import random
from typing import Any

from raceway_sdk.protocol.clock import HBTracker, vc_join
from raceway_sdk.protocol.events import Event, Metadata, new_event_id

_ts = itertools.count(1_700_000_000_000_000_000, 1000)


class TraceBuilder:
    """Emits the events of one trace; several processes may share it (``process=``)."""

    def __init__(self, trace_id: int | None = None) -> None:
        self.trace_id = trace_id if trace_id is not None else new_event_id()
        self.events: list[Event] = []
        self.hb = HBTracker()
        self.loops: dict[str, str | None] = {}
        self.segs: dict[str, int] = {}
        self._n: dict[str, int] = {}

    # ------------------------------------------------------------------ tasks

    def _new_id(self, process: str) -> str:
        n = self._n.get(process, 0) + 1
        self._n[process] = n
        return f"{process}/{n}"

    def main(self, process: str = "p1", loop: str | None = None) -> str:
        """A root task (a process's main thread)."""
        tid = self._new_id(process)
        self.hb.vc(tid)
        self.loops[tid] = loop
        self.segs[tid] = 0
        return tid

    def fork(
        self,
        parent: str,
        name: str = "",
        kind: str = "thread",
        loop: str | None = None,
        site: str = "app.py:1",
    ) -> str:
        child = self._new_id(parent.split("/")[0])
        file, line = site.rsplit(":", 1)
        self._emit(
            parent,
            "AsyncSpawn",
            {"task_id": "00000000-0000-4000-8000-000000000000", "spawned_by": parent},
            {
                "child": child,
                "child_name": name or child,
                "child_kind": kind,
                "child_loop": loop,
                "stack": [[file, int(line), "spawner"]],
                "origin_trace": self.trace_id,
            },
        )
        self.hb.fork(parent, child)
        self.loops[child] = loop
        self.segs[child] = 0
        return child

    def end(self, task: str) -> None:
        self._emit(task, "Custom", {"name": "raceway.task_end", "data": {"task": task}}, {})
        self.hb.end(task)

    def join(self, joiner: str, child: str) -> None:
        if not self.hb.ended(child):
            self.end(child)
        joined = vc_join(self.hb.vc(joiner), self.hb.vc(child))  # the AsyncAwait stamp
        self._emit(
            joiner,
            "AsyncAwait",
            {"future_id": "00000000-0000-4000-8000-000000000000", "awaited_at": "app.py:2"},
            {"child": child},
            joined,
        )
        self.hb.join(joiner, child)

    def await_(self, task: str) -> None:
        """A suspension point of an event-loop task: later accesses are a new segment."""
        self.segs[task] += 1

    # ------------------------------------------------------------------ sync

    def release(self, task: str, sync: str, lock_type: str = "threading.Lock") -> None:
        self._emit(
            task,
            "LockRelease",
            {"lock_id": sync, "lock_type": lock_type, "location": "app.py:3"},
            {"sync": "release"},
        )
        self.hb.release(task, sync)

    def acquire(self, task: str, sync: str, lock_type: str = "threading.Lock") -> None:
        self.hb.acquire(task, sync)
        self._emit(
            task,
            "LockAcquire",
            {"lock_id": sync, "lock_type": lock_type, "location": "app.py:4"},
            {"sync": "acquire"},
        )

    # ------------------------------------------------------------------ accesses

    def access(
        self,
        task: str,
        loc: str,
        access_type: str,
        site: str,
        value: Any = None,
        variable: str | None = None,
    ) -> Event:
        ext: dict[str, Any] = {"loc": loc, "func": "f", "stack": [[*site.rsplit(":", 1), "f"]]}
        if value is not None:
            ext["value"] = value
        loop = self.loops[task]
        if loop is not None:
            ext["loop"] = loop
            ext["seg"] = self.segs[task]
        data = {
            "variable": variable or loc,
            "old_value": None,
            "new_value": value,
            "location": site,
            "access_type": access_type,
        }
        return self._emit(task, "StateChange", data, ext)

    def read(self, task: str, loc: str, site: str = "app.py:10", **kw: Any) -> Event:
        return self.access(task, loc, "Read", site, **kw)

    def write(self, task: str, loc: str, site: str = "app.py:20", **kw: Any) -> Event:
        return self.access(task, loc, "Write", site, **kw)

    # ------------------------------------------------------------------ emission

    def _emit(
        self,
        task: str,
        kind: str,
        data: dict[str, Any],
        ext: dict[str, Any],
        vc: dict[str, int] | None = None,
    ) -> Event:
        ext["task"] = task
        ext["trusted_vc"] = True
        meta = Metadata(task, 1, task.split("/")[0], "test", {}, None, task.split("/")[0])
        ev = Event(
            new_event_id(),
            self.trace_id,
            None,
            next(_ts),
            kind,
            data,
            meta,
            vc if vc is not None else self.hb.vc(task),
            [],
            ext,
        )
        self.events.append(ev)
        return ev


def interleave(events: list[Event], rng: random.Random, key: Any = None) -> list[Event]:
    """A random arrival order that keeps each group's events (default: per task) in order."""
    group = key or (lambda e: e.ext["task"] if e.ext else e.meta.thread_id)
    groups: dict[Any, list[Event]] = {}
    for e in events:
        groups.setdefault(group(e), []).append(e)
    heads = {g: 0 for g in groups}
    out: list[Event] = []
    live = list(groups)
    while live:
        g = rng.choice(live)
        out.append(groups[g][heads[g]])
        heads[g] += 1
        if heads[g] == len(groups[g]):
            live.remove(g)
    return out


def original_event(
    trace_id: int,
    thread_id: str,
    kind: str,
    data: dict[str, Any],
    vc: dict[str, int],
    *,
    parent_id: int | None = None,
    service: str = "banking-api",
    instance: str | None = "host-123",
    span: str | None = None,
    upstream: str | None = None,
) -> Event:
    """An event as the original SDKs send it (no ``raceway`` extension)."""
    meta = Metadata(
        thread_id,
        123,
        service,
        "development",
        {"sdk_language": "python"},
        None,
        instance,
        span,
        upstream,
    )
    return Event(new_event_id(), trace_id, parent_id, next(_ts), kind, data, meta, vc, [], None)
