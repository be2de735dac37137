"""Per-location race state: epoch checks in the style of FastTrack, exact per pair of sites.

An access is the tuple ``(task, vc, epoch, site, code, loop, seg, ref, key)`` (an *entry*):
``ref`` names the event for reports (the engine: its position in the trace's event list, an int,
so that an entry holds no object and the cyclic GC untracks a kept entry at its first pass),
``epoch`` is ``vc[task]``, ``code`` has bit 1 for writes and bit 2 for atomics, ``loop`` is the
event-loop id or None (preemptive thread), ``site`` is the trace's canonical copy of the site
string and ``key`` names the entry's frontier group (below). ``x`` happened before ``y`` iff
``x.epoch <= y.vc[x.task]``.

Rules (docs/internals.md, "Engine"): a *pair race* is two accesses of different tasks, at least one
a write, not both atomic, neither happened before the other, and not two tasks of one event loop.
A *lost update* is ``(r, w, b)``: task A on loop L read the location (``r``, A's last read before
``w``), wrote it in a later segment (``w``, ``w.seg > r.seg``), and task B != A on L wrote it
(``b``) concurrently with ``r`` (``r``/``b`` not both atomic). A pair race is reported under the key
``sorted(site(x), site(y))``, a lost update under ``sorted(site(w), site(b))``, once per trace.

What a location keeps (O(1) in the common case, no all-pairs scan):

* the *frontier*: for every key ``(site, code, loop)`` the accesses of that key that happened
  before no later-arrived access of the same key (an access that happened before a newer one of
  the same key is pruned: program order within a task, or a lock/join/hand-off across tasks),
  stored as the newest entry per key (``LocState``: key = an int per ``(site, code)`` handed
  out on the site's first sight in the trace, paired with the loop for event-loop tasks) plus
  the rare older ones still concurrent with it (``LocState.more``);
* per task of an event loop: its last read with the writes of other tasks of that loop that are
  concurrent with it (*witnesses*), the sites it later wrote in a later segment (*stale writes*),
  and older reads that still own stale-write sites (a site moves to the newest read owning it).

Invariant (exactness). Call an arrival *in order* when the new access happened before no access
already seen at the location, and let events of one task arrive in program order (every sink
preserves emission order; the embedded sink delivers a linear extension of happens-before).
Then for every arrived access ``x`` there is a frontier access ``w`` of the same key with ``x = w``
or ``x`` happened before ``w``. For an in-order ``y``: if ``x`` and ``y`` race then ``w`` and ``y``
race (``w`` after ``y`` would put ``x`` before ``y``; ``y`` before ``w`` contradicts in-order;
``w`` of ``y``'s task arrived earlier so precedes ``y``), and ``w`` has ``x``'s site, type and loop,
hence the same key and the same loop rule. So scanning the frontier finds exactly the racing
site pairs; the same stand-in argument makes the witnesses of a new read exact, every later
in-order write updates them, and moving a stale-write site to a newer read of the same atomicity
loses nothing because a write concurrent with the older read is concurrent with the newer one.
Two shortcuts skip the scan. An access with the task, clock object, site, type and loop step of
the location's previous access ``l`` changes nothing (same-epoch fast path, O(1)). An access ``y``
of a thread with ``l`` happened before ``y`` (same task, or one epoch check: the common case
under locks, joins and hand-offs) is *ordered*: every frontier entry not concurrent with ``l``
(those are kept in ``LocState.conc``, usually none) happened before ``l``, hence before ``y``, so
only the entries of ``conc`` need an epoch check, ``y`` is in order (it cannot precede a stand-in
of anything ``l`` follows), and pruning ``y``'s key is one store: O(1 + |conc|).

An arrival that is *not* in order is detected for free during the scan (it happened before some
frontier access of another task: by the invariant that is equivalent) and triggers a rebuild:
the location's accesses are replayed sorted by clock weight (``sum(vc)``, stable), which for
clocks built by the documented rules is a linear extension of happens-before consistent with
program order, so the invariant holds again and the set of reported site pairs stays exact in
every arrival order. The first rebuild of a trace indexes its accesses by location (from then
on the index grows with the trace; in-order traces, e.g. embedded mode, never build it). The property test in
tests/unit/test_engine_property.py checks it against an all-pairs oracle on shuffled traces.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

# access type -> code: bit 1 = write, bit 2 = atomic
TYPE_CODES: dict[str, int] = {
    "Read": 0,
    "Write": 1,
    "AtomicRead": 2,
    "AtomicWrite": 3,
    "AtomicRMW": 3,
}

Entry = tuple  # (task, vc, epoch, site, code, loop, seg, ref, key)
# a trace's canonical site string and the key ids of its four access codes (thread accesses)
SiteKeys = tuple  # (site, key0, key1, key2, key3)
# found(severity, loc, first, second, stale_read) builds and records the report
Found = Callable[[str, str, Entry, Entry, "Entry | None"], None]


class LUState:
    """Lost-update bookkeeping of one event-loop task at one location."""

    __slots__ = ("read", "witnesses", "stale", "old")

    def __init__(self) -> None:
        self.read: Entry | None = None  # the task's last read of the location
        self.witnesses: dict[str, Entry] = {}  # site -> other-task write concurrent with `read`
        self.stale: dict[str, tuple[Entry, Entry]] = {}  # site of w -> (w, read) since `read`
        self.old: list[tuple[Entry, dict[str, tuple[Entry, Entry]]]] = []  # older reads


class LocState:
    """Everything one location keeps between accesses.

    The frontier is grouped by key (``entry[8]``: an int per ``(site, code)`` for threads,
    ``(int, loop)`` for event-loop tasks) so that pruning the entries of one key is one store:
    the newest entry of each of the first three keys seen lives in the slots ``k0/e0`` ..
    ``k2/e2`` (a location rarely has more: the object itself, no dict, is touched), later keys
    in the dict ``front``; ``more`` holds the older frontier entries of a key (concurrent with
    its newer one), in arrival order, or is None (the common case). A key never leaves.
    """

    __slots__ = ("k0", "e0", "k1", "e1", "k2", "e2", "front", "more", "lu", "last", "conc")

    def __init__(self) -> None:
        self.k0: Any = None  # None: slot free
        self.e0: Entry | None = None
        self.k1: Any = None
        self.e1: Entry | None = None
        self.k2: Any = None
        self.e2: Entry | None = None
        self.front: dict[Any, Entry] | None = None
        self.more: list[Entry] | None = None
        self.lu: dict[str, LUState] | None = None
        self.last: Entry | None = None
        # frontier entries of other tasks concurrent with `last` (None: none)
        self.conc: list[Entry] | None = None

    @classmethod
    def first(cls, key: Any, y: Entry) -> LocState:
        """The state after a thread's first access ``y`` (what ``_process`` makes of it)."""
        st = cls()
        st.k0 = key
        st.e0 = y
        st.last = y
        return st

    def newest(self, key: Any) -> Entry | None:
        """The newest frontier entry of ``key`` (None: no access of that key yet)."""
        if self.k0 == key:
            return self.e0
        if self.k1 == key:
            return self.e1
        if self.k2 == key:
            return self.e2
        return self.front.get(key) if self.front is not None else None

    def set_newest(self, key: Any, y: Entry) -> None:
        if self.k0 is None or self.k0 == key:
            self.k0, self.e0 = key, y
        elif self.k1 is None or self.k1 == key:
            self.k1, self.e1 = key, y
        elif self.k2 is None or self.k2 == key:
            self.k2, self.e2 = key, y
        elif self.front is None:
            self.front = {key: y}
        else:
            self.front[key] = y

    @property
    def entries(self) -> list[Entry]:
        """The frontier, older entries of a key before newer ones (reads and reports)."""
        out = list(self.more) if self.more is not None else []
        for e in (self.e0, self.e1, self.e2):
            if e is not None:
                out.append(e)
        if self.front is not None:
            out.extend(self.front.values())
        return out


