"""Duration anomalies: per-operation robust baselines (median / MAD) fed by every trace.

Rule (documented, tested):

* An operation is ``(service_name, event_kind_name)``, the kind name being the original's
  ``event_kind_name`` (``FunctionCall(<fn>)``, ``HttpResponse(<status>)``, ...). Only events with
  a duration take part (``metadata.duration_ns``, else the payload's ``duration_ms``).
* Score ``z = (x - median) / scale`` with ``scale = 1.4826 * MAD`` (≈ σ for normal data, but an
  outlier cannot inflate it). When ``MAD == 0`` (more than half the samples identical, e.g. coarse
  timers) ``scale = 1.2533 * mean |x - median|`` (the mean-absolute-deviation estimator of σ).
  ``scale`` never drops below ``max(5 % of the median, 1 µs)``, so a rock-steady operation is not
  flagged for timer noise and the score is always finite.
* Anomaly iff the baseline holds at least ``MIN_SAMPLES`` durations and ``|z| > 3.5`` (the
  Iglewicz–Hoaglin cut-off for modified z-scores). Slow (``z > 0``) and fast (``z < 0``) outliers
  are both reported. Severity: ``|z| > 10`` Critical, ``|z| > 6`` Warning, else Minor.

Baselines learn from every timed event the server ingests (call :meth:`Baselines.observe_many`
on ingestion), not from viewed traces only; each event id is counted once however often a trace
is re-sent or re-analysed. Memory per operation is bounded: a uniform reservoir sample
(Vitter's algorithm R, ``reservoir_size`` values, seeded so results are reproducible) plus the
exact count; median and MAD are exact until the reservoir fills and estimates after.
"""

from __future__ import annotations

import random
import threading
from collections.abc import Iterable, Sequence
from typing import Any

from raceway_sdk.protocol.events import Event, format_timestamp, uuid_str

from .critical_path import duration_ns, event_location

MIN_SAMPLES = 8
THRESHOLD = 3.5
MAD_TO_SIGMA = 1.4826
MEANAD_TO_SIGMA = 1.2533
REL_FLOOR = 0.05
ABS_FLOOR_NS = 1_000
WARNING_Z = 6.0
CRITICAL_Z = 10.0

OpKey = tuple[str, str]


_ARG_FIELD = {  # kinds named after one payload field: FunctionCall(<function_name>), ...
    "FunctionCall": "function_name",
    "StateChange": "variable",
    "LockAcquire": "lock_type",
    "LockRelease": "lock_type",
    "HttpRequest": "method",
    "HttpResponse": "status",
    "Error": "error_type",
    "Custom": "name",
}


def event_kind_name(event: Event) -> str:
    """The original's per-kind operation name used as baseline key."""
    kind = event.kind
    field = _ARG_FIELD.get(kind)
    if field is None:
        return kind
    return f"{kind}({event.data.get(field)})"


def severity_of(z: float) -> str:
    """Minor / Warning / Critical by the absolute robust score."""
    a = abs(z)
    if a > CRITICAL_Z:
        return "Critical"
    if a > WARNING_Z:
        return "Warning"
    return "Minor"


class Baseline:
    """Robust summary of one operation: sample count, median and σ-scaled spread (ns)."""

    __slots__ = ("count", "median_ns", "scale_ns")

    def __init__(self, count: int, median_ns: float, scale_ns: float) -> None:
        self.count = count
        self.median_ns = median_ns
        self.scale_ns = scale_ns

    def score(self, x_ns: int) -> float:
        return (x_ns - self.median_ns) / self.scale_ns


def _median(sorted_vals: Sequence[float]) -> float:
    n = len(sorted_vals)
    mid = n // 2
    return float(sorted_vals[mid]) if n % 2 else (sorted_vals[mid - 1] + sorted_vals[mid]) / 2.0


