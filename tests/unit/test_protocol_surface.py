"""The public surface of raceway_sdk.protocol is exactly its sorted ``__all__``."""

from __future__ import annotations

import inspect
import types

import raceway_sdk.protocol as protocol


def test_all_is_sorted_and_complete() -> None:
    public = sorted(
        name
        for name, obj in vars(protocol).items()
        if not name.startswith("_") and not inspect.ismodule(obj)
    )
    assert protocol.__all__ == public


def test_every_exported_callable_lives_in_the_protocol_package() -> None:
    for name in protocol.__all__:
        obj = getattr(protocol, name)
        if isinstance(obj, types.GenericAlias):  # a type alias (``VC``); a "class" on 3.10
            continue
        if inspect.isclass(obj) or inspect.isfunction(obj):
            assert obj.__module__.startswith("raceway_sdk.protocol."), name
            assert obj.__doc__, f"{name} has no docstring"


def test_contract_names_from_internals() -> None:
    # docs/internals.md "Event" and "Clocks": the names other packages code against
    for name in (
        "Event", "Metadata", "KINDS", "ACCESS_TYPES", "new_event_id", "parse_batch", "parse_event",
        "event_to_wire", "dumps_batch", "EventError", "BatchResult", "vc_join", "vc_leq",
        "vc_tick", "happened_before", "HBTracker",
    ):  # fmt: skip
        assert name in protocol.__all__
    assert len(protocol.KINDS) == 13
