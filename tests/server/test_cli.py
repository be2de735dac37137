"""The ``raceway`` command line: read commands against a live server, and ``raceway serve``."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import psycopg
import pytest
from raceway_sdk.protocol.events import uuid_str
from rw_events import body, racing_trace
from rw_server import RunningServer, free_port

from raceway_server.cli import command_modules, main


@pytest.fixture
def loaded(server: RunningServer) -> tuple[RunningServer, int]:
    trace, events = racing_trace(service="billing")
    httpx.post(server.url + "/events", content=body(events))
    return server, trace


def test_every_command_is_one_module() -> None:
    names = set(command_modules())
    assert {"serve", "traces", "trace", "services", "races", "hotspots", "health",
            "performance", "edges", "export"} <= names


@pytest.mark.parametrize(
    ("argv", "needle"),
    [
        (["traces"], "1 traces"),
        (["services"], "billing"),
        (["races"], "racing variables"),
        (["hotspots"], "counter"),
        (["health", "--window", "10"], "healthy"),
        (["performance", "--limit", "5"], "trace latency"),
        (["edges"], "(none)"),
        (["status"], "events: 2"),
        (["service", "overview", "billing"], "2 events in 1 traces"),
    ],
)
def test_read_commands(loaded: tuple[RunningServer, int], capsys: pytest.CaptureFixture[str],
                       argv: list[str], needle: str) -> None:
    server, _ = loaded
    assert main([*argv, "--server", server.url]) == 0
    assert needle in capsys.readouterr().out


def test_trace_json_and_export(loaded: tuple[RunningServer, int], capsys: pytest.CaptureFixture[str],
                               tmp_path: Path) -> None:
    server, trace = loaded
    tid = uuid_str(trace)
    assert main(["trace", tid, "--server", server.url]) == 0
    text = capsys.readouterr().out
    assert "1 races" in text and "CRITICAL RACE" in text.upper()
    assert main(["trace", "-i", tid, "--json", "--server", server.url]) == 0
    assert json.loads(capsys.readouterr().out)["analysis"]["potential_races"] == 1
    out = tmp_path / "t.json"
    assert main(["export", "-t", tid, "-o", str(out), "--server", server.url]) == 0
    assert json.loads(out.read_text())["trace_id"] == tid
    shiviz = tmp_path / "t.log"
    assert main(["export", "-t", tid, "-o", str(shiviz), "--format", "shiviz", "--server", server.url]) == 0
    assert shiviz.read_text().startswith("(?<host>")


def test_errors_are_clear(serve: Callable[..., RunningServer], capsys: pytest.CaptureFixture[str]) -> None:
    secured = serve(api_keys=("cli-key",))
    assert main(["traces", "--server", secured.url]) == 2
    assert "unauthorized: pass --api-key" in capsys.readouterr().err
    assert main(["traces", "--server", secured.url, "--api-key", "cli-key"]) == 0
    assert main(["trace", "nope", "--server", secured.url, "--api-key", "cli-key"]) == 2
    assert "Invalid trace ID format" in capsys.readouterr().err
    assert main(["traces", "--server", f"http://127.0.0.1:{free_port()}"]) == 2
    assert "cannot reach the Raceway server" in capsys.readouterr().err


def _spawn(*args: str, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "raceway_server", "serve", *args],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, **(env or {})},
    )


def _wait_ready(url: str, proc: subprocess.Popen[str], headers: dict[str, str] | None = None) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.communicate()[1]
        try:
            if httpx.get(url + "/health", headers=headers).json()["data"]["ready"]:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise AssertionError("server did not become ready")


@pytest.mark.postgres
def test_serve_process_with_postgres_shuts_down_gracefully(pg_url: str) -> None:
    port = free_port()
    proc = _spawn("--port", str(port), "--storage", "postgres", env={
        "RACEWAY_DATABASE_URL": pg_url, "RACEWAY_API_KEYS": "proc-key", "RACEWAY_PG_MIN_CONNECTIONS": "1",
    })
    url = f"http://127.0.0.1:{port}"
    key = {"Authorization": "Bearer proc-key"}
    try:
        _wait_ready(url, proc, key)
        trace, events = racing_trace()
        assert httpx.post(url + "/events", content=body(events), headers=key).status_code == 200
        # an open live stream must not keep the process from shutting down
        with httpx.stream("GET", url + "/api/live", headers=key, timeout=10) as stream:
            next(stream.iter_lines())
            proc.send_signal(signal.SIGTERM)
            # uvicorn finishes gracefully, then re-raises the signal for the process manager
            assert proc.wait(timeout=20) in (0, -signal.SIGTERM)
    finally:
        if proc.poll() is None:
            proc.kill()
    _, err = proc.communicate()
    assert "proc-key" not in err  # keys never logged
    assert "storage postgres flushed and closed" in err
    with psycopg.connect(pg_url) as conn:
        assert conn.execute("SELECT count(*) FROM raceway_events").fetchone() == (2,)


def test_serve_warns_when_public_without_key() -> None:
    port = free_port()
    proc = _spawn("--host", "0.0.0.0", "--port", str(port))
    try:
        _wait_ready(f"http://127.0.0.1:{port}", proc)
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
    _, err = proc.communicate()
    assert "without an API key" in err


def test_serve_rejects_bad_configuration(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["serve", "--storage", "postgres"]) == 2
    assert "no connection string" in capsys.readouterr().err


@pytest.mark.postgres
def test_two_serve_processes_sharing_postgres_answer_alike(pg_url: str) -> None:
    env = {"RACEWAY_DATABASE_URL": pg_url, "RACEWAY_PG_MIN_CONNECTIONS": "1", "RACEWAY_STORAGE": "postgres"}
    ports = [free_port(), free_port()]
    procs = [_spawn("--port", str(port), env=env) for port in ports]
    urls = [f"http://127.0.0.1:{port}" for port in ports]
    try:
        for url, proc in zip(urls, procs, strict=True):
            _wait_ready(url, proc)
        traces = []
        for n in range(4):
            trace, events = racing_trace(service=f"s{n % 2}")
            traces.append(trace)
            for i, event in enumerate(events):  # alternate processes event by event
                assert httpx.post(urls[(n + i) % 2] + "/events", content=body([event])).status_code == 200
        for path in ("/api/traces", "/api/services", "/api/distributed/global-races",
                     f"/api/traces/{uuid_str(traces[2])}", "/api/performance/metrics"):
            first, second = (httpx.get(url + path).json()["data"] for url in urls)
            assert first == second, path
        assert httpx.get(f"{urls[1]}/api/traces/{uuid_str(traces[2])}").json()["data"]["analysis"]["potential_races"] == 1
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            proc.wait(timeout=20)
