"""A throwaway virtual environment for the validation scripts (real bugs, real suites).

Third-party code is installed from PyPI with pip into a venv under a temporary directory,
never into the project's environment and never copied into the repository. Every pip call is
bounded by a timeout; the venv is removed on exit unless the caller keeps it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


class VenvError(RuntimeError):
    """A venv could not be built (pip failed or timed out); the message names the step."""


class Venv:
    """``python -m venv`` + ``pip install -e <repo>``; use as a context manager."""

    def __init__(self, path: str | None = None, keep: bool = False,
                 python: str = sys.executable, pip_timeout: float = 600.0) -> None:
        self._own = path is None
        self.root = Path(path) if path else Path(tempfile.mkdtemp(prefix="raceway-venv-"))
        self.keep = keep or not self._own
        self.base_python = python
        self.pip_timeout = pip_timeout
        self.python = str(self.root / "bin" / "python")

    def __enter__(self) -> Venv:
        if not Path(self.python).exists():
            self._run([self.base_python, "-m", "venv", str(self.root)], "create the venv")
            self.pip("install", "-q", "-e", str(ROOT), step="install raceway (-e)")
        return self

    def __exit__(self, *exc: object) -> None:
        if not self.keep:
            shutil.rmtree(self.root, ignore_errors=True)

    def pip(self, *args: str, step: str) -> None:
        self._run([self.python, "-m", "pip", "--disable-pip-version-check", *args], step)

    def _run(self, cmd: list[str], step: str) -> None:
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=self.pip_timeout)
        except subprocess.TimeoutExpired as exc:
            raise VenvError(f"{step}: timed out after {self.pip_timeout:.0f}s") from exc
        if proc.returncode != 0:
            tail = "\n".join((proc.stdout + proc.stderr).strip().splitlines()[-15:])
            raise VenvError(f"{step}: exit code {proc.returncode}\n{tail}")

    def version_of(self, distribution: str) -> str | None:
        """Installed version of a distribution in this venv (None when absent)."""
        code = ("import importlib.metadata as m, sys\n"
                "try: print(m.version(sys.argv[1]))\n"
                "except m.PackageNotFoundError: pass\n")
        out = subprocess.run([self.python, "-c", code, distribution], capture_output=True,
                             text=True, timeout=60).stdout.strip()
        return out or None

    def env(self, **extra: str) -> dict[str, str]:
        """An environment for running the venv's pytest: no leaked RACEWAY_* settings."""
        env = {k: v for k, v in os.environ.items()
               if not k.startswith("RACEWAY") and k not in ("PYTHONPATH", "PYTEST_ADDOPTS")}
        env.update(extra)
        return env
