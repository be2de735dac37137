"""Ingestion and analysis service: the engine and the catalog fed from the storage log.

Rules this module enforces:

* **Ack after commit.** :meth:`Service.ingest` returns only after the storage committed the batch
  and the engine analysed it; on a storage failure it raises :class:`Unavailable` and nothing is
  acknowledged (the client retries; duplicate event ids are skipped, so retries are idempotent).
* **One order.** Every change reaches the engine, the catalog and the baselines in log order
  (foreign writes first), so all processes sharing a database analyse the same sequence. Storage
  operations that move this process's log cursor run one at a time (``_log_lock``) and take a
  ticket; their results are applied strictly in ticket order (``_lock``). The two stages overlap:
  while one batch is analysed, the next one is already being committed. Reads catch up with the
  log first.
* **Backpressure, never a silent drop.** Events admitted but not yet applied are bounded by
  ``max_pending_events``; beyond it :class:`Busy` (HTTP 503 + Retry-After). Everything the engine
  or the storage could not take is counted in :meth:`Service.status`.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from raceway_sdk.protocol.events import Event, EventError, uuid_str

from raceway_server import gcpolicy
from raceway_server.config import Config
from raceway_server.engine.anomalies import Baselines, anomalies_response
from raceway_server.engine.audit import audit_trail
from raceway_server.engine.critical_path import critical_path
from raceway_server.engine.dependencies import ServiceGraph, trace_dependencies
from raceway_server.engine.global_races import GlobalRaceAnalysis
from raceway_server.storage import Deletion, Storage, StorageUnavailable, open_storage
from raceway_server.storage.catalog import Catalog, rfc3339

log = logging.getLogger(__name__)

VERSION = "0.1.0"
Listener = Callable[[str, dict[str, Any]], None]


class Unavailable(RuntimeError):
    """The request cannot be served now (storage down, warming up); retry after ``retry_after``."""

    def __init__(self, message: str, retry_after: int = 2) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class Busy(Unavailable):
    """Too many events in flight (backpressure)."""


class NotFound(LookupError):
    """An unknown trace (HTTP 404)."""


class IngestOutcome:
    __slots__ = ("ingested", "duplicates", "errors")

    def __init__(self, ingested: int, duplicates: int, errors: list[EventError]) -> None:
        self.ingested = ingested
        self.duplicates = duplicates
        self.errors = errors

    def to_dict(self) -> dict[str, Any]:
        return {
            "message": f"Ingested {self.ingested} events",
            "ingested": self.ingested,
            "duplicates": self.duplicates,
            "rejected": len(self.errors),
            "errors": [e.to_dict() for e in self.errors],
        }


class Warmup:
    """Start-up replay of the stored log (the original's WarmupSummary, but real)."""

    def __init__(self) -> None:
        self.phase = "idle"
        self.total_traces = 0
        self.processed_traces = 0
        self.events = 0
        self.last_trace: str | None = None
        self.started_at: str | None = None
        self.completed_at: str | None = None
        self.last_error: str | None = None

    @property
    def ready(self) -> bool:
        return self.phase == "completed"

    def to_dict(self) -> dict[str, Any]:
        return {
            "phase": self.phase,
            "ready": self.ready,
            "total_traces": self.total_traces,
            "processed_traces": self.processed_traces,
            "last_trace": self.last_trace,
            "started_at": self.started_at,
            "completed_at": self.completed_at,
            "last_error": self.last_error,
        }


def race_order(race: Any) -> tuple[int, int, tuple[str, str]]:
    """Sort key of ``GET /api/races`` (newest first when reversed).

    The later access's timestamp, then the trace and the race's pair of sites: all taken from
    the events, so every process sharing a database orders the same races the same way (the
    race ``id`` is a per-process sequence number and is not used).
    """
    return (max(race.first.timestamp_ns, race.second.timestamp_ns), race.trace_id, race.key)


def _make_engine(on_race: Callable[[Any], None]) -> Any:
    from raceway_server.engine.core import Engine

    return Engine(on_race=on_race)


class Service:
    """The state behind one ``raceway serve`` process (see the module docstring)."""

    def __init__(self, config: Config, storage: Storage | None = None) -> None:
        self.config = config
        self.storage = storage if storage is not None else open_storage(config)
        self.catalog = Catalog()
        self.baselines = Baselines(unique_input=True)  # the log is deduplicated by id
        self.graph = ServiceGraph()
        self.engine = _make_engine(self._on_race)
        self.warmup = Warmup()
        self.start_error: str | None = None
        self._lock = threading.RLock()  # serialises log application and snapshots
        self._log_lock = threading.Lock()  # serialises storage operations that move the cursor
        self._turn = threading.Condition(threading.Lock())
        self._issued = 0  # tickets handed out with storage results (log order)
        self._applied = 0  # tickets whose results are applied
        self._pending = 0
        self._pending_lock = threading.Lock()
        self._dirty: set[int] = set()  # traces whose dependency summary is stale
        self._cache: dict[Any, tuple[int, Any]] = {}
        self._listeners: list[Listener] = []
        self._started = time.monotonic()
        self._stop = threading.Event()
        self._quiet = False  # replaying stored events: do not announce old races again
        self._retention_thread: threading.Thread | None = None
        self.counters = {
            "ingested": 0,
            "duplicates": 0,
            "rejected": 0,
            "busy_rejections": 0,
            "storage_failures": 0,
            "engine_errors": 0,
            "retention_deleted_traces": 0,
            "retention_deleted_events": 0,
        }

    # --- lifecycle --------------------------------------------------------------------------

    def start(self, background: bool = True) -> None:
        """Open storage (migrations) and replay the log into the engine (the warm-up).

        A storage that cannot be opened raises (the server does not start); ``start_error``
        keeps its message for whoever started it in-process (``raceway_server.testing``).
        """
        try:
            self.storage.open()
        except Exception as exc:
            self.start_error = f"{type(exc).__name__}: {exc}"
            raise
        if background:
            threading.Thread(target=self._warm, name="raceway-warmup", daemon=True).start()
        else:
            self._warm()
        if self.config.retention_max_age_hours or self.config.retention_max_traces:
            self._retention_thread = threading.Thread(
                target=self._retention_loop, name="raceway-retention", daemon=True
            )
            self._retention_thread.start()

    def close(self) -> None:
        """Graceful shutdown: stop background work, then flush and close storage."""
        self._stop.set()
        if self._retention_thread is not None:
            self._retention_thread.join(timeout=10)
        with self._log_lock, self._lock:
            self.storage.close()
        log.info("storage %s flushed and closed", self.storage.name)

    def _warm(self) -> None:
        warm = self.warmup
        warm.phase = "replaying"
        warm.started_at = rfc3339(time.time_ns())
        try:
            with self._log_lock, self._lock:
                self._quiet = True
                for chunk in self.storage.load():
                    self._apply(chunk)
                    warm.events += len(chunk)
                    warm.processed_traces = warm.total_traces = len(self.catalog.traces)
                    if chunk:
                        warm.last_trace = uuid_str(chunk[-1].trace_id)
            self._quiet = False
        except Exception as exc:  # noqa: BLE001 - reported through /health, not lost
            self._quiet = False
            log.exception("warm-up failed")
            warm.last_error = str(exc)
            warm.phase = "failed"
            return
        warm.completed_at = rfc3339(time.time_ns())
        warm.phase = "completed"
        log.info("warm-up replayed %d events of %d traces", warm.events, warm.total_traces)

    def _require_ready(self) -> None:
        if self.warmup.phase == "completed":
            return
        if self.warmup.phase == "failed":
            raise Unavailable(f"warm-up failed: {self.warmup.last_error}", retry_after=30)
        raise Unavailable("warming up: replaying the stored events", retry_after=1)

    # --- live feed --------------------------------------------------------------------------

    def subscribe(self, listener: Listener) -> Callable[[], None]:
        """Call ``listener(kind, payload)`` for new traces and races; returns unsubscribe."""
        self._listeners.append(listener)
        return lambda: self._listeners.remove(listener)

    def _publish(self, kind: str, payload: dict[str, Any]) -> None:
        for listener in list(self._listeners):
            try:
                listener(kind, payload)
            except Exception:  # noqa: BLE001 - one broken subscriber must not stop ingestion
                log.exception("live-feed listener failed")

    def _on_race(self, race: Any) -> None:
        if self.config.race_detection and self._listeners and not self._quiet:
            self._publish("race", race.to_dict())

    # --- ingestion --------------------------------------------------------------------------

    @property
    def keeps_raw(self) -> bool:
        """Whether the storage writes events' JSON as received (worth keeping while parsing)."""
        return bool(getattr(self.storage, "keeps_raw", False))

    def ingest(
        self,
        events: list[Event],
        errors: list[EventError] | None = None,
        raw: list[bytes] | None = None,
    ) -> IngestOutcome:
        """Store then analyse ``events``; returns after commit (see the module docstring).

        ``raw``: each event's JSON text as received (``BatchResult.raw``), stored as it is by a
        backend that keeps the wire form, instead of serialising the events again.
        """
        errors = errors or []
        self._require_ready()
        n = len(events)
        with self._pending_lock:
            if self._pending and self._pending + n > self.config.max_pending_events:
                self.counters["busy_rejections"] += 1
                raise Busy(
                    f"{self._pending} events are being ingested (limit "
                    f"{self.config.max_pending_events}); retry later",
                    retry_after=1,
                )
            self._pending += n
        try:
            prepare = getattr(self.storage, "prepare", None)
            prepared = prepare(events, raw) if prepare is not None else None  # outside the locks
            with self._log_lock:
                try:
                    result = (
                        self.storage.append(events)
                        if prepared is None
                        else self.storage.append(events, prepared)  # type: ignore[call-arg]
                    )
                except StorageUnavailable as exc:
                    self.counters["storage_failures"] += 1
                    raise Unavailable(str(exc), retry_after=2) from exc
                ticket = self._ticket()
            with self._in_turn(ticket):
                self._apply(result.foreign)
                self._apply(result.new)
                self.counters["ingested"] += len(result.new)
                self.counters["duplicates"] += result.duplicates
                self.counters["rejected"] += len(errors)
        finally:
            with self._pending_lock:
                self._pending -= n
        return IngestOutcome(len(result.new), result.duplicates, errors)

    def _ticket(self) -> int:
        """The log position of the storage result just obtained (``_log_lock`` held)."""
        ticket = self._issued
        self._issued += 1
        return ticket

    @contextlib.contextmanager
    def _in_turn(self, ticket: int) -> Iterator[None]:
        """Hold ``_lock`` once every earlier ticket is applied; then let the next one in."""
        with self._turn:
            while self._applied != ticket:
                self._turn.wait()
        try:
            with self._lock:
                yield
        finally:
            with self._turn:
                self._applied += 1
                self._turn.notify_all()

    @contextlib.contextmanager
    def _exclusive(self) -> Iterator[None]:
        """No storage operation in flight and everything applied: both locks held."""
        with self._log_lock:
            with self._turn:
                while self._applied != self._issued:
                    self._turn.wait()
            with self._lock:
                yield

    def note_rejected(self, count: int) -> None:
        """Count events of a batch refused as a whole (every event invalid)."""
        with self._lock:
            self.counters["rejected"] += count

    def _apply(self, ops: Iterable[Event | Deletion]) -> None:
        """Feed log operations, in order, to the catalog, baselines and engine (lock held)."""
        batch: list[Event] = []
        for op in ops:
            if isinstance(op, Deletion):
                self._apply_events(batch)
                batch = []
                self._forget(op.trace_ids)
            else:
                batch.append(op)
        self._apply_events(batch)

    def _apply_events(self, events: list[Event]) -> None:
        if not events:
            return
        new_traces = self.catalog.add(events)
        self._dirty.update(e.trace_id for e in events)
        self.baselines.observe_many(events)
        try:
            self.engine.add_batch(events)
        except Exception:  # noqa: BLE001 - stored events stay stored; the failure is surfaced
            self.counters["engine_errors"] += 1
            log.exception("engine failed on a batch of %d events", len(events))
        if self._listeners:
            for trace_id in new_traces:
                info = self.catalog.traces.get(trace_id)
                if info is not None:
                    self._publish("trace", info.summary())
        gcpolicy.after_batch()  # the applied events are long-lived: out of the collector's view

    def _forget(self, trace_ids: list[int]) -> int:
        dropped = self.catalog.remove(trace_ids)
        for trace_id in trace_ids:
            self._dirty.discard(trace_id)
            self.graph.remove_trace(trace_id)
            self.baselines.forget_trace(trace_id)
            self.engine.forget_trace(trace_id, keep_races=False)
        return dropped

    def refresh(self) -> None:
        """Catch up with what other processes committed (PostgreSQL) before answering."""
        self._require_ready()
        with self._log_lock:
            try:
                ops = self.storage.catch_up()
            except StorageUnavailable as exc:
                self.counters["storage_failures"] += 1
                raise Unavailable(str(exc), retry_after=2) from exc
            ticket = self._ticket()
        with self._in_turn(ticket):
            self._apply(ops)

    # --- retention --------------------------------------------------------------------------

    def enforce_retention(self, now_ns: int | None = None) -> int:
        """Delete traces beyond the age / count limits everywhere; returns how many."""
        cfg = self.config
        max_age = int(cfg.retention_max_age_hours * 3600e9) if cfg.retention_max_age_hours else None
        if max_age is None and cfg.retention_max_traces is None:
            return 0
        with self._exclusive():
            self._apply(self.storage.catch_up())
            doomed = self.catalog.expired(
                max_age, cfg.retention_max_traces, time.time_ns() if now_ns is None else now_ns
            )
            if not doomed:
                return 0
            self._apply(self.storage.delete_traces(doomed))
            self.counters["retention_deleted_events"] += self._forget(doomed)
            self.counters["retention_deleted_traces"] += len(doomed)
        log.info("retention removed %d traces", len(doomed))
        return len(doomed)

    def _retention_loop(self) -> None:
        while not self._stop.wait(self.config.retention_interval_seconds):
            if not self.warmup.ready:
                continue
            try:
                self.enforce_retention()
            except StorageUnavailable as exc:
                log.warning("retention skipped: %s", exc)
            except Exception:  # noqa: BLE001 - keep the loop alive, surface in the log
                log.exception("retention failed")

    # --- queries ----------------------------------------------------------------------------

    def _cached(self, key: Any, compute: Callable[[], Any], version: int | None = None) -> Any:
        """Memoise per catalog version: any change invalidates, parameters are part of the key.

        ``version`` is the catalog version the inputs were snapshotted at (default: now).
        """
        version = self.catalog.version if version is None else version
        hit = self._cache.get(key)
        if hit is not None and hit[0] == version:
            return hit[1]
        value = compute()
        if len(self._cache) > 512:
            self._cache.clear()
        self._cache[key] = (version, value)
        return value

    def _trace_snapshot(self, trace_id: int) -> tuple[list[Event], list[Any], int]:
        """The trace's events (log order), its races and the catalog version they belong to."""
        self.refresh()
        with self._lock:
            info = self.catalog.traces.get(trace_id)
            if info is None:
                raise NotFound(f"Trace not found: {uuid_str(trace_id)}")
            events = list(info.events)
            races = list(self.engine.races(trace_id)) if self.config.race_detection else []
            return events, races, self.catalog.version

    def trace_bundle(self, trace_id: int) -> dict[str, Any]:
        """The original's bundle plus ``races`` (full race records) and ``tasks`` (registry)."""
        from raceway_server.engine.analysis import analyze_trace

        events, races, version = self._trace_snapshot(trace_id)
        baselines = self.baselines if self.config.anomaly_detection else Baselines()

        def compute() -> dict[str, Any]:
            bundle = analyze_trace(trace_id, events, races, self.engine.clock_of, baselines)
            bundle["races"] = [race.to_dict() for race in races]
            bundle["tasks"] = self._trace_tasks(trace_id, events)
            return bundle

        return self._cached(("bundle", trace_id), compute, version)

    def _trace_tasks(self, trace_id: int, events: list[Event]) -> dict[str, Any]:
        """The tasks that made the trace's events (as in the session export), by task id."""
        known = self.engine.tasks(trace_id)
        wanted = sorted({e.task for e in events})
        if any(t not in known for t in wanted):
            known = {**self.engine.tasks(), **known}  # a task first seen in another trace
        return {t: known[t].to_dict() for t in wanted if t in known}

    def critical_path(self, trace_id: int) -> dict[str, Any]:
        events, _, version = self._trace_snapshot(trace_id)
        return self._cached(
            ("critical", trace_id),
            lambda: critical_path(trace_id, events, self.engine.clock_of),
            version,
        )

    def anomalies(self, trace_id: int) -> dict[str, Any]:
        events, _, version = self._trace_snapshot(trace_id)
        if not self.config.anomaly_detection:
            return anomalies_response(trace_id, [], self.baselines)
        return self._cached(
            ("anomalies", trace_id),
            lambda: anomalies_response(trace_id, events, self.baselines),
            version,
        )

    def dependencies(self, trace_id: int) -> dict[str, Any]:
        events, _, version = self._trace_snapshot(trace_id)
        return self._cached(
            ("deps", trace_id),
            lambda: trace_dependencies(trace_id, events, self.engine.clock_of),
            version,
        )

    def audit_trail(self, trace_id: int, variable: str) -> dict[str, Any]:
        events, races, _ = self._trace_snapshot(trace_id)
        return audit_trail(trace_id, events, variable, self.engine.clock_of, races)

    def trace_events(self, trace_id: int) -> list[Event]:
        return self._trace_snapshot(trace_id)[0]

    def trace_races(self, trace_id: int) -> list[Any]:
        return self._trace_snapshot(trace_id)[1]

    def export_traces(
        self, trace_ids: list[int] | None = None
    ) -> list[tuple[int, list[Event], list[Any]]]:
        """(trace, events, races) for the given traces, or all traces newest first."""
        listed = trace_ids is None
        if trace_ids is None:
            self.refresh()
            with self._lock:
                trace_ids = [t.trace_id for t in self.catalog.sorted_traces()]
        out = []
        for trace_id in trace_ids:
            try:
                events, races, _ = self._trace_snapshot(trace_id)
            except NotFound:
                if listed:  # removed by retention since it was listed
                    continue
                raise
            out.append((trace_id, events, races))
        return out

    def trace_page(
        self, page: int, page_size: int, min_events: int = 1, service: str | None = None
    ) -> tuple[int, list[dict[str, Any]]]:
        """Summaries newest first, each with the ``race_count`` the engine reported for it."""
        self.refresh()
        with self._lock:
            return self.catalog.trace_page(page, page_size, min_events, service, self._race_count)

    def _race_count(self, trace_id: int) -> int:
        return len(self.engine.races(trace_id)) if self.config.race_detection else 0

    def _ordered_races(self) -> list[Any]:
        """Every race, newest first (:func:`race_order`), sorted once per catalog version."""
        self.refresh()
        with self._lock:
            version = self.catalog.version
            hit = self._cache.get("races")
            if hit is not None and hit[0] == version:
                return list(hit[1])
            races = self.engine.races() if self.config.race_detection else []
        # the sort runs outside the lock: ingestion continues meanwhile
        return list(self._cached("races", lambda: sorted(races, key=race_order, reverse=True), version))

    def race_page(
        self,
        page: int,
        page_size: int,
        trace_id: int | None = None,
        variable: str | None = None,
        severity: str | None = None,
    ) -> dict[str, Any]:
        """``GET /api/races`` data: one page of every trace's races, filtered, newest first."""
        races = self._ordered_races()
        if trace_id is not None:
            races = [r for r in races if r.trace_id == trace_id]
        if variable is not None:
            races = [r for r in races if r.variable == variable]
        by_severity: dict[str, int] = {}
        for race in races:
            by_severity[race.severity] = by_severity.get(race.severity, 0) + 1
        if severity is not None:
            races = [r for r in races if r.severity == severity]
        start = (page - 1) * page_size
        return {
            "total_races": len(races),
            "page": page,
            "page_size": page_size,
            "total_pages": -(-len(races) // page_size),
            "by_severity": by_severity,
            "races": [race.to_dict() for race in races[start : start + page_size]],
        }

    def services(self) -> dict[str, Any]:
        self.refresh()
        with self._lock:
            rows = self.catalog.service_list()
        return {"total_services": len(rows), "services": rows}

    def service_health(self, window_minutes: int) -> list[dict[str, Any]]:
        self.refresh()
        with self._lock:
            return self.catalog.service_health(window_minutes)

    def _service_graph(self) -> ServiceGraph:
        """Recompute the dependency summaries of traces that changed, then the global graph."""
        self.refresh()
        with self._lock:
            dirty = [(t, list(self.catalog.traces[t].events)) for t in self._dirty]
            self._dirty.clear()
        for trace_id, events in dirty:
            self.graph.set_trace(trace_id, trace_dependencies(trace_id, events, self.engine.clock_of))
        return self.graph

    def edges(self) -> dict[str, Any]:
        return self._service_graph().edges()

    def service_dependencies(self, name: str) -> dict[str, Any]:
        return self._service_graph().service_dependencies(name)

    def hotspots(self) -> dict[str, Any]:
        graph = self._service_graph()
        with self._lock:
            top = self.catalog.top_variables(10)
        per_variable: dict[str, int] = {}
        for race in self._ordered_races():
            per_variable[race.variable] = per_variable.get(race.variable, 0) + 1
        for row in top:
            row["race_count"] = per_variable.get(row["variable"], 0)
        return {"top_variables": top, "top_service_calls": graph.top_calls(10)}

    def performance(self, limit: int) -> dict[str, Any]:
        self.refresh()
        with self._lock:
            return self._cached(("perf", limit), lambda: self.catalog.performance(limit))

    def _global(self) -> GlobalRaceAnalysis:
        self.refresh()
        with self._lock:
            version = self.catalog.version
            hit = self._cache.get("global")
            if hit is not None and hit[0] == version:
                return hit[1]
            events = [e for info in self.catalog.traces.values() for e in info.events]
        # the analysis runs outside the lock: ingestion continues meanwhile
        return self._cached("global", lambda: GlobalRaceAnalysis(events, self.engine.clock_of), version)

    def global_analysis(self) -> dict[str, Any]:
        return self._global().analyze_response()

    def global_races(self) -> dict[str, Any]:
        return self._global().candidates_response()

    def status(self) -> dict[str, Any]:
        """``/status`` data: real uptime, counts, warm-up, drop/backpressure counters."""
        # no lock: plain reads, and /status must answer during a long warm-up replay
        events, traces = self.catalog.event_count, len(self.catalog.traces)
        try:
            engine_stats = dict(self.engine.stats())
        except Exception:  # noqa: BLE001
            engine_stats = {}
        return {
            "version": VERSION,
            "uptime_seconds": round(time.monotonic() - self._started, 3),
            "events_captured": events,
            "traces_active": traces,
            "warmup": self.warmup.to_dict(),
            "storage": {
                "backend": self.storage.name,
                "undecodable_events": getattr(self.storage, "undecodable", 0),
                **({"pool": self.storage.stats()} if hasattr(self.storage, "stats") else {}),
            },
            "ingestion": dict(self.counters, pending=self._pending),
            "engine": engine_stats,
            "live_subscribers": len(self._listeners),
            "gc": gcpolicy.stats(),
        }
