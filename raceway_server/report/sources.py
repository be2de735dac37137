"""A few lines of source around an access, read at render time so the report stands alone.

Frames name files as the recorder saw them (absolute, or relative to the test rootdir). A file
that cannot be read (deleted, another machine, too big, binary) just has no snippet: the card
still shows the location and stack. Reads are cached per render.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

CONTEXT = 3
MAX_FILE_BYTES = 4 * 1024 * 1024
MAX_LINE_CHARS = 300


class SourceReader:
    """Reads files relative to a list of roots; every file at most once."""

    def __init__(self, roots: list[Path]) -> None:
        self.roots = roots
        self._cache: dict[str, list[str] | None] = {}

    def _lines(self, file: str) -> list[str] | None:
        if file in self._cache:
            return self._cache[file]
        lines: list[str] | None = None
        path = Path(file)
        candidates = [path] if path.is_absolute() else [root / path for root in self.roots]
        for candidate in candidates:
            try:
                if not candidate.is_file() or candidate.stat().st_size > MAX_FILE_BYTES:
                    continue
                raw = candidate.read_bytes()
            except OSError:
                continue
            if b"\0" in raw:
                break
            lines = raw.decode("utf-8", errors="replace").splitlines()
            break
        self._cache[file] = lines
        return lines

    def snippet(self, file: str, line: int) -> dict[str, Any] | None:
        """``{"file", "line", "start", "lines"}`` around ``line`` (1-based), or None."""
        if line <= 0 or file.startswith("<"):
            return None
        lines = self._lines(file)
        if not lines or line > len(lines):
            return None
        start = max(1, line - CONTEXT)
        end = min(len(lines), line + CONTEXT)
        text = [ln if len(ln) <= MAX_LINE_CHARS else ln[:MAX_LINE_CHARS] + "…" for ln in lines[start - 1 : end]]
        return {"file": file, "line": line, "start": start, "lines": text}


def split_location(location: Any) -> tuple[str, int] | None:
    """``"pkg/mod.py:12"`` -> ``("pkg/mod.py", 12)``; None when there is no line number."""
    if not isinstance(location, str) or ":" not in location:
        return None
    file, _, line = location.rpartition(":")
    return (file, int(line)) if line.isdigit() else None


def access_snippet(reader: SourceReader, access: dict[str, Any]) -> dict[str, Any] | None:
    """Source around the access: its innermost stack frame, else its ``location``."""
    stack = access.get("stack")
    if isinstance(stack, (list, tuple)) and stack and isinstance(stack[0], (list, tuple)) and len(stack[0]) >= 2:
        file, line = stack[0][0], stack[0][1]
        try:
            found = reader.snippet(str(file), int(line))
        except (TypeError, ValueError):
            found = None
        if found is not None:
            return found
    where = split_location(access.get("location"))
    return reader.snippet(*where) if where else None


__all__ = ["SourceReader", "access_snippet", "split_location"]