def summarise(values: Iterable[int]) -> Baseline:
    """Median and robust σ estimate of ``values`` (see the module rule)."""
    vals = sorted(values)
    if not vals:
        raise ValueError("summarise() needs at least one duration")
    med = _median(vals)
    devs = sorted(abs(v - med) for v in vals)
    scale = MAD_TO_SIGMA * _median(devs)
    if scale == 0.0:
        scale = MEANAD_TO_SIGMA * (sum(devs) / len(devs))
    scale = max(scale, REL_FLOOR * abs(med), float(ABS_FLOOR_NS))
    return Baseline(len(vals), med, scale)


class _Op:
    __slots__ = ("count", "sample", "cached")

    def __init__(self) -> None:
        self.count = 0
        self.sample: list[int] = []
        self.cached: Baseline | None = None


class Baselines:
    """Per-operation duration baselines over all ingested traces (thread-safe, bounded)."""

    def __init__(
        self,
        reservoir_size: int = 512,
        max_operations: int = 50_000,
        seed: int = 0,
        unique_input: bool = False,
    ) -> None:
        """``unique_input``: the caller guarantees every event id arrives once (the server's
        deduplicated log), so the per-trace guard of seen ids (memory per timed event) is
        skipped."""
        if reservoir_size < MIN_SAMPLES:
            raise ValueError(f"reservoir_size must be >= {MIN_SAMPLES}, got {reservoir_size}")
        self.reservoir_size = reservoir_size
        self.max_operations = max_operations
        self._ops: dict[OpKey, _Op] = {}
        self._seen: dict[int, set[int]] = {}
        self._unique_input = unique_input
        self._rng = random.Random(seed)
        self._lock = threading.Lock()
        self.dropped_operations = 0  # timed events of operations beyond max_operations
        self.duplicates = 0

    @staticmethod
    def key_of(event: Event) -> OpKey:
        return (event.meta.service_name, event_kind_name(event))

    def observe(self, event: Event) -> bool:
        """Add one event's duration; False if it has none or was already counted."""
        return self.observe_many((event,)) == 1

    def observe_many(self, events: Iterable[Event]) -> int:
        """Feed a batch as it arrives; returns how many durations were added.

        One lock acquisition per batch; the duplicate guard is looked up once per run of events
        of the same trace, an operation once per (service, kind, payload name) in the batch.
        Reservoir replacement draws one ``random()`` per event past the fill (Algorithm R: slot
        ``floor(u * count)``, kept only when below ``reservoir_size``).
        """
        added = 0
        size = self.reservoir_size
        seen_by_trace = self._seen
        draw = self._rng.random
        trace_id: int | None = None
        seen: set[int] = set()
        cache: dict[tuple[str, str, Any], _Op | None] = {}  # (service, kind, field) -> op
        guard = not self._unique_input
        with self._lock:
            for event in events:
                meta = event.meta
                d = meta.duration_ns
                if d is None:
                    d = duration_ns(event)
                elif type(d) is not int:
                    d = int(d)
                if d <= 0:
                    continue
                if guard:
                    if event.trace_id != trace_id:
                        trace_id = event.trace_id
                        found = seen_by_trace.get(trace_id)
                        if found is None:
                            found = seen_by_trace[trace_id] = set()
                        seen = found
                    if event.id in seen:
                        self.duplicates += 1
                        continue
                kind = event.kind
                field = _ARG_FIELD.get(kind)
                arg = None if field is None else event.data.get(field)
                try:
                    op = cache[meta.service_name, kind, arg]
                except KeyError:
                    op = cache[meta.service_name, kind, arg] = self._op(meta.service_name, kind, field, arg)
                except TypeError:  # an unhashable payload value (not from a valid event)
                    op = self._op(meta.service_name, kind, field, arg)
                if op is None:
                    self.dropped_operations += 1
                    continue
                if guard:
                    seen.add(event.id)
                added += 1
                op.count += 1
                op.cached = None
                sample = op.sample
                if len(sample) < size:
                    sample.append(d)
                else:
                    j = int(draw() * op.count)
                    if j < size:
                        sample[j] = d
        return added

    def _op(self, service: str, kind: str, field: str | None, arg: Any) -> _Op | None:
        """The operation's state (created on first sight), None beyond ``max_operations``."""
        key = (service, kind if field is None else f"{kind}({arg})")
        op = self._ops.get(key)
        if op is None and len(self._ops) < self.max_operations:
            op = self._ops[key] = _Op()
        return op

    def forget_trace(self, trace_id: int) -> None:
        """Drop the per-trace duplicate guard when a trace is evicted (its stats stay)."""
        with self._lock:
            self._seen.pop(trace_id, None)

    def baseline(self, key: OpKey) -> Baseline | None:
        """Current summary of one operation, or None if it was never observed."""
        with self._lock:
            op = self._ops.get(key)
            if op is None:
                return None
            if op.cached is None:
                b = summarise(op.sample)
                op.cached = Baseline(op.count, b.median_ns, b.scale_ns)
            return op.cached

    def stats(self) -> dict[str, Any]:
        with self._lock:
            return {
                "operations": len(self._ops),
                "observations": sum(op.count for op in self._ops.values()),
                "dropped_operations": self.dropped_operations,
                "duplicates": self.duplicates,
            }

    def export(self) -> list[dict[str, Any]]:
        """Plain data for storage: one row per operation (reservoir included)."""
        with self._lock:
            return [
                {"service": k[0], "operation": k[1], "count": op.count, "sample": list(op.sample)}
                for k, op in self._ops.items()
            ]

    def restore(self, rows: Iterable[dict[str, Any]]) -> None:
        """Load rows written by :meth:`export` (replaces the operations they name)."""
        with self._lock:
            for row in rows:
                sample = [int(v) for v in row["sample"]][: self.reservoir_size]
                count = int(row["count"])
                if count < len(sample):
                    raise ValueError(f"baseline {row['operation']!r}: count {count} < sample size")
                op = _Op()
                op.count, op.sample = count, sample
                self._ops[(str(row["service"]), str(row["operation"]))] = op


