"""What the tuning screen writes: words and numbers, the plan, and its two tables' rows.

Pure functions over the hyper params, the core's tuning events and its ``TuneResult``; the
screen (``convonet.tui.screens.tuning``) decides when to draw them.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from convonet.core.architecture import all_invalid_message, grid_problems
from convonet.tui.formatting import display_path
from convonet.tui.widgets.sortable_table import Column
from convonet.tui.widgets.train_progress import format_duration

if TYPE_CHECKING:
    from convonet.core.data import Dataset
    from convonet.core.params import HyperParams
    from convonet.core.tuning import TuneResult, TuneStart

#: Short column names for the searched fields, so a 5-field grid fits 80 columns.
SHORT_NAMES = {
    "batch_size": "batch", "epochs": "epochs", "init_rate": "lr", "decay": "decay",
    "momentum": "mom", "num_filters": "filters", "kernel_size": "kernel",
    "num_units": "units", "dropout": "drop", "batch_norm": "bn", "conv_blocks": "blocks",
    "convs_per_block": "convs", "filter_growth": "growth", "augment": "aug", "optimizer": "opt",
    "weight_decay": "wd", "label_smoothing": "smooth", "backbone": "backbone",
    "backbone_weights": "weights", "frozen_epochs": "frozen",
}

FAILED_STYLE = "red"
BEST_STYLE = "bold green"
DIM_STYLE = "dim"


# ---- words and numbers ------------------------------------------------------------------
def short(name: str) -> str:
    return SHORT_NAMES.get(name, name)


def fmt_value(value: Any) -> str:
    """A hyper param value as typed in the params files (0.02, not 0.020000)."""
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def fmt_pct(value: Any) -> str:
    return f"{float(value) * 100:.1f}"


def fmt_loss(value: Any) -> str:
    return f"{float(value):.4f}"


def fmt_secs(value: Any) -> str:
    return f"{float(value):.1f}"


def params_text(params: Mapping[str, Any] | None, searched: Sequence[str]) -> str:
    """``lr 0.05, filters 32``: the searched values of a combination ("" if none vary)."""
    if not params:
        return ""
    return ", ".join(f"{short(n)} {fmt_value(params[n])}" for n in searched if n in params)


def tuning_images(hyper_params: HyperParams, n_images: int) -> int:
    """How many images the stratified tuning share holds (as ``train_test_split`` counts)."""
    share = float(hyper_params.tuning_share)
    return n_images if share >= 1.0 else int(math.floor(share * n_images))


def runnable_combinations(hyper_params: HyperParams, train_set: Dataset | None) -> int:
    """The combinations the core will run: those whose layers fit the training images."""
    combos = hyper_params.grid_size()
    if train_set is None:
        return combos
    return combos - len(grid_problems(hyper_params, train_set.image_shape))


def plan_text(hyper_params: HyperParams, train_set: Dataset | None) -> str:
    """What the next search will run, before it starts (the core's count comes later)."""
    folds = int(hyper_params.cv_folds)
    combos = hyper_params.grid_size()
    runnable = runnable_combinations(hyper_params, train_set)
    invalid = f" · {combos - runnable} invalid, not run" if runnable < combos else ""
    strategy = str(hyper_params.search)
    images = ""
    if train_set is not None:
        n = tuning_images(hyper_params, len(train_set))
        images = f" on {n:,} images ({float(hyper_params.tuning_share):.0%})"
    if strategy == "halving" and runnable > 1:
        if train_set is None:
            return (f"Successive halving: {combos} combinations × {folds} folds, the best "
                    f"on more images each rung")
        schedule = halving_schedule(hyper_params, train_set)
        if isinstance(schedule, str):
            return f"Successive halving cannot run on this set: {schedule}"
        fits = sum(c for c, _ in schedule) * folds
        return (f"Successive halving: {'→'.join(str(c) for c, _ in schedule)} candidates "
                f"on {'→'.join(f'{n:,}' for _, n in schedule)} images × {folds} folds = "
                f"up to {fits} fits{invalid}")
    return (f"Grid search: {combos} combination{'s' if combos != 1 else ''} × {folds} folds"
            f" = {runnable * folds} fits{images}{invalid}")


def halving_schedule(hyper_params: HyperParams, train_set: Dataset
                     ) -> list[tuple[int, int]] | str:
    """(candidates, images) per rung as the core will run them, or why it cannot run."""
    from convonet.core.tuning import TuningError
    from convonet.core.tuning import halving_schedule as schedule

    try:
        return schedule(runnable_combinations(hyper_params, train_set),
                        tuning_images(hyper_params, len(train_set)),
                        int(hyper_params.cv_folds), int(train_set.num_classes))
    except TuningError as exc:
        return str(exc)


def searched_text(hyper_params: HyperParams) -> str:
    searched = hyper_params.searched()
    if not searched:
        return "Searching nothing: give a field several values (\"16,32\") on the Params " \
               "screen (1)"
    return "Searching " + " · ".join(
        f"{short(k)} {'/'.join(fmt_value(v) for v in vals)}" for k, vals in searched.items())




def info_text(hyper_params: HyperParams, train_set: Dataset | None) -> str:
    """The info lines between searches: what ``t`` would run now."""
    try:
        return f"{plan_text(hyper_params, train_set)}\n{searched_text(hyper_params)}"
    except (AttributeError, KeyError, TypeError, ValueError) as exc:
        return f"The hyper params cannot be searched: {exc}"


def search_problem(hyper_params: HyperParams, train_set: Dataset | None) -> str | None:
    """Why a search of ``hyper_params`` cannot start on ``train_set``, or None."""
    if train_set is None:
        return "no training set: load it on the Data screen (2)"
    hp = hyper_params
    problems = grid_problems(hp, train_set.image_shape)
    if len(problems) == hp.grid_size():  # the core would refuse it the same way
        return all_invalid_message(problems)
    if str(hp.search) == "halving" and len(problems) < hp.grid_size() - 1:
        schedule = halving_schedule(hp, train_set)
        if isinstance(schedule, str):
            return f"{schedule} (g switches to the full grid)"
    return None


def apply_problem(result: TuneResult | None) -> str | None:
    """Why ``result``'s best combination cannot be applied, or None."""
    if result is None:
        return "no tuning result yet: t runs a search"
    if not result.best_params:
        return "no combination finished all its folds: run a longer search"
    return None


def status_text(reason: str | None, run_dir: str, running: bool) -> str:
    """One line: why tuning cannot start, or where the results are on disk."""
    if reason:
        return f"Cannot tune: {reason}"
    if run_dir and running:
        return f"Saving each fold to {display_path(run_dir)}/folds.jsonl"
    if run_dir:
        return f"Saved in {display_path(run_dir)}/: results.csv, folds.jsonl"
    return "t starts the search · s stops it (finished folds kept) · g grid/halving"


def _nan(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


# ---- the tables ------------------------------------------------------------------------
def partial_columns(searched: Sequence[str], strategy: str) -> list[Column]:
    """The partial table: one row per fold (halving: with its rung and images)."""
    cols = [Column("n", "#", str, "right")]
    cols += [Column(f"p:{n}", short(n), fmt_value, "right") for n in searched]
    if strategy == "halving":
        cols += [Column("rung", "rung", str, "right"),
                 Column("images", "imgs", str, "right")]
    cols += [Column("fold", "fold", str, "right"),
             Column("acc", "acc %", fmt_pct, "right", descending=True),
             Column("loss", "loss", fmt_loss, "right"),
             Column("secs", "secs", fmt_secs, "right"),
             Column("note", "note", str)]
    return cols


def result_columns(searched: Sequence[str], strategy: str) -> list[Column]:
    """The results table: one row per combination (halving: per rung)."""
    cols = [Column("rank", "rank", str, "right"), Column("n", "#", str, "right")]
    cols += [Column(f"p:{n}", short(n), fmt_value, "right") for n in searched]
    if strategy == "halving":
        cols += [Column("rung", "rung", str, "right"),
                 Column("images", "imgs", str, "right")]
    cols += [Column("acc", "mean acc %", fmt_pct, "right", descending=True),
             Column("std", "± std", fmt_pct, "right"),
             Column("loss", "mean loss", fmt_loss, "right"),
             Column("folds", "folds", str, "right"),
             Column("fit", "fit s", fmt_secs, "right"),
             Column("status", "status", str)]
    return cols


def fold_row(searched: Sequence[str], *, ci: int, params: Mapping[str, Any], fold: int,
             accuracy: float, loss: float, seconds: float, rung: int, n_resources: int,
             resumed: bool) -> dict[str, Any]:
    """A finished fold of the partial table."""
    row: dict[str, Any] = {"_key": f"fold-{rung}-{ci}-{fold}", "n": ci + 1,
                           "fold": fold + 1, "acc": accuracy, "loss": loss,
                           "secs": seconds, "rung": rung + 1, "images": n_resources,
                           "note": "from an earlier run" if resumed else ""}
    row.update({f"p:{n}": params.get(n) for n in searched})
    return row


def failed_row(searched: Sequence[str], *, ci: int, params: Mapping[str, Any], reason: str,
               rung: int, fold: int | None = None, status: str = "failed") -> dict[str, Any]:
    """A combination that failed (or, ``status="invalid"``, was never run; or
    ``"diverged"``) and why."""
    note = reason if reason.startswith(status) else f"{status}: {reason}"
    row: dict[str, Any] = {"_key": f"{status}-{rung}-{ci}", "n": ci + 1, "fold": None,
                           "acc": None, "loss": None, "secs": None, "rung": rung + 1,
                           "images": None, "note": note,
                           "_style": FAILED_STYLE}
    if fold is not None:
        row["fold"] = fold + 1
    row.update({f"p:{n}": params.get(n) for n in searched})
    return row


def partial_rows(result: TuneResult, searched: Sequence[str]) -> list[dict[str, Any]]:
    """Every fold of a finished or stopped search, then its failures and invalid ones."""
    rows = []
    for rec in result.folds:
        rows.append(fold_row(
            searched, ci=int(rec["combination_index"]), params=rec["params"],
            fold=int(rec["fold"]), accuracy=float(rec["accuracy"]), loss=float(rec["loss"]),
            seconds=float(rec.get("fit_time", 0.0)) + float(rec.get("score_time", 0.0)),
            rung=int(rec.get("rung", 0)), n_resources=int(rec.get("n_resources", 0)),
            resumed=bool(rec.get("resumed", False))))
    for rec in result.failures:
        rows.append(failed_row(searched, ci=int(rec["combination_index"]),
                               params=rec["params"], reason=str(rec["reason"]),
                               rung=int(rec.get("rung", 0)), fold=rec.get("fold"),
                               status="diverged" if rec.get("diverged") else "failed"))
    for rec in result.invalid:
        rows.append(failed_row(searched, ci=int(rec["combination_index"]),
                               params=rec["params"], reason=str(rec["reason"]), rung=0,
                               status="invalid"))
    return rows


def result_rows(result: TuneResult) -> list[dict[str, Any]]:
    """One row per combination (halving: per rung), best first by rank."""
    best = result.rows[result.best_index] if result.best_index is not None else None
    n_folds = max((int(c[len("split"):-len("_test_score")]) + 1 for c in result.columns
                   if c.startswith("split") and c.endswith("_test_score")), default=0)
    rows = []
    for r in result.rows:
        done = sum(1 for k in range(n_folds) if not _nan(r.get(f"split{k}_test_score")))
        status = str(r.get("status", ""))
        text = status if status == "ok" else (str(r.get("reason")) or status)
        if status in ("failed", "invalid"):
            text = f"{status}: {r.get('reason')}"
        style = BEST_STYLE if r is best else FAILED_STYLE if status in (
            "failed", "invalid", "diverged") else DIM_STYLE if status != "ok" else ""
        # a failed (or diverged) row's few folds are no score; an invalid one has none
        scored = status not in ("failed", "invalid", "diverged")
        row: dict[str, Any] = {
            "_key": f"comb-{r.get('iter', 0)}-{r['combination_index']}",
            "rank": int(r["rank_test_score"]), "n": int(r["combination_index"]) + 1,
            "rung": int(r.get("iter", 0)) + 1, "images": r.get("n_resources"),
            "acc": r.get("mean_test_score") if scored else None,
            "std": r.get("std_test_score") if scored else None,
            "loss": r.get("mean_test_loss") if scored else None,
            "folds": f"{done}/{n_folds}",
            "fit": r.get("mean_fit_time"),
            "status": "best" if r is best else text, "_style": style}
        params = r.get("params") or {}
        row.update({f"p:{n}": params.get(n) for n in result.searched})
        rows.append(row)
    return rows


def ended_text(result: TuneResult) -> str:
    """How the search ended, in one line: fits done, the best so far, what ``a`` does."""
    if result.best_params is not None and result.best_score is not None:
        best = (f"best {result.best_score * 100:.1f}% "
                f"({params_text(result.best_params, result.searched) or 'the only one'})"
                f" · a applies it")
    else:
        best = "no combination finished all its folds"
    if result.stopped:
        return f"Stopped after {result.fits_done} of {result.total_fits} fits · {best}"
    diverged = len(result.diverged)
    failures = len(result.failures) - diverged
    failed = f" · {failures} failed" if failures else ""
    if diverged:
        failed += f" · {diverged} diverged"
    if result.invalid:
        failed += f" · {len(result.invalid)} invalid"
    return f"Done: {result.fits_done} fits{failed} · {best}"


def start_plan(event: TuneStart) -> str:
    """What a starting search will run, from the core's exact count."""
    plan = (f"{event.total_fits} fits: {event.combinations} combinations × "
            f"{event.folds} folds on {event.samples:,} images")
    if event.strategy == "halving":
        plan = (f"Successive halving: up to {event.total_fits} fits · "
                f"{event.combinations} combinations × {event.folds} folds · "
                f"up to {event.samples:,} images")
    else:
        plan = f"Grid search, {plan}"
    if event.invalid:
        plan += f" · {event.invalid} invalid, not run"
    return plan


@dataclass
class SearchProgress:
    """A running search's count of fits, for the progress line and its ETA."""

    total: int = 0
    done: int = 0
    #: Seconds of the fits run now (not replayed from an earlier run), for the ETA.
    fit_seconds: list[float] = field(default_factory=list)
    last: str = ""
    rung: str = ""

    def eta(self) -> float | None:
        """Seconds left: the mean time of the fits run so far times the fits to go."""
        if not self.fit_seconds:
            return None
        per_fit = sum(self.fit_seconds) / len(self.fit_seconds)
        return per_fit * max(0, self.total - self.done)

    def line(self) -> str:
        """``Fits 3/12 · ETA 1m02s · last #2 fold 1: 91.0% · s stops``."""
        eta = self.eta()
        parts = [f"Fits {self.done}/{self.total}"]
        if self.rung:
            parts.append(self.rung)
        parts.append(f"ETA {format_duration(eta)}" if eta is not None
                     else "ETA after the first fit")
        if self.last:
            parts.append(f"last {self.last}")
        parts.append("s stops")
        return " · ".join(parts)
