"""``raceway run``'s bootstrap through the environment (like coverage's subprocess support).

``raceway run`` puts :func:`site_dir` (a directory holding only ``sitecustomize.py``) first on
``PYTHONPATH`` and sets ``RACEWAY_RUN=1``; every Python process started with that environment
-- the command itself and the Python subprocesses it starts -- calls :func:`activate_from_env`
at interpreter start-up, before ``__main__`` runs. Settings, all from the environment:

=============================  ==================================================================
``RACEWAY_SERVER_URL``         where events go (required): a ``raceway serve`` or the pytest
                               plugin's listener
``RACEWAY_SERVICE_NAME``       ``metadata.service_name`` of every event (default ``python``)
``RACEWAY_API_KEY``            sent to ``RACEWAY_SERVER_URL`` only
``RACEWAY_INCLUDE`` /          comma-separated module/path globs of the import-hook rewriter
``RACEWAY_EXCLUDE``
``RACEWAY_ROOTS``              ``os.pathsep``-separated directories whose modules are rewritten
                               (default: the working directory)
``RACEWAY_INSTRUMENT``         ``0``: manual API only (no patches, no rewriting); HTTP clients
                               still propagate clocks
``RACEWAY_TRACE_ID``           trace of events outside any request (the plugin exports the
                               running test's)
``RACEWAY_FLUSH_ON_RESPONSE``  ``1``: responses wait until the handler's events are delivered
=============================  ==================================================================
"""

from __future__ import annotations

import os
import signal
import sys
from collections.abc import Mapping
from typing import Any

__all__ = ["activate_from_env", "site_dir", "BootstrapError", "ENV_VARS"]

ENV_VARS = (
    "RACEWAY_RUN",
    "RACEWAY_SERVER_URL",
    "RACEWAY_SERVICE_NAME",
    "RACEWAY_API_KEY",
    "RACEWAY_INCLUDE",
    "RACEWAY_EXCLUDE",
    "RACEWAY_ROOTS",
    "RACEWAY_INSTRUMENT",
    "RACEWAY_TRACE_ID",
    "RACEWAY_FLUSH_ON_RESPONSE",
)
#: never rewritten (the recorder would record itself)
_ALWAYS_EXCLUDED = ("raceway_sdk", "raceway_sdk.*", "raceway_server", "raceway_server.*",
                    "pytest_raceway", "pytest_raceway.*")

_active: Any = None


class BootstrapError(ValueError):
    """A bad ``RACEWAY_*`` setting (the message names the variable)."""


def site_dir() -> str:
    """The directory to put first on ``PYTHONPATH`` (holds only ``sitecustomize.py``)."""
    return os.path.join(os.path.dirname(os.path.abspath(__file__)), "_site")


def _list(value: str | None, sep: str = ",") -> list[str]:
    return [p.strip() for p in (value or "").split(sep) if p.strip()]


def _flag(env: Mapping[str, str], name: str, default: bool) -> bool:
    value = env.get(name)
    if value is None or value == "":
        return default
    low = value.strip().lower()
    if low in ("1", "true", "yes", "on"):
        return True
    if low in ("0", "false", "no", "off"):
        return False
    raise BootstrapError(f"{name} must be 1 or 0, got {value!r}")


def activate_from_env(environ: Mapping[str, str] | None = None) -> Any:
    """Install the sink and the instrumentation as the environment says; returns the sink.

    Does nothing (returns None) unless ``RACEWAY_RUN=1``; a second call returns the first sink.
    """
    global _active
    env = os.environ if environ is None else environ
    if env.get("RACEWAY_RUN") != "1":
        return None
    if _active is not None:
        return _active
    url = env.get("RACEWAY_SERVER_URL", "").strip()
    if not url:
        raise BootstrapError("RACEWAY_SERVER_URL is not set: nowhere to send events")
    service = env.get("RACEWAY_SERVICE_NAME") or "python"
    instrument_code = _flag(env, "RACEWAY_INSTRUMENT", True)
    flush = _flag(env, "RACEWAY_FLUSH_ON_RESPONSE", False)
    trace: int | None = None
    if env.get("RACEWAY_TRACE_ID"):
        from raceway_sdk.protocol.events import parse_uuid

        try:
            trace = parse_uuid(env["RACEWAY_TRACE_ID"])
        except ValueError:
            raise BootstrapError(
                f"RACEWAY_TRACE_ID must be a UUID, got {env['RACEWAY_TRACE_ID']!r}"
            ) from None

    from raceway_sdk import _recorder as rec
    from raceway_sdk import propagation
    from raceway_sdk.instrument import http_clients
    from raceway_sdk.transport import HttpSink

    sink = HttpSink(url, api_key=env.get("RACEWAY_API_KEY") or None)
    rec.configure(service_name=service)
    if trace is not None:
        rec.set_trace(trace)
    propagation.set_flush_on_response(flush)
    if instrument_code:
        from raceway_sdk import instrument

        # unset: the working directory; set but empty: only what RACEWAY_INCLUDE names
        roots = (_list(env["RACEWAY_ROOTS"], os.pathsep) if "RACEWAY_ROOTS" in env
                 else [os.getcwd()])
        instrument.install({
            "service_name": service,
            "include": _list(env.get("RACEWAY_INCLUDE")),
            "exclude": list(_ALWAYS_EXCLUDED) + _list(env.get("RACEWAY_EXCLUDE")),
            "roots": roots,
        })
    http_clients.install()  # idempotent: a no-op once instrument.install covers it
    rec.set_sink(sink)
    _exit_cleanly_on_sigterm()
    _active = sink
    return sink


def _exit_cleanly_on_sigterm() -> None:
    """SIGTERM becomes SystemExit, so atexit (the sink's final flush) runs.

    Only when nobody installed a handler: servers such as uvicorn replace it with their own
    graceful shutdown, which also ends in a normal exit.
    """
    try:
        if signal.getsignal(signal.SIGTERM) is signal.SIG_DFL:
            signal.signal(signal.SIGTERM, _sigterm)
    except (ValueError, OSError):  # not the main thread, or no such signal
        pass


def _sigterm(signum: int, frame: Any) -> None:
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    sys.exit(128 + signum)
