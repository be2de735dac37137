"""Where an event comes from: bounded stacks and ``file:line`` call sites, cheaply.

The recorder's hot paths avoid what CPython makes dear: frame objects of the recorder's own
frames (callers pass how many frames to jump with ``sys._getframe(n)``), line-table walks
(``f_lasti`` keys the caches) and hashing code objects (keys use ``id(code)``).
"""

from __future__ import annotations

import os
import sys
import threading
from typing import Any

__all__ = ["caller_location", "capture_stack", "site_stack", "spawn_stack"]

#: frames kept per stack (``configure(stack_depth=...)``)
depth = 16

_SDK_DIR = os.path.dirname(os.path.abspath(__file__)) + os.sep
_SKIP_FOR_LOCATION: tuple[str, ...] = (_SDK_DIR,)


def _stdlib_dirs() -> tuple[str, ...]:
    # Paths only: importing asyncio / concurrent.futures here would slow `import raceway_sdk`.
    lib = os.path.dirname(os.path.abspath(threading.__file__))
    return (
        os.path.abspath(threading.__file__),
        os.path.join(lib, "queue.py"),
        os.path.join(lib, "concurrent", "futures") + os.sep,
        os.path.join(lib, "asyncio") + os.sep,
    )


_SKIP_FOR_LOCATION = _SKIP_FOR_LOCATION + _stdlib_dirs()
_HAS_QUALNAME = sys.version_info >= (3, 11)


#: A captured stack: ``((file, line, func), ...)``, innermost first. Tuples of strings and ints,
#: which the garbage collector stops tracking after one pass, and so do the event payloads
#: built around them afterwards (a run keeps many thousands of those). The wire form is the
#: same JSON array of arrays; parsed events carry lists.
Stack = tuple[tuple[str, int, str], ...]


def capture_stack(limit: int | None = None) -> Stack:
    """The caller's stack, innermost first, raceway frames excluded."""
    return _frames(sys._getframe(1), depth if limit is None else limit)


def _frames(f: Any, n: int) -> Stack:
    """Up to ``n`` frames from ``f`` outwards as ``(file, line, func)``, raceway's skipped."""
    out: list[tuple[str, int, str]] = []
    sdk = _SDK_DIR
    while f is not None and len(out) < n:
        code = f.f_code
        fn = code.co_filename
        if not fn.startswith(sdk):
            out.append((fn, f.f_lineno, code.co_qualname if _HAS_QUALNAME else code.co_name))
        f = f.f_back
    return tuple(out)


# Libraries that spawn tasks on the user's behalf: a creation site inside them says nothing.
_SPAWNERS = frozenset(("asyncio", "anyio", "trio", "threading", "concurrent", "raceway_sdk"))


def spawn_stack() -> Stack:
    """Where a task was created: the stack from the first frame outside the spawning libraries
    (``asyncio/base_events.py`` is never the answer to "where was this task started?")."""
    first: Any = sys._getframe(2)
    f = first
    while f is not None and f.f_globals.get("__name__", "").partition(".")[0] in _SPAWNERS:
        f = f.f_back
    return _frames(first if f is None else f, depth)


def site_stack(state: Any, site: Any, up: int = 0) -> Stack:
    """The bounded stack of an access, captured once per (task, site, calling frame).

    A full capture walks up to ``stack_depth`` frames (~2-3 us); most emitted accesses repeat a
    (task, site) pair already seen, so the stack is reused when the frame that called the
    access site's function is the same code at the same instruction.
    ``up``: how many frames above the caller are surely raceway's own (a lower bound; frames
    of raceway beyond it are still skipped). Jumping there with ``sys._getframe(n)`` does not
    create frame objects for the recorder's frames in between (3.11+ makes them lazily).
    """
    try:
        f: Any = sys._getframe(up + 1)
    except ValueError:  # pragma: no cover - a lower bound never exceeds the stack
        f = sys._getframe(1)
    sdk = _SDK_DIR
    while f is not None and f.f_code.co_filename.startswith(sdk):
        f = f.f_back
    if f is None:
        return ()
    caller = f.f_back
    cached = state.stacks.get(site)
    # f_lasti (an int slot) rather than f_lineno (a line-table walk): same code and same
    # instruction imply the same line; a different instruction on the same line only recaptures
    if caller is not None:
        ccode = caller.f_code
        lasti = caller.f_lasti
        if (
            cached is not None
            and cached[0] is f.f_code
            and cached[1] is ccode
            and cached[2] == lasti
        ):
            return cached[3]
        stack = capture_stack()
        state.stacks[site] = (f.f_code, ccode, lasti, stack)
        return stack
    if cached is not None and cached[0] is f.f_code and cached[1] is None:
        return cached[3]
    stack = capture_stack()
    state.stacks[site] = (f.f_code, None, -1, stack)
    return stack


#: (id(code), instruction) -> (code, "file:line"): sync events of one call site share one
#: string. Keyed by id(): hashing a code object hashes its bytecode and constants (~4k
#: instructions); the value holds the code object, so its id cannot be reused meanwhile.
_locations: dict[tuple[int, int], tuple[Any, str]] = {}
_LOCATIONS_MAX = 1 << 16


def caller_location(up: int = 0) -> str:
    """``file:line`` of the first frame outside raceway and the patched stdlib modules.

    ``up``: frames above the caller known to be raceway's or the patched modules' (a lower
    bound), jumped over without creating their frame objects.
    """
    try:
        f: Any = sys._getframe(up + 1)
    except ValueError:  # pragma: no cover - a lower bound never exceeds the stack
        f = sys._getframe(1)
    skip = _SKIP_FOR_LOCATION
    while f is not None:
        code = f.f_code
        key = (id(code), f.f_lasti)  # f_lasti: an int slot; f_lineno walks the line table
        hit = _locations.get(key)
        if hit is not None and hit[0] is code:
            return hit[1]  # only frames outside ``skip`` are cached: no prefix test needed
        fn = code.co_filename
        if not fn.startswith(skip):
            if len(_locations) >= _LOCATIONS_MAX:
                _locations.clear()  # bounded: code objects of many generated functions
            loc = f"{fn}:{f.f_lineno}"
            _locations[key] = (code, loc)
            return loc
        f = f.f_back
    return "<unknown>:0"


