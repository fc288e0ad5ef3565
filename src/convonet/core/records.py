"""Run records of training and testing: each task runs inside its own run folder.

The app and the headless commands call these functions, so both leave the same record
(layout in ``convonet.core.runs``): run.json as the run goes (status, times, backend and
device, versions, seed, dataset fingerprint, final metrics), copies of the params, and the
task's files. Training appends history.csv and checkpoints with BackupAndRestore at each
epoch end, so a killed training resumes at the next epoch with its whole history
(``resume_training``); a changed dataset is refused, since the validation split and the
shuffling need the same data in the same order.

A results folder that cannot be written is refused before a task starts, and a full disk
or a folder turned read-only during a run ends it with one ``StorageError`` that names the
file and what to do: a training or a search keeps its finished epochs or folds and is
marked interrupted, so it resumes once there is room. This module knows nothing of any
user interface.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from convonet.core.errors import ConvonetError
from convonet.core.events import Cancelled, CancelToken, Notice, Reporter, no_report
from convonet.core.runs import (
    BACKUP_DIR,
    CLASSIFICATIONS_CSV,
    CONFUSION_CSV,
    DATA_PARAMS_JSON,
    HISTORY_CSV,
    HYPER_PARAMS_JSON,
    MODEL_KERAS,
    REPORT_CSV,
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
    writing,
)

if TYPE_CHECKING:
    import keras

    from convonet.core.data import Dataset
    from convonet.core.params import DataParams, HyperParams
    from convonet.core.testing import Classification, Evaluation, Prediction
    from convonet.core.training import TrainHistory

#: Tasks whose interrupted runs can be continued.
RESUMABLE_TASKS = ("training", "tuning")


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


# ---- training -----------------------------------------------------------------------
@dataclass
class TrainOutcome:
    """What a recorded training produced; ``run`` is None when it could not be recorded."""

    history: TrainHistory
    status: str  # finished / stopped / interrupted
    run: RunFolder | None
    model: keras.Model
    dataset: Dataset | None = None
    metrics: dict[str, Any] = field(default_factory=dict)

    @property
    def model_file(self) -> Path | None:
        return self.run.file(MODEL_KERAS) if self.run is not None else None


def train_metrics(history: TrainHistory, seconds: float) -> dict[str, Any]:
    """The numbers run.json keeps: the last complete epoch's, and how the run went."""
    complete = [r for r in history.rows if not r.partial]
    last = complete[-1] if complete else None
    return {
        "loss": last.loss if last else None,
        "accuracy": last.accuracy if last else None,
        "val_loss": last.val_loss if last else None,
        "val_accuracy": last.val_accuracy if last else None,
        "epochs_done": len(complete),
        "best_epoch": history.best_epoch,
        "restored_epoch": history.restored_epoch,
        "early_stopped": history.early_stopped,
        "seconds": round(seconds, 3),
    }


def train_run(model: keras.Model, hyper_params: HyperParams, dataset: Dataset,
              validation: bool, results_dir: str | os.PathLike[str],
              data_params: DataParams | None = None, *, report: Reporter = no_report,
              cancel: CancelToken | None = None,
              interrupted: Callable[[], bool] | None = None,
              class_names: Sequence[str] | None = None, batch_interval: float | None = None,
              callbacks: Sequence[Any] = (), tensorboard: bool | None = None,
              save_to: str | os.PathLike[str] | None = None) -> TrainOutcome:
    """Train ``model`` (from its current weights) inside a new run folder.

    ``interrupted`` says, after a stop, whether a signal (not the user) stopped it: the
    run is then recorded as "interrupted" instead of "stopped". ``tensorboard`` turns
    TensorBoard logs in the run folder on or off (None: ``$CONVONET_TENSORBOARD``).
    ``save_to`` (default: ``default_model_path`` of the results folder and data params) is
    recorded as where the model belongs, so a resumed run saves it to the same file.
    """
    from convonet.core.model_files import default_model_path

    config = hyper_params.first()
    names = list(class_names) if class_names is not None else list(dataset.class_names)
    target = Path(save_to) if save_to is not None else default_model_path(results_dir,
                                                                           data_params)
    run = start_run(results_dir, "training", hyper_params=hyper_params,
                    data_params=data_params, seed=int(config["seed"]),
                    fingerprint=dataset.fingerprint or None, validation=bool(validation),
                    epochs=int(config["epochs"]), class_names=names,
                    save_to=os.path.abspath(target))
    with recorded(run):
        if run is not None:
            from convonet.core.model import save_model

            with writing(run.file(START_KERAS)):
                save_model(model, run.file(START_KERAS), class_names=names)
        return _train_in(run, model, hyper_params, dataset, validation, report=report,
                         cancel=cancel, interrupted=interrupted, class_names=names,
                         batch_interval=batch_interval, callbacks=callbacks,
                         tensorboard=tensorboard)


