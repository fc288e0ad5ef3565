"""The confusion heatmap as a DataTable, for matrices too big for the screen.

Same cells as ``heatmap.confusion_table`` (rows true, columns predicted, counts coloured by
their share of the row), but the header row and the class column stay in place while the
counts scroll, so the 40th column of a 40-class matrix still says which row it is in.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from rich.style import Style
from rich.text import Text
from textual.widgets import DataTable

from convonet.tui.widgets.heatmap import share_colour


def _text_on(rgb: tuple[int, int, int]) -> str:
    luminance = 0.299 * rgb[0] + 0.587 * rgb[1] + 0.114 * rgb[2]
    return "black" if luminance > 140 else "white"


def class_axis_label(index: int, name: str) -> str:
    """``index name``; just the index when a class is named by its index (digits)."""
    return str(index) if name == str(index) else f"{index} {name}"


class ConfusionGrid(DataTable[Any]):
    """Rows true, columns predicted; the first column and the header stay put."""

    DEFAULT_CSS = """
    ConfusionGrid { height: auto; max-height: 32; width: auto; max-width: 100%; }
    """

    def __init__(self, *, name_width: int = 18, **kwargs: Any) -> None:
        super().__init__(cursor_type="none", cell_padding=0, zebra_stripes=False,
                         fixed_columns=1, **kwargs)
        self.name_width = name_width
        self.matrix: np.ndarray = np.zeros((0, 0), dtype=np.int64)

    def show(self, matrix: np.ndarray, class_names: Sequence[str]) -> None:
        """Replace the grid with ``matrix`` labelled by ``class_names``."""
        cm = np.asarray(matrix, dtype=np.int64)
        self.matrix = cm
        self.clear(columns=True)
        n = cm.shape[0]
        totals = cm.sum(axis=1)
        shares = np.divide(cm, totals[:, None], out=np.zeros(cm.shape, dtype=float),
                           where=totals[:, None] > 0)
        width = max(3, len(str(int(cm.max()))) if cm.size else 1)
        labels = [class_axis_label(i, class_names[i] if i < len(class_names) else str(i))
                  for i in range(n)]
        corner = "true \\ pred"
        label_width = min(self.name_width, max([len(corner), *map(len, labels)])) + 1
        self.add_column(Text(corner, style="bold"), width=label_width, key="true")
        for j in range(n):
            self.add_column(Text(str(j), justify="center", style="bold"), width=width + 2,
                            key=f"pred-{j}")
        self.add_column(Text("n", justify="right"), width=len(str(int(totals.max()
                                                                        if n else 0))) + 1,
                        key="n")
        for i in range(n):
            cells: list[Text] = []
            for j in range(n):
                rgb = share_colour(shares[i, j])
                style = Style(bgcolor=f"rgb({rgb[0]},{rgb[1]},{rgb[2]})",
                              color=_text_on(rgb), bold=(i == j))
                cells.append(Text(f" {int(cm[i, j]):>{width}} ", style=style))
            label = labels[i]
            if len(label) > label_width - 1:
                label = label[:label_width - 2] + "…"
            self.add_row(Text(label), *cells, Text(str(int(totals[i])), style="dim",
                                                   justify="right"), key=f"true-{i}")
