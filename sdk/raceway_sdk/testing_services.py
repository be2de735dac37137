"""Instrumented HTTP services for tests: real subprocesses started with ``raceway run``.

In a test run under ``pytest --raceway`` (the plugin provides the ``raceway_services`` fixture,
a thin wrapper over :func:`running_services`)::

    def test_two_requests(raceway_services):
        bank = raceway_services.start(__file__, "bank_app", name="bank")   # ASGI or WSGI app
        httpx.post(bank.url + "/deposit")

:meth:`Services.start` runs ``python -m raceway_sdk.testing_services serve FILE ATTR`` under
``raceway run --flush-on-response`` with ``RACEWAY_SERVER_URL`` taken from the environment
(under ``pytest --raceway`` that is the plugin's listener, so the services' events land in the
running test's trace and the test's verdict). The app is imported by module name from its
directory, so the import hook rewrites it like any code under the working directory. ASGI apps
are served by uvicorn, WSGI apps by a threaded ``wsgiref`` server (one thread per request),
both on 127.0.0.1 with an ephemeral port and wrapped in the Raceway middleware. Without
``RACEWAY_SERVER_URL`` the services run uninstrumented (the test still runs).

Every service is stopped (SIGTERM, then SIGKILL after a grace period) by the fixture's
finalizer, and the service's output is kept in a log file shown when it fails to start.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import inspect
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

__all__ = ["Service", "Services", "ServiceError", "main", "running_services"]

_START_TIMEOUT = 30.0
_STOP_TIMEOUT = 10.0


class ServiceError(RuntimeError):
    """A service did not start (the message includes the end of its output)."""


class Service:
    """One running service process."""

    def __init__(self, name: str, url: str, process: subprocess.Popen[bytes], log: Path) -> None:
        self.name = name
        self.url = url
        self.process = process
        self.log_path = log

    def __repr__(self) -> str:
        return f"Service({self.name!r}, {self.url!r}, pid={self.process.pid})"

    @property
    def pid(self) -> int:
        return self.process.pid

    def output(self) -> str:
        """Everything the service wrote to stdout/stderr so far."""
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def stop(self, timeout: float = _STOP_TIMEOUT) -> int | None:
        """SIGTERM (the service flushes its events and exits), SIGKILL after ``timeout``."""
        proc = self.process
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)
        return proc.returncode


class Services:
    """Starts services and stops all of them in :meth:`stop_all` (the fixture's finalizer)."""

    def __init__(self, server_url: str | None = None, *, start_timeout: float = _START_TIMEOUT,
                 workdir: str | None = None) -> None:
        self.server_url = server_url if server_url is not None else os.environ.get(
            "RACEWAY_SERVER_URL")
        self.start_timeout = start_timeout
        self.workdir = workdir or os.getcwd()
        self.started: list[Service] = []
        self._tmp = tempfile.TemporaryDirectory(prefix="raceway-services-")

    def start(self, file: str, attr: str, *, name: str, manual: bool = False,
              env: dict[str, str] | None = None) -> Service:
        """Serve ``attr`` of the module in ``file`` (ASGI or WSGI app) as service ``name``."""
        path = Path(file).resolve()
        if not path.is_file() or path.suffix != ".py":
            raise ServiceError(f"{file!r} is not a Python source file")
        if not name or not isinstance(name, str):
            raise ServiceError(f"a service needs a non-empty name, got {name!r}")
        tmp = Path(self._tmp.name)
        ready = tmp / f"{name}-{len(self.started)}.ready"
        log = tmp / f"{name}-{len(self.started)}.log"
        inner = [sys.executable, "-m", "raceway_sdk.testing_services", "serve", str(path), attr,
                 "--ready-file", str(ready)]
        child_env = dict(os.environ)
        child_env.update(env or {})
        if self.server_url:
            command = [sys.executable, "-m", "raceway_server", "run", "--server", self.server_url,
                       "--service", name, "--flush-on-response"]
            if manual:
                command.append("--manual")
            command += ["--"] + inner
        else:
            command = inner
        with open(log, "wb") as out:
            proc = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=child_env,
                                    cwd=self.workdir, stdin=subprocess.DEVNULL)
        service = Service(name, "", proc, log)
        self.started.append(service)
        deadline = time.monotonic() + self.start_timeout
        while True:
            if ready.exists():
                text = ready.read_text().strip()
                if text:
                    service.url = text
                    return service
            if proc.poll() is not None:
                raise ServiceError(f"service {name!r} exited with status {proc.returncode} "
                                   f"before it was ready:\n{service.output()[-3000:]}")
            if time.monotonic() > deadline:
                service.stop()
                raise ServiceError(f"service {name!r} was not ready within "
                                   f"{self.start_timeout:.0f} s:\n{service.output()[-3000:]}")
            time.sleep(0.02)

    def stop_all(self) -> None:
        """Stop every service started here (newest first)."""
        errors: list[BaseException] = []
        while self.started:
            service = self.started.pop()
            try:
                service.stop()
            except Exception as exc:  # keep stopping the others
                errors.append(exc)
        self._tmp.cleanup()
        if errors:
            raise errors[0]


