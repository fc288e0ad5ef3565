"""Run records: the generic side of every task's run folder.

The task layer (``convonet.tasks``) and the search call these functions, so every run
leaves the same record (layout in ``convonet.core.runs``): ``start_run`` opens a run folder
with the device recorded, ``recorded`` marks it stopped, interrupted or failed when the
task ends early, ``storage_failure`` gives the one message of a full disk or a read-only
folder. ``resume_verdict`` is the one answer to "can this run be resumed?" (the runs
screen, the resume offers, ``train --resume`` and ``tune --resume`` all ask it), and the
rest finds and marks runs a signal or a dead process interrupted.

A results folder that cannot be written is refused before a task starts, and a full disk
or a folder turned read-only during a run ends it with one ``StorageError`` that names the
file and what to do: a training or a search keeps its finished epochs or folds and is
marked interrupted, so it resumes once there is room. This module knows nothing of any
user interface.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from convonet.core.errors import ConvonetError
from convonet.core.events import Cancelled
from convonet.core.runs import (
    BACKUP_DIR,
    HISTORY_CSV,
    HYPER_PARAMS_JSON,
    RUN_JSON,
    START_KERAS,
    RunFolder,
    now_iso,
)
from convonet.core.storage import (
    StorageError,
    check_writable,
    release,
    storage_cause,
    storage_error,
)

if TYPE_CHECKING:
    from convonet.core.training import TrainHistory

#: Tasks whose interrupted runs can be continued.
RESUMABLE_TASKS = ("training", "tuning")
#: How a run must have ended to be resumed.
RESUMABLE_STATUSES = ("stopped", "interrupted")


class ResumeError(ConvonetError, ValueError):
    """A run cannot be resumed; the message names the run and why."""

    title = "Cannot resume"
    advice = "Resume another run from the runs screen, or start a new one."


# ---- run folders --------------------------------------------------------------------
def device_label() -> str:
    """``GPU``, ``2 GPUs``, ``CPU``: where the backend computes, recorded with each run.

    Only device listing (no tensor is allocated); a broken driver gives "unknown".
    """
    try:
        import keras

        backend = keras.backend.backend()
        count = 0
        if backend == "tensorflow":
            import tensorflow as tf

            count = len(tf.config.list_physical_devices("GPU"))
        elif backend == "jax":
            import jax

            if jax.default_backend() != "gpu":
                return jax.default_backend().upper()
            count = jax.device_count()
        elif backend == "torch":
            import torch

            count = torch.cuda.device_count() if torch.cuda.is_available() else 0
    except Exception as exc:  # recorded, never fatal: the run matters more than its label
        return f"unknown ({type(exc).__name__})"
    return "CPU" if count == 0 else ("GPU" if count == 1 else f"{count} GPUs")


def start_run(results_dir: str | os.PathLike[str], task: str, **info: Any) -> RunFolder:
    """A new run folder with the device recorded.

    A results folder that cannot be written is refused (``StorageError`` naming it) before
    the task does any work: a run that cannot keep its checkpoints cannot be resumed.
    """
    check_writable(results_dir)
    try:
        return RunFolder.create(results_dir, task, device=device_label(), **info)
    except OSError as exc:
        error = storage_error(exc, outcome=f"the {task} did not start")
        if error is None:
            error = StorageError(f"cannot write a run folder in {results_dir}: "
                                 f"{(exc.strerror or str(exc)).lower()}; choose another "
                                 "results folder with --results-dir / CONVONET_RESULTS_DIR")
        raise error from exc


@contextlib.contextmanager
def recorded(run: RunFolder | None,
             stop_errors: tuple[type[BaseException], ...] = (Cancelled,)
             ) -> Iterator[RunFolder | None]:
    """Mark the run stopped, interrupted or failed when the block ends early."""
    try:
        yield run
    except stop_errors:
        _finish_if_running(run, "stopped")
        raise
    except KeyboardInterrupt:
        _finish_if_running(run, "interrupted", error="left at a second Ctrl+C")
        raise
    except Exception as exc:
        if run is not None and storage_cause(exc) is not None:
            raise storage_failure(run, exc) from exc
        _finish_if_running(run, "failed", error=f"{type(exc).__name__}: {_first_line(exc)}")
        raise


def storage_failure(run: RunFolder, exc: BaseException,
                    metrics: dict[str, Any] | None = None) -> StorageError:
    """Record a run that a full disk or a read-only folder cut short; the one message.

    A training with its checkpoint, or a search with its folds.jsonl, keeps what it
    finished and is marked interrupted, so it resumes once there is room; another task
    is marked failed. ``metrics``: the task's numbers so far (a search passes its own).
    When run.json cannot be written either, the message says so.
    """
    release(exc)  # close the half-written checkpoint now, not at exit
    try:
        info = run.info
    except (OSError, ValueError):
        info = {}
    task = str(info.get("task") or "run")
    unit = resume = None
    done = 0
    if task == "training" and run.file(START_KERAS).is_file() \
            and run.file(HYPER_PARAMS_JSON).is_file():
        from convonet.core.training import checkpoint_epoch

        done = checkpoint_epoch(run.file(BACKUP_DIR))
        metrics = {**(metrics or {}), **_kept_metrics(run, done, info)}
        unit, resume = "epoch", f"convonet train --resume {run.path}"
    elif task == "tuning":
        done = int((metrics or {}).get("fits_done") or 0)
        unit, resume = "fold", f"convonet tune --resume {run.path}"
    kept = f"{done} finished {unit}{'s' if done != 1 else ''}" if unit and done else None
    status = "interrupted" if resume is not None else "failed"
    marked = f"the run is marked {status}"
    if unit is not None:
        marked += f" with its {kept} kept" if kept else f" before its first {unit} finished"
    error = storage_error(exc, outcome=marked, resume=resume)
    assert error is not None  # only called for storage errors
    fields: dict[str, Any] = {"error": error.message}
    if metrics is not None:
        fields["metrics"] = metrics
    if status == "interrupted":
        fields["interrupted_by"] = "a write failed (disk full or folder not writable)"
    try:
        if info.get("status") in ("running", None):
            run.finish(status, **fields)
    except (OSError, ValueError):
        unmarked = "the run reads as running until this process ends"
        if Path(error.path or "").name != RUN_JSON:  # run.json was not the first to fail
            unmarked = f"{RUN_JSON} cannot be written either, so {unmarked}"
        if kept:
            unmarked = f"its {kept} {'is' if done == 1 else 'are'} kept, but {unmarked}"
        error = storage_error(exc, outcome=unmarked, resume=resume) or error
    return error


def _kept_metrics(run: RunFolder, done: int, info: dict[str, Any]) -> dict[str, Any]:
    """run.json's numbers for the epochs a checkpoint holds (the history may have more)."""
    from convonet.core.training import TrainHistory, read_history_csv

    rows = [r for r in read_history_csv(run.file(HISTORY_CSV)) if r.epoch <= done
            and not r.partial]
    history = TrainHistory(rows=rows, validation=bool(info.get("validation")),
                           monitor="val_loss" if info.get("validation") else "loss",
                           epochs=int(info.get("epochs") or 0))
    previous = (info.get("metrics") or {}).get("seconds")
    seconds = sum(r.seconds for r in rows)
    if isinstance(previous, (int, float)) and info.get("resumed"):
        seconds = max(seconds, float(previous))
    return train_metrics(history, seconds)


