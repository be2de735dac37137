"""Raceway for Python: the SDK.

The public surface is small and cheap to import (no wrapt, no httpx until used):

* the manual API (:mod:`raceway_sdk.api`): :func:`track_state_change`, :func:`track_access`,
  :func:`track_function_call`, :func:`track_function`, :func:`track_lock_acquire`,
  :func:`track_lock_release`, :func:`tracked_lock`, :func:`mark_shared`, :func:`track`,
  :func:`current_trace`;
* instrumentation on/off: :func:`install`, :func:`uninstall`, :func:`is_installed`;
* recorder control: :func:`set_sink`, :func:`flush`, :func:`set_trace`, :func:`stats`,
  :func:`suspended`;
* test helpers in :mod:`raceway_sdk.testing` (``recording()``, ``CollectingSink``).
"""

from __future__ import annotations

from raceway_sdk._recorder import flush, set_sink, set_trace, stats, suspended
from raceway_sdk.api import (
    current_trace,
    mark_shared,
    track,
    track_access,
    track_function,
    track_function_call,
    track_lock_acquire,
    track_lock_release,
    track_state_change,
    tracked_lock,
)
from raceway_sdk.instrument import install, is_installed, uninstall

__all__ = [
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
]
