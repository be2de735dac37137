"""Raceway's settings: one resolver for CLI > ``RACEWAY_*`` env > ``raceway_*`` ini > default.

Imported by the entry point, so it uses the standard library only. Every bad value raises
``pytest.UsageError`` naming where it came from (the flag, the environment variable or the ini
key), the way pytest-timeout reports its settings.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

FAIL_ON = ("race", "write-write", "none")
TRUE = ("1", "true", "yes", "on")
FALSE = ("0", "false", "no", "off", "")

# Modules that are never rewritten, whatever --raceway-include says: the detector itself.
ALWAYS_EXCLUDED = ("raceway_sdk", "raceway_server", "pytest_raceway", "report_templates")


@dataclasses.dataclass
class Settings:
    """The resolved settings of one run (JSON-able through :meth:`to_dict`)."""

    enabled: bool = False
    include: list[str] = dataclasses.field(default_factory=list)
    exclude: list[str] = dataclasses.field(default_factory=list)
    report: str | None = None
    json: str | None = None
    server: str | None = None
    fail_on: str = "race"
    baseline: str | None = None
    baseline_update: bool = False
    suppressions: str | None = None
    ignore: list[str] = dataclasses.field(default_factory=list)
    rootdir: str = "."
    sources: dict[str, str] = dataclasses.field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def header(self) -> str:
        """The one-line summary printed by ``pytest_report_header`` (enough to rerun the run)."""
        parts = [f"mode={'remote ' + self.server if self.server else 'embedded'}",
                 f"fail-on={self.fail_on}"]
        parts.append("include=" + (",".join(self.include) if self.include else "<rootdir>"))
        if self.exclude:
            parts.append("exclude=" + ",".join(self.exclude))
        for name in ("baseline", "suppressions", "json", "report"):
            value = getattr(self, name)
            if value:
                parts.append(f"{name}={value}")
        if self.baseline_update:
            parts.append("baseline-update")
        return "raceway: " + ", ".join(parts)


# name -> (cli dest, env var, ini key, kind)
_FIELDS: dict[str, tuple[str, str, str, str]] = {
    "enabled": ("raceway", "RACEWAY", "raceway", "bool"),
    "include": ("raceway_include", "RACEWAY_INCLUDE", "raceway_include", "list"),
    "exclude": ("raceway_exclude", "RACEWAY_EXCLUDE", "raceway_exclude", "list"),
    "report": ("raceway_report", "RACEWAY_REPORT", "raceway_report", "path"),
    "json": ("raceway_json", "RACEWAY_JSON", "raceway_json", "path"),
    "server": ("raceway_server", "RACEWAY_SERVER", "raceway_server", "url"),
    "fail_on": ("raceway_fail_on", "RACEWAY_FAIL_ON", "raceway_fail_on", "fail_on"),
    "baseline": ("raceway_baseline", "RACEWAY_BASELINE", "raceway_baseline", "path"),
    "baseline_update": ("raceway_baseline_update", "RACEWAY_BASELINE_UPDATE",
                        "raceway_baseline_update", "bool"),
    "suppressions": ("raceway_suppressions", "RACEWAY_SUPPRESSIONS", "raceway_suppressions",
                     "existing_path"),
    "ignore": ("raceway_ignore", "RACEWAY_IGNORE", "raceway_ignore", "list"),
}

INI_HELP: dict[str, tuple[str, str]] = {
    "raceway": ("bool", "enable race detection (like --raceway)"),
    "raceway_include": ("linelist", "module patterns to instrument (default: modules under rootdir)"),
    "raceway_exclude": ("linelist", "module patterns never to instrument"),
    "raceway_report": ("string", "path of the race report"),
    "raceway_json": ("string", "path of the session JSON"),
    "raceway_server": ("string", "URL of a remote raceway server"),
    "raceway_fail_on": ("string", "race | write-write | none"),
    "raceway_baseline": ("string", "baseline file of known races"),
    "raceway_baseline_update": ("bool", "rewrite the baseline with this run's races"),
    "raceway_suppressions": ("string", "ThreadSanitizer-format suppressions file"),
    "raceway_ignore": ("linelist", "variable/location globs whose races are ignored"),
}


def cli_flag(dest: str) -> str:
    return "--" + dest.replace("_", "-")


def _convert(kind: str, raw: Any, source: str, base: Path) -> Any:
    """Validate one raw value; ``source`` names its origin for the error message."""
    if kind == "bool":
        if isinstance(raw, bool):
            return raw
        text = str(raw).strip().lower()
        if text in TRUE:
            return True
        if text in FALSE:
            return False
        raise pytest.UsageError(f"raceway: {source}: expected a boolean (1/0, true/false), got {raw!r}")
    if kind == "list":
        items = raw if isinstance(raw, list) else [raw]
        out: list[str] = []
        for item in items:
            out.extend(p.strip() for p in str(item).split(",") if p.strip())
        return out
    if kind == "fail_on":
        text = str(raw).strip().lower()
        if text not in FAIL_ON:
            raise pytest.UsageError(
                f"raceway: {source}: expected one of {', '.join(FAIL_ON)}, got {raw!r}")
        return text
    if kind == "url":
        text = str(raw).strip()
        if not text.startswith(("http://", "https://")) or len(text) < 10:
            raise pytest.UsageError(f"raceway: {source}: expected an http(s) URL, got {raw!r}")
        return text.rstrip("/")
    text = str(raw).strip()
    if not text:
        raise pytest.UsageError(f"raceway: {source}: empty path")
    path = Path(text).expanduser()
    if not path.is_absolute():
        path = base / path
    if kind == "existing_path" and not path.is_file():
        raise pytest.UsageError(f"raceway: {source}: no such file: {path}")
    return str(path)


def resolve(
    getoption: Callable[[str], Any],
    getini: Callable[[str], Any],
    environ: os._Environ[str] | dict[str, str],
    rootdir: Path,
    inidir: Path,
    invocation_dir: Path,
) -> Settings:
    """Resolve every setting by precedence; raise ``pytest.UsageError`` for a bad value."""
    settings = Settings(rootdir=str(rootdir))
    for name, (dest, env, ini, kind) in _FIELDS.items():
        value: Any = getoption(dest)
        if value is not None and value != []:
            source = f"command-line option {cli_flag(dest)}"
            if dest == "raceway":
                source = "command-line option --raceway/--no-raceway"
            base = invocation_dir
        elif env in environ:
            value, source, base = environ[env], f"environment variable {env}", invocation_dir
        else:
            value = getini(ini)
            if value in (None, "", []) or value is False:  # unset (a bool ini reads False)
                continue
            source, base = f"ini option {ini}", inidir
        setattr(settings, name, _convert(kind, value, source, base))
        settings.sources[name] = source
    if settings.baseline_update and not settings.baseline:
        raise pytest.UsageError(
            f"raceway: {settings.sources['baseline_update']} needs a baseline path "
            "(--raceway-baseline=PATH)")
    return settings


MARKER_KWARGS = ("enabled", "fail_on", "ignore")


def marker_overrides(marks: list[Any], nodeid: str) -> dict[str, Any]:
    """Validate ``@pytest.mark.raceway(...)`` / ``no_raceway`` marks of one test, closest first."""
    out: dict[str, Any] = {}
    for mark in reversed(marks):  # farthest first, so the closest mark wins
        if mark.name == "no_raceway":
            if mark.args or mark.kwargs:
                raise pytest.UsageError(f"raceway: {nodeid}: the no_raceway marker takes no arguments")
            out["enabled"] = False
            continue
        if mark.args:
            raise pytest.UsageError(
                f"raceway: {nodeid}: @pytest.mark.raceway takes keyword arguments only "
                f"({', '.join(MARKER_KWARGS)}), got positional {mark.args!r}")
        for key, value in mark.kwargs.items():
            where = f"{nodeid}: @pytest.mark.raceway({key}=...)"
            if key == "enabled":
                if not isinstance(value, bool):
                    raise pytest.UsageError(f"raceway: {where}: expected True or False, got {value!r}")
                out["enabled"] = value
            elif key == "fail_on":
                out["fail_on"] = _convert("fail_on", value, where, Path("."))
            elif key == "ignore":
                if isinstance(value, str):
                    value = [value]
                if not isinstance(value, (list, tuple)) or not all(isinstance(v, str) for v in value):
                    raise pytest.UsageError(f"raceway: {where}: expected a list of glob strings")
                out["ignore"] = list(out.get("ignore", [])) + list(value)
            else:
                raise pytest.UsageError(
                    f"raceway: {nodeid}: unknown @pytest.mark.raceway argument {key!r} "
                    f"(expected {', '.join(MARKER_KWARGS)})")
    return out
