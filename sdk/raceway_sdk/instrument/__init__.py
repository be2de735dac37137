"""Instrumentation on / off: every patch and the import hook, fully reversible.

:func:`install` patches the thread world (:mod:`.threads`) and, when their modules are present,
asyncio (:mod:`.aio`), anyio/trio (:mod:`.anyio_trio`) and the import-hook rewriter
(:mod:`.rewrite`). :func:`uninstall` undoes all of it, last installed first.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from typing import Any

from raceway_sdk import _recorder

__all__ = ["install", "uninstall", "is_installed", "status", "not_instrumented"]

#: optional parts, installed in this order after the thread patches
OPTIONAL = ("aio", "anyio_trio", "http_clients", "rewrite")

_installed: list[Any] = []
_skipped: dict[str, str] = {}
_active = False


def _option(config: Any, name: str) -> Any:
    if config is None:
        return None
    if isinstance(config, Mapping):
        return config.get(name)
    return getattr(config, name, None)


def _call_install(name: str, module: Any, config: Any) -> bool:
    """Install one optional part; False (with the reason recorded) when it is not wanted."""
    if name == "rewrite":
        include, exclude, roots = (_option(config, k) for k in ("include", "exclude", "roots"))
        if not include and not roots:
            _skipped[name] = "no include patterns or roots configured"
            return False
        module.install(include, exclude, list(roots or []))
        return True
    import inspect

    if inspect.signature(module.install).parameters:
        module.install(config)
    else:
        module.install()
    return True


def install(config: Any = None) -> None:
    """Install all instrumentation. ``config``: None, a mapping or an object with attributes.

    Recognised here: ``service_name``, ``environment``, ``stack_depth`` (the recorder),
    ``third_party_sync`` (see :func:`.threads.install`) and
    ``include``, ``exclude``, ``roots`` (the import-hook rewriter; without include patterns or
    roots the rewriter is not installed). Calling it twice is an error: uninstall first.
    """
    global _active
    if _active:
        raise RuntimeError("raceway instrumentation is already installed; call uninstall() first")
    _recorder.configure(
        service_name=_option(config, "service_name"),
        environment=_option(config, "environment"),
        stack_depth=_option(config, "stack_depth"),
    )
    from raceway_sdk.instrument import threads

    _skipped.clear()
    try:
        threads.install(third_party_sync=bool(_option(config, "third_party_sync")))
        _installed.append(threads)
        for name in OPTIONAL:
            full = f"{__name__}.{name}"
            try:
                module = importlib.import_module(full)
            except ModuleNotFoundError as exc:
                if exc.name != full:
                    raise
                _skipped[name] = "module not available"
                continue
            if _call_install(name, module, config):
                _installed.append(module)
    except BaseException:
        _uninstall_parts()
        raise
    _active = True


def _uninstall_parts() -> None:
    errors: list[BaseException] = []
    while _installed:
        module = _installed.pop()
        try:
            module.uninstall()
        except Exception as exc:  # keep restoring the others
            errors.append(exc)
    if errors:
        raise RuntimeError(f"raceway uninstall failed: {errors[0]!r}") from errors[0]


def uninstall() -> None:
    """Remove every patch and hook (no-op when not installed)."""
    global _active
    _active = False
    _uninstall_parts()


def is_installed() -> bool:
    """True between :func:`install` and :func:`uninstall`."""
    return _active


def status() -> dict[str, Any]:
    """Which parts are installed and which were skipped (with the reason)."""
    return {
        "installed": [m.__name__.rsplit(".", 1)[-1] for m in _installed],
        "skipped": dict(_skipped),
    }


def not_instrumented() -> list[tuple[str, str]]:
    """(module, reason) for modules selected for rewriting that could not be rewritten."""
    try:
        from raceway_sdk.instrument import rewrite
    except ModuleNotFoundError as exc:
        if exc.name != f"{__name__}.rewrite":
            raise
        return []
    return list(rewrite.not_instrumented())
