"""Modes end to end: remote server (alive, unreachable), xdist, child-process listener."""

from __future__ import annotations

import json

import pytest
from plugin_kernels import ARGS, KERNELS

pytestmark = pytest.mark.usefixtures("no_autoload")


def test_unreachable_server_keeps_local_verdicts(kernels):
    import socket

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    result = kernels.runpytest_subprocess(
        "--raceway", f"--raceway-server=http://127.0.0.1:{port}", *ARGS)
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines([
        f"raceway: mode=remote http://127.0.0.1:{port}, *",
        f"raceway: raceway server http://127.0.0.1:{port} unreachable or failing (ConnectError*"
        "verdicts are local and complete",
    ])


def test_xdist_merges_one_report(pytester):
    pytester.makepyfile(test_a=KERNELS, test_b=KERNELS)
    result = pytester.runpytest_subprocess("--raceway", "-n", "2", "-v", "--raceway-json=s.json",
                                           "-p", "xdist.plugin", *ARGS)
    result.assert_outcomes(passed=2, failed=2)
    assert result.ret == 1
    result.stdout.fnmatch_lines(["*test_a.py::test_racy*", "*= raceway =*",
                                 "2 race(s) in 2 test(s)*"])
    assert result.stdout.str().count("RACE") >= 2
    doc = json.loads((pytester.path / "s.json").read_text())
    assert sorted(r["test"] for r in doc["races"]) == ["test_a.py::test_racy", "test_b.py::test_racy"]
    assert sorted(r["id"] for r in doc["races"]) == [1, 2]
    assert {r["anchor"].split("-")[1] for r in doc["races"]} <= {"gw0", "gw1"}
    assert len(doc["tests"]) == 4 and len(doc["traces"]) == 2
    assert doc["summary"]["events"] > 0


CHILD = '''
import os, sys, time, urllib.request
from raceway_sdk.protocol.events import Event, Metadata, dumps_batch, new_event_id, parse_uuid

trace = parse_uuid(os.environ["RACEWAY_TRACE_ID"])
def write(task, value):
    meta = Metadata(task, os.getpid(), "child-service")
    return Event(new_event_id(), trace, None, time.time_ns(), "StateChange",
                 {"variable": "orders.total", "old_value": None, "new_value": value,
                  "location": "service.py:7", "access_type": "Write"},
                 meta, {task: 1}, [], {"task": task, "trusted_vc": True, "loc": "orders.total",
                                       "func": "handle", "stack": [["service.py", 7, "handle"]]})
body = dumps_batch([write("svc/1", 1), write("svc/2", 2)])
request = urllib.request.Request(os.environ["RACEWAY_SERVER_URL"] + "/events", data=body,
                                 headers={"content-type": "application/json"})
print(urllib.request.urlopen(request, timeout=10).read().decode())
'''


def test_child_process_events_reach_the_test_through_the_listener(pytester):
    pytester.makepyfile(child_service=CHILD)
    pytester.makepyfile(
        """
        import json, os, subprocess, sys

        def test_service_in_a_subprocess():
            out = subprocess.run([sys.executable, "child_service.py"], capture_output=True,
                                 text=True, check=True).stdout
            assert json.loads(out)["accepted"] == 2
        """
    )
    result = pytester.runpytest_subprocess("--raceway", "-v", *ARGS)
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*::test_service_in_a_subprocess RACE*",
                                 "WARNING: RACE on orders.total (write-write)",
                                 "events recorded: * (from child processes: 2); dropped: 0"])


