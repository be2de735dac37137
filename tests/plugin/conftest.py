"""Fixtures of the plugin tests (pytester runs of small suites under --raceway)."""

from __future__ import annotations

import pytest
from plugin_kernels import AUTOLOADED, KERNELS


@pytest.fixture
def no_autoload(monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest) -> None:
    """Plugin autoload off (3x faster start), Raceway loaded explicitly through ARGS."""
    if request.node.name not in AUTOLOADED:
        monkeypatch.setenv("PYTEST_DISABLE_PLUGIN_AUTOLOAD", "1")


@pytest.fixture
def kernels(pytester: pytest.Pytester) -> pytest.Pytester:
    pytester.makepyfile(test_kernels=KERNELS)
    return pytester
