"""The analysis engine: incremental happens-before race detection and per-trace analyses."""

from __future__ import annotations

from .core import Engine
from .model import Access, Race, TaskInfo

__all__ = ["Access", "Engine", "Race", "TaskInfo"]