def _weight(entry: Entry) -> int:
    return sum(entry[1].values())


def _put(st: LocState, y: Entry, conc: list[Entry] | None) -> None:
    """Add ``y`` to the frontier, pruning the entries of its key that are not in ``conc``.

    ``conc`` holds the frontier entries concurrent with ``y``; every other entry of ``y``'s key
    happened before ``y``.
    """
    # ``e in conc``: a C-level scan that tries identity first; two entries are equal only when
    # they describe the same access (``ref`` names its event)
    key = y[8]
    old = st.newest(key)
    more = st.more
    if more is not None:
        if conc is None:
            kept = [e for e in more if e[8] != key]
        else:
            kept = [e for e in more if e[8] != key or e in conc]
        more = kept or None
    if old is not None and conc is not None and old in conc:
        if more is None:
            more = [old]
        else:
            more.append(old)
    st.more = more
    st.set_newest(key, y)


class TraceRaces:
    """Race state of one trace: its locations and the site pairs already reported."""

    __slots__ = (
        "locs",
        "sites",
        "reported",
        "found",
        "source",
        "index",
        "fast_hits",
        "ordered_hits",
        "rebuilds",
    )

    def __init__(
        self, found: Found, source: Callable[[TraceRaces], Iterable[tuple[str, Entry]]]
    ) -> None:
        self.locs: dict[str, LocState] = {}
        self.sites: dict[str, SiteKeys] = {}
        self.reported: set[tuple[str, str]] = set()
        self.found = found
        # all (loc, entry) of the trace in arrival order; read only for the first rebuild
        self.source = source
        self.index: dict[str, list[Entry]] | None = None
        self.fast_hits = 0  # same task, clock, site, type, step as the previous access: O(1)
        self.ordered_hits = 0  # a thread's access after the location's previous one: no full scan
        self.rebuilds = 0

    # ------------------------------------------------------------------ hot path

    def site_keys(self, site: str) -> SiteKeys:
        """The canonical ``site`` string and its key ids (first sight of a site)."""
        sk = self.sites.get(site)
        if sk is None:
            n = len(self.sites) * 4
            sk = self.sites[site] = (site, n, n + 1, n + 2, n + 3)
        return sk

    def entry(
        self,
        task: str,
        vc: dict[str, int],
        ep: int,
        site: str,
        code: int,
        loop: Any,
        seg: Any,
        ref: Any,
    ) -> Entry:
        """Build an entry (canonical site, key of its frontier group)."""
        sk = self.site_keys(site)
        key = sk[1 + code] if loop is None else (sk[1 + code], loop)
        return (task, vc, ep, sk[0], code, loop, seg, ref, key)

    def access(self, loc: str, y: Entry) -> None:
        """Analyse one access (arrival order arbitrary, program order per task).

        ``Engine._run`` inlines the two shortcuts below for the trusted-clock hot loop.
        """
        index = self.index
        if index is not None:
            hist = index.get(loc)
            if hist is None:
                index[loc] = [y]
            else:
                hist.append(y)
        st = self.locs.get(loc)
        if st is None:
            st = self.locs[loc] = LocState()
        last = st.last
        if last is not None:
            lt = last[0]
            if lt == y[0]:  # program order: `last` happened before `y`
                if last[1] is y[1] and last[3] == y[3] and last[4] == y[4] and last[6] == y[6]:
                    # Same-epoch fast path: same task, clock object, site, type and loop step
                    # as the location's previous access => every relation of `y` equals its.
                    self.fast_hits += 1
                    return
                hb = True
            else:
                hb = last[2] <= y[1].get(lt, 0)
            if hb and y[5] is None:
                self.ordered_hits += 1
                self._ordered(st, loc, y)
                return
        if not self._process(st, loc, y, True):
            self._rebuild(loc)

    def _ordered(self, st: LocState, loc: str, y: Entry) -> None:
        """``y`` (a thread's access) comes after the location's previous access ``st.last``.

        Every frontier entry not concurrent with ``last`` happened before ``last``, hence before
        ``y``: only the entries ``last`` found concurrent (``st.conc``, usually none) need an
        epoch check, and the other entries of ``y``'s key are pruned.
        """
        conc = st.conc
        if conc is not None:
            task = y[0]
            vc = y[1]
            still: list[Entry] | None = None
            for e in conc:
                et = e[0]
                if et != task and e[2] > vc.get(et, 0):  # `e` did not happen before `y`
                    if still is None:
                        still = [e]
                    else:
                        still.append(e)
            if still is not None:
                self._report_pairs(loc, y, still)  # `y` is a thread: the loop rule never applies
            conc = st.conc = still
        _put(st, y, conc)
        st.last = y

    def _process(self, st: LocState, loc: str, y: Entry, check_order: bool) -> bool:
        """In-order step; returns False (changing nothing) if ``y`` arrived out of order."""
        task, vc, ep, _site, _code, loop, _seg, _ev, _key = y
        conc: list[Entry] | None = None
        after: list[Entry] | None = None  # entries `y` happened before (replay only)
        for e in st.entries:
            et = e[0]
            if et == task:
                pass  # earlier access of the same task: program order => before `y`
            elif et in vc and e[2] <= vc[et]:
                pass  # `e` happened before `y`
            elif ep <= e[1].get(task, 0):  # `y` happened before an access already seen
                if check_order:
                    return False
                after = [e] if after is None else [*after, e]
            elif conc is None:
                conc = [e]
            else:
                conc.append(e)
        if conc is not None:
            self._report_pairs(loc, y, conc)
        if loop is not None:
            self._lost_updates(st, loc, y)
        _put(st, y, conc if after is None else [*(conc or ()), *after])  # prune only "before"
        st.last = y
        st.conc = conc
        return True

    def _report_pairs(self, loc: str, y: Entry, conc: list[Entry]) -> None:
        """Report ``y`` against the frontier entries concurrent with it (pair rule)."""
        _task, _vc, _ep, site, code, loop, _seg, _ev, _key = y
        reported = self.reported
        for e in conc:
            ec = e[4]
            if (code | ec) & 1 and not (code & ec & 2) and (loop is None or loop != e[5]):
                s2 = e[3]
                k = (site, s2) if site <= s2 else (s2, site)
                if k not in reported:
                    reported.add(k)
                    sev = "write-write" if code & ec & 1 else "read-write"
                    self.found(sev, loc, e, y, None)

    # ------------------------------------------------------------------ asyncio rule

    def _lost_updates(self, st: LocState, loc: str, y: Entry) -> None:
        task, vc, _ep, site, code, loop, seg, _ev, _key = y
        lus = st.lu
        if lus is None:
            lus = st.lu = {}
        reported = self.reported
        found = self.found
        if code & 1:
            # `y` as the other task's write `b`: against every read of other tasks of this loop
            for a_task, lu in lus.items():
                if a_task == task:
                    continue
                r = lu.read
                if r is None or r[5] != loop:
                    continue
                if not (r[4] & code & 2) and not (r[2] <= vc.get(a_task, 0)):
                    if site not in lu.witnesses:
                        lu.witnesses[site] = y
                    for s_w, (w, rr) in lu.stale.items():
                        k = (s_w, site) if s_w <= site else (site, s_w)
                        if k not in reported:
                            reported.add(k)
                            found("lost-update", loc, w, y, rr)
                for r_o, stale_o in lu.old:
                    if not (r_o[4] & code & 2) and not (r_o[2] <= vc.get(a_task, 0)):
                        for s_w, (w, rr) in stale_o.items():
                            k = (s_w, site) if s_w <= site else (site, s_w)
                            if k not in reported:
                                reported.add(k)
                                found("lost-update", loc, w, y, rr)
            # `y` as the reading task's own later write `w`
            own = lus.get(task)
            if (
                own is not None
                and own.read is not None
                and seg > own.read[6]
                and site not in own.stale
            ):
                r = own.read
                own.stale[site] = (y, r)
                ratomic = r[4] & 2
                if own.old:
                    for r_o, stale_o in own.old:
                        if (r_o[4] & 2) == ratomic:
                            stale_o.pop(site, None)
                    own.old = [o for o in own.old if o[1]]
                for s_b, b in own.witnesses.items():
                    k = (site, s_b) if site <= s_b else (s_b, site)
                    if k not in reported:
                        reported.add(k)
                        found("lost-update", loc, y, b, r)
        else:
            mine = lus.get(task)
            if mine is None:
                mine = lus[task] = LUState()
            elif mine.read is not None and mine.stale:
                mine.old.append((mine.read, mine.stale))
            mine.read = y
            mine.stale = {}
            wit: dict[str, Entry] = {}
            for e in st.entries:
                ec = e[4]
                et = e[0]
                if (
                    ec & 1
                    and et != task
                    and e[5] == loop
                    and not (ec & code & 2)
                    and not (e[2] <= vc.get(et, 0))
                    and e[3] not in wit
                ):
                    wit[e[3]] = e
            mine.witnesses = wit

    # ------------------------------------------------------------------ out-of-order arrivals

    def _rebuild(self, loc: str) -> None:
        """Replay the location's accesses in a linear extension of happens-before."""
        self.rebuilds += 1
        index = self.index
        if index is None:
            index = {}
            for lc, entry in self.source(self):
                hist = index.get(lc)
                if hist is None:
                    index[lc] = [entry]
                else:
                    hist.append(entry)
            self.index = index
        st = self.locs[loc] = LocState()
        for entry in sorted(index.get(loc, ()), key=_weight):
            self._process(st, loc, entry, False)

    # ------------------------------------------------------------------ introspection

    def sizes(self) -> dict[str, Any]:
        """Entries kept per location (memory check in tests and benchmarks)."""
        n_entries = sum(len(s.entries) for s in self.locs.values())
        return {"locations": len(self.locs), "entries": n_entries}
