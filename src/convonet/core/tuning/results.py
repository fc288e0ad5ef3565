"""The results table: ``GridSearchCV.cv_results_``'s columns, one row per combination
(halving: per rung and candidate), ranked as scikit-learn ranks, plus the search's result."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from convonet.core.runs import RESULTS_CSV, RunFolder
from convonet.core.tuning.plan import SearchPlan


@dataclass
class TuneResult:
    """The search's table (``cv_results_`` columns), its best combination and its folds."""

    rows: list[dict[str, Any]]  # one per combination (halving: per rung and candidate)
    columns: list[str]
    folds: list[dict[str, Any]]  # every finished fold, in the order they finished
    failures: list[dict[str, Any]]
    best_index: int | None  # into rows
    best_params: dict[str, Any] | None
    best_score: float | None
    stopped: bool
    strategy: str
    searched: list[str]
    total_fits: int
    fits_done: int
    run: RunFolder | None = None
    invalid: list[dict[str, Any]] = field(default_factory=list)  # marked, never run

    @property
    def status(self) -> str:
        return "stopped" if self.stopped else "finished"

    @property
    def diverged(self) -> list[dict[str, Any]]:
        """The failure records of combinations that diverged (a part of ``failures``)."""
        return [f for f in self.failures if f.get("diverged")]

    def cv_results(self) -> dict[str, list[Any]]:
        """Column-oriented, like ``GridSearchCV.cv_results_``."""
        return {c: [row.get(c) for row in self.rows] for c in self.columns}

    def ranked(self) -> list[dict[str, Any]]:
        """Rows best first (the seed's "Grid Search Results" order)."""
        return sorted(self.rows, key=lambda r: (r["rank_test_score"],
                                                r["combination_index"], -r["iter"]))


def columns(plan: SearchPlan) -> list[str]:
    k = range(plan.n_folds)
    return (["params", *(f"param_{n}" for n in sorted(plan.grid))]
            + [f"split{i}_test_score" for i in k]
            + ["mean_test_score", "std_test_score", "rank_test_score"]
            + [f"split{i}_test_loss" for i in k]
            + ["mean_test_loss", "std_test_loss", "mean_fit_time", "std_fit_time",
               "mean_score_time", "std_score_time", "status", "reason", "iter",
               "n_resources", "combination_index"])


def rows(plan: SearchPlan) -> list[dict[str, Any]]:
    """Every row, ranked like GridSearchCV ("min" ties); incomplete, failed and invalid
    rows rank last."""
    out = [_row(plan, rung, ci) for rung, members in enumerate(plan.rung_members)
           for ci in members]
    out += [_invalid_row(plan, ci) for ci in plan.invalid]
    ok = [r for r in out if r["status"] == "ok"]
    scores = sorted((r["mean_test_score"] for r in ok), reverse=True)
    for r in out:
        r["rank_test_score"] = (scores.index(r["mean_test_score"]) + 1
                                if r["status"] == "ok" else len(ok) + 1)
    return out


def _row(plan: SearchPlan, rung: int, ci: int) -> dict[str, Any]:
    row = _blank_row(plan, ci, rung)
    recs = [plan.folds.get((rung, ci, k)) for k in range(plan.n_folds)]
    done = [r for r in recs if r is not None]
    for k, r in enumerate(recs):
        row[f"split{k}_test_score"] = r["accuracy"] if r else math.nan
        row[f"split{k}_test_loss"] = r["loss"] if r else math.nan
    for col, key in (("test_score", "accuracy"), ("test_loss", "loss"),
                     ("fit_time", "fit_time"), ("score_time", "score_time")):
        vals = [float(r[key]) for r in done]
        row[f"mean_{col}"] = float(np.mean(vals)) if vals else math.nan
        row[f"std_{col}"] = float(np.std(vals)) if vals else math.nan
    if plan.failed_at(ci, rung):
        failure = plan.failed[ci]
        row["status"] = "diverged" if failure.get("diverged") else "failed"
        row["reason"] = str(failure["reason"])
    elif len(done) == plan.n_folds:
        row["status"], row["reason"] = "ok", ""
    else:
        row["status"] = "stopped"
        row["reason"] = (f"stopped after {len(done)} of {plan.n_folds} folds"
                         if done else "not run")
    return row


def _blank_row(plan: SearchPlan, ci: int, rung: int) -> dict[str, Any]:
    params = plan.candidates[ci]
    row: dict[str, Any] = {"params": params, "iter": rung,
                           "n_resources": plan.schedule[rung][1], "combination_index": ci}
    for name in sorted(plan.grid):
        row[f"param_{name}"] = params[name]
    return row


def _invalid_row(plan: SearchPlan, ci: int) -> dict[str, Any]:
    """An invalid combination's row: no fold ran, so every score is missing."""
    row = _blank_row(plan, ci, 0)
    row["status"], row["reason"] = "invalid", plan.invalid[ci].message
    for k in range(plan.n_folds):
        row[f"split{k}_test_score"] = row[f"split{k}_test_loss"] = math.nan
    for col in ("test_score", "test_loss", "fit_time", "score_time"):
        row[f"mean_{col}"] = row[f"std_{col}"] = math.nan
    return row


def build_result(plan: SearchPlan, order: Sequence[Mapping[str, Any]], *, stopped: bool,
                 fits_done: int, run: RunFolder | None = None) -> TuneResult:
    """The result of the plan as it stands; the best row as scikit-learn picks it (halving:
    the best of the last rung with complete rows)."""
    table = rows(plan)
    best_index: int | None = None
    ok = [i for i, r in enumerate(table) if r["status"] == "ok"]
    if ok:
        last = max(table[i]["iter"] for i in ok)
        ok = [i for i in ok if table[i]["iter"] == last]
        best_index = max(ok, key=lambda i: (table[i]["mean_test_score"], -i))
    best = table[best_index] if best_index is not None else None
    return TuneResult(rows=table, columns=columns(plan), folds=[dict(r) for r in order],
                      failures=list(plan.failed.values()), best_index=best_index,
                      best_params=dict(best["params"]) if best else None,
                      best_score=float(best["mean_test_score"]) if best else None,
                      stopped=stopped, strategy=plan.strategy,
                      searched=list(plan.searched), total_fits=plan.total_fits,
                      fits_done=fits_done, run=run,
                      invalid=[plan.invalid_record(ci) for ci in plan.invalid])


def result_metrics(result: TuneResult) -> dict[str, Any]:
    """The numbers run.json keeps of a search."""
    return {"best_score": result.best_score, "best_params": result.best_params,
            "fits_done": result.fits_done, "total_fits": result.total_fits,
            "failed": len(result.failures) - len(result.diverged),
            "diverged": len(result.diverged), "invalid": len(result.invalid),
            "strategy": result.strategy}


def write_table(run: RunFolder, result: TuneResult) -> Path:
    return run.write_csv(RESULTS_CSV, result.ranked(), result.columns)


def read_results(run: RunFolder) -> list[dict[str, str]]:
    """The saved table of a run (strings, as CSV stores them)."""
    return run.read_csv(RESULTS_CSV)
