"""track(obj, name): a proxy records what uninstrumented code does through it."""

from __future__ import annotations

import copy
import pickle
import threading

import pytest
from raceway_sdk import api
from raceway_sdk.instrument import threads
from raceway_sdk.instrument.proxy import TrackedProxy
from raceway_sdk.testing import CollectingSink, concurrent, ordered, recording


class Account:
    def __init__(self) -> None:
        self.balance = 100

    def deposit(self, n: int) -> None:
        self.balance += n


@pytest.fixture
def sink():
    with recording(instrument=False) as s:
        yield s


def kinds(sink: CollectingSink) -> list[tuple[str, str, str]]:
    return [(e.data["variable"], e.data["access_type"], e.ext["loc"]) for e in sink.accesses()]


def test_attribute_reads_and_writes(sink) -> None:
    acct = api.track(Account(), "alice")
    assert isinstance(acct, Account) and isinstance(acct, TrackedProxy)
    acct.balance = acct.balance + 5
    assert acct.balance == 105
    got = kinds(sink)
    assert [(v, t) for v, t, _ in got] == [
        ("alice.balance", "Read"),
        ("alice.balance", "Write"),
        ("alice.balance", "Read"),  # another line: another site
    ]
    assert got[0][2].startswith("alice@") and got[0][2].endswith(".balance")
    assert sink.accesses()[1].ext["value"] == 105
    assert (
        sink.accesses()[0].data["location"]
        == f"{__file__}:{test_attribute_reads_and_writes.__code__.co_firstlineno + 3}"
    )


def test_method_reads_are_not_accesses(sink) -> None:
    acct = api.track(Account(), "bob")
    acct.deposit(1)  # the method body runs on the plain object (not rewritten here)
    assert sink.accesses() == []
    del acct.balance
    assert kinds(sink)[0][:2] == ("bob.balance", "Write")
    assert not hasattr(acct.__wrapped__, "balance")


def test_dict_semantics_follow_the_hooks(sink) -> None:
    d = api.track({}, "accounts")
    d["a"] = 1
    assert d.get("a") == 1
    assert "a" in d
    assert len(d) == 1
    assert list(d) == ["a"]
    d.setdefault("b", 2)
    del d["a"]
    got = [(v, t) for v, t, _ in kinds(sink)]
    assert ("accounts['a']", "Write") in got
    assert ("accounts['a']", "Read") in got
    assert ("accounts[*]", "Read") in got
    assert ("accounts['b']", "AtomicRMW") in got
    assert ("accounts[*]", "AtomicWrite") in got


def test_list_mutators_are_atomic_whole_container(sink) -> None:
    items = api.track([], "items")
    items.append(1)
    items.extend([2, 3])
    assert items[0] == 1 and items.pop() == 3
    got = [(v, t) for v, t, _ in kinds(sink)]
    assert ("items[*]", "AtomicRMW") in got
    assert ("items[0]", "Read") in got


def test_proxy_and_direct_share_identity(sink) -> None:
    from raceway_sdk import _recorder as rec

    obj = Account()
    p = api.track(obj, "shared")
    p.balance = 1
    rec.access(obj, "balance", "Read", rec.register_site(__file__, 1, "f", ""))
    a, b = sink.accesses()
    assert a.ext["loc"] == b.ext["loc"]


def test_tracking_twice_returns_the_same_proxy(sink) -> None:
    p = api.track(Account(), "x")
    assert api.track(p) is p


def test_copy_and_pickle_give_plain_objects(sink) -> None:
    p = api.track({"a": 1}, "cfg")
    assert copy.copy(p) == {"a": 1} and type(copy.copy(p)) is dict
    assert pickle.loads(pickle.dumps(p)) == {"a": 1}


def test_threads_through_a_proxy_race_and_lock_orders() -> None:
    with recording(instrument=False) as sink:
        threads.install()
        try:
            acct = api.track(Account(), "acct")
            lock = threading.Lock()

            def unsafe() -> None:
                acct.balance = acct.balance + 1

            def safe() -> None:
                with lock:
                    acct.balance = acct.balance + 1

            for body in (unsafe, safe):
                ts = [threading.Thread(target=body) for _ in range(2)]
                for t in ts:
                    t.start()
                for t in ts:
                    t.join()
        finally:
            threads.uninstall()
    writes = [e for e in sink.accesses("acct.balance") if e.data["access_type"] == "Write"]
    assert len(writes) == 4
    assert concurrent(writes[0], writes[1])
    assert ordered(writes[2], writes[3])


def test_mark_shared_validates(sink) -> None:
    with pytest.raises(TypeError, match="per-thread"):
        api.mark_shared(threading.local())
    with pytest.raises(ValueError, match="name"):
        api.mark_shared({}, "")
