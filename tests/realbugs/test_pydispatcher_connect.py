"""PyDispatcher: ``connect()`` checks then fills the module-global ``connections`` dict unlocked.

Two threads connecting receivers for the same sender can both miss ``senderkey``, both create
a signals dict, and the second store drops the first receiver (frontrun case study
"PyDispatcher").
"""

from __future__ import annotations

from _threads import run_threads
from pydispatch import dispatcher

BUG = "PyDispatcher connect() check-then-act on connections"
URL = "https://github.com/lucaswiman/frontrun/blob/main/docs/CASE_STUDIES.rst#4-pydispatcher"
PACKAGE = "pydispatch"
VERSION = "2.0.7"
EXPECT = {"variable": "dict", "func": "connect"}


class Sender:
    pass


def first(**kwargs: object) -> None:
    pass


def second(**kwargs: object) -> None:
    pass


def test_two_threads_connect_receivers() -> None:
    sender = Sender()
    run_threads(lambda: dispatcher.connect(first, signal="saved", sender=sender),
                lambda: dispatcher.connect(second, signal="saved", sender=sender))
    receivers = list(dispatcher.getReceivers(sender, "saved"))
    assert len(receivers) == 2
