"""Generate the parts of the documentation that must match the code.

* ``docs/http-api.md`` -- entirely, from the server's OpenAPI document
  (``raceway_server.api.openapi.openapi_document``);
* the settings table between ``<!-- BEGIN generated: settings -->`` / ``<!-- END ... -->``
  markers in ``docs/configuration.md`` and ``README.md`` -- from the plugin's real pytest
  options (``pytest_raceway.plugin.pytest_addoption`` on pytest's own ``Parser``) and its
  precedence table (``pytest_raceway._settings``).

``python docs/generate.py`` rewrites the files; ``--check`` only compares and exits 1 (naming
the stale files) when one is out of date. ``tests/test_docs_validation.py`` runs the check.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

DOCS = Path(__file__).resolve().parent
ROOT = DOCS.parent
BEGIN = "<!-- BEGIN generated: settings (python docs/generate.py) -->"
END = "<!-- END generated: settings -->"


# --------------------------------------------------------------------------- settings table


def _plugin_options() -> dict[str, list[Any]]:
    """pytest ``Option`` objects of the plugin, by argparse ``dest``, from a real ``Parser``."""
    from _pytest.config.argparsing import Parser

    from pytest_raceway import plugin

    try:  # pytest >= 8 marks direct construction private; the flag says we know
        parser = Parser(processopt=lambda opt: None, _ispytest=True)
    except TypeError:  # pragma: no cover - older pytest
        parser = Parser(processopt=lambda opt: None)
    plugin.pytest_addoption(parser)
    by_dest: dict[str, list[Any]] = {}
    for option in parser.getgroup("raceway").options:
        by_dest.setdefault(option.dest, []).append(option)
    return by_dest


def settings_rows() -> list[dict[str, str]]:
    """One row per setting: CLI flag(s), environment variable, ini key, kind, meaning."""
    from pytest_raceway import _settings

    options = _plugin_options()
    rows = []
    for name, (dest, env, ini, kind) in _settings._FIELDS.items():
        flags = [n for opt in options.get(dest, []) for n in opt.names()]
        helps = [opt.attrs().get("help", "") for opt in options.get(dest, [])]
        ini_kind, ini_help = _settings.INI_HELP[ini]
        text = (helps[0] if helps else ini_help).split(" [env ")[0]
        if kind == "fail_on":
            text += f" (one of {', '.join(_settings.FAIL_ON)})"
        rows.append({"setting": name, "cli": ", ".join(f"`{f}`" for f in flags) or "--",
                     "env": f"`{env}`", "ini": f"`{ini}` ({ini_kind})", "meaning": text})
    return rows


def settings_table() -> str:
    lines = ["| Setting | Command line | Environment | ini key (type) | Meaning |",
             "|---|---|---|---|---|"]
    for r in settings_rows():
        lines.append(f"| {r['setting']} | {r['cli']} | {r['env']} | {r['ini']} | {r['meaning']} |")
    return "\n".join(lines)


def splice(text: str, body: str, where: str) -> str:
    """Replace the marked block of ``text`` with ``body``; a missing marker is an error."""
    if BEGIN not in text or END not in text:
        raise SystemExit(f"{where}: missing the generated-block markers {BEGIN!r} / {END!r}")
    head, rest = text.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    return f"{head}{BEGIN}\n{body}\n{END}{tail}"


# --------------------------------------------------------------------------- HTTP API page


def _type(schema: dict[str, Any]) -> str:
    """A one-line type; an object names its fields (``object {a, b?}``), not theirs."""
    if not schema:
        return "any"
    if "enum" in schema:
        return " \\| ".join(f"`{v}`" for v in schema["enum"])
    kind = schema.get("type", "object")
    if kind == "array":
        return f"array of {_type(schema.get('items', {}))}"
    text = kind + (f" ({schema['format']})" if "format" in schema else "")
    props = schema.get("properties") or {}
    if kind == "object" and props:
        required = set(schema.get("required", []))
        text += " {" + ", ".join(k if k in required else f"{k}?" for k in props) + "}"
    return text + (" or null" if schema.get("nullable") else "")


def _fields(schema: dict[str, Any]) -> str:
    props = schema.get("properties") or {}
    if not props:
        return _type(schema)
    required = set(schema.get("required", []))
    return ", ".join(f"`{k}`{'' if k in required else '?'}: {_type(v)}" for k, v in props.items())


def _data_schema(response: dict[str, Any]) -> dict[str, Any] | None:
    content = response.get("content") or {}
    for media, body in content.items():
        schema = body.get("schema", {})
        props = schema.get("properties", {})
        if {"success", "data", "error"} <= set(props):
            return props["data"]
        if media == "application/json":
            return schema
    return None


def http_api() -> str:
    from raceway_server.api.openapi import openapi_document

    doc = openapi_document()
    info = doc["info"]
    out = [
        "# HTTP API",
        "",
        "<!-- Generated by `python docs/generate.py` from the server's OpenAPI document",
        "     (raceway_server/api/openapi.py). Do not edit: tests/test_docs_validation.py",
        "     fails when this page is out of date. -->",
        "",
        f"{info['title']} {info['version']}: {info['description']} A running server serves "
        "the same document at `GET /openapi.json`. Behaviour, limits and storage are described "
        "in [server.md](server.md); the event format in [protocol.md](protocol.md).",
        "",
        "## Authentication",
        "",
        "A server started without API keys or a UI password needs no credentials. With keys "
        "configured, requests carry one of the following (the routes that stay open are "
        "listed in [server.md](server.md#security) and [security.md](security.md)):",
        "",
    ]
    for name, scheme in doc.get("components", {}).get("securitySchemes", {}).items():
        if scheme["type"] == "http":
            out.append(f"* `{name}`: `Authorization: {scheme['scheme'].title()} <key>`")
        else:
            out.append(f"* `{name}`: {scheme['in']} `{scheme['name']}`")
    out += [""]
    by_tag: dict[str, list[tuple[str, str, dict[str, Any]]]] = {}
    for path, ops in doc["paths"].items():
        for method, op in ops.items():
            by_tag.setdefault((op.get("tags") or ["other"])[0], []).append((method, path, op))
    out += ["## Routes", "", "| Method | Path | Summary |", "|---|---|---|"]
    for ops in by_tag.values():
        for method, path, op in ops:
            anchor = re.sub(r"[^a-z0-9_ -]", "", f"{method} {path}".lower()).replace(" ", "-")
            out.append(f"| {method.upper()} | [`{path}`](#{anchor}) | {op.get('summary', '')} |")
    for tag, ops in by_tag.items():
        out += ["", f"## {tag}"]
        for method, path, op in ops:
            out += ["", f"### {method.upper()} {path}", "", op.get("summary", "") + "."]
            if op.get("security") == [] or op.get("security") == [{}]:
                out += ["", "*public* (no key needed)."]
            params = op.get("parameters") or []
            if params:
                out += ["", "| Parameter | In | Required | Type | Default | Description |",
                        "|---|---|---|---|---|---|"]
                for p in params:
                    s = p.get("schema", {})
                    bounds = "".join(f" {k}={s[k]}" for k in ("minimum", "maximum") if k in s)
                    out.append(f"| `{p['name']}` | {p['in']} | {'yes' if p.get('required') else 'no'}"
                               f" | {_type(s)}{bounds} | {s.get('default', '')} "
                               f"| {p.get('description', '')} |")
            body = op.get("requestBody")
            if body:
                for media, content in body.get("content", {}).items():
                    out += ["", f"Request body (`{media}`): {_fields(content.get('schema', {}))}"]
            out += ["", "| Status | Meaning | `data` fields |", "|---|---|---|"]
            for status, response in op.get("responses", {}).items():
                data = _data_schema(response)
                shown = _fields(data) if data is not None else ""
                out.append(f"| {status} | {response.get('description', '')} | {shown} |")
    return "\n".join(out) + "\n"


# --------------------------------------------------------------------------- driver


def targets() -> dict[Path, Callable[[str], str]]:
    """Each generated file and how to compute its new text from the current one."""
    table = settings_table()
    return {
        DOCS / "http-api.md": lambda _old: http_api(),
        DOCS / "configuration.md": lambda old: splice(old, table, "docs/configuration.md"),
        ROOT / "README.md": lambda old: splice(old, table, "README.md"),
    }


def stale() -> list[Path]:
    """Files whose generated content differs from what is on disk."""
    out = []
    for path, make in targets().items():
        old = path.read_text(encoding="utf-8") if path.exists() else ""
        if make(old) != old:
            out.append(path)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="compare only; exit 1 if stale")
    args = parser.parse_args(argv)
    if args.check:
        bad = stale()
        for path in bad:
            print(f"out of date: {path.relative_to(ROOT)} (run: python docs/generate.py)")
        return 1 if bad else 0
    for path, make in targets().items():
        old = path.read_text(encoding="utf-8") if path.exists() else ""
        new = make(old)
        if new != old:
            path.write_text(new, encoding="utf-8")
            print(f"wrote {path.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
