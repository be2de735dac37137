"""The ``raceway`` section of the terminal summary (respects -q / -v)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pytest_raceway import _format


def write(plugin: Any, tr: Any) -> None:
    """Races by test, counts by severity and status, events, drops, notes, written files."""
    results = plugin.results
    summary = results.summary()
    verbose = tr.config.option.verbose
    root = plugin.settings.rootdir
    tr.write_sep("=", "raceway")
    races = [r for r in results.races if r.get("status") != "suppressed"]
    if races:
        severities = ", ".join(f"{n} {sev}" for sev, n in sorted(summary["by_severity"].items()))
        tr.write_line(
            f"{summary['races']} race(s) in {summary['racing_tests']} test(s): {severities}; "
            f"{summary['new']} new, {summary['baseline']} in baseline, "
            f"{summary['suppressed']} suppressed")
        if verbose >= -1:  # -q keeps one line per race; -qq only the counts
            for race in races:
                tag = {"baseline": " (baseline)"}.get(race["status"], "")
                mark = {"red": True} if race.get("fails") else {"yellow": True}
                tr.write_line(f"  {race['test']}: {_format.one_line(race, root)}{tag}", **mark)
    else:
        tr.write_line(f"no races ({summary['suppressed']} suppressed)"
                      if summary["suppressed"] else "no races", green=True)
    if verbose > 0:
        for race in results.by_status("suppressed"):
            tr.write_line(f"  suppressed: {race['test']}: {_format.one_line(race, root)}: "
                          f"{race['reason']}")
        for supp, hits in sorted(results.suppressions_used.items()):
            tr.write_line(f"  used suppression {supp}: {hits} race(s)")
    if plugin.session_failing:
        tr.write_line(f"{len(plugin.session_failing)} race(s) outside any test (module import, "
                      "threads between tests, events after a test ended) fail the session:",
                      red=True)
        for race in plugin.session_failing:
            tr.write_line(_format.race_text(race, race["anchor"], plugin._report_target(),
                                            plugin._test_of, root))
    counts = summary["counts"]
    line = f"events recorded: {counts['events']}"
    if counts["listener_events"]:
        line += f" (from child processes: {counts['listener_events']})"
    line += f"; dropped: {counts['dropped']}"
    if counts["dropped"]:
        line += (f" (recorder {counts['recorder_dropped']}, engine {counts['engine_dropped']}, "
                 f"rejected from children {counts['listener_rejected']})")
    if counts["late_events"]:
        line += (f"; {counts['late_events']} event(s) arrived after their test ended "
                 "(checked without the test's earlier accesses)")
    if counts["trace_events_truncated"]:
        line += f"; {counts['trace_events_truncated']} trace events left out of the report"
    if plugin.settings.server:
        line += f"; sent to {plugin.settings.server}: {counts['remote_sent']}"
    tr.write_line(line)
    missing = summary["not_instrumented"]
    if missing:
        shown = missing if verbose > 0 else missing[:5]
        tr.write_line(f"not instrumented: {len(missing)} module(s)", yellow=True)
        for item in shown:
            tr.write_line(f"  {item['module']}: {item['reason']}")
        if len(missing) > len(shown):
            tr.write_line("  ... (-v lists all)")
    for note in summary["notes"]:
        tr.write_line(f"raceway: {note}", yellow=True)
    if plugin.settings.baseline_update and races:
        tr.write_line(f"baseline updated: races are recorded in {plugin.settings.baseline} "
                      "and do not fail this run")
    for label, path in plugin.written:
        tr.write_sep("-", f"raceway {label}: {Path(path).resolve().as_uri()}")
