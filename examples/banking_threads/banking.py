"""A bank whose transfers run on several threads: one racy version and three ways to fix it."""

from __future__ import annotations

import queue
import threading


class RacyBank:
    """Check-then-act on shared balances with no synchronisation: the bug."""

    def __init__(self, balances: dict[str, int]) -> None:
        self.balances = dict(balances)

    def transfer(self, src: str, dst: str, amount: int) -> bool:
        if self.balances[src] < amount:
            return False
        self.balances[src] -= amount  # read-modify-write: another teller may interleave here
        self.balances[dst] += amount
        return True


class LockedBank(RacyBank):
    """Fix 1: one lock around the whole check-then-act (release -> acquire orders the tellers)."""

    def __init__(self, balances: dict[str, int]) -> None:
        super().__init__(balances)
        self.lock = threading.Lock()

    def transfer(self, src: str, dst: str, amount: int) -> bool:
        with self.lock:
            return super().transfer(src, dst, amount)


class QueueBank:
    """Fix 2: hand-off. One clerk thread owns the balances; tellers only send requests.

    ``put`` -> ``get`` of the same item orders the teller before the clerk, and the reply
    queue orders the clerk's work before the teller reads the answer.
    """

    def __init__(self, balances: dict[str, int]) -> None:
        self.balances = dict(balances)
        self.requests: queue.Queue = queue.Queue()
        self.clerk = threading.Thread(target=self._serve, name="clerk")
        self.clerk.start()

    def _serve(self) -> None:
        while (request := self.requests.get()) is not None:
            src, dst, amount, reply = request
            ok = self.balances[src] >= amount
            if ok:
                self.balances[src] -= amount
                self.balances[dst] += amount
            reply.put(ok)

    def transfer(self, src: str, dst: str, amount: int) -> bool:
        reply: queue.Queue = queue.Queue(maxsize=1)
        self.requests.put((src, dst, amount, reply))
        return reply.get()

    def close(self) -> dict[str, int]:
        """Stop the clerk and return the final balances (ordered after it by ``join``)."""
        self.requests.put(None)
        self.clerk.join()
        return self.balances


class LedgerBank:
    """Fix 3: an atomic operation. Each transfer is one ``list.append`` of an immutable entry.

    ``list.append`` is a single C-level operation (atomic under the GIL and on free-threaded
    builds); Raceway records it as ``AtomicRMW``, and two atomic accesses never conflict.
    Balances are derived from the ledger after the tellers are joined. The trade-off: no
    overdraft check is possible without a lock, because a check-then-append is two operations.
    """

    def __init__(self, balances: dict[str, int]) -> None:
        self.opening = dict(balances)
        self.ledger: list[tuple[str, str, int]] = []

    def transfer(self, src: str, dst: str, amount: int) -> bool:
        self.ledger.append((src, dst, amount))
        return True

    def balances(self) -> dict[str, int]:
        out = dict(self.opening)
        for src, dst, amount in self.ledger:
            out[src] -= amount
            out[dst] += amount
        return out


def run_tellers(transfer, jobs: list[tuple[str, str, int]]) -> list[bool]:
    """One thread per job, all started before any is joined: the tellers are concurrent."""
    results: list[bool] = [False] * len(jobs)

    def teller(i: int) -> None:
        results[i] = transfer(*jobs[i])

    threads = [threading.Thread(target=teller, args=(i,), name=f"teller-{i}")
               for i in range(len(jobs))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results
