"""Which modules the import hook rewrites.

A module is selected when an exclude pattern does not match it and either an include pattern
matches it or its source file lies under one of the root directories. The standard library,
site-packages and the raceway packages themselves are never selected through a root: only an
include pattern that names them explicitly selects them.

Patterns are globs (``fnmatch``). A pattern containing ``/`` or ending in ``.py`` matches the
source path (absolute, or relative to a root); any other pattern matches the dotted module name,
and a bare name without wildcards also matches its submodules (``myapp`` selects ``myapp.db``).
"""

from __future__ import annotations

import os
import site
import sys
import sysconfig
from fnmatch import fnmatchcase

__all__ = ["Selection", "PROTECTED_PACKAGES"]

#: Top-level packages of this project: instrumenting them would record the recorder itself.
PROTECTED_PACKAGES = frozenset({"raceway_sdk", "raceway_server", "pytest_raceway"})
#: Test machinery that must keep its own import behaviour.
_TOOL_PACKAGES = frozenset({"_pytest", "pytest", "pluggy", "py", "_virtualenv", "coverage"})


def _norm(path: str) -> str:
    return os.path.normcase(os.path.realpath(path))


def _protected_dirs() -> list[str]:
    dirs: set[str] = set()
    for key in ("stdlib", "platstdlib", "purelib", "platlib"):
        p = sysconfig.get_paths().get(key)
        if p:
            dirs.add(_norm(p))
    for p in (sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix):
        dirs.add(_norm(os.path.join(p, "lib")))
    try:
        dirs.update(_norm(p) for p in site.getsitepackages())
    except AttributeError:  # pragma: no cover - virtualenv's old site.py
        pass
    user = getattr(site, "getusersitepackages", None)
    if user is not None:
        dirs.add(_norm(user()))
    return sorted(dirs)


class _Pattern:
    __slots__ = ("text", "is_path", "prefix")

    def __init__(self, text: str) -> None:
        if not isinstance(text, str) or not text.strip():
            raise ValueError(f"raceway: empty or non-string module pattern {text!r}")
        self.text = text.strip()
        self.is_path = "/" in self.text or os.sep in self.text or self.text.endswith(".py")
        wild = any(c in self.text for c in "*?[")
        self.prefix = not self.is_path and not wild

    def matches(self, name: str, path: str | None, roots: list[str]) -> bool:
        if not self.is_path:
            if self.prefix:
                return name == self.text or name.startswith(self.text + ".")
            return fnmatchcase(name, self.text)
        if path is None:
            return False
        pat = self.text.replace(os.sep, "/")
        apath = path.replace(os.sep, "/")
        if os.path.isabs(self.text):
            return fnmatchcase(apath, pat)
        for root in roots:
            rel = os.path.relpath(path, root).replace(os.sep, "/")
            if not rel.startswith("../") and fnmatchcase(rel, pat):
                return True
        return fnmatchcase(apath, "*/" + pat)


class Selection:
    """Decides per module (dotted name + source path) whether to rewrite it."""

    def __init__(
        self,
        include: list[str] | None = None,
        exclude: list[str] | None = None,
        roots: list[str] | None = None,
    ) -> None:
        self.include = [_Pattern(p) for p in include or ()]
        self.exclude = [_Pattern(p) for p in exclude or ()]
        self.roots = [_norm(r) for r in roots or ()]
        self._protected = _protected_dirs()

    def explicitly_included(self, name: str, path: str | None) -> bool:
        """True if an include pattern names this module (overrides the protections)."""
        npath = _norm(path) if path else None
        return any(p.matches(name, npath, self.roots) for p in self.include)

    def is_protected(self, name: str, path: str | None) -> bool:
        """Stdlib, site-packages, test tooling and the raceway packages themselves."""
        top = name.partition(".")[0]
        if top in PROTECTED_PACKAGES or top in _TOOL_PACKAGES:
            return True
        if top in getattr(sys, "stdlib_module_names", ()) or top in sys.builtin_module_names:
            return True
        if path is None:
            return False
        npath = _norm(path)
        parts = npath.replace(os.sep, "/").split("/")
        if "site-packages" in parts or "dist-packages" in parts:
            return True
        return any(_under(npath, d) for d in self._protected if not self._root_inside(d))

    def _root_inside(self, protected_dir: str) -> bool:
        # A root inside a protected dir (a project under sys.prefix) must not be vetoed by it
        # unless the path is also below site-packages, which is checked separately.
        return any(_under(r, protected_dir) and r != protected_dir for r in self.roots)

    def matches(self, name: str, path: str | None) -> bool:
        """Should module ``name`` loaded from ``path`` be rewritten?"""
        npath = _norm(path) if path else None
        if any(p.matches(name, npath, self.roots) for p in self.exclude):
            return False
        if any(p.matches(name, npath, self.roots) for p in self.include):
            return True
        if npath is None or not any(_under(npath, r) for r in self.roots):
            return False
        return not self.is_protected(name, path)

    def could_match_name(self, name: str) -> bool:
        """Cheap early bail-out before the path is known: False only when surely unselected."""
        if self.include and any(p.matches(name, None, self.roots) for p in self.include):
            return True
        if any(not p.is_path and p.matches(name, None, self.roots) for p in self.exclude):
            return False
        if any(p.is_path for p in self.include):
            return True
        return bool(self.roots) and not self.is_protected(name, None)


def _under(path: str, directory: str) -> bool:
    return path == directory or path.startswith(directory.rstrip(os.sep) + os.sep)
