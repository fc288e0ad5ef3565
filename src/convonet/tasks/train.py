"""Training, new or resumed, inside its own run folder.

A new training records its params, seed, dataset fingerprint and where its model belongs,
keeps the model it starts from (start.keras) and checkpoints each epoch, so a stop, a
signal or a full disk leaves a run that resumes at the next epoch with its whole history.
A resumed one passes ``check_resumable`` and ``check_fingerprint`` first. The result is the
restored epoch's numbers after early stopping (the last epoch's stay in the history).
A training that diverges (the core stops it: a NaN loss, or accuracy back at chance) ends
with status ``diverged``: over like a finished one (no checkpoint kept, not resumable),
its run.json saying at which epoch and why (``diverged``), and not copied to ``save_to``.
"""

from __future__ import annotations

import os
import shutil
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from convonet.core.events import Cancelled, CancelToken, Notice, Reporter, no_report
from convonet.core.records import recorded, start_run, train_metrics
from convonet.core.runs import (
    BACKUP_DIR,
    HISTORY_CSV,
    HYPER_PARAMS_JSON,
    MODEL_KERAS,
    START_KERAS,
    RunFolder,
    now_iso,
)
from convonet.core.storage import storage_error, writing
from convonet.tasks import Status, executes
from convonet.tasks.common import results_folder, write_skipped_csv
from convonet.tasks.resume import check_fingerprint, check_resumable, load_run_dataset

if TYPE_CHECKING:
    import keras

    from convonet.core.data import Dataset
    from convonet.core.distribution import DataParallelism
    from convonet.core.params import DataParams, HyperParams
    from convonet.core.training import EpochRow, TrainHistory

__all__ = ["TrainOutcome", "TrainSpec", "diverged_text", "run_training"]


@dataclass(frozen=True)
class TrainSpec:
    """One training: ``model`` trained from its current weights on ``dataset``.

    ``resume`` (a run folder) continues that stopped or interrupted training instead: its
    params, model and validation come from the run, and ``dataset`` defaults to its
    training set loaded from the run's data params copy. ``save_to``: where the model
    belongs (default: ``default_model_path`` of the results folder and data params), also
    recorded so a resumed run saves to the same file; ``save`` copies the model there
    when the training finishes. ``interrupted`` says, after a stop, whether a signal (not
    the user) stopped it. ``tensorboard``: logs in the run folder (None: the environment).
    ``devices``: train data-parallel over several devices: ``all``, a count or a list of
    device numbers (None: ``$CONVONET_DEVICES``, else one device); see
    ``core.distribution``. A resumed run may use other devices than its first start.
    """

    model: keras.Model | None = None
    hyper_params: HyperParams | None = None
    dataset: Dataset | None = None
    validation: bool = False
    results_dir: str | os.PathLike[str] | None = None
    data_params: DataParams | None = None
    class_names: tuple[str, ...] | None = None
    save_to: str | os.PathLike[str] | None = None
    save: bool = False
    resume: RunFolder | str | os.PathLike[str] | None = None
    interrupted: Callable[[], bool] | None = None
    tensorboard: bool | None = None
    batch_interval: float | None = None
    callbacks: tuple[Any, ...] = ()
    devices: str | int | None = None


@dataclass
class TrainOutcome:
    """What a recorded training produced; ``run`` is None when it could not be recorded."""

    history: TrainHistory
    status: Status
    run: RunFolder | None
    model: keras.Model
    dataset: Dataset | None = None
    metrics: dict[str, Any] = field(default_factory=dict)
    saved: Path | None = None  # the copy at ``save_to`` (``TrainSpec.save``)
    skipped_csv: Path | None = None  # the dataset's skipped files, in the run folder
    config: dict[str, Any] = field(default_factory=dict)  # the hyper params' first values

    @property
    def diverged_notice(self) -> str | None:
        """What the training's divergence notice said (None when it did not diverge)."""
        from convonet.core.train_history import divergence_notice

        history = self.history
        if history.diverged_epoch is None:
            return None
        return divergence_notice(history.diverged_epoch, history.diverged_reason or "",
                                 self.config)

    @property
    def model_file(self) -> Path | None:
        return self.run.file(MODEL_KERAS) if self.run is not None else None

    @property
    def result(self) -> EpochRow | None:
        """The epoch the result is (restored by early stopping, else the last complete)."""
        return self.history.result_row


