"""Real services (``raceway run`` subprocesses) reporting to a real server on 127.0.0.1."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import httpx
from msutil import APPS, Caller, RunningServer, concurrently
from raceway_sdk.testing_services import Services


def kinds(server: RunningServer, trace: int) -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    for e in server.events(trace):
        out.setdefault(e.meta.service_name, set()).add(e.kind)
    return out


def test_flask_service_concurrent_requests_race_sequential_do_not(
    server: RunningServer, services: Services, caller: Caller
) -> None:
    bank = services.start(APPS, "flask_app", name="bank")
    with httpx.Client() as client:
        assert client.post(bank.url + "/withdraw").json() == {"balance": 90}
        reply = client.post(bank.url + "/withdraw")
    assert reply.json() == {"balance": 80} and "raceway-clock" in reply.headers
    caller.flush()
    assert server.races(caller.trace) == []  # the response's clock ordered the second call
    seen = kinds(server, caller.trace)
    assert {"HttpRequest", "HttpResponse", "StateChange", "AsyncSpawn"} <= seen["bank"]
    assert {"HttpRequest", "HttpResponse", "LockRelease", "LockAcquire"} <= seen["tests"]

    concurrently(lambda: httpx.post(bank.url + "/withdraw"),
                 lambda: httpx.post(bank.url + "/withdraw"))
    caller.flush()
    races = server.races(caller.trace)
    assert races and all(r.first.task_kind == "http" == r.second.task_kind for r in races)
    assert any(r.severity == "write-write" and "['alice']" in r.variable for r in races)
    assert all(r.first.location.endswith("apps.py:" + r.first.location.rsplit(":", 1)[1])
               for r in races)


def test_asgi_service_lost_update_vs_await_free_handlers(
    server: RunningServer, services: Services, caller: Caller
) -> None:
    svc = services.start(APPS, "asgi_app", name="counter")
    concurrently(lambda: httpx.post(svc.url + "/calm"), lambda: httpx.post(svc.url + "/calm"))
    caller.flush()
    assert server.races(caller.trace) == []  # await-free: atomic on the service loop
    concurrently(lambda: httpx.post(svc.url + "/counter"),
                 lambda: httpx.post(svc.url + "/counter"))
    caller.flush()
    races = server.races(caller.trace)
    assert races and {r.severity for r in races} == {"lost-update"}
    # the two /counter handlers, and each /counter against a /calm write in its await
    sites = {tuple(sorted(x.location.rsplit(":", 1)[1] for x in (r.first, r.second)))
             for r in races}
    assert len({a == b for a, b in sites}) == 2


def test_three_service_chain_carries_clocks_both_ways(
    server: RunningServer, services: Services, caller: Caller
) -> None:
    a = services.start(APPS, "asgi_app", name="gateway")
    b = services.start(APPS, "flask_app", name="orders")
    c = services.start(APPS, "flask_app", name="ledger")
    chain = {"next": f"{b.url},{c.url}"}
    with httpx.Client() as client:
        first = client.post(a.url + "/hop", params=chain)
        client.post(a.url + "/hop", params=chain)
    assert first.json()["downstream"]["downstream"] == {"balance": 90}
    caller.flush()
    assert server.races(caller.trace) == []
    assert set(kinds(server, caller.trace)) == {"tests", "gateway", "orders", "ledger"}
    deps = server.service.dependencies(caller.trace)["dependencies"]
    assert {(d["from"], d["to"]) for d in deps} == {
        ("tests", "gateway"), ("gateway", "orders"), ("orders", "ledger")}
    assert all(d["call_count"] == 2 and d["link_types"] == {"HttpCall": 2} for d in deps)

    concurrently(lambda: httpx.post(a.url + "/hop", params=chain),
                 lambda: httpx.post(a.url + "/hop", params=chain))
    caller.flush()
    races = server.races(caller.trace)
    assert races, "two concurrent chains write the ledger's balance unordered"
    ledger_tasks = {e.ext["task"] for e in server.events(caller.trace)
                    if e.meta.service_name == "ledger"}
    assert {x.task for r in races for x in (r.first, r.second)} <= ledger_tasks
    assert all("['alice']" in r.variable for r in races)


def test_two_services_sharing_nothing_but_http_do_not_race(
    server: RunningServer, services: Services, caller: Caller
) -> None:
    one = services.start(APPS, "flask_app", name="one")
    two = services.start(APPS, "flask_app", name="two")  # same code, its own memory
    concurrently(lambda: httpx.post(one.url + "/withdraw"),
                 lambda: httpx.post(two.url + "/withdraw"))
    caller.flush()
    assert server.races(caller.trace) == []
    writers = {e.meta.service_name for e in server.events(caller.trace)
               if e.kind == "StateChange" and e.data["access_type"] == "Write"}
    assert writers == {"one", "two"}


def test_manual_api_only_service(
    server: RunningServer, services: Services, caller: Caller
) -> None:
    inv = services.start(APPS, "manual_app", name="inventory", manual=True)
    with httpx.Client() as client:
        client.post(inv.url + "/take")
        client.post(inv.url + "/take")
    caller.flush()
    assert server.races(caller.trace) == []
    changes = [e for e in server.events(caller.trace) if e.kind == "StateChange"]
    assert {e.data["variable"] for e in changes} == {"inventory.count"}  # nothing automatic
    concurrently(lambda: httpx.post(inv.url + "/take"), lambda: httpx.post(inv.url + "/take"))
    caller.flush()
    races = server.races(caller.trace)
    assert races and {r.variable for r in races} == {"inventory.count"}


def test_api_key_reaches_the_server_and_never_another_service(make_server, tmp_path) -> None:
    server = make_server(api_keys=("k-123",))
    assert httpx.post(server.url + "/events", json={"events": []}).status_code == 401
    svc = Services(server_url=server.url, workdir=str(Path(APPS).parents[2]))
    caller = Caller(server.url, api_key="k-123")
    try:
        env = {"RACEWAY_API_KEY": "k-123"}
        front = svc.start(APPS, "flask_app", name="front", env=env)
        echo = svc.start(APPS, "flask_app", name="echo", env=env)
        reply = httpx.post(front.url + "/hop", params={"next": echo.url})
        sent = {k.lower() for k in reply.json()["sent_headers"]}
        assert "raceway-clock" in sent and "traceparent" in sent
        assert not sent & {"authorization", "x-raceway-key", "x-raceway-api-key"}
        caller.flush()
        assert caller.sink.stats()["dropped"] == 0
        assert {"front", "echo"} <= {e.meta.service_name for e in server.events(caller.trace)}
    finally:
        caller.close()
        svc.stop_all()


def test_raceway_run_errors_and_sitecustomize_chaining(tmp_path, server: RunningServer) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RACEWAY_")}
    cmd = [sys.executable, "-m", "raceway_server", "run"]
    out = subprocess.run(cmd + ["--", sys.executable, "-c", "pass"], env=env,
                         capture_output=True, text=True, timeout=30)
    assert out.returncode == 2 and "RACEWAY_SERVER_URL" in out.stderr
    out = subprocess.run(cmd + ["--server", server.url, "--", "no-such-command-xyz"], env=env,
                         capture_output=True, text=True, timeout=30)
    assert out.returncode == 2 and "command not found: no-such-command-xyz" in out.stderr

    other = tmp_path / "other"
    other.mkdir()
    (other / "sitecustomize.py").write_text("import os\nos.environ['CHAINED'] = 'yes'\n")
    env["PYTHONPATH"] = str(other)
    probe = ("import os, subprocess, sys; from raceway_sdk import _recorder as r, instrument as i;"
             "print(os.environ.get('CHAINED'), type(r.get_sink()).__name__, i.is_installed(),"
             " r._service_name, flush=True);"
             "subprocess.run([sys.executable, '-c', 'from raceway_sdk import _recorder as r;"
             " print(type(r.get_sink()).__name__)'], check=True)")
    out = subprocess.run(cmd + ["--server", server.url, "--service", "probe", "--",
                                sys.executable, "-c", probe],
                         env=env, capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    # the program's own Python subprocesses are instrumented too (coverage's scheme)
    assert out.stdout.split() == ["yes", "HttpSink", "True", "probe", "HttpSink"]
