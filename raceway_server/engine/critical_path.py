"""Critical path of one trace on the happens-before DAG, weighted by self time.

The DAG: nodes are the trace's events; edges are program order inside a logical task plus the
cross-task edges that vector clocks imply (fork, join, lock/queue hand-off, HTTP). The immediate
cross-task predecessors of an event are derived from its clock without any all-pairs scan: per
task the events are kept sorted by their own epoch, and for each event only the components that
grew since the task's previous event are looked up (binary search for the last event of that task
whose epoch is covered). Events of one task at one epoch share one clock dict, so most events cost
O(1).

Durations: an event with a duration covers ``[timestamp - duration, timestamp]`` (the original SDKs
emit timed events when the work ends: ``track_function``, ``HttpResponse.duration_ms``). An event's
weight is its *self time*: its duration minus the part of it covered by timed events of the same
task nested inside it (a function span containing calls, an ``HttpResponse`` whose duration covers
the handler), so nested durations are counted once. Waits across tasks are not double counted
either: a span that began before the latest end of another task's event on the path so far (a
client's ``HttpResponse`` reached through the server's handler) counts without the part that the
other tasks' spans on the path already cover (the union of those spans inside it, found by walking
the path back to the span's start; a global step budget bounds the walks, past it the whole span
before that latest end is dropped and the result says ``approximate_waits``).

Ties are deterministic: between equally long predecessors the earliest ``(timestamp, id)`` wins;
between equally long end points the latest ``(timestamp, id)`` wins, so the path runs to the end.
"""

from __future__ import annotations

from bisect import bisect_right
from collections import deque
from collections.abc import Callable, Sequence
from typing import Any

from raceway_sdk.protocol.events import Event, format_timestamp, uuid_str

WALK_BUDGET = 1_000_000  # steps spent locating remote path segments (then: frontier clipping)

ClockOf = Callable[[Event], "tuple[str, dict[str, int]]"]

_TIMED_DATA_MS = ("HttpResponse", "DatabaseQuery")  # kinds whose payload carries duration_ms


def duration_ns(event: Event) -> int:
    """The event's duration: ``metadata.duration_ns``, else the payload's ``duration_ms``."""
    d = event.meta.duration_ns
    if d is not None:
        return max(0, int(d))
    if event.kind in _TIMED_DATA_MS:
        ms = event.data.get("duration_ms")
        if isinstance(ms, (int, float)) and not isinstance(ms, bool) and ms > 0:
            return int(ms * 1_000_000)
    return 0


def _offset_form(ns: int) -> str:
    """RFC 3339 with ``+00:00`` (the original's critical path uses ``to_rfc3339()``)."""
    return format_timestamp(ns)[:-1] + "+00:00"


def event_location(event: Event) -> str:
    """Where the event happened: ``file:line``, the access location, the URL, else ``unknown``."""
    d = event.data
    kind = event.kind
    if kind == "FunctionCall":
        file = d.get("file")
        return f"{file}:{d.get('line', 0)}" if file else "unknown"
    if kind == "HttpRequest":
        return str(d.get("url") or "unknown")
    loc = d.get("location")
    return str(loc) if loc else "unknown"


def path_kind(event: Event) -> str:
    """The critical path's ``kind`` label, the original's strings where it had one."""
    d = event.data
    kind = event.kind
    if kind == "FunctionCall":
        return f"FunctionCall({d.get('function_name', '?')})"
    if kind == "StateChange":
        return f"StateChange({d.get('variable', '?')})"
    if kind == "HttpRequest":
        return f"HttpRequest({d.get('method', '?')} {d.get('url', '?')})"
    if kind == "HttpResponse":
        return f"HttpResponse({d.get('status', '?')})"
    if kind in ("LockAcquire", "LockRelease"):
        return f"{kind}({d.get('lock_type', '?')})"
    if kind == "Custom":
        return f"Custom({d.get('name', '?')})"
    if kind == "Error":
        return f"Error({d.get('error_type', '?')})"
    return kind