@executes(TrainSpec)
def run_training(spec: TrainSpec, *, report: Reporter = no_report,
                 cancel: CancelToken | None = None) -> TrainOutcome:
    """Train (or resume) as ``spec`` says; the model is copied to ``save_to`` if asked."""
    cancel = cancel if cancel is not None else CancelToken()
    outcome = (_resume(spec, report, cancel) if spec.resume is not None
               else _start(spec, report, cancel))
    if spec.save and outcome.status is Status.FINISHED and not cancel.cancelled:
        outcome.saved = _save_copy(outcome, spec.save_to)
    return outcome


def _start(spec: TrainSpec, report: Reporter, cancel: CancelToken) -> TrainOutcome:
    from convonet.core.model import save_model
    from convonet.core.model_files import default_model_path

    model, hyper_params, dataset = spec.model, spec.hyper_params, spec.dataset
    if model is None or hyper_params is None or dataset is None:
        raise TypeError("a new training needs a model, hyper params and a dataset")
    results_dir = results_folder(spec.results_dir)
    config = hyper_params.first()
    parallel = _parallelism(spec, config)
    names = list(spec.class_names) if spec.class_names is not None \
        else list(dataset.class_names)
    target = Path(spec.save_to) if spec.save_to is not None \
        else default_model_path(results_dir, spec.data_params)
    run = start_run(results_dir, "training", hyper_params=hyper_params,
                    data_params=spec.data_params, seed=int(config["seed"]),
                    fingerprint=dataset.fingerprint or None,
                    validation=bool(spec.validation), epochs=int(config["epochs"]),
                    class_names=names, save_to=os.path.abspath(target),
                    devices=_devices_used(parallel))
    with recorded(run):
        with writing(run.file(START_KERAS)):
            save_model(model, run.file(START_KERAS), class_names=names)
        return _train_in(run, model, hyper_params, dataset, bool(spec.validation), spec,
                         report=report, cancel=cancel, class_names=names,
                         parallel=parallel)


def _resume(spec: TrainSpec, report: Reporter, cancel: CancelToken) -> TrainOutcome:
    """Continue a stopped or interrupted training at the epoch after its checkpoint.

    The model comes back from the run's start.keras plus the checkpoint (weights,
    optimizer state and epoch); the learning-rate schedule continues from that epoch.
    """
    from convonet.core.model import load_model
    from convonet.core.params import HyperParams
    from convonet.core.training import read_history_csv

    assert spec.resume is not None
    folder = check_resumable(spec.resume, "training")
    dataset = spec.dataset if spec.dataset is not None \
        else load_run_dataset(folder, report, cancel)
    check_fingerprint(folder, dataset)
    if cancel.cancelled:
        raise Cancelled()
    info = folder.info
    hyper_params = HyperParams.load(folder.file(HYPER_PARAMS_JSON))
    parallel = _parallelism(spec, hyper_params.first())
    with warnings.catch_warnings():
        # start.keras was saved before the optimizer had built its slots; the checkpoint
        # restores them, so Keras's note that it skipped them says nothing useful.
        warnings.filterwarnings("ignore", message="Skipping variable loading for optimizer")
        model = load_model(folder.file(START_KERAS))
    names = info.get("class_names") or list(dataset.class_names)
    folder.update(status="running", ended=None, pid=os.getpid(),
                  resumed=[*info.get("resumed", []), now_iso()],
                  devices=_devices_used(parallel))
    with recorded(folder):
        return _train_in(folder, model, hyper_params, dataset, bool(info.get("validation")),
                         spec, report=report, cancel=cancel, class_names=names,
                         history_rows=read_history_csv(folder.file(HISTORY_CSV)),
                         parallel=parallel)


