"""Instrumentation on / off: every patch and the import hook, fully reversible.

:func:`install` patches the thread world (:mod:`.threads`) and, when their modules are present,
asyncio (:mod:`.aio`), anyio/trio (:mod:`.anyio_trio`) and the import-hook rewriter
(:mod:`.rewrite`), plus HTTP clients (:mod:`.http_clients`) and socket byte streams
(:mod:`.sockets`). :func:`uninstall` undoes all of it, last installed first.

Libraries that are costly to import are patched when the code under test first imports them
(:func:`when_imported`, a meta-path hook), never imported by :func:`install` itself.
"""

from __future__ import annotations

import importlib
import importlib.abc
import sys
import threading
from collections.abc import Callable, Mapping
from types import ModuleType
from typing import Any

from raceway_sdk import _recorder

__all__ = [
    "install",
    "uninstall",
    "is_installed",
    "status",
    "not_instrumented",
    "ImportWatch",
    "when_imported",
]

#: optional parts, installed in this order after the thread patches
# rewrite first: the others may import third-party modules (requests, urllib3) a user includes
OPTIONAL = ("rewrite", "aio", "anyio_trio", "http_clients", "sockets")

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
    _failed.clear()
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
    """Which parts are installed, which were skipped (with the reason), what waits for import.

    ``deferred``: modules whose patches run when the code under test first imports them;
    ``failed``: module -> error of such a patch.
    """
    deferred: list[str] = []
    for module in _installed:
        pending = getattr(module, "deferred", None)
        if pending is not None:
            deferred += pending()
    return {
        "installed": [m.__name__.rsplit(".", 1)[-1] for m in _installed],
        "skipped": dict(_skipped),
        "deferred": sorted(deferred),
        "failed": dict(_failed),
    }


def not_instrumented() -> list[tuple[str, str]]:
    """(module, reason) for modules selected for rewriting that could not be rewritten."""
    try:
        from raceway_sdk.instrument import rewrite
    except ModuleNotFoundError as exc:
        if exc.name != f"{__name__}.rewrite":
            raise
        return list(_deferred_failures())
    return [*rewrite.not_instrumented(), *_deferred_failures()]


def _deferred_failures() -> list[tuple[str, str]]:
    return [(name, f"patching at import failed: {msg}") for name, msg in _failed.items()]


# --------------------------------------------------------------------------- patch at import

#: module -> error of a patch that ran when the module was imported (kept until install())
_failed: dict[str, str] = {}


class _NotifyingLoader(importlib.abc.Loader):
    """Wraps a spec's loader for one import; puts the real loader back on the module."""

    def __init__(self, loader: Any, watch: ImportWatch, name: str) -> None:
        self._loader = loader
        self._watch = watch
        self._name = name

    def create_module(self, spec: Any) -> ModuleType | None:
        create = getattr(self._loader, "create_module", None)
        return create(spec) if create is not None else None

    def exec_module(self, module: ModuleType) -> None:
        spec = getattr(module, "__spec__", None)
        try:
            self._loader.exec_module(module)
        finally:  # nothing of ours stays reachable from the module
            if getattr(module, "__loader__", None) is self:
                module.__loader__ = self._loader
            if spec is not None and spec.loader is self:
                spec.loader = self._loader
        self._watch._loaded(self._name, module)

    def __getattr__(self, name: str) -> Any:  # get_resource_reader, is_package, get_code, ...
        return getattr(self._loader, name)


class ImportWatch(importlib.abc.MetaPathFinder):
    """Run ``callback(module)`` once, right after a module finishes importing (meta-path hook).

    Why: patching anyio and trio at :func:`install` would import them (~0.25 s) in every
    session, whether the code under test uses them or not. The finder only wraps the loader of
    the watched names (for that one import); a callback's exception is recorded in
    :func:`status`, never raised into the import. It leaves ``sys.meta_path`` when every
    callback ran or on :meth:`remove`.
    """

    def __init__(self, callbacks: Mapping[str, Callable[[ModuleType], None]]) -> None:
        self._callbacks = dict(callbacks)
        self._lock = threading.Lock()
        self._finding = threading.local()

    def pending(self) -> list[str]:
        """Watched modules not imported yet."""
        return sorted(self._callbacks)

    def find_spec(self, fullname: str, path: Any = None, target: Any = None) -> Any:
        """Find the spec with the other finders; wrap its loader when ``fullname`` is watched."""
        if fullname not in self._callbacks or getattr(self._finding, "name", None) == fullname:
            return None
        self._finding.name = fullname  # a finder asking importlib.util.find_spec: not us again
        spec: Any = None
        try:
            for finder in list(sys.meta_path):
                find = getattr(finder, "find_spec", None)
                if finder is self or find is None:
                    continue
                spec = find(fullname, path, target)
                if spec is not None:
                    break
        finally:
            self._finding.name = None
        loader = getattr(spec, "loader", None)
        if loader is None or not hasattr(loader, "exec_module"):
            return spec  # namespace package or legacy loader: left alone (not watched then)
        spec.loader = _NotifyingLoader(loader, self, fullname)
        return spec

    def _loaded(self, name: str, module: ModuleType) -> None:
        if sys.modules.get(name) is not module:
            return  # a loader used by hand (module_from_spec): wait for the real import
        with self._lock:
            callback = self._callbacks.pop(name, None)
            empty = not self._callbacks
        if empty:
            self.remove()
        if callback is None:
            return
        try:
            callback(module)
        except Exception as exc:  # never break the user's import; shown by status()
            _failed[name] = f"{type(exc).__name__}: {exc}"

    def remove(self) -> None:
        """Leave ``sys.meta_path`` (idempotent); pending callbacks never run."""
        try:
            sys.meta_path.remove(self)
        except ValueError:
            pass


def when_imported(callbacks: Mapping[str, Callable[[ModuleType], None]]) -> ImportWatch | None:
    """Call each ``callbacks[name](module)`` now if imported, else right after its import.

    Returns the watch for the names not imported yet (None if there are none): the caller
    removes it on uninstall. A callback run now raises like any call; one run at import
    time records its error in :func:`status` instead.
    """
    later: dict[str, Callable[[ModuleType], None]] = {}
    for name, callback in callbacks.items():
        module = sys.modules.get(name)
        if module is not None:
            callback(module)
        else:
            later[name] = callback
    if not later:
        return None
    watch = ImportWatch(later)
    sys.meta_path.insert(0, watch)
    return watch
