"""What the asyncio, anyio and trio instrumentation tests share: a box and hand-recorded accesses."""

from __future__ import annotations

from raceway_sdk import _recorder as rec

SITE_R = rec.register_site(__file__, 1, "reader")
SITE_W = rec.register_site(__file__, 2, "writer")


class Box:
    """A shared object whose accesses the tests record by hand (as rewritten code would)."""

    def __init__(self) -> None:
        self.v = 0


def read(box: Box, key: str = "v") -> None:
    rec.access(box, key, "Read", SITE_R)


def write(box: Box, key: str = "v") -> None:
    rec.access(box, key, "Write", SITE_W)
