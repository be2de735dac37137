"""Settings precedence, validation, markers, suppressions and the baseline key (pure functions)."""

from __future__ import annotations

from pathlib import Path

import pytest

from pytest_raceway import _baseline, _format, _settings, _suppress


def resolve(cli=None, env=None, ini=None, tmp: Path | None = None):
    cli, env, ini = cli or {}, env or {}, ini or {}
    base = tmp or Path("/tmp")
    return _settings.resolve(
        getoption=lambda dest: cli.get(dest),
        getini=lambda key: ini.get(key, [] if key in ("raceway_include", "raceway_exclude",
                                                      "raceway_ignore") else ""),
        environ=env, rootdir=base / "root", inidir=base / "ini", invocation_dir=base / "cwd")


def test_defaults():
    s = resolve()
    assert not s.enabled and s.fail_on == "race" and s.include == [] and s.sources == {}


def test_precedence_cli_over_env_over_ini():
    ini = {"raceway_fail_on": "none"}
    assert resolve(ini=ini).fail_on == "none"
    assert resolve(env={"RACEWAY_FAIL_ON": "write-write"}, ini=ini).fail_on == "write-write"
    s = resolve(cli={"raceway_fail_on": "race"}, env={"RACEWAY_FAIL_ON": "write-write"}, ini=ini)
    assert s.fail_on == "race"
    assert s.sources["fail_on"] == "command-line option --raceway-fail-on"


def test_enable_switches():
    assert resolve(env={"RACEWAY": "1"}).enabled
    assert resolve(ini={"raceway": True}).enabled
    assert not resolve(cli={"raceway": False}, env={"RACEWAY": "1"}).enabled  # --no-raceway


def test_paths_are_relative_to_their_source(tmp_path):
    s = resolve(cli={"raceway_json": "a.json"}, ini={"raceway_report": "r.html"}, tmp=tmp_path)
    assert s.json == str(tmp_path / "cwd" / "a.json")
    assert s.report == str(tmp_path / "ini" / "r.html")


def test_lists_split_on_commas_and_repeat():
    s = resolve(cli={"raceway_include": ["app.*,lib", "other"]})
    assert s.include == ["app.*", "lib", "other"]


@pytest.mark.parametrize(("kwargs", "named"), [
    ({"cli": {"raceway_fail_on": "sometimes"}}, "command-line option --raceway-fail-on"),
    ({"env": {"RACEWAY_FAIL_ON": "x"}}, "environment variable RACEWAY_FAIL_ON"),
    ({"ini": {"raceway_fail_on": "x"}}, "ini option raceway_fail_on"),
    ({"env": {"RACEWAY": "maybe"}}, "environment variable RACEWAY"),
    ({"cli": {"raceway_server": "localhost:8080"}}, "--raceway-server"),
    ({"env": {"RACEWAY_SUPPRESSIONS": "/no/such/file"}}, "RACEWAY_SUPPRESSIONS"),
    ({"cli": {"raceway_baseline_update": True}}, "--raceway-baseline-update"),
])
def test_bad_values_name_their_source(kwargs, named):
    with pytest.raises(pytest.UsageError, match=named.replace("-", r"\-")):
        resolve(**kwargs)


def test_marker_overrides_closest_wins():
    class Mark:
        def __init__(self, name, **kwargs):
            self.name, self.args, self.kwargs = name, (), kwargs

    marks = [Mark("raceway", fail_on="none", ignore=["a*"]), Mark("raceway", ignore="b")]
    out = _settings.marker_overrides(marks, "t")
    assert out == {"fail_on": "none", "ignore": ["b", "a*"]}
    assert _settings.marker_overrides([Mark("no_raceway")], "t") == {"enabled": False}
    with pytest.raises(pytest.UsageError, match="unknown @pytest.mark.raceway argument 'x'"):
        _settings.marker_overrides([Mark("raceway", x=1)], "t")
    with pytest.raises(pytest.UsageError, match="expected one of"):
        _settings.marker_overrides([Mark("raceway", fail_on="all")], "t")


