"""A DataTable that keeps its rows as data, so that it can sort by any column.

Textual's ``DataTable.sort`` compares the cells themselves, and styled cells (``Text``) do
not order; results tables also need missing values (a fold not run, a failed combination)
to stay at the bottom whichever way a column is sorted. So the rows live here as plain
values, each column says how to show and how to order them, and sorting redraws the table.

Keys (while the table has focus): ``o`` sorts by the next column, ``O`` flips the order;
clicking a header sorts by it (again: flips). The sort column is marked ▲/▼ in the header.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from rich.text import Text
from textual.binding import BindingType
from textual.widgets import DataTable

from convonet.keytable import bindings


def is_missing(value: Any) -> bool:
    """None and NaN sort last and show as a dash."""
    return value is None or (isinstance(value, float) and math.isnan(value))


@dataclass(frozen=True)
class Column:
    """How one column shows and orders its values.

    ``descending`` is the first direction a sort by this column takes (accuracy: best
    first; loss and times: smallest first).
    """

    key: str
    label: str
    fmt: Callable[[Any], str] = str
    justify: str = "left"  # "left" | "right"
    descending: bool = False


#: A row: column key -> value; "_key" (unique, required), "_style" (a Rich style, optional).
Row = Mapping[str, Any]


class SortableTable(DataTable[Text]):
    """Rows as data, sorted by any column; the cursor stays on its row across redraws."""

    BINDINGS: ClassVar[list[BindingType]] = [*bindings("sortable_table")]

    def __init__(self, *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes, cursor_type="row", zebra_stripes=True)
        self.spec: list[Column] = []
        self.rows_data: list[dict[str, Any]] = []
        #: None: the order the rows were added in.
        self.sort_key: str | None = None
        self.sort_descending = False
        self.follow = True  # keep the cursor on the newest row while rows arrive

    # ---- content -----------------------------------------------------------------------
    def set_columns(self, columns: Sequence[Column], sort_key: str | None = None,
                    descending: bool | None = None) -> None:
        """New columns (and no rows); ``sort_key`` None keeps the order rows arrive in."""
        self.spec = list(columns)
        self.rows_data = []
        self.sort_key = sort_key if any(c.key == sort_key for c in self.spec) else None
        self.sort_descending = self._default_direction(self.sort_key) \
            if descending is None else descending
        self._redraw()

    def set_rows(self, rows: Iterable[Row]) -> None:
        """Replace every row (kept in this order when no column is sorted)."""
        self.rows_data = [dict(r) for r in rows]
        self._redraw()

    def add_data_row(self, row: Row) -> None:
        """Append one row; the cursor follows it if it was on the last row."""
        at_end = self.row_count == 0 or self.cursor_row >= self.row_count - 1
        self.rows_data.append(dict(row))
        self._redraw()  # widths may grow; a few hundred rows at most, redrawn per fold
        if at_end and self.follow and self.sort_key is None and self.row_count:
            self.move_cursor(row=self.row_count - 1)

    # ---- sorting -----------------------------------------------------------------------
    def sort_by(self, key: str | None, descending: bool | None = None) -> None:
        """Sort by column ``key`` (None: the order rows arrived in)."""
        self.sort_key = key if any(c.key == key for c in self.spec) else None
        self.sort_descending = self._default_direction(self.sort_key) \
            if descending is None else descending
        self._redraw()

    def action_cycle_sort(self) -> None:
        """The next column; after the last one, back to the order rows arrived in."""
        keys: list[str | None] = [None, *(c.key for c in self.spec)]
        nxt = keys[(keys.index(self.sort_key) + 1) % len(keys)]
        self.sort_by(nxt)

    def action_reverse_sort(self) -> None:
        if self.sort_key is None:
            self.rows_data.reverse()
            self._redraw()
        else:
            self.sort_by(self.sort_key, not self.sort_descending)

    def on_data_table_header_selected(self, event: DataTable.HeaderSelected) -> None:
        """A click on a header sorts by that column; a second click flips the order."""
        event.stop()
        key = event.column_key.value
        if key == self.sort_key:
            self.sort_by(key, not self.sort_descending)
        else:
            self.sort_by(key)

    def sorted_rows(self) -> list[dict[str, Any]]:
        """The rows in the order shown: missing values last whichever the direction."""
        if self.sort_key is None:
            return list(self.rows_data)
        key = self.sort_key
        present = [r for r in self.rows_data if not is_missing(r.get(key))]
        missing = [r for r in self.rows_data if is_missing(r.get(key))]
        try:
            present.sort(key=lambda r: r[key], reverse=self.sort_descending)
        except TypeError:  # mixed kinds in one column: order them as text
            present.sort(key=lambda r: str(r[key]), reverse=self.sort_descending)
        return present + missing

    def _default_direction(self, key: str | None) -> bool:
        return next((c.descending for c in self.spec if c.key == key), False)

    # ---- drawing -----------------------------------------------------------------------
    def _label(self, column: Column, width: int = 0) -> Text:
        label = column.label
        if column.key == self.sort_key:
            label += " ▼" if self.sort_descending else " ▲"
        return Text(_pad(label, width) if column.justify == "right" else label)

    def _texts(self, row: Mapping[str, Any]) -> list[str]:
        return ["–" if is_missing(row.get(c.key)) else c.fmt(row.get(c.key))
                for c in self.spec]

    def _cells(self, texts: Sequence[str], widths: Sequence[int], style: str) -> list[Text]:
        return [Text(_pad(text, width) if column.justify == "right" else text, style=style,
                     no_wrap=True)
                for column, text, width in zip(self.spec, texts, widths, strict=True)]

    def _redraw(self) -> None:
        """Columns and rows again, the cursor back on the row it was on.

        Right-aligned columns are padded to their widest cell here (a cell's own
        justification is not applied to every cell alike), so numbers line up.
        """
        current: str | None = None
        if self.row_count and 0 <= self.cursor_row < self.row_count:
            current = self.coordinate_to_cell_key(self.cursor_coordinate).row_key.value
        rows = self.sorted_rows()
        texts = [self._texts(r) for r in rows]
        widths = [max([len(self._label(c).plain), *(len(t[i]) for t in texts)])
                  for i, c in enumerate(self.spec)]
        self.clear(columns=True)
        for column, width in zip(self.spec, widths, strict=True):
            self.add_column(self._label(column, width), key=column.key)
        for row, cells in zip(rows, texts, strict=True):
            self.add_row(*self._cells(cells, widths, str(row.get("_style") or "")),
                         key=str(row["_key"]))
        if current is not None and self.row_count:
            try:
                self.move_cursor(row=self.get_row_index(current), scroll=True)
            except KeyError:  # that row is gone
                self.move_cursor(row=0)


def _pad(text: str, width: int) -> str:
    """Right-aligned: no-break spaces in front (a cell drops ordinary leading spaces)."""
    return "\u00a0" * max(0, width - len(text)) + text
