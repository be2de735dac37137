"""The ``raceway`` command line.

Each subcommand is one module in :mod:`raceway_server.commands` exposing ``HELP`` (one line),
``add_arguments(parser)`` and ``run(args) -> int``; modules are discovered by name (a leading
underscore marks a helper), so adding ``report``, ``tui`` or ``run`` means adding one module.
Command modules import their heavy dependencies inside ``run`` so ``raceway --help`` stays fast.
"""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys
from types import ModuleType

import raceway_server.commands as _commands


class CommandError(Exception):
    """A user-facing failure: printed as ``raceway: error: ...`` with exit status 2."""


def command_modules() -> dict[str, ModuleType]:
    """Every subcommand module, by command name (``service_deps`` -> ``service-deps``)."""
    found: dict[str, ModuleType] = {}
    for info in sorted(pkgutil.iter_modules(_commands.__path__), key=lambda i: i.name):
        if info.name.startswith("_"):
            continue
        module = importlib.import_module(f"{_commands.__name__}.{info.name}")
        if hasattr(module, "run") and hasattr(module, "add_arguments"):
            found[getattr(module, "NAME", info.name.replace("_", "-"))] = module
    return found


def build_parser(modules: dict[str, ModuleType] | None = None) -> argparse.ArgumentParser:
    modules = command_modules() if modules is None else modules
    parser = argparse.ArgumentParser(
        prog="raceway",
        description="Raceway for Python: race detection server and client.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, module in modules.items():
        help_text = getattr(module, "HELP", "")
        child = sub.add_parser(name, help=help_text, description=help_text)
        module.add_arguments(child)
        child.set_defaults(_module=module)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``raceway`` console script; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    module = getattr(args, "_module", None)
    if module is None:
        parser.print_help()
        return 0
    try:
        return int(module.run(args) or 0)
    except CommandError as exc:
        print(f"raceway: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
