"""The TUI's view of a live ``raceway serve``, read over its HTTP API with httpx.

Routes used: ``/status`` (totals), ``/api/traces`` (the list, with each trace's ``race_count``),
``/api/races`` (the newest races and the per-severity counts), ``/api/distributed/hotspots``
(with each variable's ``race_count``) and ``/api/traces/:id`` (the analysis bundle the web UI
uses too, whose ``races`` and ``tasks`` carry the full race reports: both stacks, task creation
sites, clocks). Every failure becomes a :class:`SourceError` naming the fix.
"""

from __future__ import annotations

from typing import Any

import httpx
from raceway_sdk.protocol.events import EventError, parse_event

from .source import Snapshot, SourceError, TraceDetail, TraceRow

PAGE_SIZE = 200
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

    def close(self) -> None:
        self._client.close()

    # --- HTTP -----------------------------------------------------------------------------

    def _get(self, path: str, params: Any = None) -> Any:
        """GET ``path`` and return the envelope's ``data``."""
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
        recent = self._get("/api/races", {"page": 1, "page_size": RECENT_RACES})
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
        notes = []
        total = int(listing.get("total_traces", len(rows)))
        if total > len(rows):
            notes.append(f"showing the newest {len(rows)} of {total} traces")
        engine = status.get("engine") or {}
        ingestion = status.get("ingestion") or {}
        totals = {
            "traces": status.get("traces_active", total),
            "events": status.get("events_captured", 0),
            "races": engine.get("races", recent.get("total_races", 0)),
            "racing_traces": sum(1 for r in rows if r.race_count),
            "by_severity": dict(recent.get("by_severity") or {}),
            "dropped": engine.get("dropped", 0),
            "rejected": ingestion.get("rejected", 0),
            "uptime_seconds": status.get("uptime_seconds"),
            "version": status.get("version"),
        }
        hotspots = [
            {**v, "races": int(v.get("race_count") or 0)} for v in hot.get("top_variables", [])
        ]
        races = [_as_reported(r) for r in recent.get("races", [])]  # newest first already
        return Snapshot(rows, totals, races, hotspots, notes)

    def trace(self, trace_id: str) -> TraceDetail:
        bundle = self._get(f"/api/traces/{trace_id}")
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
        return TraceDetail(
            trace_id=trace_id,
            events=events,
            tasks=dict(bundle.get("tasks") or {}),
            races=[_as_reported(r) for r in bundle.get("races") or []],
            critical_path=bundle.get("critical_path"),
            audit_trails=dict(bundle.get("audit_trails") or {}),
            dependencies=bundle.get("dependencies"),
            anomalies=list(bundle.get("anomalies") or []),
            title=", ".join(sorted({e.meta.service_name for e in events})),
            notes=notes,
        )


def _as_reported(race: dict[str, Any]) -> dict[str, Any]:
    """A server race in the session shape the views share: every server trace is the
    pseudo-test ``trace:<id>`` and its races are new (no baseline on a server)."""
    return {**race, "test": f"trace:{race.get('trace_id')}", "status": "new"}


__all__ = ["ServerSource", "normalise_url"]