class HBGraph:
    """Happens-before DAG of one trace: program-order and immediate cross-task predecessors.

    ``cross_preds[i]`` holds only HB-maximal predecessors (a candidate that happened before another
    candidate, or before the task's previous event, is implied transitively and dropped).
    """

    __slots__ = ("events", "tasks", "vcs", "po_pred", "cross_preds", "task_order")

    def __init__(self, events: Sequence[Event], clock_of: ClockOf) -> None:
        self.events = events
        tasks: list[str] = []
        vcs: list[dict[str, int]] = []
        by_task: dict[str, list[int]] = {}
        for i, e in enumerate(events):
            task, vc = clock_of(e)
            tasks.append(task)
            vcs.append(vc)
            by_task.setdefault(task, []).append(i)
        # Program order: own epoch, then input (arrival) order, which a task emits in sequence.
        epochs: dict[str, list[int]] = {}
        for task, idxs in by_task.items():
            keyed = sorted((vcs[i].get(task, 0), i) for i in idxs)
            idxs[:] = [i for _, i in keyed]
            epochs[task] = [ep for ep, _ in keyed]
        po_pred: list[int] = [-1] * len(events)
        cross: list[tuple[int, ...]] = [()] * len(events)
        empty: dict[str, int] = {}
        for task, idxs in by_task.items():
            prev = -1
            for i in idxs:
                po_pred[i] = prev
                prev_vc = vcs[prev] if prev >= 0 else empty
                vc = vcs[i]
                if vc is not prev_vc:
                    cands = self._candidates(task, vc, prev_vc, by_task, epochs, vcs, tasks)
                    if cands:
                        cross[i] = cands
                prev = i
        self.tasks = tasks
        self.vcs = vcs
        self.po_pred = po_pred
        self.cross_preds = cross
        self.task_order = by_task

    @staticmethod
    def _candidates(
        task: str,
        vc: dict[str, int],
        prev_vc: dict[str, int],
        by_task: dict[str, list[int]],
        epochs: dict[str, list[int]],
        vcs: list[dict[str, int]],
        tasks: list[str],
    ) -> tuple[int, ...]:
        found: list[int] = []
        for comp, n in vc.items():
            if comp == task or n <= prev_vc.get(comp, 0):
                continue
            eps = epochs.get(comp)
            if eps is None:
                continue  # a task with no events in this trace
            k = bisect_right(eps, n) - 1
            if k < 0:
                continue
            j = by_task[comp][k]
            if eps[k] <= prev_vc.get(comp, 0):
                continue  # already known through the previous event of this task
            found.append(j)
        if len(found) > 1:
            keep = []
            for p in found:
                tp = tasks[p]
                ep = vcs[p].get(tp, 0)
                if not any(q != p and vcs[q].get(tp, 0) >= ep for q in found):
                    keep.append(p)
            found = keep
        return tuple(found)

    def topological(self) -> tuple[list[int], int]:
        """Kahn order; events caught in a clock cycle (inconsistent input) follow by time.

        Returns ``(order, n_cyclic)``; edges from not-yet-ordered events are ignored by callers.
        """
        n = len(self.events)
        indeg = [0] * n
        succ: list[list[int]] = [[] for _ in range(n)]
        for i in range(n):
            p = self.po_pred[i]
            if p >= 0:
                indeg[i] += 1
                succ[p].append(i)
            for q in self.cross_preds[i]:
                indeg[i] += 1
                succ[q].append(i)
        ready = deque(i for i in range(n) if indeg[i] == 0)
        order: list[int] = []
        while ready:
            i = ready.popleft()
            order.append(i)
            for s in succ[i]:
                indeg[s] -= 1
                if indeg[s] == 0:
                    ready.append(s)
        if len(order) == n:
            return order, 0
        placed = set(order)
        ev = self.events
        rest = sorted(
            (i for i in range(n) if i not in placed), key=lambda i: (ev[i].timestamp_ns, ev[i].id)
        )
        return order + rest, len(rest)


def self_times(graph: HBGraph) -> tuple[list[int], list[int]]:
    """Per event: (self time in ns, interval start in ns). Nested same-task spans subtracted."""
    events = graph.events
    n = len(events)
    dur = [duration_ns(e) for e in events]
    start = [events[i].timestamp_ns - dur[i] for i in range(n)]
    selft = list(dur)
    for idxs in graph.task_order.values():
        timed = [i for i in idxs if dur[i] > 0]
        if len(timed) < 2:
            continue
        # Outer spans first: by start, then longest; stack holds [end, index, covered_until].
        timed.sort(key=lambda i: (start[i], -dur[i], i))
        stack: list[list[int]] = []
        for i in timed:
            s, e = start[i], events[i].timestamp_ns
            while stack and stack[-1][0] <= s:
                stack.pop()
            # Charge the covered time to the innermost open span; a part sticking out past
            # its end (spans that overlap without nesting) goes to the next enclosing one.
            lo_edge = s
            for k in range(len(stack) - 1, -1, -1):
                anc = stack[k]
                lo = max(lo_edge, anc[2])
                hi = min(e, anc[0])
                if hi > lo:
                    selft[anc[1]] -= hi - lo
                    anc[2] = hi
                lo_edge = max(lo_edge, anc[0])
                if lo_edge >= e:
                    break
            stack.append([e, i, s])
    return selft, start


