"""Executor fan-out: the shared-dict version races -- even on a pool with ONE worker thread."""

from __future__ import annotations

import pytest
from fanout import bytes_per_host_joined, bytes_per_host_locked, bytes_per_host_racy

EXPECTED = {"a.example": 200, "b.example": 300, "c.example": 40}


@pytest.mark.parametrize("workers", [4, 1])
def test_shared_dict_fan_out(workers: int) -> None:
    # With one worker the jobs happen to run one after another, so the result is always right;
    # Raceway still fails the test: each submitted callable is its own logical task, and
    # nothing orders the two a.example jobs -- on a bigger pool they do run in parallel.
    assert bytes_per_host_racy(workers) == EXPECTED


@pytest.mark.parametrize("workers", [4, 1])
def test_fix_merge_results_in_parent(workers: int) -> None:
    assert bytes_per_host_joined(workers) == EXPECTED


@pytest.mark.parametrize("workers", [4, 1])
def test_fix_lock(workers: int) -> None:
    assert bytes_per_host_locked(workers) == EXPECTED
