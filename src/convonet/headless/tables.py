"""The rich tables the headless commands print: model summary, training history, per-class
report and tuning results."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from rich.table import Table

from convonet.headless.output import params_text


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

