"""The public SDK surface: exports, import cost, the manual API, install/uninstall."""

from __future__ import annotations

import subprocess
import sys
import threading
import uuid

import pytest
import raceway_sdk
from raceway_sdk import _recorder as rec
from raceway_sdk import instrument
from raceway_sdk.instrument import threads
from raceway_sdk.testing import CollectingSink, concurrent, ordered, recording

EXPECTED = {
    "current_trace",
    "flush",
    "install",
    "is_installed",
    "mark_shared",
    "set_sink",
    "set_trace",
    "stats",
    "suspended",
    "track",
    "track_access",
    "track_function",
    "track_function_call",
    "track_lock_acquire",
    "track_lock_release",
    "track_state_change",
    "tracked_lock",
    "uninstall",
}


def test_exported_members() -> None:
    assert set(raceway_sdk.__all__) == EXPECTED
    for name in EXPECTED:
        assert callable(getattr(raceway_sdk, name)), name


def test_import_is_light() -> None:
    code = (
        "import sys, raceway_sdk, raceway_sdk.testing;"
        "print(sorted(m for m in ('wrapt', 'httpx', 'raceway_server', 'asyncio') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


@pytest.fixture
def sink():
    with recording(instrument=False) as s:
        yield s


def test_track_state_change(sink: CollectingSink) -> None:
    raceway_sdk.track_state_change("alice.balance", 100, 90)
    line = sys._getframe().f_lineno - 1
    raceway_sdk.track_state_change("alice.balance", 90, None, access_type="Read")
    w, r = sink.accesses("alice.balance")
    assert (
        w.ext["loc"] == "alice.balance" and w.data["old_value"] == 100 and w.data["new_value"] == 90
    )
    assert w.data["location"] == f"{__file__}:{line}" and w.ext["func"].endswith(
        "test_track_state_change"
    )
    assert r.data["access_type"] == "Read"
    with pytest.raises(ValueError, match="access_type must be one of"):
        raceway_sdk.track_state_change("x", 1, 2, access_type="Modify")
    with pytest.raises(ValueError, match="variable"):
        raceway_sdk.track_state_change("", 1, 2)


def test_track_access_pairs_with_object_identity(sink: CollectingSink) -> None:
    class Box:
        value = 0

    b = Box()
    raceway_sdk.track_access(b, "value", "Write", value=3)
    raceway_sdk.track_access({}, "k", "Read", item=True)
    a, i = sink.accesses()
    assert a.ext["loc"].endswith(".value") and a.ext["value"] == 3
    assert i.ext["loc"].endswith("['k']")
    with pytest.raises(TypeError, match="attribute name"):
        raceway_sdk.track_access(b, 3, "Read")


def test_track_function_call_and_track_function(sink: CollectingSink) -> None:
    raceway_sdk.track_function_call("transfer", {"amount": 5}, duration_ns=1200)
    assert raceway_sdk.track_function("double", lambda: 21 * 2) == 42
    with pytest.raises(ZeroDivisionError):
        raceway_sdk.track_function("boom", lambda: 1 // 0)
    a, b, c = sink.of_kind("FunctionCall")
    assert a.data["function_name"] == "transfer" and a.data["args"] == {"amount": 5}
    assert (
        a.meta.duration_ns == 1200 and a.data["module"] == __name__ and a.data["file"] == __file__
    )
    assert b.meta.duration_ns is not None and b.meta.duration_ns >= 0
    assert c.data["function_name"] == "boom"
    with pytest.raises(ValueError, match="duration_ns"):
        raceway_sdk.track_function_call("f", duration_ns=-1)


def _two_threads(body) -> None:
    # started with the raw Thread (no patches): only the manual calls create edges
    ts = [threading.Thread(target=body) for _ in range(2)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()


@pytest.mark.parametrize("manual", [True, False])
def test_manual_lock_tracking_orders(sink: CollectingSink, manual: bool) -> None:
    lock = threading.Lock()

    def body() -> None:
        with lock:
            if manual:
                raceway_sdk.track_lock_acquire("accounts")
            raceway_sdk.track_state_change("accounts.total", None, 1)
            if manual:
                raceway_sdk.track_lock_release("accounts")

    _two_threads(body)
    a, b = sink.accesses("accounts.total")
    assert ordered(a, b) if manual else concurrent(a, b)
    if manual:
        assert sink.of_kind("LockAcquire")[0].data["lock_id"] == "accounts"
        assert sink.of_kind("LockAcquire")[0].data["lock_type"] == "Mutex"


def test_tracked_lock(sink: CollectingSink) -> None:
    lock = threading.Lock()

    def body() -> None:
        with raceway_sdk.tracked_lock(lock, "L") as held:
            assert held is lock and lock.locked()
            raceway_sdk.track_state_change("v", None, 1)

    _two_threads(body)
    a, b = sink.accesses("v")
    assert ordered(a, b) and not lock.locked()
    with pytest.raises(TypeError, match="acquire"):
        with raceway_sdk.tracked_lock(object(), "x"):
            pass


def test_mark_shared_names_locations(sink: CollectingSink) -> None:
    d = raceway_sdk.mark_shared({}, "accounts")
    raceway_sdk.track_access(d, "alice", "Write", item=True)
    rec.set_trace(uuid.uuid4().int)  # pinned: same name and identity in the next trace
    raceway_sdk.track_access(d, "alice", "Write", item=True)
    a, b = sink.accesses()
    assert a.data["variable"] == "accounts['alice']" and a.ext["loc"].startswith("accounts@")
    assert a.ext["loc"] == b.ext["loc"]


def test_current_trace_and_no_sink_is_a_no_op() -> None:
    tid = uuid.uuid4().int
    with recording(instrument=False, trace_id=tid) as sink:
        assert raceway_sdk.current_trace() == tid
        raceway_sdk.track_state_change("x", 0, 1)
        assert sink.accesses()[0].trace_id == tid
    prev = rec.set_sink(None)
    try:
        raceway_sdk.track_state_change("x", 0, 1)
        raceway_sdk.track_function_call("f")
    finally:
        rec.set_sink(prev)
    assert raceway_sdk.current_trace() != tid


def test_install_uninstall_cycle() -> None:
    assert not raceway_sdk.is_installed()
    original_start = vars(threading.Thread)["start"]
    raceway_sdk.install({"service_name": "svc"})
    try:
        assert raceway_sdk.is_installed() and threads.is_installed()
        assert vars(threading.Thread)["start"] is not original_start
        status = instrument.status()
        assert status["installed"][0] == "threads"
        assert status["skipped"].get("rewrite") == "no include patterns or roots configured"
        with pytest.raises(RuntimeError, match="already installed"):
            raceway_sdk.install()
    finally:
        raceway_sdk.uninstall()
        rec.configure(service_name="python")
    assert not raceway_sdk.is_installed() and not threads.is_installed()
    assert vars(threading.Thread)["start"] is original_start
    raceway_sdk.uninstall()  # no-op


def test_install_rejects_bad_config() -> None:
    with pytest.raises(ValueError, match="service_name"):
        raceway_sdk.install({"service_name": 3})
    assert not raceway_sdk.is_installed() and not threads.is_installed()


def test_recording_restores_sink_and_trace() -> None:
    before_sink, before_trace = rec.get_sink(), rec.current_trace()
    with recording() as sink:
        assert rec.get_sink() is sink and raceway_sdk.is_installed()
    assert rec.get_sink() is before_sink and rec.current_trace() == before_trace
    assert not raceway_sdk.is_installed()
