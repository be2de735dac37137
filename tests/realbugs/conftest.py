"""Keep the real-bug reproductions out of the main suite.

They need the pinned buggy releases of ``requirements.txt`` and fail by design under
``--raceway``; ``benchmarks/real_bugs.py`` runs them in a throwaway venv with
``RACEWAY_REALBUGS=1``. Without it, nothing here is collected.
"""

from __future__ import annotations

import os

if os.environ.get("RACEWAY_REALBUGS") != "1":
    collect_ignore_glob = ["test_*.py"]
