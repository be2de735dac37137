"""Happens-before for events from the original Raceway SDKs (no trusted vector clock).

The original SDKs give every request context one ``metadata.thread_id`` and stamp events with a
per-service-instance counter (``causality_vector``), which orders nothing between two contexts
of one instance. Semantics used here (issue 2), computed in arrival order per trace:

* each ``thread_id`` is a logical task; its events are in program order (arrival order);
* different thread ids are concurrent unless an edge orders them:
  - a *parent link*: ``parent_id`` naming an event of another thread id that has arrived;
  - a *propagated clock*: the incoming ``causality_vector`` carries another service instance's
    component ``c = n`` (the ``raceway-clock`` header): the caller context's events with
    ``c <= n`` happened before (the caller is the context whose ``distributed_span_id`` equals
    this event's ``upstream_span_id``; without span ids, every context owning ``c``). The event's
    own instance component is ignored: concurrent contexts of one instance share it;
  - ``LockRelease`` -> ``LockAcquire`` on the same ``lock_id`` (whichever thread id releases).

Every event publishes its clock under its id (a release on ``("event", id)``, which ticks the
thread's own component), so later children and callees acquire exactly the clock of the event
they name. An edge whose source has not arrived yet is not applied retroactively: the event is
still analysed with the edges known when it arrives (never orphaned).
"""

from __future__ import annotations

from bisect import bisect_right

from raceway_sdk.protocol.clock import HBTracker
from raceway_sdk.protocol.events import Event, uuid_str


class _Context:
    """One original-SDK thread id of a trace."""

    __slots__ = ("own", "raws", "ids", "known")

    def __init__(self, own: str) -> None:
        self.own = own  # the component this context counts ("service#instance")
        self.raws: list[int] = []  # own-component value of each event (running max)
        self.ids: list[int] = []  # the event ids, parallel to `raws`
        self.known: dict[str, int] = {}  # foreign components already absorbed


class OriginalClocks:
    """Effective (task, vector clock) of each original-SDK event of one trace."""

    __slots__ = ("tracker", "trace_id", "contexts", "by_span", "by_comp", "clocks")

    def __init__(self, trace_id: int) -> None:
        self.tracker = HBTracker()
        self.trace_id = trace_id
        self.contexts: dict[str, _Context] = {}
        self.by_span: dict[str, str] = {}  # distributed_span_id -> thread id
        self.by_comp: dict[str, list[str]] = {}  # own component -> thread ids
        self.clocks: dict[int, tuple[str, dict[str, int]]] = {}  # event id -> (task, vc)

    def own_component(self, e: Event) -> str:
        meta = e.meta
        if meta.instance_id:
            return f"{meta.service_name}#{meta.instance_id}"
        return uuid_str(e.trace_id)

    def add(self, e: Event) -> tuple[str, dict[str, int]]:
        """Compute, remember and return the event's effective clock."""
        known = self.clocks.get(e.id)
        if known is not None:  # duplicate delivery: same answer, no new edges
            return known
        meta = e.meta
        task = meta.thread_id
        tracker = self.tracker
        ctx = self.contexts.get(task)
        if ctx is None:
            own = self.own_component(e)
            ctx = self.contexts[task] = _Context(own)
            self.by_comp.setdefault(own, []).append(task)
            span = meta.distributed_span_id
            if span and span not in self.by_span:
                self.by_span[span] = task
        # parent link across thread ids
        pid = e.parent_id
        if pid is not None:
            parent = self.clocks.get(pid)
            if parent is not None and parent[0] != task:
                tracker.acquire(task, ("event", pid))
        # propagated clock: foreign components that grew
        raw = e.vc
        own = ctx.own
        for comp, n in raw.items():
            if comp == own or n <= ctx.known.get(comp, 0):
                continue
            ctx.known[comp] = n
            for src in self._sources(comp, meta.upstream_span_id, task):
                sc = self.contexts[src]
                i = bisect_right(sc.raws, n) - 1
                if i >= 0:
                    tracker.acquire(task, ("event", sc.ids[i]))
        if e.kind == "LockAcquire":
            tracker.acquire(task, ("lock", e.data.get("lock_id")))
        vc = tracker.vc(task)
        out = (task, vc)
        self.clocks[e.id] = out
        tracker.release(task, ("event", e.id))
        if e.kind == "LockRelease":
            tracker.release(task, ("lock", e.data.get("lock_id")))
        mine = raw.get(own, 0)
        if ctx.raws and mine < ctx.raws[-1]:
            mine = ctx.raws[-1]
        ctx.raws.append(mine)
        ctx.ids.append(e.id)
        return out

    def _sources(self, comp: str, upstream: str | None, task: str) -> list[str]:
        if upstream:
            src = self.by_span.get(upstream)
            if src is not None and src != task and self.contexts[src].own == comp:
                return [src]
        return [t for t in self.by_comp.get(comp, ()) if t != task]