def _finish_if_running(run: RunFolder | None, status: str, **fields: Any) -> None:
    if run is None:
        return
    try:
        if run.info.get("status") == "running":
            run.finish(status, **fields)
    except OSError:
        return  # the folder went away or the disk is full: the error being raised matters


def _first_line(exc: BaseException) -> str:
    lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
    return lines[0] if lines else type(exc).__name__


# ---- training ------------------------------------------------------------------------
def train_metrics(history: TrainHistory, seconds: float) -> dict[str, Any]:
    """The numbers run.json keeps: the result epoch's (the restored one after early
    stopping, else the last complete one; the others are in the history), and how the run
    went."""
    complete = [r for r in history.rows if not r.partial]
    result = history.result_row
    return {
        "loss": result.loss if result else None,
        "accuracy": result.accuracy if result else None,
        "val_loss": result.val_loss if result else None,
        "val_accuracy": result.val_accuracy if result else None,
        "result_epoch": result.epoch if result else None,
        "epochs_done": len(complete),
        "best_epoch": history.best_epoch,
        "restored_epoch": history.restored_epoch,
        "early_stopped": history.early_stopped,
        "diverged_epoch": history.diverged_epoch,
        "seconds": round(seconds, 3),
    }


def resume_verdict(path: str | os.PathLike[str], task: Any, status: Any,
                   info: Mapping[str, Any] | None = None) -> str | None:
    """Why the run in ``path`` (its task, status and run.json) cannot be resumed, or None.

    The one verdict: the runs screen (``RunSummary.resumable``), the app's resume offers,
    ``convonet train --resume``, ``convonet tune --resume`` and the task layer all ask it.
    A stopped or interrupted training or search resumes; a training needs the model it
    started from and its hyper params.
    """
    folder = Path(path)
    name = folder.name
    if task not in RESUMABLE_TASKS:
        return f"{name}: a {task} run has nothing to resume"
    if status == "running":
        return f"{name} is still running (process {(info or {}).get('pid')})"
    if status == "finished":
        return f"{name} has already finished"
    if status not in RESUMABLE_STATUSES:
        why = (info or {}).get("error") or (info or {}).get("diverged")
        return (f"{name} {status} ({why or 'no reason recorded'}); "
                f"only a stopped or interrupted run resumes, so start a new {task}")
    if task == "training":
        if not (folder / START_KERAS).is_file():
            return (f"{name}: no checkpoint was kept ({START_KERAS} is missing), "
                    "so it cannot be resumed; start a new training")
        if not (folder / HYPER_PARAMS_JSON).is_file():
            return f"{name}: its {HYPER_PARAMS_JSON} is missing"
    return None


