"""``GET /openapi.json``: the hand-written OpenAPI 3.0 description of every route.

Kept as code (not docstring YAML) so that one helper builds the envelope around each payload and
the schemathesis test can check every response against it.
"""

from __future__ import annotations

from typing import Any

from raceway_server.service import VERSION

S = dict[str, Any]

STR: S = {"type": "string"}
INT: S = {"type": "integer"}
NUM: S = {"type": "number"}
BOOL: S = {"type": "boolean"}
UUID: S = {"type": "string", "format": "uuid"}
ANY: S = {}


def obj(required: dict[str, S], optional: dict[str, S] | None = None, nullable: bool = False) -> S:
    schema: S = {
        "type": "object",
        "required": list(required),
        "properties": {**required, **(optional or {})},
    }
    if nullable:
        schema["nullable"] = True
    return schema


def arr(items: S) -> S:
    return {"type": "array", "items": items}


def nullable(schema: S) -> S:
    return {**schema, "nullable": True}


def envelope(data: S) -> S:
    return obj({"success": BOOL, "data": data, "error": nullable(STR)})


ERROR = envelope(nullable(ANY))
TRACE_SUMMARY = obj(
    {
        "trace_id": UUID,
        "event_count": INT,
        "first_timestamp": STR,
        "last_timestamp": STR,
        "service_count": INT,
        "services": arr(STR),
        "race_count": INT,  # addition: races the engine reported for the trace
    }
)
WARMUP = obj(
    {
        "phase": {"type": "string", "enum": ["idle", "replaying", "completed", "failed"]},
        "ready": BOOL,
        "total_traces": INT,
        "processed_traces": INT,
        "last_trace": nullable(STR),
        "started_at": nullable(STR),
        "completed_at": nullable(STR),
        "last_error": nullable(STR),
    }
)
INGEST = obj(
    {
        "message": STR,
        "ingested": INT,
        "duplicates": INT,
        "rejected": INT,
        "errors": arr(obj({"index": INT, "field": STR, "message": STR})),
    }
)
PAGE = {
    "total_traces": INT,
    "page": INT,
    "page_size": INT,
    "total_pages": INT,
    "traces": arr(TRACE_SUMMARY),
}
CRITICAL_PATH = obj(
    {
        "trace_id": UUID,
        "path_events": INT,
        "total_duration_ms": NUM,
        "trace_total_duration_ms": NUM,
        "percentage_of_total": NUM,
        "path": arr(obj({"id": STR, "kind": STR, "location": STR, "timestamp": STR, "duration_ms": NUM})),
    }
)
ANOMALY = obj(
    {
        "event_id": STR,
        "event_kind": STR,
        "severity": {"type": "string", "enum": ["Minor", "Warning", "Critical"]},
        "actual_duration_ms": NUM,
        "expected_duration_ms": NUM,
        "std_dev_from_mean": NUM,
        "description": STR,
        "location": STR,
        "timestamp": STR,
    }
)
DEPENDENCIES = obj(
    {
        "trace_id": UUID,
        "services": arr(obj({"name": STR, "event_count": INT})),
        "dependencies": arr(obj({"from": STR, "to": STR, "call_count": INT})),
    }
)
ACCESS = obj(
    {
        "event_id": STR,
        "timestamp": STR,
        "thread_id": STR,
        "service_name": STR,
        "access_type": STR,
        "new_value": ANY,
        "location": STR,
        "has_causal_link_to_previous": BOOL,
        "is_race": BOOL,
    },
    {"old_value": ANY},
)
RACE_DETAIL = obj(
    {
        "severity": {"type": "string", "enum": ["CRITICAL", "WARNING", "INFO"]},
        "variable": STR,
        "event1_thread": STR,
        "event2_thread": STR,
        "event1_location": STR,
        "event2_location": STR,
        "description": STR,
    }
)
ANALYSIS = obj(
    {
        "concurrent_events": INT,
        "potential_races": INT,
        "anomalies": arr(STR),
        "race_details": arr(RACE_DETAIL),
    }
)
SEVERITY = {"type": "string", "enum": ["write-write", "lost-update", "read-write"]}
RACE_ACCESS = obj(
    {
        "event_id": UUID,
        "task": STR,
        "task_name": STR,
        "task_kind": STR,
        "task_created_at": nullable(STR),
        "task_stack": nullable(arr(ANY)),
        "origin_trace": nullable(UUID),
        "access_type": STR,
        "location": STR,
        "func": nullable(STR),
        "stack": nullable(arr(ANY)),
        "value": ANY,
        "timestamp_ns": INT,
        "vc": {"type": "object", "additionalProperties": INT},
        "seg": nullable(INT),
        "loop": nullable(STR),
    }
)
RACE = obj(  # the engine's Race.to_dict()
    {
        "id": INT,
        "trace_id": UUID,
        "severity": SEVERITY,
        "variable": STR,
        "loc": STR,
        "first": RACE_ACCESS,
        "second": RACE_ACCESS,
        "stale_read": nullable(RACE_ACCESS),
        "explanation": STR,
        "key": arr(STR),
    }
)
TASK = obj(
    {
        "id": STR,
        "name": STR,
        "kind": STR,
        "parent": nullable(STR),
        "created_at": nullable(STR),
        "stack": nullable(arr(ANY)),
        "origin_trace": nullable(UUID),
        "loop": nullable(STR),
    }
)
RACE_PAGE = obj(
    {
        "total_races": INT,
        "page": INT,
        "page_size": INT,
        "total_pages": INT,
        "by_severity": {"type": "object", "additionalProperties": INT},
        "races": arr(RACE),
    }
)
SESSION = obj({"format": STR, "version": INT})
BUNDLE = obj(
    {
        "trace_id": UUID,
        "events": arr({"type": "object"}),
        "audit_trails": {"type": "object", "additionalProperties": arr(ACCESS)},
        "analysis": ANALYSIS,
        "critical_path": nullable(CRITICAL_PATH),
        "anomalies": arr(ANOMALY),
        "dependencies": nullable(DEPENDENCIES),
        "races": arr(RACE),  # addition: the full race records behind analysis.race_details
        "tasks": {"type": "object", "additionalProperties": TASK},  # addition: who made the events
    }
)
CALLS = arr(obj({"to": STR, "total_calls": INT, "trace_count": INT}))
EDGE = obj(
    {
        "from_service": STR,
        "to_service": STR,
        "link_type": {
            "type": "string",
            "enum": ["HttpCall", "GrpcCall", "MessageQueue", "DatabaseQuery", "Custom"],
        },
        "call_count": INT,
    }
)
PERFORMANCE = obj(
    {
        "trace_latency": obj(
            {
                "avg_ms": NUM,
                "p50_ms": NUM,
                "p95_ms": NUM,
                "p99_ms": NUM,
                "slowest_traces": arr(obj({"trace_id": UUID, "duration_ms": NUM, "services": arr(STR)})),
            }
        ),
        "event_performance": obj(
            {
                "by_type": arr(obj({"type": STR, "count": INT, "avg_duration_ms": NUM})),
                "avg_duration_ms": NUM,
                "slow_operations": arr({"type": "object"}),
            }
        ),
        "service_latency": arr(obj({"service": STR, "event_count": INT, "avg_duration_ms": NUM})),
        "throughput": obj(
            {"events_per_second": NUM, "traces_per_second": NUM, "time_range_seconds": NUM}
        ),
    }
)
GLOBAL_ANALYSIS = obj(
    {
        "total_traces": INT,
        "total_events": INT,
        "concurrent_events": INT,
        "potential_races": INT,
        "anomalies": arr(STR),
        "race_details": arr({"type": "object"}),
    }
)
GLOBAL_RACES = obj(
    {
        "total_races": INT,
        "races": arr(
            obj(
                {
                    "variable": STR,
                    "trace_count": INT,
                    "access_count": INT,
                    "access_types": arr(STR),
                    "thread_count": INT,
                    "severity": STR,
                    "trace_ids": arr(STR),
                }
            )
        ),
    }
)
HOTSPOTS = obj(
    {
        "top_variables": arr(
            obj(
                {
                    "variable": STR,
                    "access_count": INT,
                    "trace_count": INT,
                    "services": arr(STR),
                    "race_count": INT,  # addition: reported races on the variable
                }
            )
        ),
        "top_service_calls": arr(obj({"from_service": STR, "to_service": STR, "call_count": INT})),
    }
)
SERVICE_HEALTH = obj(
    {
        "name": STR,
        "status": {"type": "string", "enum": ["healthy", "warning", "critical"]},
        "trace_count": INT,
        "last_activity": STR,
        "avg_events_per_trace": NUM,
        "minutes_since_last_activity": NUM,
    }
)