def _train_in(run: RunFolder | None, model: keras.Model, hyper_params: HyperParams,
              dataset: Dataset, validation: bool, *, report: Reporter,
              cancel: CancelToken | None, interrupted: Callable[[], bool] | None,
              class_names: Sequence[str], batch_interval: float | None,
              callbacks: Sequence[Any] = (), history_rows: Sequence[Any] = (),
              tensorboard: bool | None = None) -> TrainOutcome:
    from convonet.core.exports import tensorboard_callbacks
    from convonet.core.model import save_model
    from convonet.core.training import NetTraining

    if run is not None:
        callbacks = [*callbacks, *tensorboard_callbacks(
            run.path, enabled=tensorboard, on_missing=lambda why: report(Notice(why)))]
    started = time.monotonic()
    options: dict[str, Any] = {}
    if batch_interval is not None:
        options["batch_interval"] = batch_interval
    trainer = NetTraining(
        model, hyper_params, report=report, cancel=cancel,
        checkpoint_dir=run.file(BACKUP_DIR) if run is not None else None,
        history_csv=run.file(HISTORY_CSV) if run is not None else None,
        history_rows=history_rows, **options)
    fit = trainer.train_val if validation else trainer.train
    history = fit(dataset, callbacks) if callbacks else fit(dataset)
    seconds = time.monotonic() - started
    status = "finished"
    if history.stopped:
        status = "interrupted" if interrupted is not None and interrupted() else "stopped"
    metrics = train_metrics(history, seconds)
    if run is not None:
        previous = run.info.get("metrics", {}).get("seconds")
        if isinstance(previous, (int, float)) and run.info.get("resumed"):
            metrics["seconds"] = round(previous + seconds, 3)
        with writing(run.file(MODEL_KERAS)):
            saved = save_model(model, run.file(MODEL_KERAS), class_names=class_names)
        run.finish(status, metrics=metrics, model=str(saved))
        if status == "finished":  # nothing left to resume: free the disk
            shutil.rmtree(run.file(BACKUP_DIR), ignore_errors=True)
            run.file(START_KERAS).unlink(missing_ok=True)
            run.file("start.classes.json").unlink(missing_ok=True)
    return TrainOutcome(history=history, status=status, run=run, model=model,
                        dataset=dataset, metrics=metrics)


def resume_save_to(run: RunFolder) -> Path:
    """Where a resumed training's model belongs: the file its first start recorded."""
    from convonet.core.model_files import run_save_to

    return run_save_to(run.info, run.path)


