"""Option errors and precedence as a user sees them (pytest in a subprocess)."""

from __future__ import annotations

import pytest
from plugin_kernels import ARGS


@pytest.fixture(autouse=True)
def _no_autoload(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PYTEST_DISABLE_PLUGIN_AUTOLOAD", "1")  # 3x faster start (see test_verdicts)


@pytest.fixture
def suite(pytester: pytest.Pytester) -> pytest.Pytester:
    pytester.makepyfile("def test_ok():\n    pass\n")
    return pytester


@pytest.mark.parametrize(("args", "env", "ini", "message"), [
    (["--raceway-fail-on=sometimes"], {}, "",
     "*raceway: command-line option --raceway-fail-on: expected one of race, write-write, none*"),
    ([], {"RACEWAY_FAIL_ON": "all"}, "",
     "*raceway: environment variable RACEWAY_FAIL_ON: expected one of*"),
    ([], {}, "raceway_fail_on = loud",
     "*raceway: ini option raceway_fail_on: expected one of*"),
    (["--raceway-server=localhost"], {}, "",
     "*--raceway-server: expected an http(s) URL, got 'localhost'*"),
    (["--raceway-suppressions=missing.supp"], {}, "",
     "*--raceway-suppressions: no such file: *missing.supp*"),
    (["--raceway-baseline=missing.json"], {}, "",
     "*--raceway-baseline: baseline *missing.json does not exist*"),
])
def test_bad_options_are_usage_errors(suite, monkeypatch, args, env, ini, message):
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    if ini:
        suite.makeini(f"[pytest]\n{ini}\n")
    result = suite.runpytest_subprocess("--raceway", *args, *ARGS)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([message])


def test_bad_suppression_line_names_file_and_line(suite):
    suite.path.joinpath("tsan.supp").write_text("race:ok\nmutex:foo\n")
    result = suite.runpytest_subprocess("--raceway", "--raceway-suppressions=tsan.supp", *ARGS)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*tsan.supp:2: suppression type 'mutex' has no meaning*"])


def test_bad_marker_is_a_usage_error(pytester):
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.raceway(fail_on="always")
        def test_marked():
            pass
        """
    )
    result = pytester.runpytest_subprocess("--raceway", *ARGS)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        ["*test_bad_marker_is_a_usage_error.py::test_marked: @pytest.mark.raceway(fail_on=...)*"])


def test_precedence_shows_in_the_header(suite, monkeypatch):
    suite.makeini("[pytest]\nraceway = true\nraceway_fail_on = none\n")
    result = suite.runpytest_subprocess(*ARGS)  # enabled by the ini file alone
    result.stdout.fnmatch_lines(["raceway: mode=embedded, fail-on=none, include=<rootdir>*"])
    monkeypatch.setenv("RACEWAY_FAIL_ON", "write-write")
    result = suite.runpytest_subprocess(*ARGS)
    result.stdout.fnmatch_lines(["raceway: mode=embedded, fail-on=write-write*"])
    result = suite.runpytest_subprocess("--raceway-fail-on=race", *ARGS)
    result.stdout.fnmatch_lines(["raceway: mode=embedded, fail-on=race*"])
    result = suite.runpytest_subprocess("--no-raceway", *ARGS)
    assert "raceway:" not in result.stdout.str()
    result.assert_outcomes(passed=1)
