"""Raceway off: the entry point costs nothing measurable and changes nothing."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

HEAVY = ("wrapt", "jinja2", "httpx", "psycopg", "starlette", "uvicorn", "textual",
         "raceway_server", "raceway_sdk", "orjson", "pytest_raceway._session")


def test_importing_the_entry_point_loads_nothing_heavy():
    code = (
        "import sys, time, json, pytest\n"
        "before = set(sys.modules)\n"
        "t = time.perf_counter()\n"
        "import pytest_raceway.plugin\n"
        "ms = (time.perf_counter() - t) * 1000\n"
        "print(json.dumps({'ms': ms, 'new': sorted(set(sys.modules) - before)}))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    doc = json.loads(out.stdout)
    heavy = [m for m in doc["new"] if m.split(".")[0] in HEAVY or m in HEAVY]
    assert heavy == []
    assert doc["ms"] < 20, f"importing the entry point took {doc['ms']:.1f} ms"


def test_a_run_without_raceway_installs_no_patches(pytester: pytest.Pytester):
    pytester.makepyfile(
        """
        import sys, threading, queue, asyncio

        ORIGINAL = (threading.Thread.start, threading.Lock, queue.Queue.put, asyncio.Task)

        def test_nothing_is_patched(raceway):
            assert (threading.Thread.start, threading.Lock, queue.Queue.put,
                    asyncio.Task) == ORIGINAL
            assert not any(type(f).__module__.startswith("raceway") for f in sys.meta_path)
            heavy = [m for m in ("wrapt", "raceway_sdk", "raceway_server", "httpx",
                                 "pytest_raceway._session") if m in sys.modules]
            assert heavy == []
            assert raceway.enabled is False and raceway.track(3) == 3
        """
    )
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-p", "no:xdist")
    result.assert_outcomes(passed=1)
    assert "raceway:" not in result.stdout.str()


def test_markers_are_registered_when_off(pytester: pytest.Pytester):
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.raceway(fail_on="none")
        @pytest.mark.no_raceway
        def test_marked():
            pass
        """
    )
    result = pytester.runpytest_subprocess("--strict-markers", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)
