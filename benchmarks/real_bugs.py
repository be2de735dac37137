"""Real race bugs from public Python projects, reproduced against their buggy PyPI releases.

Builds a throwaway venv (``python -m venv`` + ``pip install -e <repo>`` + the pins of
``tests/realbugs/requirements.txt``), then runs every ``tests/realbugs/test_*.py`` once with
``pytest --raceway --raceway-include=<PACKAGE>`` and checks that the session JSON names the
bug: a race whose variable contains ``EXPECT["variable"]`` with either access in a function
whose name contains ``EXPECT["func"]`` (both declared in the reproduction file, together with
``BUG``, ``URL``, ``PACKAGE`` and ``VERSION``).

Prints one line per bug and, last, a JSON object: ``bugs`` (bug, package, version, installed,
reported, races, matched race, seconds), ``reported``, ``total``, ``python``.
Usage: ``python benchmarks/real_bugs.py [--keep-venv DIR | --venv DIR] [-k SUBSTRING]``.
"""

from __future__ import annotations

import argparse
import ast
import json
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _venv import ROOT, Venv, VenvError  # noqa: E402

REALBUGS = ROOT / "tests" / "realbugs"
FIELDS = ("BUG", "URL", "PACKAGE", "VERSION", "EXPECT")


def manifest(path: Path) -> dict[str, Any]:
    """The module-level constants of one reproduction, read without importing it."""
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    found: dict[str, Any] = {}
    for node in tree.body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1:
            target = node.targets[0]
            if isinstance(target, ast.Name) and target.id in FIELDS:
                found[target.id] = ast.literal_eval(node.value)
    missing = [f for f in FIELDS if f not in found]
    if missing:
        raise ValueError(f"{path.name}: missing module constant(s) {', '.join(missing)}")
    found["tests"] = [n.name for n in tree.body
                      if isinstance(n, ast.FunctionDef) and n.name.startswith("test_")]
    return found


def pins(requirements: Path = REALBUGS / "requirements.txt") -> dict[str, str]:
    """``name==version`` lines of the requirements file (names lower-cased)."""
    out: dict[str, str] = {}
    for raw in requirements.read_text(encoding="utf-8").splitlines():
        line = raw.split("#", 1)[0].strip()
        if line:
            name, sep, version = line.partition("==")
            if not sep:
                raise ValueError(f"{requirements.name}: {raw!r} is not pinned with ==")
            out[name.strip().lower()] = version.strip()
    return out


def matches(race: dict[str, Any], expect: dict[str, str]) -> bool:
    funcs = [(race.get(side) or {}).get("func") or "" for side in ("first", "second")]
    return expect["variable"] in race.get("variable", "") and any(expect["func"] in f
                                                                  for f in funcs)


def run_one(venv: Venv, path: Path, meta: dict[str, Any], workdir: Path) -> dict[str, Any]:
    out_json = workdir / f"{path.stem}.json"
    cmd = [venv.python, "-m", "pytest", "--raceway", f"--raceway-include={meta['PACKAGE']}",
           f"--raceway-json={out_json}", str(path), "-q", "--rootdir", str(REALBUGS),
           "-c", str(REALBUGS / "pytest.ini")]
    start = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120, cwd=workdir,
                          env=venv.env(RACEWAY_REALBUGS="1"))
    seconds = time.perf_counter() - start
    result: dict[str, Any] = {"bug": meta["BUG"], "url": meta["URL"], "file": path.name,
                              "package": meta["PACKAGE"], "version": meta["VERSION"],
                              "exit_code": proc.returncode, "seconds": round(seconds, 2)}
    if not out_json.exists():
        result.update(reported=False, races=0, matched=None,
                      error="\n".join((proc.stdout + proc.stderr).splitlines()[-12:]))
        return result
    doc = json.loads(out_json.read_text(encoding="utf-8"))
    races = doc.get("races", [])
    hit = next((r for r in races if matches(r, meta["EXPECT"])), None)
    result.update(
        reported=hit is not None, races=len(races),
        events=doc["summary"].get("events"), dropped=doc["summary"].get("dropped"),
        matched=None if hit is None else {
            "variable": hit["variable"], "severity": hit["severity"],
            "sites": [hit["first"]["location"].split("site-packages/")[-1],
                      hit["second"]["location"].split("site-packages/")[-1]]},
        variables=sorted({r["variable"] for r in races}))
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--venv", help="reuse (or create and keep) the venv at this path")
    parser.add_argument("--keep-venv", action="store_true", help="do not delete the venv")
    parser.add_argument("-k", dest="select", default="", help="only files containing this")
    args = parser.parse_args(argv)

    files = sorted(p for p in REALBUGS.glob("test_*.py") if args.select in p.name)
    metas = {p: manifest(p) for p in files}
    pinned = pins()
    started = time.perf_counter()
    results: list[dict[str, Any]] = []
    try:
        with Venv(args.venv, keep=args.keep_venv) as venv, \
                tempfile.TemporaryDirectory(prefix="raceway-realbugs-") as tmp:
            venv.pip("install", "-q", "-r", str(REALBUGS / "requirements.txt"),
                     step="install the pinned buggy releases")
            for path, meta in metas.items():
                result = run_one(venv, path, meta, Path(tmp))
                dist = next((n for n in pinned if n.replace("-", "").startswith(
                    meta["PACKAGE"].lower().replace("_", ""))), meta["PACKAGE"])
                result["installed"] = venv.version_of(dist)
                results.append(result)
                mark = "REPORTED" if result["reported"] else "MISSED  "
                where = result["matched"]["variable"] if result["matched"] else result.get("error", "")
                print(f"{mark} {meta['BUG']:<60} {meta['PACKAGE']}=={result['installed']} "
                      f"races={result['races']} {where}", flush=True)
    except VenvError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    reported = sum(r["reported"] for r in results)
    print(f"{reported} of {len(results)} real bugs reported in one run each")
    print(json.dumps({"bugs": results, "reported": reported, "total": len(results),
                      "python": platform.python_version(),
                      "seconds": round(time.perf_counter() - started, 1)}))
    return 0 if reported == len(results) else 1


if __name__ == "__main__":
    sys.exit(main())
