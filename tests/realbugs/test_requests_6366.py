"""requests #6366: ``Session.mount`` reorders ``session.adapters`` while ``get_adapter`` iterates it.

The reporter saw ``RuntimeError: OrderedDict mutated during iteration`` from
``get_adapter`` in a thread pool while another thread mounted an adapter.
"""

from __future__ import annotations

import threading

import requests
from requests.adapters import HTTPAdapter

BUG = "requests#6366"
URL = "https://github.com/psf/requests/issues/6366"
PACKAGE = "requests"
VERSION = "2.31.0"
#: What the report must name: a substring of the raced variable and a function of either access.
EXPECT = {"variable": "OrderedDict", "func": "get_adapter"}


def test_mount_races_with_get_adapter() -> None:
    session = requests.Session()
    seen = []

    def lookup() -> None:
        seen.append(session.get_adapter("https://example.org/api"))

    def mount() -> None:
        session.mount("https://example.org/", HTTPAdapter())

    threads = [threading.Thread(target=lookup), threading.Thread(target=mount)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(seen) == 1  # the run passes; the race is reported anyway
