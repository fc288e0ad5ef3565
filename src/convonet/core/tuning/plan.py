"""The search plan (keras-tuner's Oracle): which combinations to fit, the halving schedule,
who is promoted, and each combination's state.

Pure: no data, no model, no files. It is built from the hyper params and the tuning
share's size, and its state comes only from the fold records (``add``), so a resumed
search is the plan rebuilt from the run's folds.jsonl (``SearchPlan.from_records``).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
from sklearn.model_selection import ParameterGrid

from convonet.core.architecture import (
    ArchitectureProblem,
    all_invalid_message,
    architecture_problem,
)
from convonet.core.params import HyperParams
from convonet.core.runs import FOLDS_JSONL
from convonet.core.tuning.data import norm_params
from convonet.core.tuning.errors import FatalTuningError, InvalidGridError

STRATEGIES = ("grid", "halving")
HALVING_FACTOR = 3


def halving_schedule(n_candidates: int, n_samples: int, n_splits: int, n_classes: int,
                     factor: int = HALVING_FACTOR) -> list[tuple[int, int]]:
    """(candidates, samples) per rung, as HalvingGridSearchCV computes it.

    resource=n_samples, min_resources="exhaust", max_resources=n_samples,
    aggressive_elimination=False (scikit-learn's defaults).
    """
    min_resources = n_splits * 2 * n_classes  # scikit-learn's "smallest"
    n_required = 1 + math.floor(math.log(n_candidates, factor))
    min_resources = max(min_resources, n_samples // factor ** (n_required - 1))
    if min_resources > n_samples:
        raise FatalTuningError(f"successive halving needs at least {min_resources} images "
                               f"(2 x folds x classes); the tuning share has {n_samples}")
    n_possible = 1 + math.floor(math.log(n_samples // min_resources, factor))
    rungs = []
    candidates = n_candidates
    for itr in range(min(n_possible, n_required)):
        rungs.append((candidates, min(int(factor**itr * min_resources), n_samples)))
        candidates = math.ceil(candidates / factor)
    return rungs




class SearchPlan:
    """Candidates, rungs and combination states of one search."""

    def __init__(self, hyper_params: HyperParams, n_samples: int, n_classes: int,
                 image_shape: tuple[int, int, int]) -> None:
        self.strategy = str(hyper_params.search)
        if self.strategy not in STRATEGIES:
            raise FatalTuningError(f"unknown search strategy {self.strategy!r}")
        self.n_folds = int(hyper_params.cv_folds)
        self.base_config = hyper_params.first()
        self.grid = hyper_params.grid()
        self.candidates = [norm_params(p) for p in ParameterGrid(self.grid)]
        self.searched = sorted(hyper_params.searched())
        # Training refuses these configurations, so tuning never fits or ranks them.
        self.invalid: dict[int, ArchitectureProblem] = {}
        for ci, params in enumerate(self.candidates):
            problem = architecture_problem({**self.base_config, **params}, image_shape)
            if problem is not None:
                self.invalid[ci] = problem
        if len(self.invalid) == len(self.candidates):
            raise InvalidGridError(all_invalid_message(list(self.invalid.values())))
        self.valid = [ci for ci in range(len(self.candidates)) if ci not in self.invalid]
        if self.strategy == "halving" and len(self.valid) > 1:
            self.schedule = halving_schedule(len(self.valid), n_samples, self.n_folds,
                                             n_classes)
        else:
            self.schedule = [(len(self.valid), n_samples)]
        self.planned = [c for c, _ in self.schedule]  # candidates per rung, as now known
        self.total_fits = sum(self.planned) * self.n_folds
        # state, from the records
        self.folds: dict[tuple[int, int, int], dict[str, Any]] = {}  # (rung, comb, fold)
        self.failed: dict[int, dict[str, Any]] = {}  # combination -> failure record
        self.invalid_recorded: set[int] = set()
        self.rung_members: list[list[int]] = []

    @classmethod
    def from_records(cls, hyper_params: HyperParams, n_samples: int, n_classes: int,
                     image_shape: tuple[int, int, int],
                     records: Iterable[Mapping[str, Any]]) -> SearchPlan:
        """The plan of a search that already recorded ``records`` (its folds.jsonl)."""
        plan = cls(hyper_params, n_samples, n_classes, image_shape)
        plan.load_records(records)
        return plan

    def load_records(self, records: Iterable[Mapping[str, Any]]) -> None:
        """Take the folds and failures an earlier run of this search already recorded."""
        for rec in records:
            ci = int(rec["combination_index"])
            if ci >= len(self.candidates) or norm_params(rec["params"]) != self.candidates[ci]:
                raise FatalTuningError(f"{FOLDS_JSONL} does not match this grid "
                                       f"(combination {ci})")
            if rec.get("kind") == "invalid":
                self.invalid_recorded.add(ci)
            elif ci in self.invalid:
                continue  # fitted by a version that did not check: never a score now
            elif rec.get("kind") == "failed":
                self.failed[ci] = dict(rec)
            elif rec.get("kind") == "fold":
                # marked for the tables: this fold comes from the earlier run, not this one
                self.folds[(int(rec["rung"]), ci, int(rec["fold"]))] = {**rec, "resumed": True}

    # ---- states ----------------------------------------------------------------------
    def failed_at(self, ci: int, rung: int) -> bool:
        """A combination can pass a rung and fail a later one (e.g. out of memory on more
        samples); only its own rung treats it as failed, also on resume."""
        failure = self.failed.get(ci)
        return failure is not None and int(failure["rung"]) == rung

    def recorded_fits(self) -> int:
        """Folds already recorded that count as done (a failed combination's do not)."""
        return sum(1 for (rung, ci, _) in self.folds if not self.failed_at(ci, rung))

    def add_fold(self, rec: dict[str, Any]) -> None:
        self.folds[(int(rec["rung"]), int(rec["combination_index"]), int(rec["fold"]))] = rec

    def add_failure(self, rec: dict[str, Any]) -> None:
        """A combination failed at ``rec["fold"]``: the folds it finished in this rung stay
        counted, those it will not run leave the plan (run one after another, the folds
        before ``rec["fold"]``; on several workers, any of them)."""
        ci, rung = int(rec["combination_index"]), int(rec["rung"])
        self.failed[ci] = rec
        finished = sum((rung, ci, k) in self.folds for k in range(self.n_folds))
        self.total_fits -= self.n_folds - finished

    def skip_failed(self) -> None:
        """A combination that failed in an earlier run of this rung is not retried."""
        self.total_fits -= self.n_folds

    def invalid_record(self, ci: int) -> dict[str, Any]:
        """An invalid combination as folds.jsonl and ``TuneResult.invalid`` hold it."""
        problem = self.invalid[ci]
        return {"kind": "invalid", "rung": 0, "combination_index": ci,
                "params": self.candidates[ci], "field": problem.field,
                "reason": problem.message}

    # ---- rungs -----------------------------------------------------------------------
    def members(self, rung: int) -> list[int]:
        """The candidates of ``rung``: every valid one first, then the best of the rung
        before (halving); fewer than scheduled (failures) means fewer fits to come."""
        if rung == 0:
            members = list(self.valid)
        else:
            members = self.promote(rung - 1, self.rung_members[rung - 1])
            self._replan(rung, len(members))
        if members:
            self.rung_members.append(members)
        return members

    def promote(self, rung: int, members: Sequence[int]) -> list[int]:
        """The best ceil(n / factor) complete candidates of a rung (failed ones never)."""
        scored = []
        for ci in members:
            recs = [self.folds.get((rung, ci, k)) for k in range(self.n_folds)]
            if self.failed_at(ci, rung) or any(r is None for r in recs):
                continue
            scored.append((float(np.mean([r["accuracy"] for r in recs if r])), ci))
        keep = math.ceil(len(members) / HALVING_FACTOR)
        best = sorted(scored, key=lambda s: (-s[0], s[1]))[:keep]
        return sorted(ci for _, ci in best)

    def _replan(self, rung: int, n_members: int) -> None:
        old = sum(self.planned[rung:])
        c = n_members
        for j in range(rung, len(self.planned)):
            self.planned[j] = c
            c = math.ceil(c / HALVING_FACTOR)
        self.total_fits += (sum(self.planned[rung:]) - old) * self.n_folds
