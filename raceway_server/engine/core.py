"""The incremental engine: per-trace events, task registry, clocks and race detection.

``Engine.add`` / ``add_batch`` take events in any order across processes (program order per
task) and update the results at once; ``races()`` can be read at any time. Events of our SDK
(``ext["trusted_vc"]``) are decided from their own vector clocks; events of the original SDKs get
clocks from :mod:`.original`. Race rules and the exactness argument live in :mod:`.races`.

Thread safety: one private re-entrant lock guards all state. The only user code ever called
while holding it is the ``on_race`` callback, invoked after each ``add``/``add_batch`` has
finished updating the state (so it may read the engine); it must not wait for other threads
that use the engine. Exceptions it raises are counted (``stats()["callback_errors"]``) and
swallowed, so a failing callback cannot corrupt the analysis.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from raceway_sdk.protocol.events import Event, _gc_paused

from .model import WRITE_TYPES, Access, Race, TaskInfo
from .original import OriginalClocks
from .races import TYPE_CODES, Entry, LocState, SiteKeys, TraceRaces

_GC_PAUSE_MIN = 128  # batches at least this long run with the cyclic GC paused

OnRace = Callable[[Race], Any]


class _Trace:
    """Everything the engine holds for one trace."""

    __slots__ = ("id", "events", "races", "state", "tasks", "orig", "closed", "__weakref__")

    def __init__(self, engine: Engine, trace_id: int) -> None:
        self.id = trace_id
        self.events: list[Event] = []
        self.races: list[Race] = []
        self.tasks: dict[str, TaskInfo] = {}
        self.orig: OriginalClocks | None = None
        self.closed = False
        self.state: TraceRaces = self._new_state(engine)

    def _new_state(self, engine: Engine) -> TraceRaces:
        # Weak references: no engine -> trace -> state -> callback -> trace cycle, so a dropped
        # engine frees its events at once instead of at the next full collection.
        tref = weakref.ref(self)
        eref = weakref.ref(engine)

        def found(sev: str, loc: str, a: Entry, b: Entry, stale: Entry | None) -> None:
            tr, eng = tref(), eref()
            if tr is not None and eng is not None:
                eng._report(tr, sev, loc, a, b, stale)

        def source(state: TraceRaces) -> Iterator[tuple[str, Entry]]:
            tr = tref()
            return tr._entries(state) if tr is not None else iter(())

        return TraceRaces(found, source)

    def _entries(self, state: TraceRaces) -> Iterator[tuple[str, Entry]]:
        """Every analysable access of the trace as ``(loc, entry)``, in arrival order."""
        orig = self.orig
        for ref, e in enumerate(self.events):
            try:
                item = _entry_of(e, ref, orig, state) if e.kind == "StateChange" else None
            except Exception:  # malformed: already counted as dropped when it arrived
                item = None
            if item is not None:
                yield item


def _entry_of(
    e: Event, ref: int, orig: OriginalClocks | None, state: TraceRaces
) -> tuple[str, Entry] | None:
    """``(loc, entry)`` of the access ``e`` (``ref``: its position in the trace's events)."""
    ext = e.ext
    data = e.data
    code = TYPE_CODES.get(data.get("access_type"))  # type: ignore[arg-type]
    site = data.get("location")
    if code is None or type(site) is not str:
        return None
    if ext is not None and ext.get("trusted_vc") is True:
        task = ext.get("task")
        vc = e.vc
        loc = ext.get("loc") or data.get("variable")
        ep = vc.get(task, 0) if type(vc) is dict else 0
        if type(task) is not str or type(loc) is not str or not ep:
            return None  # dropped (and counted) when it arrived
        loop = ext.get("loop")
        seg = ext.get("seg", 0) if loop is not None else 0
        return loc, state.entry(task, vc, ep, site, code, loop, seg, ref)
    if orig is None:
        return None
    clock = orig.clocks.get(e.id)
    if clock is None:
        return None
    task, vc = clock
    loc = (ext.get("loc") if ext else None) or data.get("variable")
    if type(loc) is not str:
        return None
    return loc, state.entry(task, vc, vc.get(task, 0), site, code, None, 0, ref)


def _created_at(stack: Any) -> str | None:
    if isinstance(stack, (list, tuple)) and stack:
        frame = stack[0]
        if isinstance(frame, (list, tuple)) and len(frame) >= 2:
            return f"{frame[0]}:{frame[1]}"
    return None


class Engine:
    """Incremental happens-before race detection over many traces (docs/internals.md)."""

    def __init__(self, on_race: OnRace | None = None) -> None:
        self._lock = threading.RLock()
        self._on_race = on_race
        self._traces: dict[int, _Trace] = {}
        self._races: list[Race] = []
        self._pending: list[Race] = []
        self._next_id = 1
        self._events = 0
        self._accesses = 0
        self._dropped: dict[str, int] = {}
        self._callback_errors = 0
        self._after_close = 0
        self._last_error: str | None = None

    # ------------------------------------------------------------------ ingestion

    def add(self, event: Event) -> None:
        """Add one event (thread-safe).

        Embedded mode sends every event of the recorder here, one at a time: our own
        trusted-clock events of a task already seen take a dedicated path (a thread's access,
        a sync event: ``_run`` for one event, inlined, without its loop set-up); anything else
        (another SDK's event, a new task or site, an event-loop task, a spawn, a closed trace)
        goes through ``_run``. The dedicated path changes nothing before it commits to an event.
        """
        e = event
        with self._lock:
            self._events += 1
            try:
                ext = e.ext
                tr = self._traces.get(e.trace_id)
                if (
                    ext is not None
                    and tr is not None
                    and not tr.closed
                    and ext.get("trusted_vc") is True
                ):
                    if e.kind != "StateChange":
                        if e.kind != "AsyncSpawn" and ext.get("task") in tr.tasks:
                            tr.events.append(e)
                            return
                    else:
                        st = tr.state
                        data = e.data
                        loc = ext.get("loc") or data.get("variable")
                        vc = e.vc
                        try:
                            task = ext["task"]
                            ep = vc[task]
                            code = TYPE_CODES[data["access_type"]]
                            sk = st.sites[data["location"]]  # only str sites get in
                        except (KeyError, TypeError):
                            ep = 0
                        if ep and type(loc) is str and st.index is None and ext.get("loop") is None:
                            ref = len(tr.events)
                            tr.events.append(e)
                            self._accesses += 1
                            self._thread_access(
                                st, loc, (task, vc, ep, sk[0], code, None, 0, ref, sk[1 + code])
                            )
                            return
                self._run((e,))
            except Exception as exc:
                self._drop(f"malformed event ({type(exc).__name__})")
                self._last_error = f"{type(exc).__name__}: {exc}"
            finally:
                if self._pending:
                    self._fire()

    emit = add  # sink protocol of the SDK recorder (embedded mode)

    def add_batch(self, events: Iterable[Event]) -> None:
        """Add events in arrival order; races found are reported through ``on_race``."""
        if not isinstance(events, (list, tuple)):
            events = list(events)
        with self._lock:
            self._events += len(events)
            if len(events) >= _GC_PAUSE_MIN:
                # Like parse_batch: the analysis allocates small acyclic containers that all
                # survive; young-generation collections over them (and over the batch just
                # decoded) would cost more than the analysis itself.
                with _gc_paused():
                    self._add_batch(events)
            else:
                self._add_batch(events)
            if self._pending:
                self._fire()

    #: batching sink protocol of the SDK recorder: a task's events in program order
    emit_batch = add_batch

    @staticmethod
    def _thread_access(st: TraceRaces, loc: str, y: Entry) -> None:
        """``TraceRaces.access`` for a thread's access, trace not indexed (as inlined in _run)."""
        ls = st.locs.get(loc)
        if ls is None:  # a new location: its first access, nothing to check
            st.locs[loc] = LocState.first(y[8], y)
            return
        task = y[0]
        last: Any = ls.last  # never None once the location exists
        lt = last[0]
        if lt == task:
            if last[1] is y[1] and last[3] is y[3] and last[4] == y[4] and last[6] == 0:
                st.fast_hits += 1
                return
        elif last[2] > y[1].get(lt, 0):
            if not st._process(ls, loc, y, True):
                st._rebuild(loc)
            return
        st.ordered_hits += 1
        if ls.conc is None and ls.more is None:
            key = y[8]
            if ls.k0 is key:
                ls.e0 = y
            elif ls.k1 is key:
                ls.e1 = y
            elif ls.k2 is key:
                ls.e2 = y
            else:
                ls.set_newest(key, y)
            ls.last = y
        else:
            st._ordered(ls, loc, y)

    def _add_batch(self, events: Iterable[Event]) -> None:
        it = iter(events)
        while True:
            try:
                self._run(it)
                return
            except Exception as exc:  # a malformed event: count it, go on with the next one
                self._drop(f"malformed event ({type(exc).__name__})")
                self._last_error = f"{type(exc).__name__}: {exc}"

    def _run(self, it: Iterable[Event]) -> None:
        # The hot loop: locals only, subscripts inside zero-cost ``try`` blocks, the rare cases
        # (new site or location, bad event, event-loop task, index built) out of line. The two
        # cheapest cases of TraceRaces.access are inlined: the same-epoch fast path, and a
        # thread's access ordered after the location's previous one with nothing concurrent,
        # which replaces the entry of its key (one slot store).
        traces = self._traces
        codes = TYPE_CODES
        _type = type
        _str = str
        last_tid: Any = None
        last_meta: Any = None
        tr: Any = None
        st: Any = None
        tasks: dict[str, TaskInfo] = {}
        locs: dict[str, LocState] = {}
        sites: dict[str, Any] = {}
        append: Any = None
        ref = 0  # position of `e` in its trace's events: entries refer to events by it
        last: Any = None  # a location's previous access (never None once the location exists)
        indexed = False
        na = fast = ordered = 0
        try:
            for e in it:
                tid = e.trace_id
                if tid is not last_tid and tid != last_tid:
                    if st is not None:
                        st.fast_hits += fast
                        st.ordered_hits += ordered
                        fast = ordered = 0
                    tr = traces.get(tid)
                    if tr is None:
                        tr = traces[tid] = _Trace(self, tid)
                    elif tr.closed:
                        tr.closed = False
                        self._after_close += 1
                    last_tid = tid
                    last_meta = None
                    st = tr.state
                    locs = st.locs
                    sites = st.sites
                    tasks = tr.tasks
                    indexed = st.index is not None
                    append = tr.events.append
                    ref = len(tr.events) - 1
                append(e)
                ref += 1
                ext = e.ext
                if ext is None or ext.get("trusted_vc") is not True:
                    na += self._add_original(tr, e)
                    indexed = st.index is not None  # it may have rebuilt a location
                    continue
                kind = e.kind
                if kind != "StateChange":
                    meta = e.meta
                    if meta is not last_meta:  # the recorder shares one Metadata per task
                        task = ext.get("task")
                        if task not in tasks:
                            if _type(task) is not _str:
                                self._drop("trusted event without a string raceway.task")
                                continue
                            self._note_task(tr, task, e)
                        last_meta = meta
                    if kind == "AsyncSpawn":
                        self._note_spawn(tr, ext.get("task"), e)
                    continue
                data = e.data
                loc = ext.get("loc") or data.get("variable")
                vc = e.vc
                try:  # the common case; anything missing, unknown or unseen: _access_fields
                    task = ext["task"]
                    ep = vc[task]
                    code = codes[data["access_type"]]
                    sk = sites[data["location"]]  # only str sites get in
                except (KeyError, TypeError):
                    ep = 0
                if not ep:
                    fields = self._access_fields(st, e, loc)
                    if fields is None:
                        continue
                    task, ep, code, sk = fields
                try:
                    ls = locs[loc]  # only str locations get in
                except (KeyError, TypeError):
                    if _type(loc) is not _str:
                        self._drop_access(e, code, sk[0], loc, ep, task)
                        continue
                    ls = None
                na += 1
                site = sk[0]  # canonical: identity comparisons from here on
                key = sk[1 + code]
                loop = ext.get("loop")
                if ls is None and not indexed and loop is None:
                    locs[loc] = LocState.first(key, (task, vc, ep, site, code, None, 0, ref, key))
                    continue
                if loop is not None or ls is None or indexed:
                    if loop is None:
                        st.access(loc, (task, vc, ep, site, code, None, 0, ref, key))
                    else:
                        seg = ext.get("seg", 0)
                        st.access(loc, (task, vc, ep, site, code, loop, seg, ref, (key, loop)))
                    indexed = st.index is not None
                    continue
                # A thread's access to a known location (TraceRaces.access, inlined).
                y = (task, vc, ep, site, code, None, 0, ref, key)
                last = ls.last
                lt = last[0]
                if lt == task:  # program order: `last` happened before `y`
                    if last[1] is vc and last[3] is site and last[4] == code and last[6] == 0:
                        fast += 1  # same-epoch fast path
                        continue
                elif last[2] > vc.get(lt, 0):  # not ordered after `last`: full scan
                    if not st._process(ls, loc, y, True):
                        st._rebuild(loc)
                        indexed = True
                    continue
                ordered += 1
                if ls.conc is None and ls.more is None:
                    # every frontier entry happened before `y`: it replaces its key's entry
                    if ls.k0 is key:
                        ls.e0 = y
                    elif ls.k1 is key:
                        ls.e1 = y
                    elif ls.k2 is key:
                        ls.e2 = y
                    else:
                        ls.set_newest(key, y)
                    ls.last = y
                else:
                    st._ordered(ls, loc, y)
        finally:
            self._accesses += na
            if st is not None:
                st.fast_hits += fast
                st.ordered_hits += ordered

    def _add_original(self, tr: _Trace, e: Event) -> int:
        orig = tr.orig
        if orig is None:
            orig = tr.orig = OriginalClocks(tr.id)
        meta = e.meta
        if meta is None or type(meta.thread_id) is not str or type(e.vc) is not dict:
            self._drop("original event without metadata.thread_id / causality_vector")
            return 0
        task, vc = orig.add(e)
        if task not in tr.tasks:
            tr.tasks[task] = TaskInfo(task, task, "context", loop=None)
        if e.kind == "AsyncSpawn":
            child = e.data.get("task_id")
            if isinstance(child, str) and child not in tr.tasks:
                tr.tasks[child] = TaskInfo(child, child, "spawned", parent=task)
            return 0
        if e.kind != "StateChange":
            return 0
        item = _entry_of(e, len(tr.events) - 1, orig, tr.state)
        if item is None:
            self._drop("StateChange without a valid access_type / location / variable")
            return 0
        tr.state.access(*item)
        return 1

    def _access_fields(
        self, st: TraceRaces, e: Event, loc: Any
    ) -> tuple[str, int, int, SiteKeys] | None:
        """(task, epoch, code, site keys) of a trusted access, or None when dropped (counted).

        The hot loop's subscripts failed: a new site (registered here) or a bad event.
        """
        ext = e.ext or {}
        data = e.data
        task = ext.get("task")
        code = TYPE_CODES.get(data.get("access_type"))  # type: ignore[arg-type]
        site = data.get("location")
        ep = e.vc.get(task, 0)
        if type(task) is not str or code is None or type(site) is not str or not ep:
            self._drop_access(e, code, site, loc, ep, task)
            return None
        return task, ep, code, st.site_keys(site)

    def _drop(self, reason: str) -> None:
        self._dropped[reason] = self._dropped.get(reason, 0) + 1

    def _drop_access(self, e: Event, code: Any, site: Any, loc: Any, ep: int, task: Any) -> None:
        if type(task) is not str:
            self._drop("trusted event without a string raceway.task")
        elif code is None:
            self._drop("StateChange with an unknown access_type")
        elif type(site) is not str:
            self._drop("StateChange without a string location")
        elif type(loc) is not str:
            self._drop("StateChange without raceway.loc or variable")
        else:
            self._drop("trusted StateChange whose vector clock lacks its own task")

    def _note_task(self, tr: _Trace, task: str, e: Event) -> None:
        ext = e.ext or {}
        kind = "asyncio" if ext.get("loop") is not None else "thread"
        tr.tasks[task] = TaskInfo(task, task, kind, loop=ext.get("loop"))

    def _note_spawn(self, tr: _Trace, parent: str, e: Event) -> None:
        ext = e.ext or {}
        child = ext.get("child")
        if type(child) is not str:
            return
        stack = ext.get("stack")
        origin = ext.get("origin_trace")
        tr.tasks[child] = TaskInfo(
            child,
            str(ext.get("child_name") or child),
            str(ext.get("child_kind") or "task"),
            parent=parent,
            created_at=_created_at(stack),
            stack=stack if isinstance(stack, (list, tuple)) else None,
            origin_trace=origin if isinstance(origin, int) else None,
            loop=ext.get("child_loop"),
        )

    # ------------------------------------------------------------------ reports

    def _report(
        self, tr: _Trace, sev: str, loc: str, a: Entry, b: Entry, stale: Entry | None
    ) -> None:
        first, second = self._access(tr, a), self._access(tr, b)
        stale_acc = self._access(tr, stale) if stale is not None else None
        if sev != "lost-update" and second.timestamp_ns < first.timestamp_ns:
            first, second = second, first
        sa, sb = a[3], b[3]
        key = (sa, sb) if sa <= sb else (sb, sa)
        variable = tr.events[a[7]].data.get("variable") or loc
        race = Race(
            self._next_id,
            tr.id,
            sev,
            str(variable),
            loc,
            first,
            second,
            _explain(tr, sev, str(variable), first, second, stale_acc),
            key,
            stale_acc,
        )
        self._next_id += 1
        tr.races.append(race)
        self._races.append(race)
        if self._on_race is not None:
            self._pending.append(race)

    def _access(self, tr: _Trace, entry: Entry) -> Access:
        task = entry[0]
        info = tr.tasks.get(task)
        if info is None:  # a task seen only through accesses so far
            self._note_task(tr, task, tr.events[entry[7]])
            info = tr.tasks[task]
        return Access(tr.events[entry[7]], info, entry[1])

    def _fire(self) -> None:
        pending, self._pending = self._pending, []
        cb = self._on_race
        for race in pending:
            try:
                cb(race)  # type: ignore[misc]
            except Exception:
                self._callback_errors += 1

    # ------------------------------------------------------------------ results

    def races(self, trace_id: int | None = None) -> list[Race]:
        """Reported races in detection order (all traces, or one)."""
        with self._lock:
            if trace_id is None:
                return list(self._races)
            tr = self._traces.get(trace_id)
            return list(tr.races) if tr is not None else []

    def trace_events(self, trace_id: int) -> list[Event]:
        """The trace's events in arrival order (kept after :meth:`close_trace`)."""
        with self._lock:
            tr = self._traces.get(trace_id)
            return list(tr.events) if tr is not None else []

    def trace_ids(self) -> list[int]:
        with self._lock:
            return list(self._traces)

    def tasks(self, trace_id: int | None = None) -> dict[str, TaskInfo]:
        """Task registry: every task seen (all traces, or one trace's)."""
        with self._lock:
            if trace_id is not None:
                tr = self._traces.get(trace_id)
                return dict(tr.tasks) if tr is not None else {}
            out: dict[str, TaskInfo] = {}
            for tr in self._traces.values():
                out.update(tr.tasks)
            return out

    def clock_of(self, event: Event) -> tuple[str, dict[str, int]]:
        """The effective task and vector clock the engine used for ``event``."""
        ext = event.ext
        if ext is not None and ext.get("trusted_vc") is True:
            task = ext.get("task")
            if type(task) is str:
                return task, event.vc
        with self._lock:
            tr = self._traces.get(event.trace_id)
            orig = tr.orig if tr is not None else None
            clock = orig.clocks.get(event.id) if orig is not None else None
        if clock is None:
            raise KeyError(f"event {event.id:032x} was not added to this engine")
        return clock

    def close_trace(self, trace_id: int) -> None:
        """Free the trace's per-location state; events, tasks and races stay readable."""
        with self._lock:
            tr = self._traces.get(trace_id)
            if tr is None or tr.closed:
                return
            reported = tr.state.reported
            tr.state = tr._new_state(self)
            tr.state.reported = reported  # a reopened trace never reports a pair twice
            tr.closed = True

    def forget_trace(self, trace_id: int, *, keep_races: bool = True) -> None:
        """Drop the trace's events and analysis state; by default its races and tasks stay.

        Long runs (the plugin after each verdict) keep memory bounded by the traces still
        open; events that arrive later reopen the trace as after :meth:`close_trace` and never
        report an already reported pair again. ``keep_races=False`` (server retention) drops
        the trace entirely, races included.
        """
        with self._lock:
            tr = self._traces.get(trace_id)
            if tr is None:
                return
            if not keep_races:
                del self._traces[trace_id]
                self._races = [r for r in self._races if r.trace_id != trace_id]
                return
            reported = tr.state.reported
            tr.state = tr._new_state(self)
            tr.state.reported = reported
            tr.events = []
            tr.orig = None
            tr.closed = True

    def stats(self) -> dict[str, Any]:
        with self._lock:
            fast = sum(t.state.fast_hits for t in self._traces.values())
            ordered = sum(t.state.ordered_hits for t in self._traces.values())
            rebuilds = sum(t.state.rebuilds for t in self._traces.values())
            locs = sum(len(t.state.locs) for t in self._traces.values())
            return {
                "events": self._events,
                "accesses": self._accesses,
                "fast_path_hits": fast,
                "ordered_hits": ordered,
                "rebuilds": rebuilds,
                "races": len(self._races),
                "traces": len(self._traces),
                "locations": locs,
                "dropped": sum(self._dropped.values()),
                "dropped_by_reason": dict(self._dropped),
                "callback_errors": self._callback_errors,
                "events_after_close": self._after_close,
                "last_error": self._last_error,
            }


def _explain(
    tr: _Trace, sev: str, variable: str, a: Access, b: Access, stale: Access | None
) -> str:
    """One sentence naming the missing happens-before edge."""
    ta = tr.tasks.get(a.task) or TaskInfo(a.task, a.task, "task")
    tb = tr.tasks.get(b.task) or TaskInfo(b.task, b.task, "task")
    if sev == "lost-update" and stale is not None:
        return (
            f"Lost update on {variable!r}: {ta.describe()} read it at {stale.location}, "
            f"suspended, and wrote it back at {a.location}, while {tb.describe()} wrote it at "
            f"{b.location} with no happens-before edge to or from that read (no lock, event, "
            f"queue or join orders them), so one of the two updates is lost."
        )
    what_a = "write" if a.access_type in WRITE_TYPES else "read"
    what_b = "write" if b.access_type in WRITE_TYPES else "read"
    between = (
        f"between the {what_a} of {variable!r} at {a.location} and the {what_b} at {b.location}"
    )
    if tb.parent == ta.id or ta.parent == tb.id:
        parent, child = (ta, tb) if tb.parent == ta.id else (tb, ta)
        return (
            f"No happens-before edge {between}: {child.describe()} was started by "
            f"{parent.describe()}, but {parent.id} neither joins it nor locks or hands off to "
            f"it in between."
        )
    return (
        f"No happens-before edge between {ta.describe()} and {tb.describe()}: neither joins, "
        f"locks or hands off to the other {between}."
    )
