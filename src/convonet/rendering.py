"""Rendering shared by the app and the headless commands: rich renderables and the text of
durations, byte sizes and paths, one implementation each.

Imports rich (and the plain-Python core helpers it re-exports), never textual: the headless
commands draw with it without loading the app.

- ``confusion_table``: the confusion matrix as a coloured heatmap (rows true classes,
  columns predicted ones, a cell's colour its share of the row), with ``share_colour``,
  ``legend`` and ``shorten``;
- ``format_duration`` (``42s``, ``3m05s``, ``2h07m``), ``format_bytes`` (``812.0 KB``),
  ``display_path`` (below the working folder: relative; below home: ``~/...``);
- ``summary_table``, ``history_table``, ``report_table``, ``tuning_table``: what a model,
  a training, a prediction and a search came to, as rich tables.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from rich.style import Style
from rich.table import Table
from rich.text import Text

from convonet.core.run_history import format_duration
from convonet.core.storage import size_text as format_bytes

__all__ = ["confusion_table", "display_path", "format_bytes", "format_duration",
           "history_table", "legend", "params_text", "report_table", "share_colour",
           "shorten", "status_text", "summary_table", "tuning_table"]


# ---- paths ------------------------------------------------------------------------------
def display_path(path: str | os.PathLike[str] | None) -> str:
    """A path as a person reads it: relative to the working folder when below it (shorter,
    and the same on any machine), else with the home folder as ``~``; "" for no path."""
    if path is None:
        return ""
    p = Path(path)
    try:
        return str(p.resolve().relative_to(Path.cwd().resolve()))
    except (OSError, ValueError):
        pass
    try:
        home = Path.home().resolve()
        return str(Path("~") / p.resolve().relative_to(home))
    except (OSError, RuntimeError, ValueError):  # no home, or not below it
        return str(p)


def params_text(params: Mapping[str, Any], only: Sequence[str] = ()) -> str:
    """``init_rate=0.02 num_filters=16``: the searched fields when given, else all."""
    names = [k for k in only if k in params] or sorted(params)
    return " ".join(f"{k}={params[k]}" for k in names)


# ---- the confusion matrix heatmap ------------------------------------------------------
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


# ---- tables -----------------------------------------------------------------------------
def summary_table(summary: Any) -> Table:
    table = Table(title=f"Model {summary.name}", title_justify="left")
    table.add_column("Layer (type)")
    table.add_column("Output shape")
    table.add_column("Params", justify="right")
    for row in summary.rows:
        table.add_row(f"{row.name} ({row.type})", row.output_shape, f"{row.params:,}")
    table.caption = "\n".join(f"{label}: {count:,} ({size})"
                               for label, count, size in summary.totals())
    table.caption_justify = "left"
    return table


def _num(value: float | None, digits: int = 4) -> str:
    return "" if value is None else f"{value:.{digits}f}"


def history_table(history: Any) -> Table:
    table = Table(title="Training history", title_justify="left")
    for name in ("epoch", "loss", "accuracy"):
        table.add_column(name, justify="right")
    if history.validation:
        table.add_column("val_loss", justify="right")
        table.add_column("val_accuracy", justify="right")
    table.add_column("lr", justify="right")
    table.add_column("seconds", justify="right")
    best = history.best_epoch
    for r in history.rows:
        cells = [f"{r.epoch}{' (partial)' if r.partial else ''}", _num(r.loss),
                 _num(r.accuracy)]
        if history.validation:
            cells += [_num(r.val_loss), _num(r.val_accuracy)]
        cells += [f"{r.learning_rate:.4g}", f"{r.seconds:.1f}"]
        table.add_row(*cells, style="bold" if r.epoch == best else None)
    return table


def report_table(prediction: Any) -> Table:
    table = Table(title="Per-class report", title_justify="left")
    # Index and name apart: "4 2" would hide that folder "2" has index 4.
    for name, justify in (("index", "right"), ("class", "left"), ("precision", "right"),
                          ("recall", "right"), ("F1", "right"), ("support", "right")):
        table.add_column(name, justify=justify)  # type: ignore[arg-type]
    for r in prediction.report_rows():
        table.add_row("" if r.index < 0 else str(r.index), r.name, f"{r.precision:.3f}",
                      f"{r.recall:.3f}", f"{r.f1:.3f}", str(r.support),
                      style="dim" if r.index < 0 else None)
    return table


def tuning_table(result: Any, limit: int = 30) -> Table:
    searched = list(result.searched)
    table = Table(title=f"Tuning results ({result.strategy}, best first)",
                  title_justify="left")
    table.add_column("rank", justify="right")
    if result.strategy == "halving":
        table.add_column("rung", justify="right")
        table.add_column("images", justify="right")
    for name in searched or ["params"]:
        table.add_column(name, justify="right", no_wrap=True)
    for name in ("accuracy", "std", "loss", "fit s", "status"):
        table.add_column(name, justify="right")
    table.caption = "accuracy, std, loss and fit time: over the held-out folds"
    table.caption_justify = "left"
    for row in result.ranked()[:limit]:
        cells = [str(row["rank_test_score"])]
        if result.strategy == "halving":
            cells += [str(row["iter"] + 1), str(row["n_resources"])]
        if searched:
            cells += [str(row["params"].get(name, "")) for name in searched]
        else:
            cells.append(params_text(row["params"]))
        ok = row["status"] == "ok"
        cells += [_num(row["mean_test_score"]) if ok else "", _num(row["std_test_score"])
                  if ok else "", _num(row["mean_test_loss"]) if ok else "",
                  _num(row["mean_fit_time"], 1) if ok else "",
                  "ok" if ok else status_text(row)]
        table.add_row(*cells, style="bold" if ok and row["rank_test_score"] == 1 else None)
    return table


def status_text(row: Mapping[str, Any]) -> str:
    """A row's status cell when it has no score: why (an invalid one says so first)."""
    if row["status"] == "invalid":
        return f"invalid: {row['reason']}"
    return str(row["reason"] or row["status"])

