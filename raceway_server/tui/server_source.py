"""The TUI's view of a live ``raceway serve``, read over its HTTP API with httpx.

Routes used: ``/status`` (totals), ``/api/traces`` (the list), ``/api/distributed/hotspots``,
``/api/traces/:id`` (the analysis bundle the web UI uses too) and the session export
``/api/traces/:id/export`` / ``/api/export/session`` for full race reports (both stacks, task
creation sites, clocks), which the bundle's ``race_details`` rows do not carry.

The trace summaries of the API have no race count, so the list learns which traces race by
fetching the session export of the listed traces whose event count changed since the last look
(one request, bounded by :data:`PROBE_EVENT_BUDGET` events per refresh, so a first look at a
busy server fills the flags in over a few refreshes; a trace larger than the budget shows "?"
until opened). Every failure becomes a :class:`SourceError` naming the fix.
"""

from __future__ import annotations

from typing import Any

import httpx
from raceway_sdk.protocol.events import EventError, parse_event

from .source import Snapshot, SourceError, TraceDetail, TraceRow, race_sort_key

PAGE_SIZE = 200
PROBE_EVENT_BUDGET = 50_000
RECENT_RACES = 20


def normalise_url(url: str) -> str:
    """``host:port`` -> ``http://host:port``; anything but http(s) is a clear error."""
    url = url.strip().rstrip("/")
    if not url:
        raise SourceError("the server URL is empty")
    if "://" not in url:
        url = "http://" + url
    scheme = url.split("://", 1)[0].lower()
    if scheme not in ("http", "https"):
        raise SourceError(f"server URL must start with http:// or https://, got {url!r}")
    return url


