"""Access sites: where in the code an access happens, registered once and interned."""

from __future__ import annotations

import itertools
from typing import Any

__all__ = ["ALL", "ATTR", "GLOBAL", "ITEM", "Site", "register_site"]

ATTR = "attr"
ITEM = "item"
GLOBAL = "global"
_SITE_KINDS = (ATTR, ITEM, GLOBAL)


class _All:
    __slots__ = ()

    def __repr__(self) -> str:
        return "ALL"


#: The key meaning "the whole container" (len, iteration, keys(), slices, list.append, ...).
ALL: Any = _All()


class Site:
    """A static access site, registered once (e.g. by the rewriter at import time).

    ``name`` is a display template for ``data["variable"]``: ``"{obj}.balance"``,
    ``"{obj}[{key}]"`` (``obj`` = type or module name, ``key`` = the key's repr), a literal
    such as ``"self.balance"``, or ``""`` for the default (``"Account.balance"``).
    ``kind`` says how ``access(obj, key, ...)`` reads ``key``: attribute name or item key.
    """

    __slots__ = ("id", "file", "line", "func", "name", "kind", "location", "__weakref__")

    def __init__(self, id: int, file: str, line: int, func: str, name: str, kind: str) -> None:
        self.id = id
        self.file = file
        self.line = line
        self.func = func
        self.name = name
        self.kind = kind
        self.location = f"{file}:{line}"

    def __repr__(self) -> str:
        return f"Site({self.location}, {self.func}, {self.kind}, {self.name!r})"


_sites: dict[tuple[str, int, str, str, str], Site] = {}
_site_ids = itertools.count(1)


def register_site(file: str, line: int, func: str, name: str = "", kind: str = ATTR) -> Site:
    """Return the (interned) :class:`Site` for an access site. Cheap enough at import time."""
    if kind not in _SITE_KINDS:
        raise ValueError(f"site kind must be one of {', '.join(_SITE_KINDS)}, got {kind!r}")
    if not isinstance(line, int) or line < 0:
        raise ValueError(f"site line must be a non-negative int, got {line!r}")
    key = (str(file), line, str(func), str(name), kind)
    site = _sites.get(key)
    if site is None:
        site = _sites.setdefault(key, Site(next(_site_ids), key[0], line, key[2], key[3], kind))
    return site


