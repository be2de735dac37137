"""ThreadSanitizer-format suppressions for Python races.

One suppression per line, ``type:pattern``; ``#`` starts a comment. Types:

* ``race:PATTERN`` -- matches when PATTERN matches, in *any* frame of *either* access's stack, the
  function name or the file path, or matches the race's variable (TSan also matches global
  variable names);
* ``race_top:PATTERN`` -- the same, but only the innermost frame of each access (its function
  name, file path or ``file:line``);
* ``thread:PATTERN`` -- matches the name or the creation site of either racing task.

Patterns follow TSan: ``*`` matches any run of characters, a pattern matches anywhere in the text
(an implicit ``*`` on both sides) unless anchored with ``^`` (start) or ``$`` (end). The other TSan
types (``mutex``, ``signal``, ``deadlock``, ``called_from_lib``) describe C-level events Python
code does not have: they are rejected with the line number rather than ignored.
"""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path
from typing import Any

import pytest

KINDS = ("race", "race_top", "thread")
_UNSUPPORTED = ("mutex", "signal", "deadlock", "called_from_lib")


@dataclasses.dataclass
class Suppression:
    kind: str
    pattern: str
    line: int
    regex: re.Pattern[str]
    hits: int = 0

    def __str__(self) -> str:
        return f"{self.kind}:{self.pattern}"


def compile_pattern(pattern: str) -> re.Pattern[str]:
    """TSan's matcher: ``*`` wildcard, implicit ``*...*``, ``^``/``$`` anchors."""
    start = pattern.startswith("^")
    end = pattern.endswith("$") and len(pattern) > (1 if start else 0)
    body = pattern[1 if start else 0: len(pattern) - 1 if end else len(pattern)]
    regex = ".*".join(re.escape(part) for part in body.split("*"))
    return re.compile(("^" if start else "") + regex + ("$" if end else ""))


def parse(text: str, source: str) -> list[Suppression]:
    """Parse a suppressions file; a bad line raises ``pytest.UsageError`` with its number."""
    out: list[Suppression] = []
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        kind, sep, pattern = line.partition(":")
        kind, pattern = kind.strip(), pattern.strip()
        where = f"raceway: {source}:{number}"
        if not sep or not pattern:
            raise pytest.UsageError(f"{where}: expected 'type:pattern', got {raw.strip()!r}")
        if kind in _UNSUPPORTED:
            raise pytest.UsageError(
                f"{where}: suppression type {kind!r} has no meaning for Python races "
                f"(supported: {', '.join(KINDS)})")
        if kind not in KINDS:
            raise pytest.UsageError(
                f"{where}: unknown suppression type {kind!r} (supported: {', '.join(KINDS)})")
        out.append(Suppression(kind, pattern, number, compile_pattern(pattern)))
    return out


def load(path: str) -> list[Suppression]:
    return parse(Path(path).read_text(encoding="utf-8"), path)


def _frame_texts(frame: Any) -> list[str]:
    file, line, func = (list(frame) + [None, None, None])[:3]
    texts = [str(func)] if func else []
    if file:
        texts += [str(file), f"{file}:{line}"]
    return texts


def _candidates(race: dict[str, Any], kind: str) -> list[str]:
    accesses = [a for a in (race.get("first"), race.get("second")) if a]
    texts: list[str] = []
    for access in accesses:
        if kind == "thread":
            texts += [str(access.get("task_name") or ""), str(access.get("task_created_at") or "")]
            continue
        stack = access.get("stack") or []
        if kind == "race_top":
            stack = stack[:1]
            texts += [str(access.get("func") or ""), str(access.get("location") or "")]
        for frame in stack:
            texts += _frame_texts(frame)
    if kind == "race":
        texts += [str(race.get("variable") or ""), str(race.get("loc") or "")]
    return [t for t in texts if t]


def match(suppressions: list[Suppression], race: dict[str, Any]) -> Suppression | None:
    """The first suppression matching ``race`` (a ``Race.to_dict()``), counting the hit."""
    cache: dict[str, list[str]] = {}
    for supp in suppressions:
        texts = cache.get(supp.kind)
        if texts is None:
            texts = cache[supp.kind] = _candidates(race, supp.kind)
        if any(supp.regex.search(t) for t in texts):
            supp.hits += 1
            return supp
    return None
