"""The search loop (keras-tuner's Tuner): asks the plan what to fit, runs the folds with
the fold runner, keeps every record in the store and reports each as it happens."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import traceback
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np

from convonet.core.events import CancelToken, Reporter, TaskDone, no_report
from convonet.core.model import build_model
from convonet.core.params import HyperParams
from convonet.core.runs import HYPER_PARAMS_JSON, RunFolder, now_iso
from convonet.core.storage import check_writable
from convonet.core.tuning.data import cv_splitter, norm_params, rung_splits, tuning_data
from convonet.core.tuning.errors import (
    CombinationDiverged,
    CombinationError,
    FatalTuningError,
    too_many_failures,
)
from convonet.core.tuning.estimator import BuildFn, ModelReuse
from convonet.core.tuning.events import (
    CombinationFailed,
    CombinationInvalid,
    FoldEnd,
    RungStart,
    TuneStart,
)
from convonet.core.tuning.executor import Executor, FoldJob, InProcessExecutor
from convonet.core.tuning.folds import FoldRunner
from convonet.core.tuning.plan import SearchPlan
from convonet.core.tuning.results import TuneResult, build_result
from convonet.core.tuning.sink import RungSink
from convonet.core.tuning.store import (
    SearchStore,
    check_same_search,
    finish_run,
    mark_resumed,
    record_cut_short,
    store_for,
)

TASK = "tuning"
#: After this many combinations in a row fail, the search stops (the cause is likely
#: shared: the data, the memory); the folds that finished are kept.
MAX_CONSECUTIVE_FAILURES = 5

Splits = list[tuple[np.ndarray, np.ndarray]]


class Tuner:
    """One search: holds its state so that stop, failure and resume share one loop.

    The folds of each rung run on ``executor`` (default: in this process, one after
    another); this loop keeps the plan, the ledger and the events whichever runs them.
    """

    def __init__(self, x: np.ndarray, y: np.ndarray, hyper_params: HyperParams, *,
                 report: Reporter = no_report, cancel: CancelToken | None = None,
                 run: RunFolder | None = None, build: BuildFn = build_model,
                 class_names: Sequence[str] | None = None, store: SearchStore | None = None,
                 max_consecutive_failures: int = MAX_CONSECUTIVE_FAILURES,
                 executor: Executor | None = None) -> None:
        self.hp = hyper_params
        self.report = report
        self.cancel = cancel or CancelToken()
        self.seed = int(hyper_params.seed)
        self.X, self.y, self.image_shape = tuning_data(x, y, hyper_params, class_names)
        self.plan = SearchPlan(hyper_params, len(self.y), len(np.unique(self.y)),
                               self.image_shape)
        self.splits = list(cv_splitter(hyper_params).split(self.X, self.y))
        self.runner = FoldRunner(self.X, self.y, self.image_shape, self.seed, build,
                                 self.cancel, report)
        self.store = store if store is not None else store_for(run)
        self.max_failures = max(1, int(max_consecutive_failures))
        self.failed_in_a_row: list[str] = []  # reasons, since the last whole combination
        self.order: list[dict[str, Any]] = []  # folds in the order they finished
        self.fits_done = 0
        self.stopped = False
        self.executor: Executor = executor if executor is not None else InProcessExecutor()
        self.executor_open = False

    # ---- the plan's view, as a search's --------------------------------------------
    @property
    def run(self) -> RunFolder | None:
        return self.store.run

    @run.setter
    def run(self, run: RunFolder | None) -> None:
        self.store = store_for(run)

    @property
    def candidates(self) -> list[dict[str, Any]]:
        return self.plan.candidates

    @property
    def searched(self) -> list[str]:
        return self.plan.searched

    @property
    def base_config(self) -> dict[str, Any]:
        return self.plan.base_config

    @property
    def total_fits(self) -> int:
        return self.plan.total_fits

    @total_fits.setter
    def total_fits(self, value: int) -> None:
        self.plan.total_fits = value

    @property
    def rung_members(self) -> list[list[int]]:
        return self.plan.rung_members

    @rung_members.setter
    def rung_members(self, value: list[list[int]]) -> None:
        self.plan.rung_members = value

    @property
    def reuse(self) -> ModelReuse:
        return self.runner.reuse

    def load_records(self, records: list[dict[str, Any]]) -> None:
        self.plan.load_records(records)

    def signature(self) -> dict[str, Any]:
        """What must match for a resume to continue the same search."""
        from convonet.core.runs import dataset_fingerprint

        return {"strategy": self.plan.strategy, "grid": self.plan.grid,
                "cv_folds": self.plan.n_folds, "tuning_share": float(self.hp.tuning_share),
                "seed": self.seed, "base_config": norm_params(self.plan.base_config),
                "samples": len(self.y), "fingerprint": dataset_fingerprint(self.X, self.y)}

    def result(self) -> TuneResult:
        return build_result(self.plan, self.order, stopped=self.stopped,
                            fits_done=self.fits_done, run=self.run)

    # ---- the loop ------------------------------------------------------------------
    def search(self) -> TuneResult:
        """``run_search`` with TensorFlow's retracing warnings quiet; the kept model is
        released after it, however it ends."""
        with quiet_tensorflow_logger():
            try:
                return self.run_search()
            finally:
                try:
                    if self.executor_open:
                        with contextlib.suppress(OSError):
                            self._record_executor()  # with any worker that replaced one
                        self.executor.close()
                finally:
                    self.executor_open = False
                    self.reuse.release()

    def run_search(self) -> TuneResult:
        plan = self.plan
        self.report(TuneStart(total_fits=plan.total_fits, combinations=len(plan.candidates),
                              folds=plan.n_folds, strategy=plan.strategy,
                              samples=len(self.y), fits_done=plan.recorded_fits(),
                              searched=tuple(plan.searched),
                              run_dir=str(self.run.path) if self.run else "",
                              invalid=len(plan.invalid)))
        self._mark_invalid()
        for rung, (_, n_resources) in enumerate(plan.schedule):
            members = plan.members(rung)
            if not members:
                break
            splits = rung_splits(self.splits, self.y, n_resources, self.seed)
            if plan.strategy == "halving":
                self.report(RungStart(rung=rung, rungs=len(plan.schedule),
                                      candidates=len(members), n_resources=n_resources,
                                      total_fits=plan.total_fits, fits_done=self.fits_done))
            if not self._run_rung(rung, members, splits, n_resources):
                self.stopped = True
                return self.result()
        return self.result()

    def _mark_invalid(self) -> None:
        """Record and report each invalid combination once, before any fit."""
        for ci, problem in self.plan.invalid.items():
            resumed = ci in self.plan.invalid_recorded
            if not resumed:
                self.store.record({**self.plan.invalid_record(ci), "time": now_iso()})
                self.plan.invalid_recorded.add(ci)
            self.report(CombinationInvalid(ci, self.plan.candidates[ci], problem.field,
                                           problem.message, resumed=resumed))

    def _run_rung(self, rung: int, members: list[int], splits: Splits,
                  n_resources: int) -> bool:
        """Every fold of the rung not recorded yet, through the executor; the recorded
        ones are replayed first. False when the search was stopped."""
        plan = self.plan
        jobs: list[FoldJob] = []
        left: dict[int, int] = {}  # combination -> its folds still to run in this rung
        for ci in self.reuse.order(plan.candidates, members, plan.base_config):
            params = plan.candidates[ci]
            if plan.failed_at(ci, rung):  # failed in an earlier run: not retried
                plan.skip_failed()
                failure = plan.failed[ci]
                self.report(CombinationFailed(
                    ci, params, str(failure["reason"]), rung=rung, fits_done=self.fits_done,
                    total_fits=plan.total_fits, resumed=True,
                    traceback_file=str(failure.get("traceback", "")),
                    diverged=bool(failure.get("diverged"))))
                continue
            config = {**plan.base_config, **params}
            for k, (train, test) in enumerate(splits):
                done = plan.folds.get((rung, ci, k))
                if done is not None:  # done by an earlier run: replay it
                    self._fold_done(done, resumed=True)
                else:
                    jobs.append(FoldJob(rung, ci, k, config, train, test, n_resources))
                    left[ci] = left.get(ci, 0) + 1
            if ci not in left:
                self.failed_in_a_row.clear()
        if not jobs:
            return True
        if self.cancel.cancelled:
            return False
        if not self.executor_open:
            self.executor_open = True
            self.executor.open(self.runner, self.cancel, self.report, len(jobs))
            self._record_executor()
        sink = RungSink(self, left)
        self.executor.run(jobs, sink)
        return not any(sink.wanted(job) and job.key not in sink.resolved for job in jobs)

    def _record_executor(self) -> None:
        """run.json names the executor, the cluster, the nodes and devices used."""
        if self.run is not None:
            self.run.update(executor=self.executor.record())

    def _fold_done(self, rec: dict[str, Any], resumed: bool = False,
                   worker: str = "") -> None:
        self.fits_done += 1
        self.order.append(rec)
        self.report(FoldEnd(combination_index=int(rec["combination_index"]),
                            params=dict(rec["params"]), fold=int(rec["fold"]),
                            accuracy=float(rec["accuracy"]), loss=float(rec["loss"]),
                            seconds=float(rec["fit_time"]) + float(rec["score_time"]),
                            fits_done=self.fits_done, total_fits=self.plan.total_fits,
                            rung=int(rec["rung"]), n_resources=int(rec["n_resources"]),
                            resumed=resumed, worker=worker))

    def _fail(self, rung: int, ci: int, fold: int, exc: CombinationError,
              trace: str = "") -> None:
        """Record a failed combination once: its one-line reason in the ledger and the
        table, its full traceback in the store; too many in a row end the search.

        A diverged one (``CombinationDiverged``) is recorded the same way, marked
        ``diverged``, with no traceback: it is what these values do, not a fault, so it
        ends a run of failures as a whole combination does."""
        params = self.plan.candidates[ci]
        reason = str(exc)
        diverged = isinstance(exc, CombinationDiverged)
        where = "" if diverged else \
            self.store.keep_traceback(ci, failure_text(ci, params, rung, fold, exc, trace))
        rec = {"kind": "failed", "rung": rung, "combination_index": ci, "params": params,
               "fold": fold, "reason": reason, "time": now_iso()}
        if diverged:
            rec["diverged"] = True
        if where:
            rec["traceback"] = where
        self.store.record(rec)
        self.plan.add_failure(rec)
        self.report(CombinationFailed(ci, params, reason, rung=rung,
                                      fits_done=self.fits_done,
                                      total_fits=self.plan.total_fits, traceback_file=where,
                                      diverged=diverged))
        if diverged:
            self.failed_in_a_row.clear()
            return
        self.failed_in_a_row.append(reason)
        if len(self.failed_in_a_row) >= self.max_failures:
            raise too_many_failures(self.failed_in_a_row,
                                    str(self.run.path) if self.run else None)


def failure_text(ci: int, params: dict[str, Any], rung: int, fold: int,
                 exc: BaseException, trace: str = "") -> str:
    """A failed combination's traceback file: what failed where, then the whole chain
    (``trace``, when it happened in another process)."""
    head = (f"combination {ci}: {json.dumps(params, sort_keys=True)}\n"
            f"rung {rung}, fold {fold}\nreason: {exc}\ntime: {now_iso()}\n\n")
    return head + (trace or "".join(traceback.format_exception(exc)))


@contextlib.contextmanager
def quiet_tensorflow_logger() -> Iterator[None]:
    """TensorFlow's Python logger warns about retracing when many small models are fitted
    in a row (every new model traces new functions); nothing the user can act on, and it
    would garble a terminal UI. Only the stdlib logger is touched (no backend calls)."""
    logger = logging.getLogger("tensorflow")
    old = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(old)


def tune(x: np.ndarray, y: np.ndarray, hyper_params: HyperParams | None = None, *,
         report: Reporter = no_report, cancel: CancelToken | None = None,
         results_dir: str | os.PathLike[str] | None = None,
         run: RunFolder | None = None,
         resume_from: RunFolder | str | os.PathLike[str] | None = None,
         data_params: Any = None, build: BuildFn = build_model,
         class_names: Sequence[str] | None = None,
         max_consecutive_failures: int = MAX_CONSECUTIVE_FAILURES,
         executor: Executor | None = None) -> TuneResult:
    """Tune on images ``x`` (n, h, w, c) and labels ``y`` with ``hyper_params.search``.

    For scripts and tests; the app and the commands go through ``convonet.tasks.tune``,
    which adds the resume checks and the results folder. ``class_names`` (the dataset's,
    by label) only make messages name class folders.

    Persistence: with ``results_dir`` a new run folder is made under it (or pass ``run``);
    with ``resume_from`` that run folder is continued, running only the folds its
    folds.jsonl lacks (``hyper_params`` default to the copy saved there). Without any of
    them nothing is written. A stop returns a result with ``stopped=True``; a fatal error
    raises ``FatalTuningError`` after the partial table is written. ``executor`` runs the
    folds (default: in this process; ``ray_executor.RayExecutor()`` on Ray).
    """
    records: list[dict[str, Any]] = []
    if resume_from is not None:
        run = resume_from if isinstance(resume_from, RunFolder) else RunFolder.open(resume_from)
        check_writable(run.path)  # still full or read-only: say so before any fit
        if hyper_params is None:
            hyper_params = HyperParams.load(run.file(HYPER_PARAMS_JSON))
        records = run.read_jsonl("folds.jsonl")
    if hyper_params is None:
        raise FatalTuningError("no hyper params given")
    tuner = Tuner(x, y, hyper_params, report=report, cancel=cancel, build=build,
                  class_names=class_names, max_consecutive_failures=max_consecutive_failures,
                  executor=executor)
    signature = tuner.signature()
    if run is not None and resume_from is not None:
        check_same_search(run, signature)
        tuner.load_records(records)
        mark_resumed(run)
    elif run is None and results_dir is not None:
        from convonet.core.records import start_run

        run = start_run(results_dir, TASK, hyper_params=hyper_params,
                        data_params=data_params, seed=tuner.seed,
                        fingerprint=signature["fingerprint"], tuning=signature)
    elif run is not None:
        run.update(tuning=signature, seed=tuner.seed, dataset_fingerprint=signature[
            "fingerprint"])
    tuner.run = run
    result = search_recorded(tuner)
    report(TaskDone(TASK, result.status, result))
    return result


def search_recorded(tuner: Tuner, status: Callable[[TuneResult], str] | None = None
                    ) -> TuneResult:
    """Run the search; with a run folder, write its table and record how it ended
    (``status``, default the result's) even when it ends early."""
    run = tuner.run
    try:
        result = tuner.search()
        if run is not None:
            finish_run(run, result, status(result) if status is not None else result.status)
    except BaseException as exc:
        if run is None:
            raise
        error = record_cut_short(run, tuner.result(), exc)
        if error is not None:
            raise error from exc
        raise
    return result