def _json(schema: S) -> S:
    return {"content": {"application/json": {"schema": schema}}}


def query(name: str, schema: S, description: str) -> S:
    return {"name": name, "in": "query", "required": False, "schema": schema, "description": description}


def path(name: str, schema: S) -> S:
    return {"name": name, "in": "path", "required": True, "schema": schema}


TRACE_ID = path("trace_id", UUID)


def op(
    summary: str, data: S, params: list[S] | None = None, tag: str = "api", extra: S | None = None
) -> S:
    responses: S = {"200": {"description": "OK", **_json(envelope(data))}}
    responses.update(extra or {})
    responses["default"] = {"description": "Error envelope", **_json(ERROR)}
    return {"summary": summary, "tags": [tag], "parameters": params or [], "responses": responses}


def _page_params(default_size: int, what: str = "traces") -> list[S]:
    return [
        query("page", {"type": "integer", "minimum": 1, "default": 1}, "1-based page"),
        query(
            "page_size",
            {"type": "integer", "minimum": 1, "maximum": 1000, "default": default_size},
            f"{what} per page (0 is a 400, not a crash)",
        ),
    ]


ENVELOPE_PARAM = query(
    "envelope",
    {"type": "string", "enum": ["0", "1", "true", "false"], "default": "0"},
    "1: answer inside the {success, data, error} envelope instead of the bare file",
)


