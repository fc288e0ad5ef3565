"""Two runs' settings side by side, the fields that differ marked and drawn first in colour.

A DataTable so that long values (dataset paths) scroll sideways instead of wrapping, and
the field column stays in place while they do.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from rich.text import Text
from textual.widgets import DataTable

from convonet.core.run_history import ParamDiff, value_text

#: The marker of a differing field: visible without colour (over SSH, in a log).
DIFFERS = "≠"


class ParamsDiffTable(DataTable[Any]):
    """``field | A | B`` with a ``≠`` column; ``only_differences`` hides equal fields."""

    DEFAULT_CSS = """
    ParamsDiffTable { height: 1fr; }
    """

    def __init__(self, *, labels: tuple[str, str] = ("A", "B"), **kwargs: Any) -> None:
        super().__init__(cursor_type="row", zebra_stripes=True, fixed_columns=2, **kwargs)
        self.labels = labels
        self.diffs: list[ParamDiff] = []
        self.only_differences = False

    @property
    def differing(self) -> list[ParamDiff]:
        return [d for d in self.diffs if d.differs]

    def show(self, diffs: Sequence[ParamDiff], *, only_differences: bool | None = None
             ) -> None:
        """Replace the rows; keep the current filter unless one is given."""
        self.diffs = list(diffs)
        if only_differences is not None:
            self.only_differences = only_differences
        self.clear(columns=True)
        self.add_column(Text(DIFFERS), width=1, key="mark")
        self.add_column("field", key="field")
        self.add_column(self.labels[0], key="a")
        self.add_column(self.labels[1], key="b")
        for diff in self.diffs:
            if self.only_differences and not diff.differs:
                continue
            style = "bold yellow" if diff.differs else "dim"
            self.add_row(Text(DIFFERS if diff.differs else " ", style="bold yellow"),
                         Text(diff.field, style="bold" if diff.differs else ""),
                         Text(value_text(diff.a), style=style),
                         Text(value_text(diff.b), style=style), key=diff.field)
