"""The racy transfer fails under ``pytest --raceway`` on the first run; the three fixes pass."""

from __future__ import annotations

from banking import LedgerBank, LockedBank, QueueBank, RacyBank, run_tellers

JOBS = [("alice", "bob", 30), ("bob", "alice", 20)]
OPENING = {"alice": 100, "bob": 100}


def test_racy_transfer() -> None:
    # Passes without Raceway almost every time (the GIL rarely switches inside the window);
    # with --raceway it fails: RACE on the balances dict between teller-0 and teller-1 (one
    # report per pair of code lines, so alice's identical pair is folded into bob's).
    bank = RacyBank(OPENING)
    run_tellers(bank.transfer, JOBS)
    assert sum(bank.balances.values()) == 200


def test_fix_lock() -> None:
    bank = LockedBank(OPENING)
    assert run_tellers(bank.transfer, JOBS) == [True, True]
    assert bank.balances == {"alice": 90, "bob": 110}


def test_fix_queue_hand_off() -> None:
    bank = QueueBank(OPENING)
    assert run_tellers(bank.transfer, JOBS) == [True, True]
    assert bank.close() == {"alice": 90, "bob": 110}


def test_fix_atomic_append() -> None:
    bank = LedgerBank(OPENING)
    run_tellers(bank.transfer, JOBS)
    assert bank.balances() == {"alice": 90, "bob": 110}
