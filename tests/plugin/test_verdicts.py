"""The plugin end to end: verdicts, reports, markers, baseline, suppressions, fixture, leaks."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET

import pytest
from plugin_kernels import ARGS, KERNELS

pytestmark = pytest.mark.usefixtures("no_autoload")


def test_race_fails_the_call_phase_with_a_tsan_style_report(kernels):
    result = kernels.runpytest_subprocess("--raceway", "-v", "-p", "no:cacheprovider")
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.assert_outcomes(passed=1, failed=1)
    out = result.stdout
    out.fnmatch_lines(["raceway: mode=embedded, fail-on=race, include=<rootdir>*"])
    out.fnmatch_lines(["*test_kernels.py::test_racy RACE*", "*test_kernels.py::test_locked PASSED*"])
    out.fnmatch_lines([
        "RACE on Box.value * test_kernels.py:8 <-> test_kernels.py:8  #race-1",
        "WARNING: RACE on Box.value (*)",
        "  * by thread \"worker-*\" (*) at test_kernels.py:8 in bump*",
        "    #0 bump test_kernels.py:8",
        "  Previous * by thread \"worker-*\"*",
        "  thread \"worker-*\" (*) created at test_kernels.py:13:",
        "    #0 run2 test_kernels.py:13",
        "    #1 test_racy test_kernels.py:18",
        "  Report: #race-1",
    ])
    out.fnmatch_lines(["*= raceway =*", "1 race(s) in 1 test(s): *; 1 new, 0 in baseline, 0 suppressed",
                       "*test_kernels.py::test_racy: RACE on Box.value*#race-1",
                       "events recorded: *; dropped: 0*"])
    assert "Traceback" not in out.str()


def test_quiet_mode_keeps_the_verdict(kernels):
    result = kernels.runpytest_subprocess("--raceway", "-q", *ARGS)
    result.stdout.fnmatch_lines(["R.*", "*= raceway =*", "1 race(s) in 1 test(s)*",
                                 "  test_kernels.py::test_racy: RACE on Box.value*"])
    result.assert_outcomes(passed=1, failed=1)
    result = kernels.runpytest_subprocess("--raceway", "-qq", *ARGS)
    assert "test_kernels.py::test_racy: RACE on" not in result.stdout.str()
    result.stdout.fnmatch_lines(["1 race(s) in 1 test(s)*"])


def test_junit_xml_carries_the_race(kernels):
    result = kernels.runpytest_subprocess("--raceway", "--junitxml=junit.xml",
                                          "--raceway-json=out/session.json", *ARGS)
    assert result.ret == 1
    root = ET.parse(kernels.path / "junit.xml").getroot()
    case = next(c for c in root.iter("testcase") if c.get("name") == "test_racy")
    failure = case.find("failure")
    assert failure is not None and "RACE on Box.value" in failure.get("message", "")
    props = {p.get("name"): p.get("value") for p in case.iter("property")}
    assert props["raceway_race"].startswith("RACE on Box.value")
    assert props["raceway_report"].startswith("file://") and props["raceway_report"].endswith(
        "session.json#race-1")
    ok = next(c for c in root.iter("testcase") if c.get("name") == "test_locked")
    assert ok.find("failure") is None and not list(ok.iter("property"))


def test_session_json_and_html_report(kernels):
    result = kernels.runpytest_subprocess("--raceway", "--raceway-report=out/report.html",
                                          "--raceway-json=session.json", *ARGS)
    result.stdout.fnmatch_lines([
        "raceway: *, json=*session.json, report=*report.html",
        "  Report: out/report.html#race-1",
        "*- raceway JSON: file://*session.json -*",
        "*- raceway report: file://*out/report.html -*",
    ])
    html = (kernels.path / "out" / "report.html").read_text()
    assert html.lstrip().lower().startswith("<!doctype html") and "race-1" in html
    doc = json.loads((kernels.path / "session.json").read_text())
    assert doc["format"] == "raceway-session" and doc["version"] == 1
    assert doc["summary"]["races"] == 1 and doc["summary"]["racing_tests"] == 1
    tests = {t["nodeid"].split("::")[-1]: t for t in doc["tests"]}
    assert tests["test_racy"]["outcome"] == "failed" and tests["test_racy"]["races"] == [1]
    assert tests["test_racy"]["race_failure"] is True
    assert tests["test_locked"]["races"] == [] and tests["test_locked"]["outcome"] == "passed"
    (race,) = doc["races"]
    assert race["status"] == "new" and race["test"].endswith("test_racy")
    assert race["anchor"] == "race-1" and race["variable"] == "Box.value"
    trace = doc["traces"][tests["test_racy"]["trace_id"]]
    kinds = {next(iter(e["kind"])) if isinstance(e["kind"], dict) else e["kind"]
             for e in trace["events"]}
    assert {"StateChange", "AsyncSpawn"} <= kinds
    assert race["first"]["task"] in trace["tasks"]


def test_markers_override_per_test(pytester):
    pytester.makepyfile(KERNELS + """
