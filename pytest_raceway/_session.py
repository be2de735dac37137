"""The active plugin object: per-test traces, verdicts, terminal summary, xdist, reports.

Registered (as ``_raceway``) only when Raceway is on. Verdict rules:

* every test (setup + call + teardown) is one trace; each race the engine finds in it is classified
  by ``_verdicts.Classifier`` (suppressed by marker / ignore glob / suppression file, known from
  the baseline, or new);
* new races that ``fail_on`` covers fail the test **in its call phase** (``RaceDetected`` raised
  from a ``pytest_runtest_call`` wrapper, so junitxml, xdist and other reporters see an ordinary
  failure); races found only in teardown (or in a setup that failed) fail the test's teardown,
  which pytest shows as an ERROR; a test that fails for its own reason keeps that failure and
  shows its races in a "raceway" report section;
* races outside any test (module-level code at collection, threads running between tests) and
  races revealed after a test ended (late events) are reported in the summary and fail the
  session (exit code 1), as pytest-cov does for its gate.
"""

from __future__ import annotations

import os
import sys
import uuid
from collections.abc import Generator
from pathlib import Path
from typing import Any

import pytest
from _pytest.outcomes import Failed

from pytest_raceway import _baseline, _format, _results, _settings, _spine
from pytest_raceway._verdicts import SESSION_TEST, Classifier, TestRun
from pytest_raceway.plugin import PLUGIN_NAME

MAX_TRACE_EVENTS = 50_000


class RaceDetected(Failed):
    """A test failed because its tasks raced (a ``pytest.fail`` without a Python traceback)."""

    __module__ = "builtins"  # shown as ``RaceDetected: ...`` (pytest does this for Failed)


def _is_xdist_controller(config: pytest.Config) -> bool:
    if os.environ.get("PYTEST_XDIST_WORKER") or hasattr(config, "workerinput"):
        return False
    ns = getattr(config, "known_args_namespace", None) or config.option
    numprocesses = getattr(ns, "numprocesses", None)
    return bool(numprocesses) or bool(getattr(ns, "tx", None)) or \
        getattr(ns, "dist", "no") not in ("no", None)


def start(config: pytest.Config, settings: _settings.Settings) -> RacewayPlugin:
    """Build, register and (outside an xdist controller) arm the detector."""
    plugin = RacewayPlugin(config, settings)
    config.pluginmanager.register(plugin, PLUGIN_NAME)
    if not plugin.controller:
        plugin.arm()
    return plugin


