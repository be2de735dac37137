"""HTML report at scale: render a 100k-event session, load it in headless Chromium.

Builds a synthetic session through the real engine (``--traces`` traces of ``--events`` events
in total: worker threads forked from a main task, lock hand-offs, unguarded counters that race),
renders it with ``raceway_server.report``, then opens the file in Debian's Chromium over the
DevTools protocol and measures the time until the page is interactive (``data-ready``) and until
the biggest trace's DAG and timeline are drawn. Last line: JSON with ``events``, ``bytes``,
``load_seconds`` (and more).

    python benchmarks/report.py [--events 100000] [--traces 4] [--tasks 8]
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests" / "report"))

from cdp import Browser  # noqa: E402
from sessions import Builder, session_for  # noqa: E402

from raceway_server.report import write_report  # noqa: E402


def build_trace(n: int, ids: itertools.count, events: int, tasks: int) -> Builder:
    b = Builder(n, ids, service=f"svc{n % 3}")
    main = b.main()
    workers = [b.fork(main, f"worker-{k}", site=("app.py", 10 + k)) for k in range(tasks)]
    k = 0
    while len(b.events) < events - 2 * tasks:
        w = workers[k % tasks]
        step = k // tasks
        if step % 50 == 0:
            b.access(w, "counter", "Write", ("app.py", 8), step)        # races across workers
        elif step % 7 == 0:
            b.acquire(w, "L")
            b.access(w, "guarded", "Write", ("app.py", 20), step)
            b.release(w, "L")
        elif step % 11 == 0:
            b.call(w, "io", 50_000 + (step % 13) * 1000)
        else:
            b.access(w, f"local_{k % tasks}", "Read" if step % 2 else "Write", ("app.py", 30), step)
        k += 1
    for w in workers:
        b.end(w)
        b.join(main, w)
    return b


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--traces", type=int, default=4)
    parser.add_argument("--tasks", type=int, default=8)
    args = parser.parse_args()
    ids = itertools.count(1)
    t = time.perf_counter()
    builders = [
        (f"tests/test_load.py::test_{n}", build_trace(n, ids, args.events // args.traces, args.tasks))
        for n in range(1, args.traces + 1)
    ]
    session = session_for(builders)
    n_events = sum(len(tr["events"]) for tr in session["traces"].values())
    build_s = time.perf_counter() - t
    with tempfile.TemporaryDirectory(prefix="raceway-bench-") as tmp:
        out = Path(tmp) / "report.html"
        t = time.perf_counter()
        write_report(session, out)
        render_s = time.perf_counter() - t
        size = out.stat().st_size
        browser = Browser()
        try:
            page = browser.page()
            load_s = page.goto(out.as_uri(), "document.documentElement.getAttribute('data-ready') === '1'", timeout=60)
            biggest = max(session["traces"], key=lambda k: len(session["traces"][k]["events"]))
            t = time.perf_counter()
            page.eval(f"RacewayReport.openTrace({json.dumps(biggest)}) && true")
            page.wait_for("document.querySelector('svg.dag') !== null", 60)
            open_s = time.perf_counter() - t
            t = time.perf_counter()
            page.eval("document.querySelector('details.trace[open] .tabs button[data-tab=timeline]').click()")
            page.wait_for("document.querySelector('svg.timeline g.tl-lane') !== null", 60)
            timeline_s = time.perf_counter() - t
            t = time.perf_counter()
            page.eval("document.querySelector('details.trace[open] .tabs button[data-tab=events]').click()")
            page.wait_for("document.querySelectorAll('.ev-row').length > 0", 60)
            events_s = time.perf_counter() - t
            errors = page.errors()
        finally:
            browser.close()
    result = {
        "events": n_events,
        "traces": len(session["traces"]),
        "races": len(session["races"]),
        "bytes": size,
        "bytes_per_event": round(size / max(1, n_events), 1),
        "build_seconds": round(build_s, 3),
        "render_seconds": round(render_s, 3),
        "load_seconds": round(load_s, 3),
        "open_trace_seconds": round(open_s, 3),
        "timeline_seconds": round(timeline_s, 3),
        "event_list_seconds": round(events_s, 3),
        "console_errors": len(errors),
    }
    print(f"{n_events} events in {result['traces']} traces, {result['races']} races")
    print(f"render {render_s:.2f} s, {size / 1e6:.1f} MB ({result['bytes_per_event']} B/event)")
    print(f"load in Chromium {load_s:.2f} s; open biggest trace {open_s:.2f} s; timeline {timeline_s:.2f} s")
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
