"""Small text helpers the screens share: right-aligned cells, paths as the user sees them."""

from __future__ import annotations

import os
from pathlib import Path


def right(text: str, width: int) -> str:
    """Right-aligned in a table cell (no-break spaces: a cell drops ordinary leading ones)."""
    return "\u00a0" * max(0, width - len(text)) + text


def display_path(path: str | os.PathLike[str] | None) -> str:
    """Relative to the working folder when below it: shorter, and the same on any machine
    ("" for no path)."""
    if path is None:
        return ""
    p = Path(path)
    try:
        return str(p.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(p)
