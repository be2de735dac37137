"""The race baseline: known races are reported but do not fail; new ones do (the CI gate).

A race is identified by a *stable key* that survives unrelated edits: a hash of

* the variable name with object addresses and ids removed (``0x7f..``, ``@1234``, ``#12``),
* the unordered pair of access sites, each as (file relative to the rootdir, function name,
  read/write) -- **without line numbers**, so code moving up or down a file keeps the key.

The key does not include the test: the same racing pair of functions reached from another test is
the same bug. Two races in one function on the same variable with the same access kinds share a
key (reasonable: they are one fix). Renaming the function or moving it to another file makes the
race new.

File format (JSON, sorted, reviewable in a diff)::

    {"format": "raceway-baseline", "version": 1,
     "races": [{"key": "...", "variable": "...", "severity": "...",
                "sites": ["pkg/mod.py:func:write", ...], "tests": ["tests/x.py::test_a"]}]}
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from pathlib import Path
from typing import Any

import pytest

_ADDRESS = re.compile(r"0x[0-9a-fA-F]+|(?<=[@#])\d+|(?<=id=)\d+")


def _relpath(file: str, rootdir: str) -> str:
    try:
        rel = os.path.relpath(file, rootdir)
    except ValueError:  # other drive on Windows
        return file.replace("\\", "/")
    return (file if rel.startswith("..") else rel).replace("\\", "/")


def _site(access: dict[str, Any], rootdir: str) -> str:
    location = str(access.get("location") or "?")
    file = location.rsplit(":", 1)[0] if ":" in location else location
    kind = "read" if str(access.get("access_type", "")).endswith("Read") else "write"
    return f"{_relpath(file, rootdir)}:{access.get('func') or '?'}:{kind}"


def race_sites(race: dict[str, Any], rootdir: str) -> list[str]:
    return sorted(_site(a, rootdir) for a in (race["first"], race["second"]))


def race_key(race: dict[str, Any], rootdir: str) -> str:
    """The stable key of a race (see the module docstring)."""
    variable = _ADDRESS.sub("*", str(race.get("variable") or race.get("loc") or ""))
    text = "\n".join([variable, *race_sites(race, rootdir)])
    return hashlib.sha256(text.encode()).hexdigest()[:20]


def load(path: str, source: str) -> dict[str, dict[str, Any]]:
    """Read a baseline file: key -> entry. Errors name the file and the option it came from."""
    file = Path(path)
    try:
        doc = json.loads(file.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise pytest.UsageError(
            f"raceway: {source}: baseline {path} does not exist "
            "(create it with --raceway-baseline-update)") from None
    except (OSError, ValueError) as exc:
        raise pytest.UsageError(f"raceway: {source}: cannot read baseline {path}: {exc}") from None
    if not isinstance(doc, dict) or doc.get("format") != "raceway-baseline":
        raise pytest.UsageError(f"raceway: {source}: {path} is not a raceway baseline file")
    entries = doc.get("races")
    if not isinstance(entries, list) or not all(isinstance(e, dict) and "key" in e for e in entries):
        raise pytest.UsageError(f"raceway: {source}: {path}: 'races' must be a list of entries with a key")
    return {str(e["key"]): e for e in entries}


def updated(
    old: dict[str, dict[str, Any]], races: list[dict[str, Any]], tests_run: set[str]
) -> list[dict[str, Any]]:
    """The new baseline: this run's races, plus old entries none of whose tests ran this time."""
    entries: dict[str, dict[str, Any]] = {}
    for key, entry in old.items():
        if not set(entry.get("tests") or []) & tests_run:
            entries[key] = entry
    for race in races:
        if race.get("status") == "suppressed":
            continue
        entry = entries.setdefault(race["baseline_key"], {
            "key": race["baseline_key"],
            "variable": race.get("variable"),
            "severity": race.get("severity"),
            "sites": race.get("sites") or [],
            "tests": [],
        })
        if race.get("test") and race["test"] not in entry["tests"]:
            entry["tests"].append(race["test"])
    for entry in entries.values():
        entry["tests"] = sorted(entry.get("tests") or [])
    return sorted(entries.values(), key=lambda e: (str(e.get("variable")), e["key"]))


def save(path: str, entries: list[dict[str, Any]]) -> None:
    doc = {"format": "raceway-baseline", "version": 1, "races": entries}
    file = Path(path)
    file.parent.mkdir(parents=True, exist_ok=True)
    tmp = file.with_name(file.name + ".tmp")
    tmp.write_text(json.dumps(doc, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    os.replace(tmp, file)
