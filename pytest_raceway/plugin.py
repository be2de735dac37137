"""pytest11 entry point of Raceway: options, markers and the ``raceway`` fixture only.

pytest imports this module in every run of every environment where Raceway is installed, so it
loads nothing heavy. The detector itself (``pytest_raceway._session``) is imported and registered
only when Raceway is on, from ``pytest_load_initial_conftests`` -- before conftests and test
modules are imported, so that the import hook can instrument them (pytest-cov's pattern).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest

from pytest_raceway import _settings

SETTINGS_KEY = pytest.StashKey[_settings.Settings]()
PLUGIN_NAME = "_raceway"


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("raceway", "race detection by happens-before (Raceway)")
    group.addoption("--raceway", action="store_const", const=True, dest="raceway", default=None,
                    help="detect data races: fail every test whose tasks race [env RACEWAY, ini raceway]")
    group.addoption("--no-raceway", action="store_const", const=False, dest="raceway",
                    help="disable Raceway even if the environment or ini enables it (for debuggers)")
    group.addoption("--raceway-include", action="append", dest="raceway_include", default=None,
                    metavar="PATTERN",
                    help="module glob(s) to instrument, comma-separated, repeatable "
                         "(default: every module under the rootdir)")
    group.addoption("--raceway-exclude", action="append", dest="raceway_exclude", default=None,
                    metavar="PATTERN", help="module glob(s) never to instrument")
    group.addoption("--raceway-report", dest="raceway_report", default=None, metavar="PATH",
                    help="write the race report to PATH")
    group.addoption("--raceway-json", dest="raceway_json", default=None, metavar="PATH",
                    help="write the session's races, tests and racing traces as JSON to PATH")
    group.addoption("--raceway-server", dest="raceway_server", default=None, metavar="URL",
                    help="also send events to a remote raceway server (verdicts stay local)")
    group.addoption("--raceway-fail-on", dest="raceway_fail_on", default=None,
                    metavar="race|write-write|none",
                    help="which races fail a test (default: race = every race)")
    group.addoption("--raceway-baseline", dest="raceway_baseline", default=None, metavar="PATH",
                    help="known races (reported, not failing); races not in it fail")
    group.addoption("--raceway-baseline-update", action="store_const", const=True,
                    dest="raceway_baseline_update", default=None,
                    help="rewrite the baseline with this run's races (they do not fail)")
    group.addoption("--raceway-suppressions", dest="raceway_suppressions", default=None,
                    metavar="PATH", help="ThreadSanitizer-format suppressions (race:, race_top:)")
    for name, (kind, text) in _settings.INI_HELP.items():
        parser.addini(name, text, type=kind)  # type: ignore[arg-type]


def resolve_settings(config: pytest.Config) -> _settings.Settings:
    """Resolve the settings from the (early) config; cached in the config's stash."""
    if SETTINGS_KEY in config.stash:
        return config.stash[SETTINGS_KEY]
    namespace = getattr(config, "known_args_namespace", None) or config.option
    root = config.rootpath
    settings = _settings.resolve(
        getoption=lambda dest: getattr(namespace, dest, None),
        getini=config.getini,
        environ=os.environ,
        rootdir=root,
        inidir=config.inipath.parent if config.inipath else root,
        invocation_dir=config.invocation_params.dir,
    )
    config.stash[SETTINGS_KEY] = settings
    return settings


@pytest.hookimpl(tryfirst=True)
def pytest_load_initial_conftests(early_config: pytest.Config) -> None:
    settings = resolve_settings(early_config)
    if settings.enabled:
        from pytest_raceway import _session

        _session.start(early_config, settings)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "raceway(enabled=True, fail_on=None, ignore=[]): per-test Raceway settings "
        "(fail_on: race|write-write|none; ignore: globs of variables whose races are ignored)")
    config.addinivalue_line("markers", "no_raceway: do not report races of this test")
    settings = resolve_settings(config)
    if settings.enabled and not config.pluginmanager.has_plugin(PLUGIN_NAME):
        # Loaded too late for pytest_load_initial_conftests (e.g. ``-p`` from a conftest):
        # modules imported so far are not instrumented; the summary says which.
        from pytest_raceway import _session

        _session.start(config, settings)


class _OffHandle:
    """What the ``raceway`` fixture yields when Raceway is off: the same API, doing nothing."""

    enabled = False
    trace_id = None

    def track(self, obj: Any, name: str | None = None) -> Any:
        return obj

    def races(self) -> list[dict[str, Any]]:
        return []


@pytest.fixture
def raceway(request: pytest.FixtureRequest) -> Iterator[Any]:
    """Raceway's manual API for this test: ``track(obj)``, ``trace_id``, ``races()``, ``api``."""
    plugin = request.config.pluginmanager.get_plugin(PLUGIN_NAME)
    yield plugin.handle(request.node) if plugin is not None else _OffHandle()


@pytest.fixture
def raceway_services() -> Iterator[Any]:
    """Start instrumented HTTP services: ``raceway_services.start(file, attr, name=...)``.

    Each service runs in its own process under ``raceway run`` and reports to this session;
    all are stopped when the test ends (see ``raceway_sdk.testing_services``).
    """
    from raceway_sdk.testing_services import running_services

    with running_services() as services:
        yield services
