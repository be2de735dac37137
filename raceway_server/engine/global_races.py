"""Cross-trace (global) races by causality, with bounded work.

Two accesses to one location (``ext.loc``, else the variable name) from different traces race
iff they conflict (at least one write, not both atomic), come from different logical tasks, hold
no common lock, and are concurrent:

* **Clocks decide when they can.** If either access happened before the other by the vector
  clocks (effective clocks from the engine for original-SDK events), they do not race. If their
  clocks share at least one component, the clocks carry the causal history that connects the two
  traces (a task leaked from one test into the next, a shared server task), so "not ordered" means
  concurrent.
* **No shared component: real-time overlap.** Clocks with no component in common carry no
  information about each other at all (two test sessions, two requests whose clocks were never
  propagated). Then the accesses race only if their traces were in flight at the same time (the
  traces' wall-clock spans overlap). Two requests that ran simultaneously against one service
  race; accesses days apart do not (the original reported every such pair).

Work is bounded: the accesses of one variable are grouped into runs of one trace, one task, one
clock and one lock set (every access of a run gets the same verdict against any other access, so a
pair of runs stands for ``n_a × n_b`` access pairs, counted exactly without enumeration). Runs
whose clocks are connected (one *clock family*, by union-find over components) are visited in time
order through a forest of "happened before a later run" links, so ordered traces are skipped in
O(1) each; runs of different families are aggregated per trace and swept by trace start time, so
only traces that overlap are paired. Every visit counts against ``max_comparisons``; when it is
spent the results say ``capped: true`` and the counts are lower bounds.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from raceway_sdk.protocol.clock import vc_leq
from raceway_sdk.protocol.events import ATOMIC_TYPES, WRITE_TYPES, Event, format_timestamp, uuid_str

from .audit import location_key
from .critical_path import ClockOf, duration_ns

DEFAULT_MAX_COMPARISONS = 250_000
DEFAULT_MAX_DETAILS = 100


def conflicts(a: str, b: str) -> bool:
    """At least one write, not both atomic (the engine's conflict rule)."""
    return (a in WRITE_TYPES or b in WRITE_TYPES) and not (a in ATOMIC_TYPES and b in ATOMIC_TYPES)


class _Run:
    """Accesses of one trace, one task, one clock, one lock set (one verdict for all)."""

    __slots__ = (
        "trace",
        "task",
        "vc",
        "locks",
        "first",
        "types",
        "events",
        "racing_types",
        "family",
    )

    def __init__(
        self, trace: int, task: str, vc: dict[str, int], locks: frozenset[str], e: Event
    ) -> None:
        self.trace = trace
        self.task = task
        self.vc = vc
        self.locks = locks
        self.first = e.timestamp_ns
        self.types: dict[str, Event] = {}  # access type -> first access of that type
        self.events: dict[str, int] = {}  # access type -> count
        self.racing_types: set[str] = set()
        self.family = task

    def task_of(self, _access_type: str) -> str:
        return self.task

    def mark(self, access_type: str) -> None:
        self.racing_types.add(access_type)


def _before(x: _Run, b: _Run) -> bool:
    """``x`` happened before ``b``: the epoch test, plus a full clock comparison for two runs of
    one task at one epoch (an acquire joins without ticking, and runs may arrive out of program
    order, so equal epochs alone do not say which run knows more)."""
    ex = x.vc.get(x.task, 0)
    if not 0 < ex <= b.vc.get(x.task, 0):
        return False
    if x.task == b.task and ex == b.vc.get(b.task, 0) and x.vc is not b.vc:
        return vc_leq(x.vc, b.vc)
    return True


class _Group:
    """All runs of one trace, one clock family and one lock set (cross-family comparisons)."""

    __slots__ = ("trace", "family", "locks", "types", "tasks", "events", "runs")

    def __init__(self, trace: int, family: str, locks: frozenset[str]) -> None:
        self.trace = trace
        self.family = family
        self.locks = locks
        self.types: dict[str, Event] = {}
        self.tasks: dict[str, str] = {}
        self.events: dict[str, int] = {}
        self.runs: list[_Run] = []

    def add(self, r: _Run) -> None:
        self.runs.append(r)
        for t, n in r.events.items():
            self.events[t] = self.events.get(t, 0) + n
            if t not in self.types:
                self.types[t] = r.types[t]
                self.tasks[t] = r.task

    def task_of(self, access_type: str) -> str:
        return self.tasks[access_type]

    def mark(self, access_type: str) -> None:
        for r in self.runs:
            if access_type in r.events:
                r.racing_types.add(access_type)


class GlobalRaceAnalysis:
    """One pass over all traces' events; read the two API shapes from the result."""

    def __init__(
        self,
        events: Iterable[Event],
        clock_of: ClockOf,
        max_comparisons: int = DEFAULT_MAX_COMPARISONS,
        max_details: int = DEFAULT_MAX_DETAILS,
    ) -> None:
        if max_comparisons < 0 or max_details < 0:
            raise ValueError("max_comparisons and max_details must be >= 0")
        self.max_comparisons = max_comparisons
        self.max_details = max_details
        self.total_events = 0
        self.spans: dict[int, list[int]] = {}
        by_loc: dict[str, list[tuple[Event, str, dict[str, int]]]] = {}
        for e in events:
            self.total_events += 1
            start = e.timestamp_ns - duration_ns(e)
            span = self.spans.get(e.trace_id)
            if span is None:
                self.spans[e.trace_id] = [start, e.timestamp_ns]
            else:
                span[0] = min(span[0], start)
                span[1] = max(span[1], e.timestamp_ns)
            if e.kind == "StateChange":
                task, vc = clock_of(e)
                by_loc.setdefault(location_key(e), []).append((e, task, vc))
        self.comparisons = 0
        self.capped = False
        self.pairs = 0
        self.details: list[dict[str, Any]] = []
        self.variables: list[dict[str, Any]] = []
        self._ww = False
        self._family: dict[str, str] = {}
        seen_vcs: set[int] = set()
        for accs in by_loc.values():
            for _e, task, vc in accs:
                if id(vc) not in seen_vcs:
                    seen_vcs.add(id(vc))
                    for comp in vc:
                        self._union(task, comp)
        plans = []
        for loc, accs in by_loc.items():
            if len({e.trace_id for e, _, _ in accs}) > 1:
                runs = self._runs(accs)
                plans.append((len(runs), loc, runs))
        plans.sort(key=lambda p: (p[0], p[1]))
        for _, loc, runs in plans:
            self._variable(loc, runs)
        self.variables.sort(key=lambda v: (-v["trace_count"], -v["access_count"], v["variable"]))

    @staticmethod
    def _runs(accs: list[tuple[Event, str, dict[str, int]]]) -> list[_Run]:
        accs.sort(
            key=lambda a: (a[0].trace_id, a[1], a[2].get(a[1], 0), a[0].timestamp_ns, a[0].id)
        )
        runs: list[_Run] = []
        cur: _Run | None = None
        for e, task, vc in accs:
            locks = frozenset(e.lock_set)
            if (
                cur is None
                or cur.trace != e.trace_id
                or cur.task != task
                or (cur.vc is not vc and cur.vc != vc)
                or cur.locks != locks
            ):
                cur = _Run(e.trace_id, task, vc, locks, e)
                runs.append(cur)
            at = str(e.data.get("access_type"))
            cur.types.setdefault(at, e)
            cur.events[at] = cur.events.get(at, 0) + 1
        runs.sort(key=lambda r: (r.first, r.trace, r.task))
        return runs

    def _find(self, x: str) -> str:
        parent = self._family
        root = x
        while parent.get(root, root) != root:
            root = parent[root]
        while x != root:  # path compression
            parent[x], x = root, parent.get(x, x)
        return root

    def _union(self, a: str, b: str) -> None:
        ra, rb = self._find(a), self._find(b)
        if ra != rb:
            self._family[ra] = rb

    def _spend(self) -> bool:
        """Count one comparison; False (and ``capped``) once the budget is spent."""
        if self.comparisons >= self.max_comparisons:
            self.capped = True
            return False
        self.comparisons += 1
        return True

    def _concurrent(self, a: _Run, b: _Run) -> tuple[bool, bool]:
        """(concurrent, decided by time overlap)."""
        if a.task == b.task or (a.locks and not a.locks.isdisjoint(b.locks)):
            return False, False
        ea = a.vc.get(a.task, 0)
        eb = b.vc.get(b.task, 0)
        if (ea > 0 and ea <= b.vc.get(a.task, 0)) or (eb > 0 and eb <= a.vc.get(b.task, 0)):
            return False, False
        if not a.vc.keys().isdisjoint(b.vc.keys()):
            return True, False
        return self._overlap(a.trace, b.trace), True

    def _overlap(self, ta: int, tb: int) -> bool:
        sa, sb = self.spans[ta], self.spans[tb]
        return sa[0] <= sb[1] and sb[0] <= sa[1]

    def _count(self, a: _Run | _Group, b: _Run | _Group, by_time: bool) -> None:
        """Add the conflicting access pairs of two concurrent units."""
        for ta, na in a.events.items():
            for tb, nb in b.events.items():
                if not conflicts(ta, tb):
                    continue
                a.mark(ta)
                b.mark(tb)
                is_ww = ta in WRITE_TYPES and tb in WRITE_TYPES
                self._ww = self._ww or is_ww
                self.pairs += na * nb
                if len(self.details) < self.max_details:
                    self.details.append(self._detail(a, ta, b, tb, is_ww, by_time))

    def _within(self, runs: list[_Run]) -> None:
        """Runs of one clock family, in time order, kept as a forest: the roots are the runs no
        later run is known to follow; a run that happened before a newer run ``c`` moves under
        ``c``. Everything under a run that happened before the next run ``b`` happened before
        ``b`` too, so only the roots and the subtrees of runs concurrent with ``b`` are visited:
        a sequence of ordered tests costs O(1) per run, real concurrency costs its pairs."""
        roots: list[_Run] = []
        children: dict[int, list[_Run]] = {}
        for b in runs:
            kept: list[_Run] = []
            under_b: list[_Run] = []
            stack: list[_Run] = []
            for x in roots:
                if not self._spend():
                    return
                if _before(x, b):
                    under_b.append(x)
                else:
                    kept.append(x)
                    stack.append(x)
            while stack:
                x = stack.pop()  # x did not happen before b
                if x.trace != b.trace:
                    conc, by_time = self._concurrent(x, b)
                    if conc:
                        self._count(x, b, by_time)
                for y in children.get(id(x), ()):
                    if not self._spend():
                        return
                    if not _before(y, b):
                        stack.append(y)
            if under_b:
                children[id(b)] = under_b
            kept.append(b)
            roots = kept

    def _across(self, runs: list[_Run]) -> None:
        """Runs of different clock families share no component: they race iff their traces
        overlap in time. Aggregated per (trace, family, lock set) and swept by start time."""
        groups: dict[tuple[int, str, frozenset[str]], _Group] = {}
        for r in runs:
            key = (r.trace, r.family, r.locks)
            g = groups.get(key)
            if g is None:
                g = groups[key] = _Group(*key)
            g.add(r)
        ordered = sorted(groups.values(), key=lambda g: (self.spans[g.trace][0], g.trace, g.family))
        active: list[_Group] = []
        for g in ordered:
            start = self.spans[g.trace][0]
            active = [h for h in active if self.spans[h.trace][1] >= start]
            for h in active:
                if h.family == g.family or h.trace == g.trace:
                    continue
                if h.locks and not h.locks.isdisjoint(g.locks):
                    continue
                if not self._spend():
                    return
                self._count(h, g, True)
            active.append(g)

    def _variable(self, loc: str, runs: list[_Run]) -> None:
        self._ww = False
        families: dict[str, list[_Run]] = {}
        for r in runs:
            r.family = self._find(r.task)
            families.setdefault(r.family, []).append(r)
        for fam in families.values():
            if not self.capped and len({r.trace for r in fam}) > 1:
                self._within(fam)
        if not self.capped and len(families) > 1:
            self._across(runs)
        racing = [r for r in runs if r.racing_types]
        if not racing:
            return
        name = next(iter(racing[0].types.values())).data.get("variable", loc)
        self.variables.append(
            {
                "variable": str(name),
                "loc": loc,
                "trace_count": len({r.trace for r in racing}),
                "access_count": sum(r.events[t] for r in racing for t in r.racing_types),
                "access_types": sorted({t for r in racing for t in r.racing_types}),
                "thread_count": len({r.task for r in racing}),
                "severity": "CRITICAL" if self._ww else "WARNING",
                "trace_ids": sorted(str(uuid_str(t)) for t in {r.trace for r in racing}),
            }
        )

    @staticmethod
    def _detail(
        a: _Run | _Group, ta: str, b: _Run | _Group, tb: str, ww: bool, by_time: bool
    ) -> dict[str, Any]:
        ea, eb = a.types[ta], b.types[tb]
        var = ea.data.get("variable", location_key(ea))
        kind = "Write-Write" if ww else "Read-Write"
        why = (
            "their clocks share no component and the two traces overlapped in time"
            if by_time
            else "neither access happened before the other by their vector clocks"
        )
        return {
            "severity": "CRITICAL" if ww else "WARNING",
            "variable": var,
            "trace1_id": uuid_str(a.trace),
            "trace2_id": uuid_str(b.trace),
            "event1_id": uuid_str(ea.id),
            "event2_id": uuid_str(eb.id),
            "event1_thread": ea.meta.thread_id,
            "event2_thread": eb.meta.thread_id,
            "event1_task": a.task_of(ta),
            "event2_task": b.task_of(tb),
            "event1_location": ea.data.get("location", "unknown"),
            "event2_location": eb.data.get("location", "unknown"),
            "event1_timestamp": format_timestamp(ea.timestamp_ns),
            "event2_timestamp": format_timestamp(eb.timestamp_ns),
            "description": (
                f"Cross-trace {kind} race on {var}: {ea.data.get('access_type')} in task {a.task_of(ta)} "
                f"and {eb.data.get('access_type')} in task {b.task_of(tb)}; {why}"
            ),
        }

    def analyze_response(self) -> dict[str, Any]:
        """``GET /api/analyze/global`` data (racing access pairs, not all co-accesses)."""
        lines = [
            f"🌐 GLOBAL: Found {self.pairs} pairs of concurrent conflicting accesses across traces"
        ]
        if self.pairs > len(self.details):
            lines.append(f"   Showing first {len(self.details)} race pairs ({self.pairs} total)")
        if self.capped:
            lines.append(
                f"   Comparison budget of {self.max_comparisons} run pairs reached: counts are lower bounds"
            )
        return {
            "total_traces": len(self.spans),
            "total_events": self.total_events,
            "concurrent_events": self.pairs,
            "potential_races": self.pairs,
            "anomalies": lines,
            "race_details": self.details,
            "racing_variables": len(self.variables),
            "comparisons": self.comparisons,
            "comparison_limit": self.max_comparisons,
            "capped": self.capped,
        }

    def candidates_response(self) -> dict[str, Any]:
        """``GET /api/distributed/global-races`` data: variables with real cross-trace races."""
        return {
            "total_races": len(self.variables),
            "races": self.variables,
            "capped": self.capped,
            "comparisons": self.comparisons,
        }
