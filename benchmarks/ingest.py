"""Ingest throughput of ``raceway serve``: memory and PostgreSQL storage.

Starts the server as a subprocess (``python -m raceway_server serve``), then a separate client
process posts pre-serialised 1,000-event batches over keep-alive connections and retries on
429/503 as an SDK would. Throughput counts acknowledged events only (an acknowledgement means
committed and analysed). ``dropped`` = events sent minus events the server reports stored.

PostgreSQL: ``RACEWAY_BENCH_DATABASE_URL`` if set, else a throwaway cluster (initdb + pg_ctl).
Usage: ``python benchmarks/ingest.py [--batches 150] [--concurrency 2]``. Last line: JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]


def make_batches(count: int, size: int = 1000) -> list[bytes]:
    """Realistic batches: 10 traces x 4 tasks, accesses with full vector clocks (our SDK)."""
    from raceway_sdk.protocol.events import Event, Metadata, dumps_batch, new_event_id

    out = []
    now = time.time_ns()
    for b in range(count):
        traces = [uuid.uuid4().int for _ in range(10)]
        clocks: dict[str, int] = {}
        events = []
        for i in range(size):
            trace = traces[i % 10]
            task = f"{trace:x}/{(i // 10) % 4}"
            clocks[task] = clocks.get(task, 0) + 1
            events.append(
                Event(
                    id=new_event_id(),
                    trace_id=trace,
                    parent_id=None,
                    timestamp_ns=now + b * size + i,
                    kind="StateChange",
                    data={
                        "variable": f"state.v{i % 13}",
                        "old_value": i,
                        "new_value": i + 1,
                        "location": f"app.py:{10 + i % 40}",
                        "access_type": "Read" if i % 3 else "Write",
                    },
                    meta=Metadata(thread_id=task, process_id=1, service_name="bench", duration_ns=1000 + i % 50),
                    vc={task: clocks[task]},
                    ext={"task": task, "trusted_vc": True, "loc": f"state.v{i % 13}", "func": "work"},
                )
            )
        out.append(dumps_batch(events))
    return out


def client(url: str, batches: int, concurrency: int) -> dict[str, Any]:
    """Post the batches from this process; returns acknowledged counts and timing."""
    payloads = make_batches(batches)
    lock = threading.Lock()
    state = {"next": 0, "acked": 0, "retries": 0, "failed": 0}

    def worker() -> None:
        with httpx.Client(base_url=url, timeout=60) as http:
            while True:
                with lock:
                    n = state["next"]
                    state["next"] += 1
                if n >= len(payloads):
                    return
                for _ in range(100):
                    response = http.post("/events", content=payloads[n], headers={"content-type": "application/json"})
                    if response.status_code == 200:
                        with lock:
                            state["acked"] += response.json()["data"]["ingested"]
                        break
                    if response.status_code not in (429, 503):
                        raise RuntimeError(f"HTTP {response.status_code}: {response.text[:200]}")
                    with lock:
                        state["retries"] += 1
                    time.sleep(float(response.headers.get("Retry-After", "1")))
                else:
                    with lock:
                        state["failed"] += 1

    start = time.perf_counter()
    threads = [threading.Thread(target=worker) for _ in range(concurrency)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    seconds = time.perf_counter() - start
    return {"sent": batches * 1000, **state, "seconds": seconds}


def cpu_seconds(pid: int) -> float | None:
    """User + system CPU time of a process (Linux /proc), to report CPU per event."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run_backend(backend: str, batches: int, concurrency: int, database_url: str | None) -> dict[str, Any]:
    from raceway_server.storage.throwaway import free_port

    port = free_port()
    env = dict(os.environ, RACEWAY_LOG_LEVEL="warning", RACEWAY_STORAGE=backend)
    if database_url:
        env["RACEWAY_DATABASE_URL"] = database_url
    server = subprocess.Popen(
        [sys.executable, "-m", "raceway_server", "serve", "--port", str(port)], env=env, cwd=ROOT
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(url + "/health").json()["data"]["ready"]:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline or server.poll() is not None:
                raise RuntimeError(f"{backend} server did not start")
            time.sleep(0.1)
        cpu_before = cpu_seconds(server.pid)
        proc = subprocess.run(
            [sys.executable, __file__, "--client", url, "--batches", str(batches), "--concurrency", str(concurrency)],
            capture_output=True, text=True, check=True, cwd=ROOT,
        )
        result = json.loads(proc.stdout.strip().splitlines()[-1])
        cpu_after = cpu_seconds(server.pid)
        if cpu_before is not None and cpu_after is not None and result["acked"]:
            result["server_cpu_us_per_event"] = (cpu_after - cpu_before) / result["acked"] * 1e6
        status = httpx.get(url + "/status").json()["data"]
        result["stored"] = status["events_captured"]
        result["engine_dropped"] = status["engine"].get("dropped", 0)
        result["events_per_s"] = result["acked"] / result["seconds"]
        return result
    finally:
        server.terminate()
        server.wait(timeout=30)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", type=int, default=150, help="1,000-event batches per backend")
    parser.add_argument("--concurrency", type=int, default=3, help="client connections")
    parser.add_argument("--client", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.client:
        print(json.dumps(client(args.client, args.batches, args.concurrency)))
        return 0

    results = {"memory": run_backend("memory", args.batches, args.concurrency, None)}
    cluster = None
    database_url = os.environ.get("RACEWAY_BENCH_DATABASE_URL")
    if not database_url:
        from raceway_server.storage.throwaway import PgCluster, find_bindir

        bindir = find_bindir()
        if bindir is not None:
            cluster = PgCluster(bindir)
            cluster.init()
            cluster.start()
            database_url = cluster.new_database()
    try:
        if database_url:
            results["postgres"] = run_backend("postgres", args.batches, args.concurrency, database_url)
    finally:
        if cluster is not None:
            cluster.destroy()
    for name, r in results.items():
        print(
            f"{name:9s} {r['acked']:>8d} events acknowledged in {r['seconds']:.2f} s = "
            f"{r['events_per_s']:,.0f} events/s (retries {r['retries']}, stored {r['stored']}, "
            f"engine dropped {r['engine_dropped']}); server CPU "
            f"{r.get('server_cpu_us_per_event', float('nan')):.1f} us/event (batch generation excluded)"
        )
    dropped = sum(r["sent"] - r["stored"] + r["engine_dropped"] for r in results.values())
    summary = {
        "memory_events_per_s": round(results["memory"]["events_per_s"]),
        "memory_server_cpu_us_per_event": round(results["memory"].get("server_cpu_us_per_event", 0), 1),
        "postgres_server_cpu_us_per_event": (
            round(results["postgres"].get("server_cpu_us_per_event", 0), 1) if "postgres" in results else None
        ),
        "load_average_1m": round(os.getloadavg()[0], 2),
        "postgres_events_per_s": round(results["postgres"]["events_per_s"]) if "postgres" in results else None,
        "dropped": dropped,
        "batch_size": 1000,
        "batches": args.batches,
        "concurrency": args.concurrency,
    }
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
