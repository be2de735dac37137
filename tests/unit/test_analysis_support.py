"""Hand-built traces for the analysis tests: a tiny recorder following the clock rules of
docs/internals.md (fork, join, release, acquire), stamping every event with explicit times."""

from __future__ import annotations

from typing import Any

from raceway_sdk.protocol.clock import vc_join, vc_tick
from raceway_sdk.protocol.events import Event, Metadata

MS = 1_000_000
T0 = 1_700_000_000 * 1_000_000_000  # 2023-11-14, a fixed wall-clock origin


def clock_of(e: Event) -> tuple[str, dict[str, int]]:
    assert e.ext is not None
    return e.ext["task"], e.vc


class Trace:
    """Emits events of one trace; tasks are named, clocks follow the HBTracker rules."""

    _next_id = 1

    def __init__(self, trace_id: int = 1, t0: int = T0, service: str = "svc") -> None:
        self.trace_id = trace_id
        self.t0 = t0
        self.service = service
        self.events: list[Event] = []
        self.vc: dict[str, dict[str, int]] = {}
        self.services: dict[str, str] = {}
        self.syncs: dict[str, dict[str, int]] = {}
        self.now = t0

    def task(self, name: str, vc: dict[str, int] | None = None, service: str | None = None) -> str:
        self.vc[name] = vc_tick(vc or {}, name)
        self.services[name] = service or self.service
        return name

    def emit(
        self,
        task: str,
        kind: str,
        data: dict[str, Any],
        at_ms: float | None = None,
        dur_ms: float | None = None,
        ext: dict[str, Any] | None = None,
        meta: dict[str, Any] | None = None,
    ) -> Event:
        ts = self.t0 + int(at_ms * MS) if at_ms is not None else self.now + 1000
        self.now = max(self.now, ts)
        Trace._next_id += 1
        md = Metadata(
            thread_id=f"thread-{task}",
            process_id=1,
            service_name=self.services.get(task, self.service),
            duration_ns=int(dur_ms * MS) if dur_ms is not None else None,
            **(meta or {}),
        )
        x = {"task": task, "trusted_vc": True}
        x.update(ext or {})
        e = Event(Trace._next_id, self.trace_id, None, ts, kind, data, md, self.vc[task], [], x)
        self.events.append(e)
        return e

    def fork(
        self, parent: str, child: str, at_ms: float | None = None, service: str | None = None
    ) -> str:
        self.emit(
            parent,
            "AsyncSpawn",
            {"task_id": "0", "spawned_by": parent},
            at_ms,
            ext={"child": child},
        )
        self.task(child, self.vc[parent], service)
        self.vc[parent] = vc_tick(self.vc[parent], parent)
        return child

    def join(self, parent: str, child: str, at_ms: float | None = None) -> Event:
        self.vc[parent] = vc_join(self.vc[parent], self.vc[child])
        e = self.emit(
            parent, "AsyncAwait", {"future_id": "0", "awaited_at": "x"}, at_ms, ext={"child": child}
        )
        self.vc[parent] = vc_tick(self.vc[parent], parent)
        return e

    def release(
        self, task: str, sync: str, at_ms: float | None = None, lock_type: str = "threading.Lock"
    ) -> Event:
        e = self.emit(
            task,
            "LockRelease",
            {"lock_id": sync, "lock_type": lock_type, "location": "x.py:1"},
            at_ms,
        )
        self.syncs[sync] = vc_join(self.syncs.get(sync, {}), self.vc[task])
        self.vc[task] = vc_tick(self.vc[task], task)
        return e

    def acquire(
        self, task: str, sync: str, at_ms: float | None = None, lock_type: str = "threading.Lock"
    ) -> Event:
        self.vc[task] = vc_join(self.vc[task], self.syncs.get(sync, {}))
        return self.emit(
            task,
            "LockAcquire",
            {"lock_id": sync, "lock_type": lock_type, "location": "x.py:2"},
            at_ms,
        )

    def access(
        self,
        task: str,
        var: str,
        access_type: str = "Write",
        at_ms: float | None = None,
        line: int = 10,
        value: Any = None,
    ) -> Event:
        data = {
            "variable": var,
            "old_value": None,
            "new_value": value,
            "location": f"app.py:{line}",
            "access_type": access_type,
        }
        return self.emit(task, "StateChange", data, at_ms, ext={"loc": f"loc:{var}"})

    def call(self, task: str, name: str, end_ms: float, dur_ms: float) -> Event:
        data = {"function_name": name, "module": "app", "args": {}, "file": "app.py", "line": 5}
        return self.emit(task, "FunctionCall", data, end_ms, dur_ms)
