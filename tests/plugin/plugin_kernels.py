"""What the plugin tests share: pytest arguments and the two kernels every mode runs."""

# Plugin autoload is off in these runs (3x faster start): Raceway is loaded explicitly, as
# under PYTEST_DISABLE_PLUGIN_AUTOLOAD=1; test_offcost and the first verdict test use autoload.
ARGS = ("-p", "pytest_raceway.plugin", "-p", "no:cacheprovider")
AUTOLOADED = {"test_race_fails_the_call_phase_with_a_tsan_style_report"}

KERNELS = """
import threading

class Box:
    def __init__(self):
        self.value = 0

def bump(box):
    box.value += 1

def run2(target, *args):
    threads = [threading.Thread(target=target, args=args, name=f"worker-{i}") for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

def test_racy():
    run2(bump, Box())

def test_locked():
    box, lock = Box(), threading.Lock()
    def work():
        with lock:
            box.value += 1
    run2(work)
    assert box.value == 2
"""
