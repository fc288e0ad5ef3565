"""The search loop's side of an executor: what it reports of one rung's fold jobs
becomes the ledger's records and the search's events (``executor.FoldSink``)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from convonet.core.runs import now_iso
from convonet.core.tuning.errors import CombinationError
from convonet.core.tuning.events import FoldProgress, FoldRequeued, FoldStart
from convonet.core.tuning.executor import FoldJob

if TYPE_CHECKING:
    from convonet.core.tuning.search import Tuner


class RungSink:
    """What the executor reports of one rung's jobs, turned into the search's records
    and events (see ``executor.FoldSink``)."""

    def __init__(self, tuner: Tuner, left: dict[int, int]) -> None:
        self.tuner = tuner
        self.left = left  # combination -> folds still to finish
        self.resolved: set[tuple[int, int, int]] = set()

    def wanted(self, job: FoldJob) -> bool:
        return not self.tuner.plan.failed_at(job.combination_index, job.rung)

    def started(self, job: FoldJob, worker: str) -> None:
        self.tuner.report(FoldStart(job.combination_index,
                                    self.tuner.plan.candidates[job.combination_index],
                                    job.fold, rung=job.rung, worker=worker))

    def progress(self, job: FoldJob, epoch: int, epochs: int, logs: Mapping[str, Any],
                 worker: str) -> None:
        self.tuner.report(FoldProgress(
            job.combination_index, job.fold, epoch, epochs,
            loss=float(logs.get("loss", math.nan)),
            accuracy=float(logs.get("accuracy", math.nan)), rung=job.rung, worker=worker))

    def finished(self, job: FoldJob, rec: dict[str, Any], worker: str) -> None:
        if not self.wanted(job):  # its combination failed meanwhile: dropped
            return
        tuner, ci = self.tuner, job.combination_index
        rec.update({"kind": "fold", "rung": job.rung, "n_resources": job.n_resources,
                    "combination_index": ci, "params": tuner.plan.candidates[ci],
                    "fold": job.fold, "time": now_iso()})
        tuner.store.record(rec)
        tuner.plan.add_fold(rec)
        self.resolved.add(job.key)
        tuner._fold_done(rec, worker=worker)
        self.left[ci] -= 1
        if self.left[ci] == 0:  # a whole combination: the failures in a row end
            tuner.failed_in_a_row.clear()

    def failed(self, job: FoldJob, exc: CombinationError, worker: str,
               trace: str = "") -> None:
        if not self.wanted(job):  # another of its folds failed first
            return
        self.resolved.add(job.key)
        self.tuner._fail(job.rung, job.combination_index, job.fold, exc, trace)

    def requeued(self, job: FoldJob, worker: str, reason: str) -> None:
        self.tuner.report(FoldRequeued(job.combination_index, job.fold, job.rung, worker,
                                       reason))
