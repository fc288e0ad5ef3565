"""Tuning, new or resumed, inside its own run folder.

The search (``core.tuning``) only keeps its ledger in the store it is given; this task owns
the run: it creates the folder (``start_run``: params, seed, the training set's
fingerprint, the device), hands the search a ``RunStore``, and records how it ended
(``Status``). A resumed search passes the checks a resumed training passes
(``check_resumable``, the hyper params and data params copies, ``check_fingerprint``),
then the search's own (the same grid, folds, share and seed on the same tuning share),
and the plan is rebuilt from the run's folds.jsonl: only the folds it lacks run.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from convonet.core.events import (
    Cancelled,
    CancelToken,
    Notice,
    Reporter,
    TaskDone,
    no_report,
)
from convonet.core.model_choices import momentum_grid_notice
from convonet.core.records import ResumeError, start_run
from convonet.core.runs import FOLDS_JSONL, HYPER_PARAMS_JSON, RunFolder
from convonet.core.tuning import (
    MAX_CONSECUTIVE_FAILURES,
    TASK,
    Tuner,
    TuneResult,
    search_recorded,
)
from convonet.core.tuning.executor import Executor
from convonet.core.tuning.store import check_same_search, mark_resumed
from convonet.tasks import Status, executes
from convonet.tasks.common import results_folder, write_skipped_csv
from convonet.tasks.resume import check_fingerprint, check_resumable, load_run_dataset

if TYPE_CHECKING:
    from convonet.core.data import Dataset
    from convonet.core.params import DataParams, HyperParams

__all__ = ["TuneOutcome", "TuneSpec", "run_tuning"]


@dataclass(frozen=True)
class TuneSpec:
    """One search over ``hyper_params``' comma-separated values on a training set.

    The training set is ``train_set`` when given, else loaded from ``data_params``.
    ``search`` ("grid" or "halving") overrides the params' strategy. ``resume`` (a run
    folder) continues that stopped or interrupted search instead: its hyper params and
    training set default to the run's own copies. ``interrupted`` says, after a stop,
    whether a signal (not the user) stopped it. After ``max_consecutive_failures``
    combinations fail in a row the search ends (``TooManyFailures``).

    ``ray`` chooses where folds run: None (the default) fits them one after another in
    this process; ``"auto"`` starts a local Ray cluster over this machine's GPUs (or
    cores); ``"HOST:PORT"`` joins an existing cluster. ``gpus_per_fold`` is each Ray
    worker's share of a GPU (0.25 packs four folds on one GPU); ``cpus_per_fold`` each
    worker's cores on a cluster without GPUs (see ``core.tuning.ray_executor``; the
    front ends resolve ``$RAY_ADDRESS`` to an address).
    """

    hyper_params: HyperParams | None = None
    data_params: DataParams | None = None
    train_set: Dataset | None = None
    search: str | None = None
    resume: RunFolder | str | os.PathLike[str] | None = None
    results_dir: str | os.PathLike[str] | None = None
    max_consecutive_failures: int = MAX_CONSECUTIVE_FAILURES
    interrupted: Callable[[], bool] | None = None
    ray: str | None = None
    gpus_per_fold: float = 1.0
    cpus_per_fold: int = 1


@dataclass
class TuneOutcome:
    """The search's result, how its run ended, and the training set it ran on."""

    result: TuneResult
    status: Status
    run: RunFolder | None
    train_set: Dataset
    skipped_csv: Path | None = None  # the training set's skipped files, in the run folder


@executes(TuneSpec)
def run_tuning(spec: TuneSpec, *, report: Reporter = no_report,
               cancel: CancelToken | None = None) -> TuneOutcome:
    """Search (or resume a search) as ``spec`` says, recorded in a run folder."""
    cancel = cancel if cancel is not None else CancelToken()
    skipped_csv = None
    if spec.resume is not None:
        run, tuner, train_set = _resume(spec, report, cancel)
    else:
        run, tuner, train_set = _start(spec, report, cancel)
        skipped_csv = write_skipped_csv(run, train_set.skipped)
    tuner.run = run

    def ended(result: TuneResult) -> Status:
        if not result.stopped:
            return Status.FINISHED
        signalled = spec.interrupted is not None and spec.interrupted()
        return Status.INTERRUPTED if signalled else Status.STOPPED

    result = search_recorded(tuner, status=ended)
    status = ended(result)
    report(TaskDone(TASK, str(status), result))
    return TuneOutcome(result=result, status=status, run=run, train_set=train_set,
                       skipped_csv=skipped_csv)


