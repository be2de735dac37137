"""Documentation, examples and the real-bug reproductions stay true to the code.

* the generated pages (docs/http-api.md, the settings tables) match the OpenAPI document and the
  plugin's real options;
* every ``tests/realbugs`` reproduction names its bug, package and pinned buggy version, and is
  kept out of the main suite;
* every example directory's README gives one command that points at files that exist;
* relative links in the documentation resolve.
"""

from __future__ import annotations

import ast
import importlib.util
import re
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
REALBUGS = ROOT / "tests" / "realbugs"
EXAMPLES = ("banking_threads", "asyncio_lost_update", "executor_fanout", "ci_gate")
MY_DOCS = ("architecture", "concepts", "races", "critical-path", "anomalies", "storage",
           "security", "configuration", "http-api", "web-ui", "tui", "sdk", "xdist",
           "protocol", "validation")


def _load(path: Path, name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def generate() -> ModuleType:
    return _load(DOCS / "generate.py", "raceway_docs_generate")


@pytest.fixture(scope="module")
def real_bugs() -> ModuleType:
    return _load(ROOT / "benchmarks" / "real_bugs.py", "raceway_real_bugs")


# --------------------------------------------------------------------------- generated docs


def test_generated_docs_are_up_to_date(generate: ModuleType) -> None:
    stale = [str(p.relative_to(ROOT)) for p in generate.stale()]
    assert stale == [], f"run: python docs/generate.py (stale: {stale})"


def test_settings_table_names_every_option_env_and_ini(generate: ModuleType) -> None:
    from _pytest.config.argparsing import Parser

    from pytest_raceway import _settings, plugin

    parser = Parser(processopt=lambda opt: None, _ispytest=True)
    plugin.pytest_addoption(parser)
    flags = {n for opt in parser.getgroup("raceway").options for n in opt.names()}
    assert "--raceway" in flags and "--raceway-include" in flags
    for page in (DOCS / "configuration.md", ROOT / "README.md"):
        text = page.read_text(encoding="utf-8")
        table = text.split(generate.BEGIN, 1)[1].split(generate.END, 1)[0]
        missing = [f for f in flags if f"`{f}`" not in table]
        for _name, (_dest, env, ini, _kind) in _settings._FIELDS.items():
            missing += [x for x in (env, ini) if f"`{x}`" not in table]
        assert missing == [], f"{page.name}: settings table lacks {missing}"


def test_http_api_page_lists_every_route(generate: ModuleType) -> None:
    from raceway_server.api.openapi import openapi_document

    text = (DOCS / "http-api.md").read_text(encoding="utf-8")
    routes = [(m.upper(), p) for p, ops in openapi_document()["paths"].items() for m in ops]
    assert len(routes) >= 20
    missing = [f"{m} {p}" for m, p in routes if f"### {m} {p}\n" not in text]
    assert missing == []


def test_splice_refuses_a_page_without_markers(generate: ModuleType) -> None:
    with pytest.raises(SystemExit, match="missing the generated-block markers"):
        generate.splice("# a page\n", "| table |", "page.md")
    spliced = generate.splice(f"a\n{generate.BEGIN}\nold\n{generate.END}\nb\n", "new", "p")
    assert spliced == f"a\n{generate.BEGIN}\nnew\n{generate.END}\nb\n"


# --------------------------------------------------------------------------- real bugs


def _repro_files() -> list[Path]:
    return sorted(REALBUGS.glob("test_*.py"))


def test_at_least_ten_real_bug_reproductions(real_bugs: ModuleType) -> None:
    metas = [real_bugs.manifest(p) for p in _repro_files()]
    assert len(metas) >= 10
    assert len({m["BUG"] for m in metas}) == len(metas), "one bug per file"
    assert len({m["PACKAGE"] for m in metas}) >= 8, "bugs from at least 8 projects"


@pytest.mark.parametrize("path", _repro_files(), ids=lambda p: p.name)
def test_reproduction_names_its_bug_and_pinned_version(path: Path, real_bugs: ModuleType) -> None:
    meta = real_bugs.manifest(path)
    assert meta["tests"], f"{path.name}: no test_ function collected"
    assert meta["URL"].startswith("https://github.com/")
    assert set(meta["EXPECT"]) == {"variable", "func"} and all(meta["EXPECT"].values())
    tree = ast.parse(path.read_text(encoding="utf-8"))
    imported = {alias.name.split(".")[0] for node in ast.walk(tree)
                if isinstance(node, ast.Import) for alias in node.names}
    imported |= {node.module.split(".")[0] for node in ast.walk(tree)
                 if isinstance(node, ast.ImportFrom) and node.module}
    assert meta["PACKAGE"] in imported, f"{path.name} does not import {meta['PACKAGE']}"
    docstring = ast.get_docstring(tree) or ""
    assert len(docstring) > 80, f"{path.name}: the docstring must explain the bug"
    pins = real_bugs.pins()
    pinned = [v for name, v in pins.items()
              if name.replace("-", "").startswith(meta["PACKAGE"].lower().replace("_", ""))]
    assert pinned == [meta["VERSION"]], f"{path.name}: {meta['PACKAGE']} not pinned to {meta['VERSION']}"


def test_pins_reject_an_unpinned_requirement(real_bugs: ModuleType, tmp_path: Path) -> None:
    req = tmp_path / "requirements.txt"
    req.write_text("requests==2.31.0\ncachetools>=5\n")
    with pytest.raises(ValueError, match="not pinned"):
        real_bugs.pins(req)


def test_realbugs_stay_out_of_the_main_suite() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider",
         str(REALBUGS)], capture_output=True, text=True, timeout=60, cwd=ROOT,
        env={k: v for k, v in __import__("os").environ.items() if k != "RACEWAY_REALBUGS"})
    assert proc.returncode == 5, proc.stdout + proc.stderr  # 5 = no tests collected
    assert "no tests collected" in proc.stdout


