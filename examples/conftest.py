"""The CI-gate example is configured by its own pytest.ini (baseline, suppressions): it runs
with its own command (examples/ci_gate/README.md), not as part of ``pytest examples/``."""

collect_ignore = ["ci_gate"]