class ServerSource:
    """See the module docstring. Thread-safe enough for the app's workers (httpx pools)."""

    live = True

    def __init__(self, url: str, api_key: str | None = None, timeout: float = 10.0) -> None:
        self.url = normalise_url(url)
        self.label = self.url
        self.api_key = api_key or None
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        try:
            self._client = httpx.Client(base_url=self.url, headers=headers, timeout=timeout)
        except (httpx.InvalidURL, ValueError) as exc:
            raise SourceError(f"invalid server URL {self.url!r}: {exc}") from None
        # trace id -> (event count when probed, races of the trace)
        self._races: dict[str, tuple[int, list[dict[str, Any]]]] = {}

    def close(self) -> None:
        self._client.close()

    # --- HTTP -----------------------------------------------------------------------------

    def _get(self, path: str, params: Any = None, envelope: bool = True) -> Any:
        """GET ``path`` and return the envelope's ``data``; ``envelope=False`` for the exports,
        which answer the bare document on success (errors still come in an envelope)."""
        try:
            response = self._client.get(path, params=params)
        except httpx.TimeoutException:
            raise SourceError(f"the Raceway server at {self.url} did not answer {path} in time") from None
        except httpx.HTTPError as exc:
            raise SourceError(
                f"cannot reach the Raceway server at {self.url} ({exc or type(exc).__name__}); "
                "is `raceway serve` running there?"
            ) from None
        status = response.status_code
        if status == 401:
            if self.api_key:
                raise SourceError(
                    f"the server at {self.url} rejected the API key (401 Unauthorized); "
                    "check --api-key / RACEWAY_API_KEY"
                )
            raise SourceError(
                f"the server at {self.url} requires an API key (401 Unauthorized); "
                "pass --api-key or set RACEWAY_API_KEY"
            )
        try:
            body = response.json()
        except ValueError:
            raise SourceError(
                f"{self.url}{path} answered HTTP {status} with a non-JSON body; "
                "is this a Raceway server?"
            ) from None
        if not envelope and status == 200 and isinstance(body, dict) and "success" not in body:
            return body
        if not isinstance(body, dict) or "success" not in body:
            raise SourceError(f"{self.url}{path} answered without the Raceway envelope; is this a Raceway server?")
        if not body["success"]:
            extra = ""
            retry = response.headers.get("Retry-After")
            if retry:
                extra = f" (retry after {retry} s)"
            raise SourceError(f"{path}: HTTP {status}: {body.get('error')}{extra}")
        return body["data"]

    # --- Source ---------------------------------------------------------------------------

    def snapshot(self) -> Snapshot:
        status = self._get("/status")
        listing = self._get("/api/traces", {"page": 1, "page_size": PAGE_SIZE})
        hot = self._get("/api/distributed/hotspots")
        rows = [
            TraceRow(
                trace_id=t["trace_id"],
                event_count=int(t.get("event_count", 0)),
                race_count=t.get("race_count"),
                label=", ".join(t.get("services") or []),
                last_timestamp=str(t.get("last_timestamp") or ""),
                services=list(t.get("services") or []),
            )
            for t in listing.get("traces", [])
        ]
        notes = self._probe(rows)
        known = {r.trace_id for r in rows}
        for trace_id in list(self._races):
            if trace_id not in known:
                del self._races[trace_id]  # deleted by retention, or off the first page
        for row in rows:
            if row.race_count is None and row.trace_id in self._races:
                row.race_count = len(self._races[row.trace_id][1])
        total = int(listing.get("total_traces", len(rows)))
        if total > len(rows):
            notes.append(f"showing the newest {len(rows)} of {total} traces")
        races = [r for _, rs in self._races.values() for r in rs]
        engine = status.get("engine") or {}
        by_severity: dict[str, int] = {}
        for race in races:
            sev = str(race.get("severity"))
            by_severity[sev] = by_severity.get(sev, 0) + 1
        ingestion = status.get("ingestion") or {}
        totals = {
            "traces": status.get("traces_active", total),
            "events": status.get("events_captured", 0),
            "races": engine.get("races", len(races)),
            "racing_traces": sum(1 for r in rows if r.race_count),
            "by_severity": by_severity,
            "dropped": engine.get("dropped", 0),
            "rejected": ingestion.get("rejected", 0),
            "uptime_seconds": status.get("uptime_seconds"),
            "version": status.get("version"),
        }
        race_vars: dict[str, int] = {}
        for race in races:
            race_vars[str(race.get("variable"))] = race_vars.get(str(race.get("variable")), 0) + 1
        hotspots = [
            {**v, "races": race_vars.get(str(v.get("variable")), 0)}
            for v in hot.get("top_variables", [])
        ]
        races.sort(key=race_sort_key, reverse=True)
        return Snapshot(rows, totals, races[:RECENT_RACES], hotspots, notes)

    def _probe(self, rows: list[TraceRow]) -> list[str]:
        """Learn the races of listed traces that are new or grew (see the module docstring)."""
        todo: list[TraceRow] = []
        budget = PROBE_EVENT_BUDGET
        skipped = 0
        for row in rows:
            if row.race_count is not None:
                continue
            seen = self._races.get(row.trace_id)
            if seen is not None and seen[0] == row.event_count:
                continue
            if row.event_count > budget:
                skipped += 1
                continue
            budget -= row.event_count
            todo.append(row)
        notes = []
        if skipped:
            notes.append(f"race counts of {skipped} traces (?) follow on the next refreshes "
                         "or when a trace is opened")
        if not todo:
            return notes
        doc = self._get("/api/export/session", [("trace_id", r.trace_id) for r in todo], envelope=False)
        found: dict[str, list[dict[str, Any]]] = {r.trace_id: [] for r in todo}
        for race in doc.get("races", []):
            found.setdefault(str(race.get("trace_id")), []).append(race)
        for row in todo:
            self._races[row.trace_id] = (row.event_count, found.get(row.trace_id, []))
        return notes

    def trace(self, trace_id: str) -> TraceDetail:
        bundle = self._get(f"/api/traces/{trace_id}")
        export = self._get(f"/api/traces/{trace_id}/export", {"format": "session"}, envelope=False)
        events = []
        bad = 0
        first_error = ""
        for i, wire in enumerate(bundle.get("events", [])):
            try:
                events.append(parse_event(wire, i))
            except EventError as exc:
                bad += 1
                first_error = first_error or str(exc)
        notes = [f"{bad} events could not be read; first: {first_error}"] if bad else []
        races = [r for r in export.get("races", []) if str(r.get("trace_id")) == trace_id]
        self._races[trace_id] = (len(events), races)
        trace_doc = (export.get("traces") or {}).get(trace_id) or {}
        return TraceDetail(
            trace_id=trace_id,
            events=events,
            tasks=dict(trace_doc.get("tasks") or {}),
            races=races,
            critical_path=bundle.get("critical_path"),
            audit_trails=dict(bundle.get("audit_trails") or {}),
            dependencies=bundle.get("dependencies"),
            anomalies=list(bundle.get("anomalies") or []),
            title=", ".join(sorted({e.meta.service_name for e in events})),
            notes=notes,
        )


__all__ = ["ServerSource", "normalise_url"]
