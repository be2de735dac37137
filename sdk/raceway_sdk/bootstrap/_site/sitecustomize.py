"""Raceway's process bootstrap (``raceway run``): this directory is put first on PYTHONPATH.

It runs any other ``sitecustomize`` found later on ``sys.path`` first (so a virtualenv's or a
distribution's customisation still happens), then, when ``RACEWAY_RUN=1``, turns the
instrumentation and the HTTP sink on (:func:`raceway_sdk.bootstrap.activate_from_env`).
Keep this directory free of other modules: everything in it shadows the real ones.
"""

import os
import sys


def _chain() -> None:
    import importlib.machinery
    import importlib.util

    here = os.path.dirname(os.path.abspath(__file__))
    path = [p for p in sys.path if os.path.abspath(p or os.curdir) != here]
    spec = importlib.machinery.PathFinder.find_spec("sitecustomize", path)
    if spec is None or spec.loader is None:
        return
    module = importlib.util.module_from_spec(spec)
    sys.modules["_raceway_chained_sitecustomize"] = module
    spec.loader.exec_module(module)


try:
    _chain()
except Exception:  # the chained customisation failed: report it like site.py would
    import traceback

    sys.stderr.write("raceway run: error in the chained sitecustomize:\n")
    traceback.print_exc()

if os.environ.get("RACEWAY_RUN") == "1":
    try:
        from raceway_sdk.bootstrap import activate_from_env

        activate_from_env()
    except Exception as exc:  # never keep the program from starting
        sys.stderr.write(f"raceway run: instrumentation is OFF in pid {os.getpid()}: {exc}\n")
