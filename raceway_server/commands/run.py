"""``raceway run [--server URL] [--service NAME] [--include PAT] ... -- CMD ...``

Runs CMD (a Python program: ``python app.py``, ``uvicorn app:app``, ``flask run``, a script)
with Raceway's instrumentation active in it and in every Python subprocess it starts, sending
events to the server. It works through the environment (``PYTHONPATH`` gets a directory whose
``sitecustomize.py`` calls :func:`raceway_sdk.bootstrap.activate_from_env`; any existing
``sitecustomize`` still runs), then replaces this process with CMD, so signals and the exit
status are CMD's own. The API key is read from ``RACEWAY_API_KEY`` only (never a flag: keys on
command lines show up in ``ps``).
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys

from raceway_server.cli import CommandError

HELP = "run a Python program with instrumentation on, reporting to a Raceway server"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--server",
        help="Raceway server URL (default: $RACEWAY_SERVER_URL)",
    )
    parser.add_argument("--service", help="service name on every event (default: CMD's name)")
    parser.add_argument("--include", action="append", default=[], metavar="PATTERN",
                        help="only rewrite these modules/paths (glob; repeatable)")
    parser.add_argument("--exclude", action="append", default=[], metavar="PATTERN",
                        help="never rewrite these modules/paths (glob; repeatable)")
    parser.add_argument("--root", action="append", default=[], metavar="DIR",
                        help="rewrite modules under DIR (repeatable; default: the working "
                             "directory when no --include is given)")
    parser.add_argument("--manual", action="store_true",
                        help="manual API only: no automatic instrumentation")
    parser.add_argument("--flush-on-response", action="store_true",
                        help="each HTTP response waits until the handler's events are "
                             "delivered (for tests)")
    parser.add_argument("--trace-id", help="trace of events outside requests (a UUID)")
    parser.add_argument("command", nargs=argparse.REMAINDER,
                        help="the command to run, after --")


def build_env(args: argparse.Namespace, base: dict[str, str]) -> dict[str, str]:
    """The environment CMD runs with (a copy of ``base``)."""
    from raceway_sdk.bootstrap import site_dir

    url = args.server or base.get("RACEWAY_SERVER_URL", "")
    if not url:
        raise CommandError("no server: pass --server URL or set RACEWAY_SERVER_URL")
    if not url.startswith(("http://", "https://")):
        raise CommandError(f"--server must be an http:// or https:// URL, got {url!r}")
    env = dict(base)
    env["RACEWAY_RUN"] = "1"
    env["RACEWAY_SERVER_URL"] = url.rstrip("/")
    if args.service:
        env["RACEWAY_SERVICE_NAME"] = args.service
    elif not env.get("RACEWAY_SERVICE_NAME"):
        env["RACEWAY_SERVICE_NAME"] = _default_service(args.command)
    for flag, name in ((args.include, "RACEWAY_INCLUDE"), (args.exclude, "RACEWAY_EXCLUDE")):
        if flag:
            env[name] = ",".join(flag)
    if args.root:
        env["RACEWAY_ROOTS"] = os.pathsep.join(os.path.abspath(r) for r in args.root)
    elif args.include:
        env["RACEWAY_ROOTS"] = ""  # only what --include names
    if args.manual:
        env["RACEWAY_INSTRUMENT"] = "0"
    if args.flush_on_response:
        env["RACEWAY_FLUSH_ON_RESPONSE"] = "1"
    if args.trace_id:
        from raceway_sdk.protocol.events import parse_uuid

        try:
            parse_uuid(args.trace_id)
        except ValueError:
            raise CommandError(f"--trace-id must be a UUID, got {args.trace_id!r}") from None
        env["RACEWAY_TRACE_ID"] = args.trace_id
    package = os.path.dirname(os.path.dirname(site_dir()))  # .../raceway_sdk
    holder = os.path.dirname(package)  # the directory that holds the raceway_sdk package
    parts = [site_dir()]
    if os.path.basename(holder) not in ("site-packages", "dist-packages"):
        parts.append(holder)  # a source checkout: CMD's interpreter must find raceway_sdk
    parts += [p for p in base.get("PYTHONPATH", "").split(os.pathsep) if p]
    env["PYTHONPATH"] = os.pathsep.join(dict.fromkeys(parts))
    return env


def _default_service(command: list[str]) -> str:
    words = [w for w in command if w != "--"]
    for i, word in enumerate(words):
        base = os.path.basename(word)
        if base.startswith("python"):
            rest = words[i + 1:]
            if rest[:1] == ["-m"] and len(rest) > 1:
                return rest[1].split(".")[0]
            if rest:
                return os.path.splitext(os.path.basename(rest[0]))[0]
            continue
        return os.path.splitext(base)[0] or "python"
    return "python"


def _command(args: argparse.Namespace) -> list[str]:
    command = list(args.command)
    if command[:1] == ["--"]:
        command = command[1:]
    if not command:
        raise CommandError("nothing to run: raceway run [options] -- CMD [ARGS ...]")
    if command[0].endswith(".py"):
        command = [sys.executable] + command  # a script: run it with this interpreter
    return command


def run(args: argparse.Namespace) -> int:
    command = _command(args)
    env = build_env(args, dict(os.environ))
    program = shutil.which(command[0], path=env.get("PATH"))
    if program is None:
        raise CommandError(f"command not found: {command[0]}")
    sys.stdout.flush()
    sys.stderr.flush()
    try:
        os.execve(program, command, env)
    except OSError as exc:
        raise CommandError(f"cannot run {command[0]}: {exc}") from None
    return 127  # not reached