def resume_problem(run: RunFolder) -> str | None:
    """Why ``run`` cannot be resumed now, or None when it can (``resume_verdict``)."""
    try:
        info = run.info
        status = run.status
    except (OSError, ValueError) as exc:
        return f"{run.path.name}: its run.json cannot be read ({exc})"
    return resume_verdict(run.path, info.get("task"), status, info)


# ---- interrupted runs -----------------------------------------------------------------
def _runs(results_dir: str | os.PathLike[str]) -> list[RunFolder]:
    try:
        return RunFolder.find(results_dir)
    except OSError:
        return []


def active_runs(results_dir: str | os.PathLike[str], pid: int | None = None
                ) -> list[RunFolder]:
    """Runs this process (or ``pid``) is running now, per their run.json."""
    pid = os.getpid() if pid is None else pid
    out = []
    for run in _runs(results_dir):
        try:
            info = run.info
        except (OSError, ValueError):
            continue
        if info.get("status") == "running" and info.get("pid") == pid:
            out.append(run)
    return out


def mark_interrupted(runs: Sequence[RunFolder], reason: str) -> list[RunFolder]:
    """Record runs cut short by a signal as interrupted (a user stop says "stopped").

    Runs that finished or failed meanwhile keep their status.
    """
    marked = []
    for run in runs:
        try:
            info = run.info
            if info.get("status") in ("running", "stopped"):
                run.update(status="interrupted", ended=info.get("ended") or now_iso(),
                           interrupted_by=reason)
                marked.append(run)
        except (OSError, ValueError):
            continue
    return marked


def find_interrupted(results_dir: str | os.PathLike[str]) -> list[RunFolder]:
    """Runs left "running" by a process that no longer exists, now marked interrupted.

    Returns every interrupted run (newest first), those just marked included.
    """
    found = []
    for run in reversed(_runs(results_dir)):
        try:
            info = run.info
            status = run.status
        except (OSError, ValueError):
            continue
        if status != "interrupted":
            continue
        if info.get("status") == "running":
            with contextlib.suppress(OSError):
                run.update(status="interrupted", interrupted_by="the process ended",
                           ended=info.get("ended") or now_iso())
        found.append(run)
    return found


def resume_offers(results_dir: str | os.PathLike[str]) -> list[RunFolder]:
    """Interrupted runs that can be resumed and were not offered yet, newest first."""
    out = []
    for run in find_interrupted(results_dir):
        try:
            if run.info.get("resume_offered"):
                continue
        except (OSError, ValueError):
            continue
        if resume_problem(run) is None:
            out.append(run)
    return out


def progress_text(run: RunFolder) -> str:
    """``training 20250101-120000: 2 of 4 epochs``: what an interrupted run had done."""
    info = run.info
    task = info.get("task", "run")
    if task == "training":
        from convonet.core.training import read_history_csv

        done = sum(1 for r in read_history_csv(run.file(HISTORY_CSV)) if not r.partial)
        return f"{run.path.name}: {done} of {info.get('epochs', '?')} epochs done"
    if task == "tuning":
        metrics = info.get("metrics") or {}
        if "fits_done" in metrics:
            return (f"{run.path.name}: {metrics['fits_done']} of "
                    f"{metrics.get('total_fits', '?')} fits done")
    return run.path.name


__all__ = [
    "RESUMABLE_STATUSES", "RESUMABLE_TASKS", "ResumeError", "active_runs", "device_label",
    "find_interrupted", "mark_interrupted", "progress_text", "recorded", "resume_offers",
    "resume_problem", "resume_verdict", "start_run", "storage_failure", "train_metrics",
]