def test_expectation_matching_uses_variable_and_function(real_bugs: ModuleType) -> None:
    race = {"variable": "HTTPConnectionPool.num_connections",
            "first": {"func": "HTTPConnectionPool._new_conn"}, "second": {"func": "other"}}
    assert real_bugs.matches(race, {"variable": "num_connections", "func": "_new_conn"})
    assert not real_bugs.matches(race, {"variable": "num_requests", "func": "_new_conn"})
    assert not real_bugs.matches(race, {"variable": "num_connections", "func": "urlopen"})


# --------------------------------------------------------------------------- examples, links


@pytest.mark.parametrize("name", EXAMPLES)
def test_example_readme_gives_one_runnable_command(name: str) -> None:
    readme = (ROOT / "examples" / name / "README.md").read_text(encoding="utf-8")
    first_block = re.search(r"```bash\n(.*?)```", readme, re.S)
    assert first_block, f"examples/{name}/README.md has no bash block"
    lines = [ln for ln in first_block.group(1).splitlines() if ln.strip()]
    assert len(lines) == 1, f"the first block must be ONE command, got {lines}"
    command = lines[0]
    assert command.startswith("python -m pytest"), command
    target = next(w for w in command.split() if w.startswith("examples/"))
    assert (ROOT / target.split("=")[0]).is_dir(), f"{target} does not exist"
    tests = list((ROOT / "examples" / name).glob("test_*.py"))
    assert tests, f"examples/{name} has no test file"


_LINK = re.compile(r"\]\(([^)#\s]+)(#[^)]*)?\)")


@pytest.mark.parametrize("name", [*MY_DOCS, "../README", *(f"../examples/{e}/README" for e in EXAMPLES)])
def test_relative_links_resolve(name: str) -> None:
    page = (DOCS / f"{name}.md").resolve()
    assert page.is_file(), f"{page} is missing"
    broken = [target for target, _ in _LINK.findall(page.read_text(encoding="utf-8"))
              if "://" not in target and not (page.parent / target).exists()]
    assert broken == [], f"{page.name}: broken links {broken}"