import pytest

@pytest.mark.raceway(fail_on="none")
def test_reported_only():
    run2(bump, Box())

@pytest.mark.no_raceway
def test_switched_off():
    run2(bump, Box())

@pytest.mark.raceway(enabled=False)
def test_disabled():
    run2(bump, Box())

@pytest.mark.raceway(ignore=["Box.*"])
def test_ignored():
    run2(bump, Box())
""")
    result = pytester.runpytest_subprocess("--raceway", "-v", "--raceway-json=s.json", *ARGS)
    result.assert_outcomes(passed=5, failed=1)
    doc = json.loads((pytester.path / "s.json").read_text())
    status = {r["test"].split("::")[-1]: (r["status"], r["fails"]) for r in doc["races"]}
    assert status == {
        "test_racy": ("new", True), "test_reported_only": ("new", False),
        "test_switched_off": ("suppressed", False), "test_disabled": ("suppressed", False),
        "test_ignored": ("suppressed", False)}
    result.stdout.fnmatch_lines(["2 race(s) in 2 test(s): *; 2 new, 0 in baseline, 3 suppressed"])


def test_fail_on_write_write_ignores_read_write(pytester):
    pytester.makepyfile(KERNELS + """
def put(box):
    box.value = 1

def test_write_write():
    run2(put, Box())

def test_read_write():
    box = Box()
    t = threading.Thread(target=bump, args=(box,))
    t.start()
    box.value
    t.join()
""")
    result = pytester.runpytest_subprocess("--raceway", "--raceway-fail-on=write-write", "-v",
                                           "-k", "test_write_write or test_read_write", *ARGS)
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(["*::test_write_write RACE*"])
    result = pytester.runpytest_subprocess("--raceway", "--raceway-fail-on=none", *ARGS)
    result.assert_outcomes(passed=4)
    result.stdout.fnmatch_lines(["3 race(s) in 3 test(s)*"])


def test_baseline_gate(kernels):
    result = kernels.runpytest_subprocess(
        "--raceway", "--raceway-baseline=ci/baseline.json", "--raceway-baseline-update", *ARGS)
    assert result.ret == 0, result.stdout.str()
    result.stdout.fnmatch_lines(["baseline updated: races are recorded in *baseline.json*"])
    baseline = json.loads((kernels.path / "ci" / "baseline.json").read_text())
    (entry,) = baseline["races"]
    assert entry["variable"] == "Box.value" and entry["tests"] == ["test_kernels.py::test_racy"]

    # Lines shift and a new racing test appears: the known race passes, the new one fails.
    source = (kernels.path / "test_kernels.py").read_text()
    (kernels.path / "test_kernels.py").write_text("\n\n\n" + source + """
class Other:
    def __init__(self):
        self.items = {}

def fill(other):
    other.items["k"] = 1

def test_new_race():
    run2(fill, Other())
""")
    result = kernels.runpytest_subprocess(
        "--raceway", "--raceway-baseline=ci/baseline.json", "-v", *ARGS)
    result.assert_outcomes(passed=2, failed=1)
    result.stdout.fnmatch_lines(["*::test_racy PASSED*", "*::test_new_race RACE*"])
    result.stdout.fnmatch_lines(["2 race(s) in 2 test(s): *; 1 new, 1 in baseline, 0 suppressed",
                                 "*test_racy: RACE on Box.value*(baseline)"])


def test_suppressions_file(kernels):
    (kernels.path / "tsan.supp").write_text("# known, tracked in JIRA-1\nrace:^bump$\n")
    result = kernels.runpytest_subprocess("--raceway", "--raceway-suppressions=tsan.supp",
                                          "-v", *ARGS)
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(["no races (1 suppressed)",
                                 "  suppressed: *test_racy: RACE on Box.value*: suppression race:^bump$ (line 2)",
                                 "  used suppression race:^bump$: 1 race(s)"])
    (kernels.path / "tsan.supp").write_text("race_top:run2\n")  # not the innermost frame
    result = kernels.runpytest_subprocess("--raceway", "--raceway-suppressions=tsan.supp", *ARGS)
    result.assert_outcomes(passed=1, failed=1)


def test_raceway_fixture(pytester):
    # helper.py is not instrumented: only the tracked proxy shows its accesses.
    pytester.makepyfile(helper="def put(d, v):\n    d['k'] = v\n")
    pytester.makepyfile(KERNELS + """
