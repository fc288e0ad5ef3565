"""The confusion matrix as a coloured text heatmap.

Rows are true classes, columns predicted ones, with the class names on both axes and the
count in each cell. A cell's colour is its share of the row (what fraction of that true
class went there), so a good model shows a bright diagonal whatever the class sizes.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from rich.style import Style
from rich.table import Table
from rich.text import Text

# From "nothing" to "all of the row": dark blue through teal to bright yellow.
_RAMP = [(24, 28, 48), (30, 58, 110), (32, 100, 140), (34, 140, 130), (90, 175, 90),
         (170, 200, 60), (250, 230, 50)]


def share_colour(share: float) -> tuple[int, int, int]:
    """Interpolate the ramp at ``share`` (0..1)."""
    share = float(np.clip(share, 0.0, 1.0)) * (len(_RAMP) - 1)
    low = int(np.floor(share))
    high = min(low + 1, len(_RAMP) - 1)
    t = share - low
    return tuple(int(round(a + (b - a) * t)) for a, b in zip(_RAMP[low], _RAMP[high],
                                                              strict=True))  # type: ignore


def _text_on(rgb: tuple[int, int, int]) -> str:
    luminance = 0.299 * rgb[0] + 0.587 * rgb[1] + 0.114 * rgb[2]
    return "black" if luminance > 140 else "white"


def shorten(text: str, width: int) -> str:
    """``text`` cut to ``width`` characters with an ellipsis."""
    return text if len(text) <= width else text[:max(1, width - 1)] + "…"


def confusion_table(matrix: np.ndarray, class_names: Sequence[str], *,
                    name_width: int = 14, width: int | None = None) -> Table:
    """A rich Table: the heatmap with the class names on both axes.

    Rows are true classes, columns predicted ones, both named (not numbered: folders named
    0, 1, 10, 11, 2 ... have index 2 = class "10", so an index would mislead). Column
    headers are shortened to fit ``width`` (the console's) when the names are long; the
    caption then says the columns follow the rows' order.
    """
    cm = np.asarray(matrix)
    n = cm.shape[0]
    totals = cm.sum(axis=1, keepdims=True).astype(float)
    shares = np.divide(cm, totals, out=np.zeros_like(cm, dtype=float), where=totals > 0)
    digits = max(3, len(str(int(cm.max()))) if cm.size else 1)
    names = [str(class_names[i]) if i < len(class_names) else str(i) for i in range(n)]
    corner = "true \\ pred"
    label_width = min(name_width + 4, max([len(corner), *map(len, names)]))
    total_width = len(str(int(totals.max()))) + 1 if cm.size else 2
    longest = max(map(len, names), default=1)
    # Each column gets an even share of what the row labels and totals leave (at least a
    # count's width, at most 10 characters): the table keeps to the console's width.
    room = 10 if width is None else (width - label_width - total_width) // max(n, 1) - 1
    head = max(digits + 2, min(10, longest, room))
    headers = [shorten(name, head) for name in names]
    table = Table(title="Confusion matrix",
                  show_lines=False, pad_edge=False, box=None, padding=(0, 0),
                  title_style="bold")
    table.add_column(corner, no_wrap=True, overflow="ellipsis", max_width=name_width + 4)
    for header in headers:
        # A leading space keeps neighbouring names apart.
        table.add_column(Text(f" {header}", justify="right"), justify="right", no_wrap=True,
                         min_width=digits + 2)
    table.add_column("n", justify="right", style="dim", no_wrap=True)
    for i in range(n):
        cells: list[Text] = []
        for j in range(n):
            rgb = share_colour(shares[i, j])
            style = Style(bgcolor=f"rgb({rgb[0]},{rgb[1]},{rgb[2]})", color=_text_on(rgb),
                          bold=(i == j))
            cells.append(Text(f" {int(cm[i, j]):>{digits}} ", style=style))
        # A leading space keeps the row total apart from the last coloured cell.
        table.add_row(Text(names[i]), *cells, Text(f" {int(totals[i, 0])}"))
    if headers != names:
        table.caption = "columns: predicted, in the rows' order"
        table.caption_justify = "left"
    return table


def legend(class_names: Sequence[str]) -> Text:
    """Index -> name for the column headers, which show only the index."""
    return Text("  ".join(f"{i}={name}" for i, name in enumerate(class_names)), style="dim")
