import sys
def test_probe():
    from raceway_sdk import instrument
    print("\nPROBE", "trio" in sys.modules, "anyio" in sys.modules, instrument.status()["deferred"])