def make_race(variable="Account.balance", f1="/r/app/bank.py", l1=10, func="deposit",
              f2=None, l2=None, at=("Write", "Read")):
    def access(file, line, kind, name):
        return {"task": name, "task_name": name, "task_kind": "thread",
                "task_created_at": "/r/tests/test_bank.py:5",
                "task_stack": [["/r/tests/test_bank.py", 5, "test_x"]],
                "access_type": kind, "location": f"{file}:{line}", "func": func,
                "stack": [[file, line, func], ["/r/tests/test_bank.py", 9, "worker"]],
                "value": 1, "origin_trace": None}
    return {"id": 1, "trace_id": 5, "severity": "read-write", "variable": variable,
            "loc": variable, "explanation": "No happens-before edge orders them.",
            "first": access(f1, l1, at[0], "t1"), "second": access(f2 or f1, l2 or l1 + 1, at[1], "t2"),
            "stale_read": None, "key": ["a", "b"]}


def test_suppressions_race_and_race_top():
    supps = _suppress.parse("# comment\nrace:^worker$\nrace_top:bank.py\n", "s.supp")
    assert [str(s) for s in supps] == ["race:^worker$", "race_top:bank.py"]
    assert _suppress.match(supps, make_race()).pattern == "^worker$"  # a deeper frame
    assert supps[0].hits == 1
    top_only = _suppress.parse("race_top:worker\n", "s")
    assert _suppress.match(top_only, make_race()) is None  # worker is not the top frame
    assert _suppress.match(_suppress.parse("race:Account.bal*\n", "s"), make_race())
    assert _suppress.match(_suppress.parse("race:^balance\n", "s"), make_race()) is None
    assert _suppress.match(_suppress.parse("thread:t2\n", "s"), make_race())


@pytest.mark.parametrize(("text", "error"), [
    ("race\n", "s.supp:1: expected 'type:pattern'"),
    ("\n\nmutex:foo\n", "s.supp:3: suppression type 'mutex' has no meaning"),
    ("racy:foo\n", "unknown suppression type 'racy'"),
])
def test_bad_suppressions(text, error):
    with pytest.raises(pytest.UsageError, match=error):
        _suppress.parse(text, "s.supp")


def test_baseline_key_ignores_line_numbers_and_addresses():
    key = _baseline.race_key(make_race(), "/r")
    assert _baseline.race_key(make_race(l1=40), "/r") == key  # the code moved down the file
    assert _baseline.race_key(make_race(variable="Account.balance"), "/r") == key
    moved = make_race(variable="Account@0x7f00aa.balance")
    assert _baseline.race_key(moved, "/r") == _baseline.race_key(
        make_race(variable="Account@0x7f11bb.balance"), "/r")
    assert _baseline.race_key(make_race(func="withdraw"), "/r") != key
    assert _baseline.race_key(make_race(f1="/r/app/other.py"), "/r") != key
    assert _baseline.race_sites(make_race(), "/r") == ["app/bank.py:deposit:read",
                                                      "app/bank.py:deposit:write"]


def test_baseline_roundtrip_and_update(tmp_path):
    race = dict(make_race(), test="t::a", status="new")
    race["baseline_key"] = _baseline.race_key(race, "/r")
    race["sites"] = _baseline.race_sites(race, "/r")
    old = {"k-other": {"key": "k-other", "tests": ["t::gone"]},
           "k-rerun": {"key": "k-rerun", "tests": ["t::a"]}}
    entries = _baseline.updated(old, [race], tests_run={"t::a"})
    assert {e["key"] for e in entries} == {"k-other", race["baseline_key"]}
    path = tmp_path / "b.json"
    _baseline.save(str(path), entries)
    loaded = _baseline.load(str(path), "src")
    assert set(loaded) == {"k-other", race["baseline_key"]}
    with pytest.raises(pytest.UsageError, match="does not exist"):
        _baseline.load(str(tmp_path / "missing.json"), "command-line option --raceway-baseline")
    path.write_text("[]")
    with pytest.raises(pytest.UsageError, match="not a raceway baseline"):
        _baseline.load(str(path), "src")


def test_race_text_is_tsan_like():
    race = make_race()
    race["first"]["origin_trace"] = 3
    text = _format.race_text(race, "race-1", "report.html", lambda t: "tests/a.py::test_old")
    assert "WARNING: RACE on Account.balance (read-write)" in text
    assert 'Read by thread "t2" (t2) at /r/app/bank.py:11 in deposit (value 1):' in text
    assert 'Previous write by thread "t1"' in text
    assert "#1 worker /r/tests/test_bank.py:9" in text
    assert 'thread "t1" (t1) created at /r/tests/test_bank.py:5:' in text
    assert "leaked from an earlier test: tests/a.py::test_old" in text
    assert "No happens-before edge orders them." in text
    assert text.rstrip("=\n").endswith("Report: report.html#race-1")