import helper

def test_fixture(raceway):
    assert raceway.enabled and len(raceway.trace_id) == 36
    plain, tracked = {}, raceway.track({}, "orders")
    run2(helper.put, plain, 1)
    assert raceway.races() == []
    run2(helper.put, tracked, 1)
    (race,) = raceway.races()
    assert race["variable"].startswith("orders") and race["status"] == "new"
""")
    result = pytester.runpytest_subprocess("--raceway", "--raceway-exclude=helper",
                                           "-k", "test_fixture", *ARGS)
    result.assert_outcomes(failed=1)  # the race still fails the test after the body passed
    result.stdout.fnmatch_lines(["*WARNING: RACE on orders*"])
    assert "AssertionError" not in result.stdout.str()


def test_leaked_thread_fails_the_later_test_and_names_the_earlier(pytester):
    pytester.makepyfile(
        """
        import threading, time

        class Box:
            value = 0

        shared = Box()
        gate = threading.Event()
        leaked = []

        def background():
            gate.wait()
            shared.value = 1

        def test_starts_a_thread_and_leaves():
            t = threading.Thread(target=background, name="leaky")
            leaked.append(t)
            t.start()

        def test_later():
            gate.set()
            shared.value = 2
            while leaked[0].is_alive():
                time.sleep(0.001)
        """
    )
    result = pytester.runpytest_subprocess("--raceway", "-v", *ARGS)
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines([
        "*::test_starts_a_thread_and_leaves PASSED*", "*::test_later RACE*",
        '  thread "leaky" (*) created at *.py:17:',
        "*leaked from an earlier test: *::test_starts_a_thread_and_leaves (still running*",
        '  main "MainThread" (*): the main thread',
    ])


def test_race_in_teardown_is_an_error(pytester):
    pytester.makepyfile(
        """
        import threading
        import pytest

        class Box:
            value = 0

        @pytest.fixture
        def racy_teardown():
            yield
            box = Box()
            def work():
                box.value += 1
            ts = [threading.Thread(target=work) for _ in range(2)]
            for t in ts: t.start()
            for t in ts: t.join()

        def test_body_is_fine(racy_teardown):
            pass
        """
    )
    result = pytester.runpytest_subprocess("--raceway", "-v", *ARGS)
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(["*::test_body_is_fine RACE ERROR*", "*WARNING: RACE on Box.value*"])
    assert result.ret == 1


def test_race_outside_any_test_fails_the_session(pytester):
    pytester.makepyfile(
        """
        import threading

        class Box:
            value = 0

        box = Box()

        def bump():
            box.value += 1

        threads = [threading.Thread(target=bump) for _ in range(2)]  # at import time
        for t in threads:
            t.start()
        for t in threads:
            t.join()

        def test_fine():
            pass
        """
    )
    result = pytester.runpytest_subprocess("--raceway", *ARGS)
    result.assert_outcomes(passed=1)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines([
        "1 race(s) outside any test (module import, threads between tests, events after a test "
        "ended) fail the session:",
        "WARNING: RACE on Box.value *"])


def test_include_and_exclude_select_the_instrumented_modules(kernels, monkeypatch):
    kernels.makepyfile(helper="def touch(box):\n    box.value = 1\n")
    kernels.makepyfile(test_helper="""
from helper import touch
from test_kernels import Box, run2

def test_helper_races():
    run2(touch, Box())
""")
    result = kernels.runpytest_subprocess("--raceway", "--raceway-exclude=test_kernels", "-v", *ARGS)
    result.stdout.fnmatch_lines(["*::test_helper_races RACE*", "*::test_racy PASSED*"])
    result = kernels.runpytest_subprocess("--raceway", "--raceway-include=helper", "-v", *ARGS)
    result.stdout.fnmatch_lines(["*::test_helper_races RACE*", "*::test_racy PASSED*"])
    monkeypatch.setenv("RACEWAY_EXCLUDE", "helper,test_kernels")
    result = kernels.runpytest_subprocess("--raceway", "-v", *ARGS)
    result.assert_outcomes(passed=3)
    result.stdout.fnmatch_lines(["no races"])


def test_a_test_failing_for_its_own_reason_still_shows_its_races(pytester):
    pytester.makepyfile(KERNELS + """
def test_assertion_and_race():
    box = Box()
    run2(bump, box)
    assert box.value == 3
""")
    result = pytester.runpytest_subprocess("--raceway", "-v", "-k", "assertion", *ARGS)
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*::test_assertion_and_race FAILED*", "*assert 2 == 3*",
                                 "*- Captured raceway call -*", "WARNING: RACE on Box.value*"])