def _start(spec: TuneSpec, report: Reporter, cancel: CancelToken
           ) -> tuple[RunFolder, Tuner, Dataset]:
    """A new search: the params checked and the grid planned before the folder exists."""
    if spec.hyper_params is None:
        raise TypeError("a new search needs hyper params")
    hyper_params = _with_search(spec.hyper_params, spec.search)
    note = momentum_grid_notice(hyper_params.optimizer, hyper_params.momentum)
    if note:
        report(Notice(note[0].upper() + note[1:]))
    train_set = spec.train_set if spec.train_set is not None \
        else _load(spec.data_params, hyper_params, report, cancel)
    tuner = _tuner(train_set, hyper_params, spec, report, cancel)
    signature = tuner.signature()
    data_params = spec.data_params.edit() if spec.data_params is not None else None
    run = start_run(results_folder(spec.results_dir), TASK, hyper_params=hyper_params,
                    data_params=data_params, seed=tuner.seed,
                    fingerprint=train_set.fingerprint or signature["fingerprint"],
                    class_names=list(train_set.class_names), tuning=signature)
    return run, tuner, train_set


def _resume(spec: TuneSpec, report: Reporter, cancel: CancelToken
            ) -> tuple[RunFolder, Tuner, Dataset]:
    """The checks ``train --resume`` makes, then the search's own; the plan is rebuilt
    from the run's folds.jsonl."""
    from convonet.core.params import HyperParams

    assert spec.resume is not None
    run = check_resumable(spec.resume, TASK)
    info = run.info
    if not run.file(HYPER_PARAMS_JSON).is_file():
        raise ResumeError(f"cannot resume: {run.path.name}: its {HYPER_PARAMS_JSON} is "
                          "missing")
    if not isinstance(info.get("tuning"), dict):
        raise ResumeError(f"cannot resume: {run.path.name}: its run.json holds no record "
                          "of the search (grid, folds, seed); start a new search")
    hyper_params = spec.hyper_params if spec.hyper_params is not None \
        else HyperParams.load(run.file(HYPER_PARAMS_JSON))
    hyper_params = _with_search(hyper_params, spec.search)
    train_set = spec.train_set if spec.train_set is not None \
        else load_run_dataset(run, report, cancel)
    if info.get("dataset_fingerprint") != info["tuning"].get("fingerprint"):
        # recorded as the training set's (older runs recorded the tuning share's, which
        # the search's own check below compares)
        check_fingerprint(run, train_set)
    if cancel.cancelled:
        raise Cancelled()
    tuner = _tuner(train_set, hyper_params, spec, report, cancel)
    check_same_search(run, tuner.signature())
    tuner.load_records(run.read_jsonl(FOLDS_JSONL))
    mark_resumed(run)
    return run, tuner, train_set


def _tuner(train_set: Dataset, hyper_params: HyperParams, spec: TuneSpec,
           report: Reporter, cancel: CancelToken) -> Tuner:
    return Tuner(train_set.x, train_set.y, hyper_params, report=report, cancel=cancel,
                 class_names=train_set.class_names,
                 max_consecutive_failures=spec.max_consecutive_failures,
                 executor=executor_for(spec))


def executor_for(spec: TuneSpec) -> Executor | None:
    """The spec's executor: None (in this process) unless ``spec.ray`` names a cluster.
    Ray is imported here, before any run folder exists, so a missing install is said
    up front."""
    if spec.ray is None:
        return None
    from convonet.core.tuning.ray_executor import RayExecutor

    return RayExecutor(spec.ray, gpus_per_fold=spec.gpus_per_fold,
                       cpus_per_worker=spec.cpus_per_fold)


def _with_search(hyper_params: HyperParams, search: str | None) -> HyperParams:
    """A copy (the run folder re-points a saved params object's path at its own copy),
    with the strategy overridden when asked."""
    return hyper_params.edit(search=search) if search else hyper_params.edit()


def _load(data_params: DataParams | None, hyper_params: HyperParams, report: Reporter,
          cancel: CancelToken) -> Any:
    from convonet.core.data import DataPrep

    if data_params is None:
        raise TypeError("a new search needs a training set or data params")
    return DataPrep(data_params).prep_data("train", report, cancel,
                                           seed=int(hyper_params.seed))
