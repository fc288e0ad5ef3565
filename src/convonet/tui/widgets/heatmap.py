"""The confusion matrix as a coloured text heatmap.

Rows are true classes, columns predicted ones, with index and name on both axes and the
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


def confusion_table(matrix: np.ndarray, class_names: Sequence[str], *,
                    name_width: int = 14) -> Table:
    """A rich Table: the heatmap with a header row and column of ``index name``."""
    cm = np.asarray(matrix)
    n = cm.shape[0]
    totals = cm.sum(axis=1, keepdims=True).astype(float)
    shares = np.divide(cm, totals, out=np.zeros_like(cm, dtype=float), where=totals > 0)
    width = max(3, len(str(int(cm.max()))) if cm.size else 1)
    # Short enough not to wrap over a few classes; the corner cell says which axis is which.
    table = Table(title="Confusion matrix",
                  show_lines=False, pad_edge=False, box=None, padding=(0, 0),
                  title_style="bold")
    table.add_column("true \\ pred", no_wrap=True, overflow="ellipsis", max_width=name_width + 4)
    for j in range(n):
        table.add_column(Text(str(j), justify="center"), justify="right", no_wrap=True,
                         min_width=width + 2)
    table.add_column("n", justify="right", style="dim", no_wrap=True)
    for i in range(n):
        cells: list[Text] = []
        for j in range(n):
            rgb = share_colour(shares[i, j])
            style = Style(bgcolor=f"rgb({rgb[0]},{rgb[1]},{rgb[2]})", color=_text_on(rgb),
                          bold=(i == j))
            cells.append(Text(f" {int(cm[i, j]):>{width}} ", style=style))
        name = class_names[i] if i < len(class_names) else str(i)
        label = str(i) if name == str(i) else f"{i} {name}"  # digits: no "3 3"
        # A leading space keeps the row total apart from the last coloured cell.
        table.add_row(Text(label), *cells, Text(f" {int(totals[i, 0])}"))
    return table


def legend(class_names: Sequence[str]) -> Text:
    """Index -> name for the column headers, which show only the index."""
    return Text("  ".join(f"{i}={name}" for i, name in enumerate(class_names)), style="dim")
