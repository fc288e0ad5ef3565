"""The training screen's epoch table: one row per epoch, the newest under the cursor."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from rich.text import Text
from textual.widgets import DataTable

from convonet.tui.formatting import right

COLUMNS = (("Epoch", "epoch"), ("Loss", "loss"), ("Accuracy", "accuracy"),
           ("Val loss", "val_loss"), ("Val accuracy", "val_accuracy"), ("LR", "lr"),
           ("Time", "seconds"), ("Batches", "batches"))


def number_cell(value: float | None, digits: int = 4) -> Text:
    """A metric right-aligned to ``digits`` decimals; a dash when there is none."""
    return Text(right("–" if value is None else f"{value:.{digits}f}", digits + 2))


class EpochTable(DataTable[Text]):
    """Epoch rows as dicts (a history's ``as_rows()`` or live ``EpochEnd`` logs)."""

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id, cursor_type="row", zebra_stripes=True)
        self._drawn = 0

    def on_mount(self) -> None:
        for label, key in COLUMNS:
            self.add_column(label, key=key)

    def set_rows(self, rows: Sequence[dict[str, Any]]) -> None:
        """Show exactly ``rows``."""
        self.clear()
        self._drawn = 0
        self.add_rows_since(rows)

    def add_rows_since(self, rows: Sequence[dict[str, Any]]) -> None:
        """Add the rows past those already drawn (the epochs that arrived since)."""
        for row in rows[self._drawn:]:
            epoch = f"{row['epoch']} partial" if row.get("partial") else str(row["epoch"])
            self.add_row(Text(epoch), number_cell(row.get("loss")),
                         number_cell(row.get("accuracy")), number_cell(row.get("val_loss")),
                         number_cell(row.get("val_accuracy")),
                         Text(f"{row.get('learning_rate', 0.0):.4g}"),
                         Text(right(f"{row.get('seconds', 0.0):.1f}s", 6)),
                         Text(right(str(row.get("batches", "")), 7)))
        self._drawn = len(rows)
        if self.row_count:
            self.move_cursor(row=self.row_count - 1)
