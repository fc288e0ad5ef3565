"""Small text helpers the screens share: right-aligned cells, paths as the user sees them."""

from __future__ import annotations

from convonet.rendering import display_path

__all__ = ["display_path", "right"]


def right(text: str, width: int) -> str:
    """Right-aligned in a table cell (no-break spaces: a cell drops ordinary leading ones)."""
    return "\u00a0" * max(0, width - len(text)) + text
