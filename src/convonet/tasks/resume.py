"""The checks every resume makes, for training and tuning alike.

``check_resumable`` is the one gate: the same verdict as the runs screen
(``core.records.resume_verdict``), the task asked for, and a run folder that can be
written again. ``check_fingerprint`` refuses data that changed since the run started:
resuming needs the same images in the same order.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

from convonet.core.events import CancelToken, Reporter, no_report
from convonet.core.records import ResumeError, resume_problem
from convonet.core.runs import DATA_PARAMS_JSON, RunFolder
from convonet.core.storage import check_writable

if TYPE_CHECKING:
    from convonet.core.data import Dataset

__all__ = ["check_fingerprint", "check_resumable", "load_run_dataset", "resume_save_to"]


def open_run(run: RunFolder | str | os.PathLike[str]) -> RunFolder:
    """The run folder ``run`` names; ``ResumeError`` naming it when there is none."""
    if isinstance(run, RunFolder):
        return run
    try:
        return RunFolder.open(run)
    except FileNotFoundError as exc:
        raise ResumeError(f"cannot resume: {exc}") from None


def check_resumable(run: RunFolder | str | os.PathLike[str], task: str) -> RunFolder:
    """The run folder of a ``task`` ("training" or "tuning") run that can resume now.

    Raises ``ResumeError`` naming the run and why (finished, still running, another task,
    its start model or params missing), or ``StorageError`` when its folder cannot be
    written (still full or read-only): said before anything is loaded.
    """
    folder = open_run(run)
    problem = resume_problem(folder)
    if problem is None:
        recorded = folder.info.get("task")
        if recorded != task:
            problem = (f"{folder.path.name} is a {recorded} run, not a {task}; resume it "
                       f"with convonet {'train' if recorded == 'training' else 'tune'} "
                       "--resume")
    if problem is not None:
        raise ResumeError(f"cannot resume: {problem}")
    check_writable(folder.path)
    return folder


def load_run_dataset(run: RunFolder, report: Reporter = no_report,
                     cancel: CancelToken | None = None) -> Dataset:
    """The training set of a run, loaded from its own copy of the data params."""
    from convonet.core.data import DataPrep
    from convonet.core.params import DataParams

    path = run.file(DATA_PARAMS_JSON)
    if not path.is_file():
        raise ResumeError(f"{run.path.name}: its {DATA_PARAMS_JSON} is missing, so its "
                          "training set cannot be found")
    seed = run.info.get("seed")
    return DataPrep(DataParams.load(path)).prep_data(
        "train", report, cancel, seed=int(seed) if seed is not None else 42)


def check_fingerprint(run: RunFolder, dataset: Dataset) -> None:
    """Refuse data that differs from the run's: resuming needs the same data, same order."""
    recorded_fp = run.info.get("dataset_fingerprint")
    if recorded_fp and dataset.fingerprint != recorded_fp:
        where = f" in {dataset.root}" if getattr(dataset, "root", None) else ""
        raise ResumeError(
            f"cannot resume {run.path.name}: the training set{where} has changed since the "
            f"run started (fingerprint {recorded_fp} then, {dataset.fingerprint} now); "
            f"resuming needs the same images in the same order; start a new {run.task} "
            "instead")


def resume_save_to(run: RunFolder) -> Path:
    """Where a resumed training's model belongs: the file its first start recorded."""
    from convonet.core.model_files import run_save_to

    return run_save_to(run.info, run.path)