def critical_path(
    trace_id: int, events: Sequence[Event], clock_of: ClockOf, graph: HBGraph | None = None
) -> dict[str, Any]:
    """Longest self-time path through the trace's happens-before DAG (original response shape)."""
    if graph is None:
        graph = HBGraph(events, clock_of)
    n = len(events)
    selft, start = self_times(graph)
    order, n_cyclic = graph.topological()
    best = [-1] * n
    via = [-1] * n
    contrib = [0] * n
    # frontier[i]: latest end among the other-task events on the best path to i. A span that
    # began before it (a wait) overlapped remote work already on the path: that overlap (the
    # union of the other tasks' spans on the path inside this span) is not counted again.
    frontier = [0] * n
    ignored = 0
    walk_budget = WALK_BUDGET

    def key(i: int) -> tuple[int, int]:
        return (events[i].timestamp_ns, events[i].id)

    def remote_overlap(q: int, task: str, s_i: int, end_i: int) -> int | None:
        nonlocal walk_budget
        ivs: list[tuple[int, int]] = []
        while q >= 0 and events[q].timestamp_ns > s_i:
            walk_budget -= 1
            if walk_budget < 0:
                return None
            if graph.tasks[q] != task:
                lo, hi = max(start[q], s_i), min(events[q].timestamp_ns, end_i)
                if hi > lo:
                    ivs.append((lo, hi))
            q = via[q]
        ivs.sort()
        covered, reach = 0, s_i
        for lo, hi in ivs:
            if hi > reach:
                covered += hi - max(lo, reach)
                reach = hi
        return covered

    for i in order:
        own = selft[i]
        s_i, end_i = start[i], events[i].timestamp_ns
        task_i = graph.tasks[i]
        val, pred, got, fr = own, -1, own, 0
        p = graph.po_pred[i]
        cands: list[tuple[int, int]] = []
        if p >= 0:
            cands.append((p, frontier[p]))
        for q in graph.cross_preds[i]:
            cands.append((q, max(frontier[q], events[q].timestamp_ns)))
        for q, f in cands:
            if best[q] < 0:
                ignored += 1  # predecessor inside a clock cycle
                continue
            c = own
            if f > s_i and own > 0:
                overlap = remote_overlap(q, task_i, s_i, end_i)
                if overlap is None:  # budget spent: drop everything before the frontier
                    c = min(own, max(0, end_i - f))
                else:
                    c = max(0, own - overlap)
            v = best[q] + c
            if v > val or (v == val and (pred < 0 or key(q) < key(pred))):
                val, pred, got, fr = v, q, c, f
        best[i] = val
        via[i] = pred
        contrib[i] = got
        frontier[i] = fr
    path: list[int] = []
    if n:
        end = max(range(n), key=lambda i: (best[i], key(i)))
        while end >= 0:
            path.append(end)
            end = via[end]
        path.reverse()
    total_ns = best[path[-1]] if path else 0
    if n:
        span_ns = max(e.timestamp_ns for e in events) - min(start)
    else:
        span_ns = 0
    out: dict[str, Any] = {
        "trace_id": uuid_str(trace_id),
        "path_events": len(path),
        "total_duration_ms": total_ns / 1e6,
        "trace_total_duration_ms": span_ns / 1e6,
        "percentage_of_total": (total_ns / span_ns * 100.0) if span_ns > 0 else 0.0,
        "path": [
            {
                "id": uuid_str(events[i].id),
                "kind": path_kind(events[i]),
                "location": event_location(events[i]),
                "timestamp": _offset_form(events[i].timestamp_ns),
                "duration_ms": contrib[i] / 1e6,
                "task": graph.tasks[i],
            }
            for i in path
        ],
    }
    if walk_budget < 0:
        out["approximate_waits"] = True
    if n_cyclic:
        out["cyclic_events"] = n_cyclic
        out["ignored_edges"] = ignored
    return out
