"""A bank account shared by two threads: the textbook lost update, and its fix.

The unlocked version almost never loses money in a real run (the GIL hands over rarely), so an
ordinary test passes; ``pytest --raceway`` fails it on the first run.
"""

import threading


class Account:
    def __init__(self, balance=0):
        self.balance = balance
        self.lock = threading.Lock()

    def deposit(self, amount):
        self.balance = self.balance + amount

    def deposit_locked(self, amount):
        with self.lock:
            self.balance = self.balance + amount


def run_in_threads(func, *args, n=2):
    threads = [threading.Thread(target=func, args=args, name=f"teller-{i}") for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


def test_deposit_races():
    account = Account()
    run_in_threads(account.deposit, 10)
    assert account.balance == 20  # passes almost always; Raceway reports the race anyway


def test_deposit_with_lock():
    account = Account()
    run_in_threads(account.deposit_locked, 10)
    assert account.balance == 20
