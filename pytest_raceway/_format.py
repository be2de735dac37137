"""ThreadSanitizer-style text of one race, as shown in a failing test and in the terminal."""

from __future__ import annotations

import os
import sysconfig
from collections.abc import Callable
from typing import Any

MAX_FRAMES = 8
# Frames of the test runner, the stdlib and installed packages are hidden from the text (the
# JSON keeps them): they are the same in every report and push the user's frames off the page.
_HIDDEN = tuple({os.path.realpath(p) + os.sep for key in ("stdlib", "platstdlib", "purelib",
                                                          "platlib")
                 if (p := sysconfig.get_paths().get(key))})


def _shown(file: Any) -> bool:
    return not (isinstance(file, str) and os.path.realpath(file).startswith(_HIDDEN))


def short_path(path: Any, rootdir: str | None) -> str:
    """``path`` relative to the rootdir when it lies below it."""
    text = str(path)
    if rootdir and text.startswith(rootdir.rstrip(os.sep) + os.sep):
        return text[len(rootdir.rstrip(os.sep)) + 1:]
    return text

_VERB = {"Read": "Read", "Write": "Write", "AtomicRead": "Atomic read",
         "AtomicWrite": "Atomic write", "AtomicRMW": "Atomic read-modify-write"}


def _task(access: dict[str, Any]) -> str:
    name = access.get("task_name") or access.get("task") or "?"
    kind = access.get("task_kind") or "task"
    return f'{kind} "{name}" ({access.get("task") or "?"})'


def _stack(stack: Any, indent: str, rootdir: str | None) -> list[str]:
    frames = [(list(f) + [None, None, None])[:3] for f in stack or []]
    shown = [f for f in frames if _shown(f[0])]
    lines = [f"{indent}#{n} {func or '?'} {short_path(file or '?', rootdir)}:{line or '?'}"
             for n, (file, line, func) in enumerate(shown[:MAX_FRAMES])]
    hidden = len(frames) - min(len(shown), MAX_FRAMES)
    if hidden > 0:
        lines.append(f"{indent}({hidden} more frame(s) of the stdlib, pytest or packages)")
    return lines


def _access(access: dict[str, Any], previous: bool, rootdir: str | None) -> list[str]:
    verb = _VERB.get(str(access.get("access_type")), str(access.get("access_type")))
    if previous:
        verb = "Previous " + verb[0].lower() + verb[1:]
    value = access.get("value")
    shown = f" (value {value})" if value is not None else ""
    head = (f"  {verb} by {_task(access)} at {short_path(access.get('location') or '?', rootdir)}"
            f" in {access.get('func') or '?'}{shown}:")
    return [head, *_stack(access.get("stack"), "    ", rootdir)]


def _creation(access: dict[str, Any], test_of: Callable[[Any], str | None],
              own_trace: Any, rootdir: str | None) -> list[str]:
    if not access.get("task_created_at"):
        what = ("the main thread" if access.get("task_kind") == "main" else
                "started outside any test (before instrumentation, or by C code)")
        return [f"  {_task(access)}: {what}"]
    created = str(access.get("task_created_at"))
    if not _shown(created.rsplit(":", 1)[0]):  # started inside asyncio/trio: name the caller
        user = [f for f in access.get("task_stack") or [] if _shown(f[0])]
        if user:
            created = f"{user[0][0]}:{user[0][1]}"
    lines = [f"  {_task(access)} created at {short_path(created, rootdir)}:"]
    lines += _stack(access.get("task_stack"), "    ", rootdir)
    origin = access.get("origin_trace")
    if origin is not None and origin != own_trace:
        earlier = test_of(origin)
        lines.append(f"    leaked from an earlier test: {earlier or 'trace ' + str(origin)}"
                     " (still running when this test ran)")
    return lines


def race_text(
    race: dict[str, Any],
    anchor: str,
    report: str | None,
    test_of: Callable[[Any], str | None] = lambda trace: None,
    rootdir: str | None = None,
) -> str:
    """The report block of one race (a ``Race.to_dict()``); ``test_of`` names traces' tests."""
    first, second = race["first"], race["second"]
    variable = race.get("variable") or race.get("loc") or "?"
    lines = ["=" * 18,
             f"WARNING: RACE on {variable} ({race.get('severity') or 'race'})"]
    lines += _access(second, False, rootdir)
    lines.append("")
    lines += _access(first, True, rootdir)
    stale = race.get("stale_read")
    if stale:
        lines.append("")
        where = short_path(stale.get("location") or "?", rootdir)
        lines += [f"  Stale read it overwrote, by {_task(stale)} at {where}:",
                  *_stack(stale.get("stack"), "    ", rootdir)]
    lines.append("")
    seen = set()
    for access in (second, first):
        if access.get("task") in seen:
            continue
        seen.add(access.get("task"))
        lines += _creation(access, test_of, race.get("trace_id"), rootdir)
    lines.append("")
    if race.get("explanation"):
        lines.append(f"  {race['explanation']}")
    target = f"{report}#{anchor}" if report else f"#{anchor}"
    lines.append(f"  Report: {target}")
    lines.append("=" * 18)
    return "\n".join(lines)


def one_line(race: dict[str, Any], rootdir: str | None = None) -> str:
    """``RACE on variable [severity] site <-> site  #anchor`` for summaries and JUnit."""
    first, second = race["first"], race["second"]
    return (f"RACE on {race.get('variable') or race.get('loc')} [{race.get('severity')}] "
            f"{short_path(first.get('location'), rootdir)} <-> "
            f"{short_path(second.get('location'), rootdir)}  #{race.get('anchor')}")