def openapi_document() -> S:
    """The OpenAPI 3.0.3 document served at ``/openapi.json``."""
    paths: S = {
        "/health": {"get": op("Warm-up state (503 if the replay failed)", WARMUP, tag="system")},
        "/status": {
            "get": op(
                "Version, real uptime, counts, warm-up, ingestion and drop counters",
                obj(
                    {
                        "version": STR,
                        "uptime_seconds": NUM,
                        "events_captured": INT,
                        "traces_active": INT,
                        "warmup": WARMUP,
                    }
                ),
                tag="system",
            )
        },
        "/events": {
            "post": {
                **op(
                    "Ingest a batch; acknowledged after commit",
                    INGEST,
                    tag="ingest",
                    extra={
                        "207": {
                            "description": "Some events rejected, the valid ones stored",
                            **_json(envelope(INGEST)),
                        }
                    },
                ),
                "requestBody": {
                    "required": True,
                    **_json(obj({"events": arr({"type": "object"})})),
                },
            }
        },
        "/api/traces": {
            "get": op(
                "Trace summaries, newest first",
                obj(PAGE),
                [
                    *_page_params(20),
                    query("min_events", {"type": "integer", "minimum": 0, "default": 1}, "minimum events"),
                ],
            )
        },
        "/api/races": {
            "get": op(
                "Races of every trace (the engine's full records), newest first",
                RACE_PAGE,
                [
                    *_page_params(20, "races"),
                    query("trace_id", UUID, "only this trace's races"),
                    query("variable", STR, "only races on this variable (exact name)"),
                    query("severity", SEVERITY, "only this kind (by_severity still counts all kinds)"),
                ],
            )
        },
        "/api/traces/{trace_id}": {
            "get": op("Events and every per-trace analysis", BUNDLE, [TRACE_ID])
        },
        "/api/traces/{trace_id}/audit-trail/{variable}": {
            "get": op(
                "Every access to one variable, with causal links",
                obj({"trace_id": UUID, "variable": STR, "accesses": arr(ACCESS)}),
                [TRACE_ID, path("variable", STR)],
            )
        },
        "/api/traces/{trace_id}/critical-path": {
            "get": op("Critical path on the happens-before DAG", CRITICAL_PATH, [TRACE_ID])
        },
        "/api/traces/{trace_id}/anomalies": {
            "get": op(
                "Duration anomalies against robust baselines",
                obj({"trace_id": UUID, "anomaly_count": INT, "anomalies": arr(ANOMALY)}),
                [TRACE_ID],
            )
        },
        "/api/traces/{trace_id}/dependencies": {
            "get": op("Services of the trace and the calls between them", DEPENDENCIES, [TRACE_ID])
        },
        "/api/traces/{trace_id}/export": {
            "get": {
                "summary": "Export one trace: session JSON, raw events, or a ShiViz log (bare file by default)",
                "tags": ["export"],
                "parameters": [
                    TRACE_ID,
                    query(
                        "format",
                        {"type": "string", "enum": ["session", "events", "shiviz"], "default": "session"},
                        "export format",
                    ),
                    ENVELOPE_PARAM,
                ],
                "responses": {
                    "200": {
                        "description": "The export",
                        "content": {
                            "application/json": {"schema": {"type": "object"}},
                            "text/plain": {"schema": STR},
                        },
                    },
                    "default": {"description": "Error envelope", **_json(ERROR)},
                },
            }
        },
        "/api/analyze/global": {
            "get": op("Cross-trace races by causality (bounded work)", GLOBAL_ANALYSIS)
        },
        "/api/services": {
            "get": op(
                "Services seen in event metadata",
                obj(
                    {
                        "total_services": INT,
                        "services": arr(obj({"name": STR, "event_count": INT, "trace_count": INT})),
                    }
                ),
            )
        },
        "/api/services/health": {
            "get": op(
                "Services active in the window",
                arr(SERVICE_HEALTH),
                [query("time_window_minutes", {"type": "integer", "minimum": 1, "maximum": 525600, "default": 60}, "window")],
            )
        },
        "/api/services/{service_name}/traces": {
            "get": op(
                "Trace summaries of one service",
                obj({"service_name": STR, **PAGE}),
                [path("service_name", STR), *_page_params(100)],
            )
        },
        "/api/services/{service_name}/dependencies": {
            "get": op(
                "Calls from and to one service",
                obj({"service_name": STR, "calls_to": CALLS, "called_by": CALLS}),
                [path("service_name", STR)],
            )
        },
        "/api/performance/metrics": {
            "get": op(
                "Latency percentiles, per-kind and per-service durations, throughput",
                PERFORMANCE,
                [query("limit", {"type": "integer", "minimum": 1, "maximum": 100000, "default": 50}, "newest traces considered")],
            )
        },
        "/api/distributed/edges": {
            "get": op(
                "Cross-service calls", obj({"total_edges": INT, "edges": arr(EDGE)})
            )
        },
        "/api/distributed/global-races": {
            "get": op("Variables with real cross-trace races", GLOBAL_RACES)
        },
        "/api/distributed/hotspots": {"get": op("Most accessed variables and busiest calls", HOTSPOTS)},
        "/api/export/session": {
            "get": {
                "summary": "Session JSON (docs/internals.md) of all or selected traces",
                "tags": ["export"],
                "parameters": [
                    {
                        "name": "trace_id",
                        "in": "query",
                        "required": False,
                        "schema": arr(UUID),
                        "style": "form",
                        "explode": True,
                    },
                    ENVELOPE_PARAM,
                ],
                "responses": {
                    "200": {
                        "description": "raceway-session v1 (inside the envelope with envelope=1)",
                        **_json({"anyOf": [SESSION, envelope(SESSION)]}),
                    },
                    "default": {"description": "Error envelope", **_json(ERROR)},
                },
            }
        },
        "/api/live": {
            "get": {
                "summary": "Server-Sent Events: hello, trace, race, lagged",
                "tags": ["live"],
                "parameters": [query("types", STR, "comma-separated subset of trace,race")],
                "responses": {
                    "200": {
                        "description": "event stream",
                        "content": {
                            "text/event-stream": {
                                "schema": obj(
                                    {
                                        "event": {"type": "string", "enum": ["hello", "trace", "race", "lagged"]},
                                        "data": STR,
                                    },
                                    {"id": STR},
                                )
                            }
                        },
                    },
                    "default": {"description": "Error envelope", **_json(ERROR)},
                },
            }
        },
        "/openapi.json": {
            "get": {
                "summary": "This document",
                "tags": ["system"],
                "responses": {"200": {"description": "OpenAPI 3.0", **_json({"type": "object"})}},
            }
        },
        "/": {
            "get": {
                "summary": "Web UI shell (public: holds no data; the UI reads the API with the key)",
                "tags": ["ui"],
                "responses": {
                    "200": {"description": "HTML", "content": {"text/html": {"schema": STR}}},
                    "default": {"description": "Error envelope", **_json(ERROR)},
                },
            }
        },
        "/ui/{name}": {
            "get": {
                "summary": "Web UI static asset (our own JS and CSS, content-hashed URLs)",
                "tags": ["ui"],
                "parameters": [
                    {"name": "name", "in": "path", "required": True, "schema": STR},
                ],
                "responses": {
                    "200": {
                        "description": "Asset",
                        "content": {"text/javascript": {"schema": STR}, "text/css": {"schema": STR}},
                    },
                    "404": {"description": "Unknown asset", "content": {"text/plain": {"schema": STR}}},
                },
            }
        },
        "/auth/login": {
            "post": {
                "summary": "UI login with server.ui_password; sets the raceway_session cookie",
                "tags": ["auth"],
                "requestBody": {"required": True, **_json(obj({"password": STR}))},
                "responses": {
                    "200": {"description": "Logged in", **_json(obj({"success": BOOL, "message": STR}))},
                    "401": {"description": "Wrong password", **_json(obj({"success": BOOL, "message": STR}))},
                    "default": {"description": "Error envelope", **_json(ERROR)},
                },
            }
        },
        "/auth/logout": {
            "post": {
                "summary": "End the UI session",
                "tags": ["auth"],
                "responses": {"200": {"description": "Logged out", **_json(obj({"success": BOOL, "message": STR}))}},
            }
        },
        "/auth/check": {
            "get": {
                "summary": "Whether this request is authenticated and whether auth is required",
                "tags": ["auth"],
                "responses": {
                    "200": {
                        "description": "state",
                        **_json(obj({"authenticated": BOOL, "auth_required": BOOL})),
                    }
                },
            }
        },
    }
    return {
        "openapi": "3.0.3",
        "info": {
            "title": "Raceway server",
            "version": VERSION,
            "description": "Raceway-compatible HTTP API: envelope {success, data, error}.",
        },
        "components": {
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer"},
                "key": {"type": "apiKey", "in": "header", "name": "X-Raceway-Key"},
                "apiKeyHeader": {"type": "apiKey", "in": "header", "name": "X-Raceway-API-Key"},
                "query": {"type": "apiKey", "in": "query", "name": "api_key"},
            }
        },
        "security": [{"bearer": []}, {"key": []}, {"apiKeyHeader": []}, {"query": []}, {}],
        "paths": paths,
    }
