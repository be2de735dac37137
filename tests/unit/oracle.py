"""Naive all-pairs race oracle (tests only): explicit happens-before graph, no vector clocks.

Edges: program order per task (emission order), fork (``AsyncSpawn`` -> the child's first event),
join (the child's last event -> ``AsyncAwait`` naming it), release -> every later acquire of the
same sync object. Happens-before is reachability in that graph (ancestor bitsets). Then every
pair of accesses to one location is checked, and every (read, write, other write) triple for the
asyncio lost-update rule, written out literally from docs/internals.md.
"""

from __future__ import annotations

from typing import Any

from raceway_sdk.protocol.events import Event

WRITES = {"Write", "AtomicWrite", "AtomicRMW"}
ATOMICS = {"AtomicRead", "AtomicWrite", "AtomicRMW"}


def _conflict(a: str, b: str) -> bool:
    return (a in WRITES or b in WRITES) and not (a in ATOMICS and b in ATOMICS)


def happens_before_sets(events: list[Event]) -> list[int]:
    """``anc[i]``: bitset of the events that happened before event ``i`` (emission order)."""
    preds: list[list[int]] = [[] for _ in events]
    last_of: dict[str, int] = {}
    spawn_of: dict[str, int] = {}
    releases: dict[str, list[int]] = {}
    for i, e in enumerate(events):
        ext = e.ext or {}
        task = ext["task"]
        if task in last_of:
            preds[i].append(last_of[task])
        elif task in spawn_of:
            preds[i].append(spawn_of[task])
        if e.kind == "AsyncSpawn":
            spawn_of[ext["child"]] = i
        elif e.kind == "AsyncAwait":
            preds[i].append(last_of[ext["child"]])
        elif e.kind == "LockAcquire":
            preds[i].extend(releases.get(e.data["lock_id"], ()))
        elif e.kind == "LockRelease":
            releases.setdefault(e.data["lock_id"], []).append(i)
        last_of[task] = i
    anc = [0] * len(events)
    for i, ps in enumerate(preds):
        acc = 0
        for p in ps:
            acc |= anc[p] | (1 << p)
        anc[i] = acc
    return anc


class _Acc:
    __slots__ = ("i", "task", "loc", "site", "type", "loop", "seg")

    def __init__(self, i: int, e: Event) -> None:
        ext = e.ext or {}
        self.i = i
        self.task = ext["task"]
        self.loc = ext.get("loc") or e.data["variable"]
        self.site = e.data["location"]
        self.type = e.data["access_type"]
        self.loop = ext.get("loop")
        self.seg = ext.get("seg", 0)


def racing_pairs(events: list[Event]) -> dict[tuple[str, str], str]:
    """Site pair -> severity for every race in an emission-ordered trusted trace."""
    anc = happens_before_sets(events)
    accs = [_Acc(i, e) for i, e in enumerate(events) if e.kind == "StateChange"]

    def hb(a: _Acc, b: _Acc) -> bool:
        return bool(anc[b.i] >> a.i & 1)

    def conc(a: _Acc, b: _Acc) -> bool:
        return not hb(a, b) and not hb(b, a)

    out: dict[tuple[str, str], str] = {}

    def add(s1: str, s2: str, sev: str) -> None:
        k = (s1, s2) if s1 <= s2 else (s2, s1)
        out.setdefault(k, sev)

    for x in range(len(accs)):
        a = accs[x]
        for y in range(x + 1, len(accs)):
            b = accs[y]
            if a.loc != b.loc or a.task == b.task or not _conflict(a.type, b.type):
                continue
            if a.loop is not None and a.loop == b.loop:
                continue  # same event loop: only the lost-update rule below
            if conc(a, b):
                add(
                    a.site,
                    b.site,
                    "write-write" if a.type in WRITES and b.type in WRITES else "read-write",
                )
    # lost updates: w by A, r = A's last read of the location before w, r.seg < w.seg,
    # b a write by another task of the same loop, conflicting with and concurrent to r
    for w in accs:
        if w.loop is None or w.type not in WRITES:
            continue
        r: _Acc | None = None
        for c in accs:
            if c.i >= w.i:
                break
            if c.task == w.task and c.loc == w.loc and c.type not in WRITES:
                r = c
        if r is None or not r.seg < w.seg:
            continue
        for b in accs:
            if (
                b.loc == w.loc
                and b.task != w.task
                and b.loop == w.loop
                and b.type in WRITES
                and _conflict(r.type, b.type)
                and conc(r, b)
            ):
                add(w.site, b.site, "lost-update")
    return out


def summary(races: list[Any]) -> set[tuple[str, str]]:
    """The engine's reported site pairs."""
    return {tuple(r.key) for r in races}  # type: ignore[misc]
