"""``track(obj, name)``: a wrapt ObjectProxy that records the accesses made through it.

For shared objects handed to code the rewriter does not see (uninstrumented libraries, C
extensions, callbacks): every attribute load/store/delete, item load/store/delete, ``in``,
``len`` and iteration made *through the proxy* is recorded against the wrapped object's
identity, with the same container semantics as rewritten code (:mod:`.hooks`: ``d.get(k)``
reads ``(d, k)``, ``lst.append(x)`` is an atomic operation on the whole list, ...). Reading a
method is not an access; calling a container's mutating method is. The proxy is the most
expensive way to record (a Python-level hop per access): prefer the import hook where possible.
"""

from __future__ import annotations

import copy
import functools
import sys
import types
from typing import Any

import wrapt

from raceway_sdk import _recorder as rec
from raceway_sdk.instrument import hooks

__all__ = ["TrackedProxy"]

_HAS_QUALNAME = sys.version_info >= (3, 11)
_BM = type(len)
_sites: dict[tuple[Any, int, str], tuple[rec.Site, list[Any]]] = {}


def _site(kind: str) -> tuple[rec.Site, list[Any]]:
    """The site (and its hook cache) of the user code that touched the proxy."""
    f: Any = sys._getframe(2)
    code = f.f_code
    key = (code, f.f_lineno, kind)
    got = _sites.get(key)
    if got is None:
        func = code.co_qualname if _HAS_QUALNAME else code.co_name
        site = rec.register_site(code.co_filename, f.f_lineno, func, "", kind)
        got = _sites.setdefault(key, (site, hooks.new_cache()))
    return got


def _is_container(obj: Any) -> bool:
    return hooks._table(type(obj)) is not None


class TrackedProxy(wrapt.ObjectProxy):  # type: ignore[misc]
    """Forwards everything to the wrapped object and records the shared-state accesses."""

    def __getattr__(self, name: str) -> Any:
        # Reached for every attribute the proxy type itself does not define.
        if name.startswith("_self_"):
            raise AttributeError(name)
        target = self.__wrapped__
        value = getattr(target, name)
        tv = type(value)
        if tv is _BM and getattr(value, "__self__", None) is target:
            if name in hooks.CALL_NAMES:
                site, _ = _site(rec.ITEM)
                return functools.partial(hooks.call, value, name, site)
            return value
        if tv is types.MethodType and value.__self__ is target:
            return value  # reading a method is not a shared-state access
        site, _ = _site(rec.ATTR)
        rec.access(target, name, "Read", site, value)
        return value

    def __setattr__(self, name: str, value: Any) -> None:
        if name.startswith("_self_") or name in ("__wrapped__", "__class__"):
            wrapt.ObjectProxy.__setattr__(self, name, value)
            return
        site, _ = _site(rec.ATTR)
        rec.access(self.__wrapped__, name, "Write", site, value)
        setattr(self.__wrapped__, name, value)

    def __delattr__(self, name: str) -> None:
        if name.startswith("_self_"):
            wrapt.ObjectProxy.__delattr__(self, name)
            return
        site, _ = _site(rec.ATTR)
        rec.access(self.__wrapped__, name, "Write", site)
        delattr(self.__wrapped__, name)

    def __getitem__(self, key: Any) -> Any:
        site, cache = _site(rec.ITEM)
        return hooks.gi(self.__wrapped__, key, site, cache)

    def __setitem__(self, key: Any, value: Any) -> None:
        site, cache = _site(rec.ITEM)
        hooks.si(value, self.__wrapped__, key, site, cache)

    def __delitem__(self, key: Any) -> None:
        site, _ = _site(rec.ITEM)
        hooks.di(self.__wrapped__, key, site)

    def __contains__(self, key: Any) -> bool:
        site, cache = _site(rec.ITEM)
        target = self.__wrapped__
        if _is_container(target):
            return hooks.cn(key, target, site, cache)
        rec.access(target, rec.ALL, "Read", site)
        return key in target

    def __len__(self) -> int:
        target = self.__wrapped__
        site, _ = _site(rec.ITEM)
        rec.access(target, rec.ALL, "Read", site)
        return len(target)

    def __iter__(self) -> Any:
        target = self.__wrapped__
        site, _ = _site(rec.ITEM)
        rec.access(target, rec.ALL, "Read", site)
        return iter(target)

    def __repr__(self) -> str:
        return repr(self.__wrapped__)

    def __copy__(self) -> Any:
        # copying reads the whole object; the copy is a plain (untracked) object
        site, _ = _site(rec.ITEM)
        rec.access(self.__wrapped__, rec.ALL, "Read", site)
        return copy.copy(self.__wrapped__)

    def __deepcopy__(self, memo: dict[int, Any]) -> Any:
        site, _ = _site(rec.ITEM)
        rec.access(self.__wrapped__, rec.ALL, "Read", site)
        return copy.deepcopy(self.__wrapped__, memo)

    def __reduce_ex__(self, protocol: Any) -> Any:
        # pickling / copying a tracked object yields the plain object
        return self.__wrapped__.__reduce_ex__(protocol)