class RacewayPlugin:
    def __init__(self, config: pytest.Config, settings: _settings.Settings) -> None:
        self.config = config
        self.settings = settings
        self.worker = os.environ.get("PYTEST_XDIST_WORKER")
        self.controller = _is_xdist_controller(config)
        self.results = _results.Results()
        self.classifier = Classifier(settings, self.worker, self._test_of)
        self.results.suppressions_used = self.classifier.suppressions_used
        self.overrides: dict[str, dict[str, Any]] = {}
        self.trace_tests: dict[int, str] = {}
        self.session_trace = uuid.uuid4().int
        self.trace_tests[self.session_trace] = SESSION_TEST
        self.current: TestRun | None = None
        self.session_run = TestRun(SESSION_TEST, self.session_trace, {}, settings)
        self.session_failing: list[dict[str, Any]] = []
        self.finished: list[TestRun] = []  # late events can still reveal races in their traces
        self.engine: Any = None
        self.remote: Any = None
        self.listener: Any = None
        self.armed = False
        self.written: list[tuple[str, str]] = []  # (label, path) of the files this run wrote
        self.report_json, self.report_html = self._report_paths()

    # -- lifecycle --------------------------------------------------------------------------
    def _report_paths(self) -> tuple[str | None, str | None]:
        s = self.settings
        html = s.report if s.report and _spine.html_available() else None
        sibling = str(Path(s.report).with_suffix(".json")) if s.report and html is None else None
        return sibling, html

    def arm(self) -> None:
        """Engine, sinks, listener, then instrumentation (so our threads stay unrecorded)."""
        from pytest_raceway import _transport

        rec = _spine.recorder()
        self.engine = self.classifier.engine = _spine.make_engine()
        if self.settings.server:
            self.remote = _transport.remote_sink(self.settings.server)
        sink = self.engine if self.remote is None else _transport.EngineSink(self.engine,
                                                                              self.remote)
        self.listener = _transport.Listener(self._deliver)
        os.environ["RACEWAY_SERVER_URL"] = self.listener.url
        rec.reset_stats()
        # the embedded engine only needs accesses that can race: an object's accesses wait
        # until a second task touches it (never emitted if none does)
        rec.configure(defer_private=True)
        rec.set_trace(self.session_trace)
        rec.set_sink(sink)
        roots = [] if self.settings.include else [self.settings.rootdir]
        _spine.install(self.settings.include,
                       list(_settings.ALWAYS_EXCLUDED) + self.settings.exclude, roots)
        self.armed = True

    def _deliver(self, events: list[Any]) -> None:
        # what this process recorded before the child's events (its request, say) goes first:
        # arrival in happens-before order keeps the engine on its in-order path
        _spine.recorder().flush()
        self.engine.add_batch(events)
        if self.remote is not None:
            for event in events:
                self.remote.emit(event)

    def disarm(self) -> None:
        if not self.armed:
            return
        self.armed = False
        _spine.uninstall()
        rec = _spine.recorder()
        rec.set_sink(None)
        rec.configure(defer_private=False)
        self.listener.close()
        os.environ.pop("RACEWAY_SERVER_URL", None)
        os.environ.pop("RACEWAY_TRACE_ID", None)
        if self.remote is not None:
            self.remote.close()

    # -- collection ---------------------------------------------------------------------------
    def pytest_report_header(self, config: pytest.Config) -> list[str]:
        lines = [self.settings.header()]
        if self.settings.report and self.report_html is None:
            lines.append(f"raceway: HTML rendering is not available in this version; "
                         f"--raceway-report writes the session JSON to {self.report_json}")
        return lines

    @pytest.hookimpl(trylast=True)
    def pytest_collection_modifyitems(self, items: list[pytest.Item]) -> None:
        for item in items:
            marks = [m for m in item.iter_markers() if m.name in ("raceway", "no_raceway")]
            if marks:
                self.overrides[item.nodeid] = _settings.marker_overrides(marks, item.nodeid)

    # -- per test -----------------------------------------------------------------------------
    @pytest.hookimpl(wrapper=True, tryfirst=True)
    def pytest_runtest_protocol(self, item: pytest.Item) -> Generator[None, object, object]:
        if not self.armed:
            return (yield)
        trace_id = uuid.uuid4().int
        run = TestRun(item.nodeid, trace_id, self.overrides.get(item.nodeid, {}), self.settings)
        self.trace_tests[trace_id] = item.nodeid
        self.current = run
        rec = _spine.recorder()
        os.environ["RACEWAY_TRACE_ID"] = str(uuid.UUID(int=trace_id))
        rec.set_trace(trace_id)
        try:
            return (yield)
        finally:
            run.ended = True  # the test's reports are out: what is found now fails the session
            self._collect(run)
            self._keep_trace(run)
            rec.set_trace(self.session_trace)
            self.current = None
            # the verdict is out and the report kept what it needs: free the events (a suite
            # of thousands of tests must not hold every event of every test)
            self.engine.forget_trace(trace_id)
            self.finished.append(run)

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_call(self, item: pytest.Item) -> Generator[None, object, object]:
        try:
            result = yield
        except BaseException:
            failing = self._collect_into(item)  # it failed anyway: show its races beside that
            if failing:
                item.add_report_section("call", "raceway", self._text(failing))
            raise
        failing = self._collect_into(item)
        if failing:
            self._fail(item, failing)
        return result

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_teardown(self, item: pytest.Item) -> Generator[None, object, object]:
        result = yield
        failing = self._collect_into(item)
        if failing:
            self._fail(item, failing)
        return result

    def _collect_into(self, item: pytest.Item) -> list[dict[str, Any]]:
        run = self.current
        if run is None or run.nodeid != item.nodeid:
            return []
        self._collect(run)  # the fixture's races() may have classified some already
        failing = run.failing[run.failed_with:]
        run.failed_with = len(run.failing)
        for race in failing:
            item.user_properties.append(
                ("raceway_race", _format.one_line(race, self.settings.rootdir)))
            item.user_properties.append(("raceway_report", self._anchor_target(race["anchor"])))
        return failing

    def _fail(self, item: pytest.Item, failing: list[dict[str, Any]]) -> None:
        __tracebackhide__ = True
        raise RaceDetected(self._text(failing), pytrace=False)

    def _text(self, failing: list[dict[str, Any]]) -> str:
        root = self.settings.rootdir
        head = _format.one_line(failing[0], root)
        if len(failing) > 1:
            head += f" (and {len(failing) - 1} more race(s) in this test)"
        texts = [_format.race_text(r, r["anchor"], self._report_target(), self._test_of, root)
                 for r in failing]
        return "\n".join([head, *texts])

    def _test_of(self, trace: Any) -> str | None:
        """The test that owns a trace (int or UUID string), for leaked-task reports."""
        if isinstance(trace, str):
            try:
                trace = uuid.UUID(trace).int
            except ValueError:
                return None
        return self.trace_tests.get(trace) if trace is not None else None

    def _report_target(self) -> str | None:
        target = self.report_html or self.report_json or self.settings.json
        return _format.short_path(target, self.settings.rootdir) if target else None

    def _anchor_target(self, anchor: str) -> str:
        target = self.report_html or self.report_json or self.settings.json
        return f"{Path(target).resolve().as_uri()}#{anchor}" if target else f"#{anchor}"

    def _collect(self, run: TestRun) -> list[dict[str, Any]]:
        """Classify the races of ``run``'s trace not seen yet; return those that fail it."""
        if self.engine is None:
            return []
        _spine.recorder().flush()  # every event recorded so far reaches the engine first
        failing = []
        for race in self.engine.races(run.trace_id):
            if race.id in run.seen:
                continue
            run.seen.add(race.id)
            record = self.classifier.classify(_spine.to_dict(race), run)
            self.results.races.append(record)
            run.anchors.append(record["anchor"])
            if record["fails"]:
                failing.append(record)
                run.failing.append(record)
        return failing

    def _keep_trace(self, run: TestRun) -> None:
        """Keep the events of racing traces for the JSON/HTML report (bounded, counted)."""
        if not run.anchors or not (self.settings.json or self.settings.report):
            return
        events = self.engine.trace_events(run.trace_id)
        truncated = max(0, len(events) - MAX_TRACE_EVENTS)
        tasks = {tid: _spine.to_dict(info)
                 for tid, info in self.engine.tasks(run.trace_id).items()}
        self.results.traces[str(uuid.UUID(int=run.trace_id))] = {
            "test": run.nodeid, "truncated": truncated, "tasks": tasks,
            "events": [_spine.event_to_wire(e) for e in events[:MAX_TRACE_EVENTS]]}

    # -- reports --------------------------------------------------------------------------------
    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_makereport(self, item: pytest.Item, call: pytest.CallInfo[None]
                                  ) -> Generator[None, pytest.TestReport, pytest.TestReport]:
        report = yield
        run = self.current
        if run is not None and run.nodeid == item.nodeid:
            raced = call.excinfo is not None and call.excinfo.errisinstance(RaceDetected)
            report.raceway = {  # type: ignore[attr-defined]  # JSON-able: survives xdist
                "trace_id": str(uuid.UUID(int=run.trace_id)),
                "races": list(run.anchors),
                "race_failure": bool(raced),
            }
        return report

    @pytest.hookimpl(tryfirst=True)
    def pytest_report_teststatus(self, report: pytest.TestReport) -> Any:
        info = getattr(report, "raceway", None)
        if info and info.get("race_failure") and report.failed:
            if report.when == "call":
                return "failed", "R", ("RACE", {"red": True})
            return "error", "R", ("RACE ERROR", {"red": True})
        return None

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        self.results.record_outcome(report.nodeid, report.when, report.outcome,
                                    getattr(report, "raceway", None))

    # -- session end --------------------------------------------------------------------------
    @pytest.hookimpl(wrapper=True)
    def pytest_runtestloop(self, session: pytest.Session) -> Generator[None, object, object]:
        result = yield
        if self.armed:
            # races outside tests, in tests' traces from events that came after the test, and in
            # traces no test owns (a child process that made up its own trace id)
            orphans = [TestRun(f"<trace {uuid.UUID(int=tid)}>", tid, {}, self.settings)
                       for tid in self.engine.trace_ids() if tid not in self.trace_tests]
            for run in (self.session_run, *self.finished, *orphans):
                known = len(run.anchors)
                self.session_failing += self._collect(run)
                if len(run.anchors) != known:
                    self._keep_trace(run)
        else:
            self.session_failing = [r for r in self.results.races
                                    if r.get("late") and r.get("fails")]
        if self.session_failing:
            session.testsfailed += 1
        return result

    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        if self.armed:
            self._count()
        workeroutput = getattr(self.config, "workeroutput", None)
        if workeroutput is not None:
            workeroutput["raceway"] = self.results.fragment()
        else:
            self._write_outputs()
        self.disarm()

    def pytest_unconfigure(self) -> None:
        self.disarm()

    @pytest.hookimpl(optionalhook=True)
    def pytest_testnodedown(self, node: Any, error: Any) -> None:
        output = getattr(node, "workeroutput", None) or {}
        fragment = output.get("raceway")
        if fragment is None:
            worker = output.get("workerid") or getattr(node, "gateway", None)
            self.results.notes.append(
                f"xdist worker {getattr(worker, 'id', worker)} sent no raceway results "
                "(is pytest-raceway installed there?)")
            return
        self.results.merge(fragment)

    def _count(self) -> None:
        counts = self.results.counts
        stats = self.engine.stats()
        rec = _spine.recorder().stats()
        counts["events"] += int(stats.get("events", 0))
        counts["accesses"] += int(stats.get("accesses", 0))
        counts["engine_dropped"] += int(stats.get("dropped", 0))
        counts["late_events"] += int(stats.get("events_after_close", 0))
        for reason, n in (stats.get("dropped_by_reason") or {}).items():
            self.results.notes.append(f"the engine dropped {n} event(s): {reason}")
        counts["recorder_dropped"] += int(rec.get("dropped", 0))
        if self.listener is not None:
            counts["listener_events"] += self.listener.accepted
            counts["listener_rejected"] += self.listener.rejected
            for err in self.listener.errors:
                self.results.notes.append(f"rejected event from a child process: {err}")
        if self.remote is not None:
            self.remote.close(timeout=10.0)
            remote = self.remote.stats()
            counts["remote_sent"] += remote["sent"]
            counts["remote_dropped"] += remote["dropped"]
            if remote["dropped"]:
                causes = ", ".join(f"{k}: {v}" for k, v in remote["dropped_by_cause"].items() if v)
                self.results.notes.append(
                    f"raceway server {self.settings.server} unreachable or failing "
                    f"({remote['last_error'] or causes}): {remote['dropped']} events not "
                    "sent; verdicts are local and complete")
        counts["dropped"] += (counts["engine_dropped"] + counts["recorder_dropped"]
                              + counts["listener_rejected"])
        for item in _spine.not_instrumented():
            if item not in self.results.not_instrumented:
                self.results.not_instrumented.append(item)

    def _write_outputs(self) -> None:
        s = self.settings
        doc = self.results.document(s.to_dict())
        for path, label in ((s.json, "JSON"),
                            (self.report_json, "report (JSON; HTML rendering not available yet)")):
            if path:
                _results.write_json(path, doc)
                self.written.append((label, path))
        if self.report_html:
            try:
                _spine.write_html(doc, self.report_html)
                self.written.append(("report", self.report_html))
            except Exception as exc:  # the run's verdicts stand; keep the data, say why
                fallback = str(Path(self.report_html).with_suffix(".json"))
                _results.write_json(fallback, doc)
                self.written.append(("report (JSON; HTML rendering failed)", fallback))
                self.results.notes.append(
                    f"the HTML report could not be rendered ({type(exc).__name__}: {exc}); "
                    f"wrote the session JSON to {fallback} instead")
        if s.baseline and s.baseline_update:
            tests_run = set(self.results.tests)
            entries = _baseline.updated(self.classifier.baseline, self.results.races, tests_run)
            _baseline.save(s.baseline, entries)
            self.written.append(("baseline", s.baseline))

    # -- terminal ---------------------------------------------------------------------------------
    @pytest.hookimpl(trylast=True)
    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        from pytest_raceway import _summary

        _summary.write(self, terminalreporter)

    # -- the raceway fixture ------------------------------------------------------------------------
    def handle(self, item: pytest.Item) -> Handle:
        return Handle(self, item)


class Handle:
    """What the ``raceway`` fixture yields while Raceway is on."""

    enabled = True

    def __init__(self, plugin: RacewayPlugin, item: pytest.Item) -> None:
        self._plugin = plugin
        self._item = item
        run = plugin.current
        self.trace_id = str(uuid.UUID(int=run.trace_id)) if run is not None else None

    def track(self, obj: Any, name: str | None = None) -> Any:
        """Record every attribute/item access of ``obj`` (a proxy), e.g. for C-level objects."""
        return _spine.track(obj, name)

    def races(self) -> list[dict[str, Any]]:
        """Races of this test found so far (classified; ``status`` says new/baseline/suppressed)."""
        run = self._plugin.current
        if run is None:
            return []
        self._plugin._collect(run)
        return [r for r in self._plugin.results.races if r["anchor"] in run.anchors]

    @property
    def api(self) -> Any:
        """``raceway_sdk.api``: track_state_change, track_lock_acquire, ..."""
        import raceway_sdk.api

        return raceway_sdk.api

    def __repr__(self) -> str:
        return f"<raceway trace={self.trace_id} python={sys.version_info[:2]}>"