def _train_in(run: RunFolder, model: keras.Model, hyper_params: HyperParams,
              dataset: Dataset, validation: bool, spec: TrainSpec, *, report: Reporter,
              cancel: CancelToken, class_names: Sequence[str],
              history_rows: Sequence[Any] = (),
              parallel: DataParallelism | None = None) -> TrainOutcome:
    from convonet.core.exports import tensorboard_callbacks
    from convonet.core.model import save_model
    from convonet.core.training import NetTraining

    skipped_csv = write_skipped_csv(run, dataset.skipped)
    callbacks = [*spec.callbacks, *tensorboard_callbacks(
        run.path, enabled=spec.tensorboard, on_missing=lambda why: report(Notice(why)))]
    started = time.monotonic()
    options: dict[str, Any] = {}
    if spec.batch_interval is not None:
        options["batch_interval"] = spec.batch_interval
    trainer = NetTraining(model, hyper_params, report=report, cancel=cancel,
                          checkpoint_dir=run.file(BACKUP_DIR),
                          history_csv=run.file(HISTORY_CSV), history_rows=history_rows,
                          distribution=parallel, **options)
    fit = trainer.train_val if validation else trainer.train
    history = fit(dataset, callbacks) if callbacks else fit(dataset)
    seconds = time.monotonic() - started
    status = Status.DIVERGED if history.diverged else Status.FINISHED
    if history.stopped:
        status = Status.INTERRUPTED if spec.interrupted is not None \
            and spec.interrupted() else Status.STOPPED
    metrics = train_metrics(history, seconds)
    previous = run.info.get("metrics", {}).get("seconds")
    if isinstance(previous, (int, float)) and run.info.get("resumed"):
        metrics["seconds"] = round(previous + seconds, 3)
    with writing(run.file(MODEL_KERAS)):
        saved = save_model(model, run.file(MODEL_KERAS), class_names=class_names)
    extra = {"diverged": diverged_text(history)} if history.diverged else {}
    run.finish(str(status), metrics=metrics, model=str(saved), **extra)
    if status in (Status.FINISHED, Status.DIVERGED):  # nothing left to resume: free the disk
        shutil.rmtree(run.file(BACKUP_DIR), ignore_errors=True)
        run.file(START_KERAS).unlink(missing_ok=True)
        run.file("start.classes.json").unlink(missing_ok=True)
    return TrainOutcome(history=history, status=status, run=run, model=model,
                        dataset=dataset, metrics=metrics, skipped_csv=skipped_csv,
                        config=hyper_params.first())


def _parallelism(spec: TrainSpec, config: dict[str, Any]) -> DataParallelism | None:
    """The data-parallel training ``spec.devices`` (or the environment) asks for, checked
    before anything is recorded; None for one device."""
    from convonet.core.distribution import data_parallelism

    return data_parallelism(spec.devices, int(config["batch_size"]))


def _devices_used(parallel: DataParallelism | None) -> list[str]:
    """run.json's ``devices``: those the training is spread over, else the one it uses."""
    from convonet.core.distribution import default_device

    return list(parallel.devices) if parallel is not None else [default_device()]


def diverged_text(history: TrainHistory) -> str:
    """``epoch 3: the training loss became nan``: run.json's ``diverged`` field."""
    return f"epoch {history.diverged_epoch}: {history.diverged_reason}"


def _save_copy(outcome: TrainOutcome, save_to: str | os.PathLike[str] | None) -> Path:
    """The finished model copied to ``save_to``, else where the run recorded it belongs.

    A full disk keeps the run's own copy and says where it is.
    """
    from convonet.core.model import save_model
    from convonet.tasks.resume import resume_save_to

    run = outcome.run
    assert run is not None
    target = Path(save_to) if save_to is not None else resume_save_to(run)
    names = run.info.get("class_names") or (list(outcome.dataset.class_names)
                                            if outcome.dataset is not None else None)
    try:
        saved = save_model(outcome.model, target, class_names=names)
    except Exception as exc:  # a full disk: the run's own copy is whole
        error = storage_error(exc, target, outcome="the trained model is kept in "
                              f"{outcome.model_file}", then="copy it from there",
                              results_dir=run.path.parent.parent)
        if error is None:
            raise
        raise error from exc
    run.update(model=str(saved))
    return saved
