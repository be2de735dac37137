"""Audit trail: every access to a variable in one trace, with causal links and race flags.

Order: a linear extension of happens-before (an access that happened before another is always
listed first), concurrent accesses by ``(timestamp, id)``. Built as a merge of the per-task
program-order queues: take the earliest head; if another task's pending head happened before it,
take that one instead (so skewed wall clocks across services cannot invert a causal order).

``has_causal_link_to_previous``: the previous access to the same location (``ext.loc``, else the
variable name) happened before this one by the vector clocks; the first access has nothing to be
concurrent with and is ``true`` like the original. ``is_race``: the access is one of the accesses
of a race the engine reported (engine races are deduplicated per pair of code locations, so other
accesses at the same two sites are represented by that report; ``race_ids`` links them).
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Mapping, Sequence
from typing import Any
from uuid import UUID

from raceway_sdk.protocol.clock import happened_before
from raceway_sdk.protocol.events import Event, format_timestamp, uuid_str

from .critical_path import ClockOf


def location_key(event: Event) -> str:
    """Identity of the accessed location: our ``ext.loc``, else the original variable name."""
    ext = event.ext
    if ext is not None:
        loc = ext.get("loc")
        if loc is not None:
            return str(loc)
    return str(event.data.get("variable", ""))


def as_event_id(value: Any) -> int:
    """An event id given as int or UUID string (race dicts may carry either)."""
    if isinstance(value, int):
        return value
    if isinstance(value, UUID):
        return value.int
    if isinstance(value, str):
        return UUID(value).int
    raise TypeError(f"event id must be an int or UUID string, got {type(value).__name__}")


def race_dict(race: Any) -> dict[str, Any]:
    """A race as a dict: ``Race.to_dict()`` or an already plain dict."""
    if isinstance(race, Mapping):
        return dict(race)
    to_dict = getattr(race, "to_dict", None)
    if to_dict is None:
        raise TypeError(f"race must be a Race or a dict, got {type(race).__name__}")
    return dict(to_dict())


def race_index(races: Iterable[Any]) -> dict[int, list[int]]:
    """event id -> ids of the reported races it takes part in."""
    index: dict[int, list[int]] = {}
    for r in races:
        rd = race_dict(r)
        for side in ("first", "second", "stale_read"):
            acc = rd.get(side)
            if acc:
                index.setdefault(as_event_id(acc["event_id"]), []).append(rd.get("id", 0))
    return index


def causal_order(
    accesses: Sequence[Event], clocks: Sequence[tuple[str, dict[str, int]]]
) -> list[int]:
    """Indices of ``accesses`` in happens-before-then-time order (see the module docstring)."""
    queues: dict[str, list[int]] = {}
    for i, (task, _vc) in enumerate(clocks):
        queues.setdefault(task, []).append(i)
    epochs: dict[str, list[int]] = {}
    for task, q in queues.items():
        keyed = sorted((clocks[i][1].get(task, 0), i) for i in q)
        q[:] = [i for _, i in keyed]
        epochs[task] = [ep for ep, _ in keyed]
    heads = dict.fromkeys(queues, 0)
    heap = [(accesses[q[0]].timestamp_ns, accesses[q[0]].id, t, 0) for t, q in queues.items()]
    heapq.heapify(heap)
    order: list[int] = []
    while heap:
        _ts, _id, top, pos = heap[0]
        if heads[top] != pos:
            heapq.heappop(heap)
            continue
        cand, visited = top, {top}
        while True:
            vc = clocks[queues[cand][heads[cand]]][1]
            blocker = None
            pending = (t for t in queues if heads[t] < len(queues[t]))
            comps = pending if len(queues) <= len(vc) else iter(vc)
            for comp in comps:
                if comp == cand or comp not in heads:
                    continue
                h = heads[comp]
                if h < len(epochs[comp]) and 0 < epochs[comp][h] <= vc.get(comp, 0):
                    blocker = comp
                    break
            if blocker is None or blocker in visited:
                break  # no earlier pending access (or inconsistent clocks: fall back to time)
            visited.add(blocker)
            cand = blocker
        q = queues[cand]
        order.append(q[heads[cand]])
        heads[cand] += 1
        if heads[cand] < len(q):
            nxt = q[heads[cand]]
            heapq.heappush(heap, (accesses[nxt].timestamp_ns, accesses[nxt].id, cand, heads[cand]))
    return order


def _trail(
    events: Sequence[Event], clock_of: ClockOf, races_by_event: dict[int, list[int]]
) -> list[dict[str, Any]]:
    clocks = [clock_of(e) for e in events]
    last_by_loc: dict[str, int] = {}
    out: list[dict[str, Any]] = []
    for i in causal_order(events, clocks):
        e = events[i]
        task, vc = clocks[i]
        loc = location_key(e)
        prev = last_by_loc.get(loc)
        if prev is None:
            linked = True
        else:
            p_task, p_vc = clocks[prev]
            linked = happened_before(p_task, p_vc, vc)
        last_by_loc[loc] = i
        d = e.data
        new_value = d.get("new_value")
        if "new_value" not in d and e.ext is not None:
            new_value = e.ext.get("value")
        rids = races_by_event.get(e.id, [])
        out.append(
            {
                "event_id": uuid_str(e.id),
                "timestamp": format_timestamp(e.timestamp_ns),
                "thread_id": e.meta.thread_id,
                "service_name": e.meta.service_name,
                "access_type": d.get("access_type"),
                "old_value": d.get("old_value"),
                "new_value": new_value,
                "location": d.get("location", "unknown"),
                "has_causal_link_to_previous": linked,
                "is_race": bool(rids),
                "task": task,
                "loc": loc,
                "race_ids": list(rids),
            }
        )
    return out


def audit_trail(
    trace_id: int, events: Sequence[Event], variable: str, clock_of: ClockOf, races: Iterable[Any]
) -> dict[str, Any]:
    """``GET /api/traces/:id/audit-trail/:variable``: accesses whose variable name or location
    identity equals ``variable`` (unknown variable: empty list)."""
    selected = [
        e
        for e in events
        if e.kind == "StateChange"
        and (e.data.get("variable") == variable or location_key(e) == variable)
    ]
    return {
        "trace_id": uuid_str(trace_id),
        "variable": variable,
        "accesses": _trail(selected, clock_of, race_index(races)),
    }


def audit_trails(
    events: Sequence[Event], clock_of: ClockOf, races: Iterable[Any]
) -> dict[str, list[dict[str, Any]]]:
    """Bulk form for ``/api/traces/:id``: variable name -> its trail."""
    groups: dict[str, list[Event]] = {}
    for e in events:
        if e.kind == "StateChange":
            name = e.data.get("variable")
            groups.setdefault(str(name) if name is not None else location_key(e), []).append(e)
    index = race_index(races)
    return {name: _trail(evs, clock_of, index) for name, evs in sorted(groups.items())}