def detect_anomalies(events: Sequence[Event], baselines: Baselines) -> list[dict[str, Any]]:
    """Timed events whose duration is a robust outlier for their operation (original shape)."""
    out: list[tuple[int, int, dict[str, Any]]] = []
    cache: dict[OpKey, Baseline | None] = {}
    for e in events:
        x = duration_ns(e)
        if x <= 0:
            continue
        key = Baselines.key_of(e)
        if key not in cache:
            cache[key] = baselines.baseline(key)
        b = cache[key]
        if b is None or b.count < MIN_SAMPLES:
            continue
        z = b.score(x)
        if abs(z) <= THRESHOLD:
            continue
        kind = key[1]
        x_ms, med_ms, sd_ms = x / 1e6, b.median_ns / 1e6, b.scale_ns / 1e6
        direction = "slow" if z > 0 else "fast"
        word = "slower" if z > 0 else "faster"
        out.append(
            (
                e.timestamp_ns,
                e.id,
                {
                    "event_id": uuid_str(e.id),
                    "event_kind": kind,
                    "severity": severity_of(z),
                    "actual_duration_ms": x_ms,
                    "expected_duration_ms": med_ms,
                    "std_dev_from_mean": abs(z),
                    "description": (
                        f"{kind} took {x_ms:.2f}ms (expected {med_ms:.2f}ms ± {sd_ms:.2f}ms, "
                        f"{abs(z):.1f}σ {word} than the median of {b.count} runs)"
                    ),
                    "location": event_location(e),
                    "timestamp": format_timestamp(e.timestamp_ns),
                    "direction": direction,
                    "service_name": e.meta.service_name,
                },
            )
        )
    out.sort(key=lambda t: (t[0], t[1]))
    return [t[2] for t in out]


def anomalies_response(
    trace_id: int, events: Sequence[Event], baselines: Baselines
) -> dict[str, Any]:
    """``GET /api/traces/:id/anomalies`` data."""
    found = detect_anomalies(events, baselines)
    return {"trace_id": uuid_str(trace_id), "anomaly_count": len(found), "anomalies": found}
