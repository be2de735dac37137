"""The two-service demo against a standalone server: one command, everything started and stopped.

    python examples/two_services/demo.py                       # starts `raceway serve` itself
    python examples/two_services/demo.py --server URL          # or uses a running server

It starts the inventory and orders services and the client with ``raceway run`` (all reporting
to the server, all in one trace), then prints the races the server found in that trace.
"""

import argparse
import os
import socket
import subprocess
import sys
import time
import uuid

import httpx
from raceway_sdk.testing_services import Services

HERE = os.path.dirname(os.path.abspath(__file__))


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server():
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "raceway_server", "serve", "--port", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if httpx.get(url + "/health", timeout=1).status_code == 200:
                return proc, url
        except httpx.HTTPError:
            pass
        if proc.poll() is not None:
            break
        time.sleep(0.1)
    proc.terminate()
    sys.exit("raceway serve did not start")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--server", help="a running Raceway server (default: start one)")
    args = parser.parse_args()
    server_proc, url = (None, args.server) if args.server else start_server()
    trace = str(uuid.uuid4())
    services = Services(server_url=url, workdir=HERE)
    try:
        env = {"RACEWAY_TRACE_ID": trace}
        inventory = services.start(os.path.join(HERE, "inventory.py"), "app", name="inventory",
                                   env=env)
        orders = services.start(os.path.join(HERE, "orders.py"), "app", name="orders",
                                env={**env, "INVENTORY_URL": inventory.url})
        subprocess.run([sys.executable, "-m", "raceway_server", "run", "--server", url,
                        "--service", "client", "--trace-id", trace, "--",
                        sys.executable, os.path.join(HERE, "client.py"), orders.url],
                       check=True, cwd=HERE, timeout=60)
        data = httpx.get(f"{url}/api/traces/{trace}", timeout=10).json()["data"]
        details = data["analysis"]["race_details"]
        services_seen = sorted({e["metadata"]["service_name"] for e in data["events"]})
        print(f"trace {trace}: {len(data['events'])} events from {', '.join(services_seen)}")
        for d in details:
            print(f"  {d['race_kind']} race on {d['variable']}: "
                  f"{d['event1_location']} <-> {d['event2_location']}")
        print(f"{len(details)} race(s); open {url}/api/traces/{trace} for the full analysis")
        return 1 if details else 0
    finally:
        services.stop_all()
        if server_proc is not None:
            server_proc.terminate()
            server_proc.wait(10)


if __name__ == "__main__":
    sys.exit(main())