def resume_problem(run: RunFolder) -> str | None:
    """Why ``run`` cannot be resumed now, or None when it can."""
    try:
        info = run.info
    except (OSError, ValueError) as exc:
        return f"{run.path.name}: its run.json cannot be read ({exc})"
    task = info.get("task")
    if task not in RESUMABLE_TASKS:
        return f"{run.path.name}: a {task} run has nothing to resume"
    status = run.status
    if status == "running":
        return f"{run.path.name} is still running (process {info.get('pid')})"
    if status == "finished":
        return f"{run.path.name} has already finished"
    if task == "training":
        if not run.file(START_KERAS).is_file():
            return (f"{run.path.name}: no checkpoint was kept ({START_KERAS} is missing), "
                    "so it cannot be resumed; start a new training")
        if not run.file(HYPER_PARAMS_JSON).is_file():
            return f"{run.path.name}: its {HYPER_PARAMS_JSON} is missing"
    return None


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
            "resuming needs the same images in the same order. Start a new training "
            "instead.")


def resume_training(run: RunFolder | str | os.PathLike[str], *,
                    dataset: Dataset | None = None, report: Reporter = no_report,
                    cancel: CancelToken | None = None,
                    interrupted: Callable[[], bool] | None = None,
                    batch_interval: float | None = None) -> TrainOutcome:
    """Continue a stopped or interrupted training at the epoch after its checkpoint.

    The model comes back from the run's start.keras plus the checkpoint (weights,
    optimizer state and epoch); the learning-rate schedule continues from that epoch.
    ``dataset`` defaults to the run's training set loaded from its data params copy;
    either way its fingerprint must match the recorded one (ResumeError otherwise).
    """
    from convonet.core.model import load_model
    from convonet.core.params import HyperParams
    from convonet.core.training import read_history_csv

    folder = run if isinstance(run, RunFolder) else RunFolder.open(run)
    problem = resume_problem(folder)
    if problem is not None:
        raise ResumeError(f"cannot resume: {problem}")
    check_writable(folder.path)  # still full or read-only: say so before loading anything
    if dataset is None:
        dataset = load_run_dataset(folder, report, cancel)
    check_fingerprint(folder, dataset)
    if cancel is not None and cancel.cancelled:
        raise Cancelled()
    info = folder.info
    hyper_params = HyperParams.load(folder.file(HYPER_PARAMS_JSON))
    with warnings.catch_warnings():
        # start.keras was saved before the optimizer had built its slots; the checkpoint
        # restores them, so Keras's note that it skipped them says nothing useful.
        warnings.filterwarnings("ignore", message="Skipping variable loading for optimizer")
        model = load_model(folder.file(START_KERAS))
    names = info.get("class_names") or list(dataset.class_names)
    folder.update(status="running", ended=None, pid=os.getpid(),
                  resumed=[*info.get("resumed", []), now_iso()])
    with recorded(folder):
        return _train_in(folder, model, hyper_params, dataset, bool(info.get("validation")),
                         report=report, cancel=cancel, interrupted=interrupted,
                         class_names=names, batch_interval=batch_interval,
                         history_rows=read_history_csv(folder.file(HISTORY_CSV)))


# ---- testing ------------------------------------------------------------------------
@dataclass
class EvaluateOutcome:
    evaluation: Evaluation
    run: RunFolder | None


@dataclass
class PredictOutcome:
    prediction: Prediction
    run: RunFolder | None
    files: tuple[Path, Path] | None = None  # confusion.csv, report.csv in the run folder


@dataclass
class ClassifyOutcome:
    rows: list[Classification]
    run: RunFolder | None
    csv: Path | None = None
    skipped: int = 0


def relabel_prediction(prediction: Prediction, names: Sequence[str] | None) -> Prediction:
    """The prediction named with the model's classes (the training names) when the test
    folders are named differently but match by index."""
    if names is None or len(names) != len(prediction.class_names) \
            or list(names) == prediction.class_names:
        return prediction
    per_class = [replace(row, name=names[row.index]) for row in prediction.per_class]
    return replace(prediction, class_names=list(names), per_class=per_class)