@contextlib.contextmanager
def running_services() -> Iterator[Services]:
    """Start instrumented services with ``.start(file, attr, name=...)``; all are stopped at exit.

    While the recorder is on in this process (``pytest --raceway``), the httpx/requests
    instrumentation is on too, so the test's own requests carry its clock. The pytest plugin
    exposes this as the ``raceway_services`` fixture.
    """
    services = Services()
    clients = _client_instrumentation()
    try:
        yield services
    finally:
        try:
            services.stop_all()
        finally:
            if clients is not None:
                clients.uninstall()


def _client_instrumentation() -> Any:
    """Install the HTTP client patches if the recorder is on and nobody did; the module or None."""
    from raceway_sdk import _recorder as rec

    if rec.get_sink() is None:
        return None
    from raceway_sdk.instrument import http_clients

    if http_clients.is_installed():
        return None
    http_clients.install()
    return http_clients


# --------------------------------------------------------------------------- the child side


def _is_asgi(app: Any) -> bool:
    if not callable(app):
        return False
    call = app if inspect.isfunction(app) or inspect.ismethod(app) else type(app).__call__
    if inspect.iscoroutinefunction(call):
        return True
    try:
        params = inspect.signature(app).parameters
    except (TypeError, ValueError):
        return False
    return list(params)[:3] == ["scope", "receive", "send"]


def _load(file: str, attr: str) -> Any:
    path = Path(file).resolve()
    sys.path.insert(0, str(path.parent))
    module = importlib.import_module(path.stem)  # through sys.meta_path: the rewriter sees it
    try:
        return getattr(module, attr)
    except AttributeError:
        raise SystemExit(f"raceway services: {path} has no attribute {attr!r}") from None


def _announce(ready_file: str, url: str) -> None:
    tmp = ready_file + ".tmp"
    with open(tmp, "w") as f:
        f.write(url)
    os.replace(tmp, ready_file)


def _serve_asgi(app: Any, ready_file: str) -> None:
    import uvicorn

    from raceway_sdk.middleware.asgi import RacewayASGIMiddleware

    class Server(uvicorn.Server):
        async def startup(self, sockets: Any = None) -> None:
            await super().startup(sockets=sockets)
            if self.started:
                port = self.servers[0].sockets[0].getsockname()[1]
                _announce(ready_file, f"http://127.0.0.1:{port}")

    config = uvicorn.Config(RacewayASGIMiddleware(app), host="127.0.0.1", port=0,
                            log_level="warning", lifespan="off", access_log=False)
    Server(config).run()


def _serve_wsgi(app: Any, ready_file: str) -> None:
    import socketserver
    from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

    from raceway_sdk.middleware.wsgi import RacewayWSGIMiddleware

    class ThreadingServer(socketserver.ThreadingMixIn, WSGIServer):
        daemon_threads = True

    class QuietHandler(WSGIRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = make_server("127.0.0.1", 0, RacewayWSGIMiddleware(app),
                         server_class=ThreadingServer, handler_class=QuietHandler)
    _announce(ready_file, f"http://127.0.0.1:{server.server_port}")
    try:
        server.serve_forever(poll_interval=0.1)
    finally:
        server.server_close()


def main(argv: list[str] | None = None) -> int:
    """``python -m raceway_sdk.testing_services serve FILE ATTR --ready-file PATH``."""
    parser = argparse.ArgumentParser(prog="python -m raceway_sdk.testing_services")
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="serve an ASGI/WSGI app on 127.0.0.1, ephemeral port")
    serve.add_argument("file")
    serve.add_argument("attr")
    serve.add_argument("--ready-file", required=True,
                       help="written with the service URL once it accepts connections")
    args = parser.parse_args(argv)
    app = _load(args.file, args.attr)
    if _is_asgi(app):
        _serve_asgi(app, args.ready_file)
    else:
        _serve_wsgi(app, args.ready_file)
    return 0


if __name__ == "__main__":
    sys.exit(main())
