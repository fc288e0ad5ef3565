"""Where a search's folds run: the executor under the search loop.

The loop (``search.Tuner``: the grid, the folds, the halving rungs, the ledger, the
table) stays in the driver. For each rung it hands an executor the fold jobs left to
run (``FoldJob``: combination, fold, configuration, the rows of the tuning share to
train and score on) and hears back through a ``FoldSink``: a fold started on a worker,
finished an epoch, finished, failed, or lost its worker and was queued again. What the
sink makes of it (the ledger, the events, a failed combination's other folds dropped)
is the loop's business, whichever executor ran the fold.

- ``InProcessExecutor`` (the default): the folds one after another in this process, in
  the order given, with the search's own fold runner; no new dependency.
- ``convonet.core.tuning.ray_executor.RayExecutor``: long-lived Ray actors over the
  GPUs (or cores) of one or more machines; the only module that imports ray.
"""

from __future__ import annotations

import socket
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from convonet.core.events import CancelToken, Reporter, no_report
from convonet.core.tuning.errors import CombinationError
from convonet.core.tuning.events import ExecutorReady, WorkerInfo
from convonet.core.tuning.folds import FoldRunner

__all__ = ["Executor", "FoldJob", "FoldSink", "InProcessExecutor", "LOCAL_WORKER"]

#: The one worker of the in-process executor (``WorkerInfo.name``).
LOCAL_WORKER = "local"


@dataclass(frozen=True)
class FoldJob:
    """One fold to fit and score: rows of the tuning share, by index."""

    rung: int
    combination_index: int
    fold: int
    config: dict[str, Any]  # the base params with the combination's values
    train: np.ndarray
    test: np.ndarray
    n_resources: int = 0

    @property
    def key(self) -> tuple[int, int, int]:
        """(rung, combination, fold): the ledger's key of this fold."""
        return self.rung, self.combination_index, self.fold


class FoldSink(Protocol):
    """What an executor tells the search loop about its jobs (on the loop's thread)."""

    def wanted(self, job: FoldJob) -> bool:
        """False once the job's combination failed: its folds not started are skipped
        and the results of those in flight are dropped."""

    def started(self, job: FoldJob, worker: str) -> None:
        """The job was handed to ``worker``."""

    def progress(self, job: FoldJob, epoch: int, epochs: int, logs: Mapping[str, Any],
                 worker: str) -> None:
        """The job finished training epoch ``epoch`` (1-based) with these logs."""

    def finished(self, job: FoldJob, rec: dict[str, Any], worker: str) -> None:
        """The job's scores (``FoldRunner.fit_fold``'s record)."""

    def failed(self, job: FoldJob, exc: CombinationError, worker: str,
               trace: str = "") -> None:
        """The job's combination cannot run (``trace``: the traceback, from afar)."""

    def requeued(self, job: FoldJob, worker: str, reason: str) -> None:
        """``worker`` was lost while running the job; it was queued again."""


class Executor(Protocol):
    """Runs fold jobs for one search: ``open`` once before the first job, ``run`` per
    rung, ``close`` at the end however the search ended."""

    name: str

    def open(self, runner: FoldRunner, cancel: CancelToken, report: Reporter,
             jobs_hint: int) -> None:
        """Get the workers ready for the share ``runner`` holds (at most ``jobs_hint``
        are useful) and report ``ExecutorReady``; a set ``cancel`` ends the wait."""

    def run(self, jobs: Sequence[FoldJob], sink: FoldSink) -> None:
        """Run ``jobs`` (in this order where it can), telling ``sink``; returns when each
        is finished, failed or dropped, or, once ``cancel`` is set, when no fold is in
        flight any more (a stop ends every fit at its next batch)."""

    def record(self) -> dict[str, Any]:
        """What run.json keeps of the executor: its name, the cluster, the workers."""

    def close(self) -> None:
        """Release the workers (and a cluster this executor started)."""


class InProcessExecutor:
    """The folds one after another in this process, with the search's fold runner (its
    ``ModelReuse`` keeps one model per architecture across folds)."""

    name = "in-process"

    def __init__(self) -> None:
        self.runner: FoldRunner | None = None
        self.cancel = CancelToken()
        self.worker: WorkerInfo | None = None

    def open(self, runner: FoldRunner, cancel: CancelToken, report: Reporter = no_report,
             jobs_hint: int = 0) -> None:
        from convonet.core.records import device_label

        self.runner, self.cancel = runner, cancel
        self.worker = WorkerInfo(LOCAL_WORKER, socket.gethostname(), device_label())
        report(ExecutorReady(self.name, (self.worker,)))

    def run(self, jobs: Sequence[FoldJob], sink: FoldSink) -> None:
        runner = self.runner
        assert runner is not None, "open() first"
        for job in jobs:
            if not sink.wanted(job):
                continue
            if self.cancel.cancelled:
                return
            sink.started(job, "")

            def on_epoch(epoch: int, epochs: int, logs: Mapping[str, Any],
                         job: FoldJob = job) -> None:
                sink.progress(job, epoch, epochs, logs, "")

            try:
                rec = runner.fit_fold(runner.estimator(job.config), job.config, job.train,
                                      job.test, on_epoch)
            except CombinationError as exc:
                sink.failed(job, exc, "")
                continue
            if rec is None:  # stopped during the fit: discarded
                return
            sink.finished(job, rec, "")

    def record(self) -> dict[str, Any]:
        worker = self.worker
        return {"name": self.name,
                "nodes": [worker.node] if worker else [],
                "workers": [{"name": worker.name, "node": worker.node,
                             "device": worker.device}] if worker else []}

    def close(self) -> None:
        """Nothing to release: the search releases its kept model itself."""