def evaluate_run(model: keras.Model, dataset: Dataset, results_dir: str | os.PathLike[str],
                 *, data_params: DataParams | None = None,
                 model_path: str | os.PathLike[str] | None = None,
                 report: Reporter = no_report) -> EvaluateOutcome:
    """Loss and accuracy on a test set, recorded in run.json."""
    from convonet.core.testing import NetTesting

    run = start_run(results_dir, "evaluation", data_params=data_params,
                    fingerprint=dataset.fingerprint or None,
                    model=str(model_path) if model_path else None)
    with recorded(run):
        started = time.monotonic()
        evaluation = NetTesting(model).evaluate(dataset)
        if run is not None:
            run.finish("finished", metrics={
                "accuracy": evaluation.accuracy, "loss": evaluation.loss,
                "count": evaluation.count, "seconds": round(time.monotonic() - started, 3)})
    return EvaluateOutcome(evaluation, run)


def predict_run(model: keras.Model, dataset: Dataset, results_dir: str | os.PathLike[str],
                *, class_names: Sequence[str] | None = None,
                data_params: DataParams | None = None,
                model_path: str | os.PathLike[str] | None = None,
                report: Reporter = no_report) -> PredictOutcome:
    """Confusion matrix and per-class report, written as CSV into the run folder."""
    from convonet.core.testing import NetTesting

    run = start_run(results_dir, "prediction", data_params=data_params,
                    fingerprint=dataset.fingerprint or None,
                    model=str(model_path) if model_path else None)
    with recorded(run):
        started = time.monotonic()
        prediction = relabel_prediction(NetTesting(model).predict(dataset), class_names)
        files = None
        if run is not None:
            with writing(run.file(CONFUSION_CSV)):
                confusion = prediction.write_confusion_csv(run.file(CONFUSION_CSV))
            with writing(run.file(REPORT_CSV)):
                files = (confusion, prediction.write_report_csv(run.file(REPORT_CSV)))
            run.finish("finished", metrics={
                "accuracy": prediction.accuracy, "count": prediction.count,
                "macro_f1": prediction.macro.f1, "weighted_f1": prediction.weighted.f1,
                "seconds": round(time.monotonic() - started, 3)})
    return PredictOutcome(prediction, run, files)


def classify_run(model: keras.Model, paths: Sequence[str | os.PathLike[str]],
                 data_params: DataParams, results_dir: str | os.PathLike[str], *,
                 class_names: Sequence[str] | None = None,
                 model_path: str | os.PathLike[str] | None = None,
                 report: Reporter = no_report) -> ClassifyOutcome:
    """Classify image files and folders; the rows go to classifications.csv."""
    from convonet.core.testing import NetTesting, list_images, write_classifications_csv

    files = list_images([Path(p) for p in paths])
    run = start_run(results_dir, "classification", data_params=data_params,
                    model=str(model_path) if model_path else None,
                    inputs=[str(p) for p in paths])
    with recorded(run):
        started = time.monotonic()
        rows = NetTesting(model).classify(files, data_params, class_names=class_names,
                                          report=report) if files else []
        csv_path = None
        if run is not None:
            with writing(run.file(CLASSIFICATIONS_CSV)):
                csv_path = write_classifications_csv(rows, run.file(CLASSIFICATIONS_CSV))
            counts: dict[str, int] = {}
            for r in rows:
                counts[r.name] = counts.get(r.name, 0) + 1
            run.finish("finished", metrics={
                "count": len(rows), "skipped": len(files) - len(rows), "per_class": counts,
                "seconds": round(time.monotonic() - started, 3)})
    return ClassifyOutcome(rows, run, csv_path, skipped=len(files) - len(rows))


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
    "ClassifyOutcome", "EvaluateOutcome", "PredictOutcome", "ResumeError", "TrainOutcome",
    "active_runs", "check_fingerprint", "classify_run", "device_label", "evaluate_run",
    "find_interrupted", "load_run_dataset", "mark_interrupted", "predict_run",
    "progress_text", "recorded", "relabel_prediction", "resume_offers", "resume_problem",
    "resume_training", "start_run", "train_metrics", "train_run",
]