def test_remote_server_receives_every_event(kernels):
    import http.server
    import threading

    received = []

    class Server(http.server.BaseHTTPRequestHandler):
        def do_POST(self):
            body = self.rfile.read(int(self.headers["content-length"]))
            received.append((self.path, json.loads(body)))
            self.send_response(200)
            self.send_header("content-length", "2")
            self.end_headers()
            self.wfile.write(b"{}")

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Server)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}"
        result = kernels.runpytest_subprocess("--raceway", f"--raceway-server={url}",
                                              "--raceway-json=s.json", *ARGS)
    finally:
        server.shutdown()
        server.server_close()
    result.assert_outcomes(passed=1, failed=1)  # verdicts are the same as embedded
    doc = json.loads((kernels.path / "s.json").read_text())
    sent = sum(len(batch["events"]) for _, batch in received)
    assert {path for path, _ in received} == {"/events"}
    assert sent == doc["summary"]["counts"]["remote_sent"] == doc["summary"]["events"] > 0
    assert doc["summary"]["counts"]["remote_dropped"] == 0 and not doc["summary"]["notes"]



def test_pytest_asyncio_tests_are_one_trace_each(pytester):
    pytester.makepyfile(
        """
        import asyncio
        import pytest

        class Stock:
            count = 10

        async def reserve(stock):
            seen = stock.count
            await asyncio.sleep(0)
            stock.count = seen - 1

        @pytest.mark.asyncio
        async def test_lost_update():
            await asyncio.gather(reserve(Stock()), reserve(Stock()))  # two objects: no race
            shared = Stock()
            await asyncio.gather(reserve(shared), reserve(shared))

        @pytest.mark.asyncio
        async def test_sequential():
            shared = Stock()
            await reserve(shared)
            await reserve(shared)
        """
    )
    result = pytester.runpytest_subprocess("--raceway", "-v", "-p", "pytest_asyncio.plugin", *ARGS)
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(["*::test_lost_update RACE*", "*::test_sequential PASSED*",
                                 "WARNING: RACE on Stock.count (lost-update)"])


def test_server_dying_mid_run_keeps_local_verdicts(pytester):
    import http.server
    import threading

    pytester.makepyfile(test_kernels=KERNELS + """
import time

def test_zz_after_the_server_died():
    time.sleep(1.0)  # the server is gone by now
    run2(bump, Box())
""")

    class Server(http.server.BaseHTTPRequestHandler):
        def do_POST(self):
            self.rfile.read(int(self.headers["content-length"]))
            self.send_response(200)
            self.send_header("content-length", "2")
            self.end_headers()
            self.wfile.write(b"{}")
            threading.Thread(target=die).start()  # after its first batch

        def log_message(self, *args):
            pass

    def die():
        server.shutdown()
        server.server_close()

    server = http.server.HTTPServer(("127.0.0.1", 0), Server)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        result = pytester.runpytest_subprocess("--raceway", f"--raceway-server={url}",
                                               "--raceway-json=s.json", *ARGS)
    finally:
        server.server_close()
    result.assert_outcomes(passed=1, failed=2)
    result.stdout.fnmatch_lines([f"raceway: raceway server {url} unreachable or failing *"
                                 "events not sent; verdicts are local and complete"])
    counts = json.loads((pytester.path / "s.json").read_text())["summary"]["counts"]
    assert counts["remote_sent"] > 0 and counts["remote_dropped"] > 0
    assert counts["remote_sent"] + counts["remote_dropped"] == counts["events"]


def test_events_of_an_unknown_trace_are_not_lost(pytester):
    child = CHILD.replace('parse_uuid(os.environ["RACEWAY_TRACE_ID"])', "12345")
    pytester.makepyfile(child_service=child)
    pytester.makepyfile(
        """
        import subprocess, sys

        def test_service_with_its_own_trace():
            subprocess.run([sys.executable, "child_service.py"], check=True)
        """
    )
    result = pytester.runpytest_subprocess("--raceway", *ARGS)
    result.assert_outcomes(passed=1)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(["1 race(s) in 0 test(s): *",
                                 "  <trace 00000000-0000-0000-0000-000000003039>: RACE on *",
                                 "1 race(s) outside any test *", "WARNING: RACE on orders.total*"])
