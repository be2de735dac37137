"""Property-based API test against the served /openapi.json: no 5xx, responses match the schema.

Bounded (few examples per operation) so the file stays well under 30 s. ``/api/live`` is excluded:
an event stream never completes a response.
"""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from rw_events import body, racing_trace
from rw_server import RunningServer
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

from raceway_server.config import Config


@pytest.fixture(scope="module")
def api_server() -> Iterator[RunningServer]:
    server = RunningServer(Config(max_body_bytes=1_000_000))
    for _ in range(3):
        httpx.post(server.url + "/events", content=body(racing_trace()[1]))
    yield server
    server.stop()


@pytest.fixture(scope="module")
def api_schema(api_server: RunningServer) -> schemathesis.BaseSchema:
    return schemathesis.openapi.from_url(api_server.url + "/openapi.json")


schema = schemathesis.pytest.from_fixture("api_schema").exclude(path="/api/live")


@schema.parametrize()
@settings(max_examples=10, deadline=None, suppress_health_check=list(HealthCheck), database=None)
def test_api_conforms_to_its_schema(case: schemathesis.Case) -> None:
    case.call_and_validate(
        checks=[
            not_a_server_error,
            status_code_conformance,
            content_type_conformance,
            response_schema_conformance,
        ]
    )
