"""The plugin's only door to the SDK and the engine (one place to follow their contracts).

Everything here imports lazily: this module is loaded only once Raceway is on.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any


def recorder() -> Any:
    from raceway_sdk import _recorder

    return _recorder


def make_engine() -> Any:
    from raceway_server.engine import Engine

    return Engine(on_race=None)


@contextlib.contextmanager
def suspended() -> Iterator[None]:
    """The recorder's own-activity guard; a no-op before the recorder exists."""
    try:
        rec = recorder()
    except ImportError:
        yield
        return
    with rec.suspended():
        yield


def parse_batch(body: bytes) -> Any:
    from raceway_sdk.protocol.events import parse_batch as parse

    return parse(body)


def dumps_batch(events: list[Any]) -> bytes:
    from raceway_sdk.protocol.events import dumps_batch as dumps

    return dumps(events)


def event_to_wire(event: Any) -> dict[str, Any]:
    from raceway_sdk.protocol.events import event_to_wire as to_wire

    return to_wire(event)


def live_task(task_id: Any) -> Any:
    """The recorder's live TaskState of ``task_id`` (for tasks no spawn event describes)."""
    states = getattr(recorder(), "_states", None)
    for state in list(states or ()):
        if state.id == task_id:
            return state
    return None


def to_dict(obj: Any) -> Any:
    """``to_dict()`` when the object has one (Race, Access, TaskInfo), else a plain copy."""
    if hasattr(obj, "to_dict"):
        return obj.to_dict()
    if hasattr(obj, "__slots__"):
        return {name: getattr(obj, name, None) for name in obj.__slots__}
    if hasattr(obj, "__dict__"):
        return dict(vars(obj))
    return obj


def install(include: list[str], exclude: list[str], roots: list[str]) -> None:
    from raceway_sdk import instrument

    instrument.install({"include": include, "exclude": exclude, "roots": roots})


def uninstall() -> None:
    from raceway_sdk import instrument

    instrument.uninstall()


def not_instrumented() -> list[dict[str, str]]:
    """Modules the import hook could not rewrite, as ``{"module", "reason"}`` dicts."""
    from raceway_sdk import instrument

    func = getattr(instrument, "not_instrumented", None)
    if func is None:
        from raceway_sdk.instrument import rewrite

        func = rewrite.not_instrumented
    out: list[dict[str, str]] = []
    status = getattr(instrument, "status", None)
    for part, reason in (status()["skipped"] if status is not None else {}).items():
        out.append({"module": f"raceway_sdk.instrument.{part}", "reason": str(reason)})
    for item in func():
        if isinstance(item, dict):
            out.append({"module": str(item.get("module")), "reason": str(item.get("reason"))})
        else:
            module, reason = (list(item) + ["", ""])[:2]
            out.append({"module": str(module), "reason": str(reason)})
    return out


def track(obj: Any, name: str | None = None) -> Any:
    from raceway_sdk import api

    return api.track(obj, name)


def html_available() -> bool:
    """Whether the HTML report renderer is installed (found, not imported: jinja2 stays out)."""
    import importlib.util

    try:
        return importlib.util.find_spec("raceway_server.report") is not None
    except ImportError:
        return False


def write_html(doc: dict[str, Any], path: str) -> None:
    """``raceway_server.report.write_html(session_doc, path)`` (the reports issue's entry)."""
    from raceway_server import report

    report.write_html(doc, path)
