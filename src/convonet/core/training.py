"""Training (the seed's NetTraining): training only, or with a held-out validation split.

Progress goes out as core events (TrainStart, throttled BatchProgress, EpochEnd) and a
``CancelToken`` stops training at the next batch. A stop keeps the weights and the history
so far; the cut-short epoch is recorded as partial with the metrics of the batches it ran.

Keras's fit loop still runs validation and ``on_epoch_end`` after ``stop_training`` is set,
so the cancel callback also sets ``model.stop_evaluating``. ``evaluate`` resets that flag
when it starts, so the callback sets it again in ``on_test_begin``; Keras then runs one
validation batch before it looks at the flag. Those partial validation numbers are dropped.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import random
import shutil
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol

import keras
import numpy as np

from convonet.core.data import stratified_split
from convonet.core.events import (
    BatchProgress,
    CancelToken,
    EpochEnd,
    Reporter,
    TrainStart,
    no_report,
)
from convonet.core.graph_memory import releasing_traced_gradients
from convonet.core.model import check_fits, learning_rate_at
from convonet.core.params import HyperParams
from convonet.core.storage import writing


class DatasetLike(Protocol):
    """What training and testing read from a dataset (``convonet.core.data.Dataset``)."""

    x: np.ndarray
    y: np.ndarray
    class_names: list[str]

    @property
    def image_shape(self) -> tuple[int, int, int]: ...

    @property
    def num_classes(self) -> int: ...


@dataclass(frozen=True)
class EpochRow:
    """One epoch of the history. ``val_*`` are None without validation or when partial."""

    epoch: int  # 1-based
    loss: float
    accuracy: float
    val_loss: float | None
    val_accuracy: float | None
    learning_rate: float
    seconds: float
    batches: int  # batches run in this epoch
    partial: bool = False


HISTORY_COLUMNS = ("epoch", "loss", "accuracy", "val_loss", "val_accuracy", "learning_rate",
                   "seconds", "batches", "partial")
#: In the checkpoint folder: early stopping's best weights so far (see _EarlyStopping).
BEST_WEIGHTS = "best_weights.npz"


@dataclass
class TrainHistory:
    """What a training run produced, epoch by epoch, and how it ended."""

    rows: list[EpochRow] = field(default_factory=list)
    validation: bool = False
    stopped: bool = False  # the user stopped it (cancel token)
    early_stopped: bool = False  # patience ran out before the last epoch
    restored_epoch: int | None = None  # 1-based epoch whose weights the model holds now
    monitor: str = "loss"
    epochs: int = 0  # epochs asked for

    @property
    def partial(self) -> bool:
        """True when the last epoch was cut short by a stop."""
        return bool(self.rows) and self.rows[-1].partial

    @property
    def best_epoch(self) -> int | None:
        """The 1-based complete epoch with the lowest monitored loss."""
        best: tuple[float, int] | None = None
        for row in self.rows:
            if row.partial:
                continue
            value = getattr(row, self.monitor)
            if value is None or not math.isfinite(value):
                continue
            if best is None or value < best[0]:
                best = (value, row.epoch)
        return best[1] if best else None

    @property
    def result_row(self) -> EpochRow | None:
        """The epoch the run's result is: the one whose weights early stopping restored,
        else the last complete epoch (the history keeps every epoch)."""
        complete = [row for row in self.rows if not row.partial]
        if self.restored_epoch is not None:
            for row in complete:
                if row.epoch == self.restored_epoch:
                    return row
        return complete[-1] if complete else None

    def as_rows(self) -> list[dict[str, Any]]:
        return [asdict(row) for row in self.rows]

    def to_csv(self, path: str | os.PathLike[str]) -> Path:
        """Write the history as CSV (one row per epoch, empty cells for missing values)."""
        p = Path(path)
        p.parent.mkdir(parents=True, exist_ok=True)
        with p.open("w", newline="", encoding="utf-8") as fh:
            writer = csv.writer(fh)
            writer.writerow(HISTORY_COLUMNS)
            for row in self.as_rows():
                writer.writerow(["" if row[c] is None else row[c] for c in HISTORY_COLUMNS])
        return p

    def series(self, name: str) -> list[float | None]:
        """One column (e.g. ``val_loss``) in epoch order, for charts."""
        return [getattr(row, name) for row in self.rows]


def _csv_row(row: EpochRow) -> list[Any]:
    values = asdict(row)
    return ["" if values[c] is None else values[c] for c in HISTORY_COLUMNS]


def _opt_float(text: str | None) -> float | None:
    return None if text is None or text == "" else float(text)


def read_history_csv(path: str | os.PathLike[str]) -> list[EpochRow]:
    """The rows of a history CSV (``TrainHistory.to_csv`` or appended per epoch).

    A torn last line (the process was killed while writing it) is skipped.
    """
    p = Path(path)
    if not p.is_file():
        return []
    rows: list[EpochRow] = []
    with p.open(encoding="utf-8", newline="") as fh:
        for record in csv.DictReader(fh):
            try:
                rows.append(EpochRow(
                    epoch=int(record["epoch"]), loss=float(record["loss"]),
                    accuracy=float(record["accuracy"]),
                    val_loss=_opt_float(record.get("val_loss")),
                    val_accuracy=_opt_float(record.get("val_accuracy")),
                    learning_rate=float(record["learning_rate"]),
                    seconds=float(record["seconds"]), batches=int(record["batches"]),
                    partial=record.get("partial") == "True"))
            except (KeyError, TypeError, ValueError):
                continue  # a torn line: only the last one can be, and it is not an epoch
    return rows


def write_history_csv(path: str | os.PathLike[str], rows: Sequence[EpochRow]) -> Path:
    """Replace a history CSV atomically (a crash leaves the old file or the new one)."""
    from convonet.core.runs import atomic_write_text

    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(HISTORY_COLUMNS)
    for row in rows:
        writer.writerow(_csv_row(row))
    p = Path(path)
    atomic_write_text(p, buf.getvalue())
    return p


class _RunState:
    """Shared between the callbacks of one fit: whether a stop was seen, and where."""

    def __init__(self, cancel: CancelToken | None) -> None:
        self.cancel = cancel
        self.stop_seen = False

    def check(self) -> bool:
        if not self.stop_seen and self.cancel is not None and self.cancel.cancelled:
            self.stop_seen = True
        return self.stop_seen


class _CancelCallback(keras.callbacks.Callback):
    """Ends training at the next batch and cuts the validation pass short on a stop."""

    # Keras runs batch hooks of async-safe callbacks on a helper thread; otherwise it
    # converts every batch's logs to Python numbers on the training thread, which
    # measurably slows training (see benchmarks/bench_training.py). Setting a flag that
    # the fit loop reads is safe from any thread.
    async_safe = True

    def __init__(self, state: _RunState, history: TrainHistory | None = None) -> None:
        super().__init__()
        self.state = state
        self.history = history

    def _stop(self) -> None:
        self.model.stop_training = True
        self.model.stop_evaluating = True

    def on_train_batch_begin(self, batch: int, logs: Mapping[str, Any] | None = None) -> None:
        # Batch-begin hooks always run on the training thread, so a stop requested while
        # a batch ran is seen before the next one is dispatched.
        if self.state.check():
            self._stop()

    def on_train_batch_end(self, batch: int, logs: Mapping[str, Any] | None = None) -> None:
        if self.state.check():
            self._stop()

    def on_test_begin(self, logs: Mapping[str, Any] | None = None) -> None:
        # evaluate() resets stop_evaluating just before this hook, so set it here.
        if self.state.check():
            self._stop()

    def on_test_batch_end(self, batch: int, logs: Mapping[str, Any] | None = None) -> None:
        if self.state.check():
            self._stop()

    def on_epoch_begin(self, epoch: int, logs: Mapping[str, Any] | None = None) -> None:
        if self.state.check():
            self._stop()

    def on_epoch_end(self, epoch: int, logs: Mapping[str, Any] | None = None) -> None:
        # A stop that cut this epoch short (seen during validation, say): the flag set
        # then does not survive evaluate(), and fit looks at it again only after this
        # hook, so set it here and the next epoch never starts.
        rows = self.history.rows if self.history is not None else []
        if rows and rows[-1].epoch == epoch + 1 and rows[-1].partial:
            self._stop()


class _EarlyStopping(keras.callbacks.EarlyStopping):
    """EarlyStopping that ignores a stop-cut epoch and keeps the weights on a user stop.

    Keras 3 restores the best weights at the end of every fit; after a user stop the
    weights are kept as they are (the stop semantics), and a partial epoch's numbers must
    not count as "best".
    """

    def __init__(self, state: _RunState, *, history: TrainHistory | None = None,
                 best_path: Path | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.state = state
        self.history = history
        #: With a checkpoint folder: the best weights so far, saved at each improvement,
        #: so that a resumed run goes on counting patience from the same best epoch and
        #: can still restore its weights.
        self.best_path = best_path
        self._first_epoch = True

    def on_train_begin(self, logs: Mapping[str, Any] | None = None) -> None:
        super().on_train_begin(logs)
        self._first_epoch = True

    def on_epoch_begin(self, epoch: int, logs: Mapping[str, Any] | None = None) -> None:
        # The checkpoint has set the first epoch by now (BackupAndRestore's train-begin
        # hook runs after this callback's).
        if self._first_epoch:
            self._first_epoch = False
            if epoch > 0:
                self._carry_over(epoch)

    def _carry_over(self, epoch: int) -> None:
        """Resumed at ``epoch`` (0-based): take up the best epoch and the patience count
        where the finished epochs left them, as one uninterrupted run would have them."""
        if self.history is None or self.best_path is None or not self.best_path.is_file():
            return
        field_name = "val_loss" if self.monitor == "val_loss" else "loss"
        done = [(r.epoch - 1, getattr(r, field_name)) for r in self.history.rows
                if r.epoch <= epoch and not r.partial]
        done = [(e, v) for e, v in done if v is not None and math.isfinite(v)]
        if not done:
            return
        best_epoch, best = min(done, key=lambda ev: (ev[1], ev[0]))  # the first minimum
        try:
            with np.load(self.best_path) as saved:
                if int(saved["epoch"]) != best_epoch:
                    return  # killed between saving the weights and the checkpoint
                weights = [saved[f"w{i}"] for i in range(int(saved["count"]))]
        except (OSError, ValueError, KeyError):
            return
        self.best, self.best_epoch, self.best_weights = best, best_epoch, weights
        self.wait = (epoch - 1) - best_epoch

    def on_epoch_end(self, epoch: int, logs: Mapping[str, Any] | None = None) -> None:
        if self.state.check():
            return
        super().on_epoch_end(epoch, logs)
        if self.best_path is not None and self.best_epoch == epoch \
                and self.best_weights is not None:
            self._save_best(epoch)

    def _save_best(self, epoch: int) -> None:
        assert self.best_path is not None and self.best_weights is not None
        tmp = self.best_path.with_name(self.best_path.name + ".tmp")
        try:
            self.best_path.parent.mkdir(parents=True, exist_ok=True)
            with open(tmp, "wb") as fh:
                np.savez(fh, epoch=epoch, count=len(self.best_weights),
                         **{f"w{i}": w for i, w in enumerate(self.best_weights)})
            os.replace(tmp, self.best_path)
        except OSError:
            # Only a resume's patience depends on it; the run itself goes on.
            tmp.unlink(missing_ok=True)

    def on_train_end(self, logs: Mapping[str, Any] | None = None) -> None:
        if self.state.check():
            return
        super().on_train_end(logs)


def _float(value: Any) -> float:
    if isinstance(value, keras.Variable):
        value = value.value  # a Variable's own __array__ warns under NumPy 2
    return float(keras.ops.convert_to_numpy(value))


class _TimeDecay(keras.callbacks.Callback):
    """lr = init_rate / (1 + decay * epoch) at the start of each epoch.

    Keras's LearningRateScheduler does the same but reads the variable in a way that
    raises a NumPy 2 DeprecationWarning on every epoch.
    """

    def __init__(self, config: Mapping[str, Any]) -> None:
        super().__init__()
        self.config = config

    def on_epoch_begin(self, epoch: int, logs: Mapping[str, Any] | None = None) -> None:
        self.model.optimizer.learning_rate = learning_rate_at(self.config, epoch)


def epoch_seed(seed: int, epoch: int) -> int:
    """The seed of one epoch (0-based), from the run's seed and the epoch only."""
    return int(np.random.SeedSequence([int(seed) & 0xFFFFFFFF, int(epoch)])
               .generate_state(1, dtype=np.uint32)[0] >> 1)


class _EpochSeeds(keras.callbacks.Callback):
    """Reseeds the random sources of an epoch at its start from (seed, epoch) alone.

    So epoch k draws its dropout masks (the layers' seed generators) and, on jax and
    torch, its shuffle (the global NumPy or torch generator, drawn at the epoch's first
    batch) from the seed and k only: a run resumed from the checkpoint of epoch k repeats
    the uninterrupted run exactly, whatever the stopped process drew before. TensorFlow
    fixes its shuffle when fit builds the dataset, right after ``_fit`` sets the seed, so
    both runs have the same one; its global seed is not set here because that empties
    TensorFlow's kernel cache, which costs more than the rest of this together.
    """

    # No batch hooks and no logs read: never the reason Keras turns async dispatch off.
    async_safe = True

    def __init__(self, seed: int) -> None:
        super().__init__()
        self.seed = int(seed)

    def on_epoch_begin(self, epoch: int, logs: Mapping[str, Any] | None = None) -> None:
        seed = epoch_seed(self.seed, epoch)
        random.seed(seed)
        np.random.seed(seed)
        if keras.backend.backend() == "torch":
            import torch

            torch.manual_seed(seed)
        generators = _seed_generators(self.model)
        states = np.random.SeedSequence(seed).generate_state(len(generators),
                                                             dtype=np.uint32) >> 1
        for generator, state in zip(generators, states, strict=True):
            variable = generator.state
            variable.assign(np.array([int(state), 0], dtype=variable.dtype))


def _seed_generators(model: keras.Model) -> list[Any]:
    """The model's random seed generators (one per Dropout layer, say), in layer order."""
    found: list[Any] = []
    seen: set[int] = set()
    for layer in model._flatten_layers(include_self=True, recursive=True):
        for generator in getattr(layer, "_seed_generators", ()):
            if id(generator) not in seen:
                seen.add(id(generator))
                found.append(generator)
    return found


class _ProgressCallback(keras.callbacks.Callback):
    """Turns Keras hooks into core events and the history rows."""

    # Batch hooks may run on Keras's helper thread (see _CancelCallback): they only read
    # the clock, keep a running maximum and hand an event to the thread-safe reporter.
    async_safe = True

    def __init__(self, state: _RunState, history: TrainHistory, report: Reporter,
                 epochs: int, batches: int, interval: float) -> None:
        super().__init__()
        self.state = state
        self.history = history
        self.report = report
        self.epochs = epochs
        self.batches = batches
        self.interval = interval
        self._started = False
        self._epoch_start = 0.0
        self._last_batch_event = -math.inf
        self._batches_done = 0
        self._epoch = 0

    def on_epoch_begin(self, epoch: int, logs: Mapping[str, Any] | None = None) -> None:
        if not self._started:
            # Emitted here, not in on_train_begin, so a resumed run reports its real start.
            self._started = True
            self.report(TrainStart(epochs=self.epochs, batches=self.batches,
                                   validation=self.history.validation, initial_epoch=epoch))
        self._epoch = epoch + 1
        self._epoch_start = time.monotonic()
        self._batches_done = 0

    def on_train_batch_end(self, batch: int, logs: Mapping[str, Any] | None = None) -> None:
        # Async hooks may finish out of order: keep the highest batch seen.
        self._batches_done = max(self._batches_done, batch + 1)
        now = time.monotonic()
        if now - self._last_batch_event < self.interval:
            return
        self._last_batch_event = now
        clean = {k: _float(v) for k, v in (logs or {}).items()}
        self.report(BatchProgress(epoch=self._epoch, epochs=self.epochs, batch=batch + 1,
                                  batches=self.batches, logs=clean))

    def on_epoch_end(self, epoch: int, logs: Mapping[str, Any] | None = None) -> None:
        logs = dict(logs or {})
        partial = self.state.check()
        seconds = time.monotonic() - self._epoch_start
        lr = _float(self.model.optimizer.learning_rate)
        val_loss = logs.get("val_loss")
        val_acc = logs.get("val_accuracy")
        if partial:  # one validation batch ran before Keras saw the stop: not a number to keep
            val_loss = val_acc = None
        row = EpochRow(
            epoch=epoch + 1,
            loss=_float(logs.get("loss", math.nan)),
            accuracy=_float(logs.get("accuracy", math.nan)),
            val_loss=None if val_loss is None else _float(val_loss),
            val_accuracy=None if val_acc is None else _float(val_acc),
            learning_rate=lr,
            seconds=seconds,
            batches=self._batches_done,
            partial=partial,
        )
        self.history.rows.append(row)
        event_logs = {"loss": row.loss, "accuracy": row.accuracy, "learning_rate": lr}
        if row.val_loss is not None:
            event_logs["val_loss"] = row.val_loss
        if row.val_accuracy is not None:
            event_logs["val_accuracy"] = row.val_accuracy
        self.report(EpochEnd(epoch=epoch + 1, epochs=self.epochs, logs=event_logs,
                             seconds=seconds, partial=partial))


class _HistoryAppend(keras.callbacks.Callback):
    """Appends each epoch's row to a CSV as it lands, flushed and fsynced.

    Runs after _ProgressCallback (which makes the row) and before _Backup, so a kill
    between the two leaves a row newer than the checkpoint, never a missing one; on
    resume the rows past the checkpoint are dropped.
    """

    def __init__(self, history: TrainHistory, path: Path) -> None:
        super().__init__()
        self.history = history
        self.path = path

    def on_epoch_end(self, epoch: int, logs: Mapping[str, Any] | None = None) -> None:
        if not self.history.rows:
            return
        new = not self.path.exists() or self.path.stat().st_size == 0
        with writing(self.path), self.path.open("a", encoding="utf-8", newline="") as fh:
            writer = csv.writer(fh)
            if new:
                writer.writerow(HISTORY_COLUMNS)
            writer.writerow(_csv_row(self.history.rows[-1]))
            fh.flush()
            os.fsync(fh.fileno())


class _Backup(keras.callbacks.BackupAndRestore):
    """BackupAndRestore that skips an epoch cut short by a stop and keeps its files.

    A stop-cut epoch is not a finished one: resuming redoes it from the checkpoint of the
    epoch before. The checkpoint stays after fit (the run record removes it once the run
    has finished), so a stopped or interrupted run can still be resumed. On restore, the
    history rows past the checkpoint's epoch are dropped (their epochs run again).
    """

    def __init__(self, state: _RunState, backup_dir: Path, history: TrainHistory,
                 history_csv: Path | None) -> None:
        super().__init__(backup_dir=str(backup_dir), double_checkpoint=True,
                         delete_checkpoint=False)
        self.state = state
        self.history = history
        self.history_csv = history_csv

    def on_train_begin(self, logs: Mapping[str, Any] | None = None) -> None:
        try:
            super().on_train_begin(logs)
        except json.JSONDecodeError:
            # A torn training_metadata.json (killed while writing it): the previous
            # checkpoint pair is whole, so go back to it.
            prev_w, prev_m = Path(self._prev_weights_path), Path(
                self._prev_training_metadata_path)
            if not (prev_w.is_file() and prev_m.is_file()):
                raise
            os.replace(prev_w, self._weights_path)
            os.replace(prev_m, self._training_metadata_path)
            self._load_model()
        done = int(getattr(self.model, "_initial_epoch", None) or 0)
        kept = [r for r in self.history.rows if r.epoch <= done and not r.partial]
        if kept != self.history.rows or done == 0:
            self.history.rows[:] = kept
            if self.history_csv is not None:
                write_history_csv(self.history_csv, kept)

    def on_epoch_end(self, epoch: int, logs: Mapping[str, Any] | None = None) -> None:
        # The row _ProgressCallback just made says whether this epoch ran to its end.
        rows = self.history.rows
        if not rows or rows[-1].epoch != epoch + 1 or rows[-1].partial:
            return
        super().on_epoch_end(epoch, logs)

    def _save_model(self) -> None:
        """Keras's checkpoint save, made safe for a write that fails (a full disk).

        Keras copies the last checkpoint to ``.bkp`` and then writes the new one over it;
        a failure half way left a half-written weights file that a resume loaded as if it
        were whole. Here a failed save puts the last whole checkpoint back (a rename needs
        no space), so a resume starts exactly after the last finished epoch, and the error
        names the file that could not be written.
        """
        weights, metadata = Path(self._weights_path), Path(self._training_metadata_path)
        prev_weights = Path(self._prev_weights_path)
        prev_metadata = Path(self._prev_training_metadata_path)
        weights.parent.mkdir(parents=True, exist_ok=True)
        try:
            for source, copy in ((weights, prev_weights), (metadata, prev_metadata)):
                if source.is_file():
                    with writing(copy):
                        shutil.copy(source, copy)
        except BaseException:  # the whole checkpoint is still in place; a half copy is not
            prev_weights.unlink(missing_ok=True)
            prev_metadata.unlink(missing_ok=True)
            raise
        try:
            with writing(weights):  # h5py's write errors name no file
                self.model.save_weights(filepath=str(weights), overwrite=True)
            with writing(metadata):
                metadata.write_text(json.dumps({"epoch": self._current_epoch,
                                                "batch": self._last_batch_seen}),
                                    encoding="utf-8")
        except BaseException:
            if prev_weights.is_file() and prev_metadata.is_file():
                os.replace(prev_weights, weights)
                os.replace(prev_metadata, metadata)
            else:  # the first checkpoint: none is better than half of one
                weights.unlink(missing_ok=True)
                metadata.unlink(missing_ok=True)
            raise


def checkpoint_epoch(backup_dir: str | os.PathLike[str]) -> int:
    """Epochs finished according to a checkpoint folder (0 without a readable one)."""
    for name in ("training_metadata.json", "training_metadata.json.bkp"):
        try:
            data = json.loads((Path(backup_dir) / name).read_text(encoding="utf-8"))
            return int(data["epoch"])
        except (OSError, ValueError, KeyError, TypeError):
            continue
    return 0


def balanced_class_weights(y: np.ndarray, num_classes: int) -> dict[int, float]:
    """scikit-learn's 'balanced' weights, n / (k * count); absent classes get 1.0."""
    from sklearn.utils.class_weight import compute_class_weight

    present = np.unique(y)
    weights = compute_class_weight("balanced", classes=present, y=y)
    out = {i: 1.0 for i in range(int(num_classes))}
    out.update({int(c): float(w) for c, w in zip(present, weights, strict=True)})
    return out


class NetTraining:
    """Trains a compiled model with the hyper params' first values (the seed's NetTraining).

    ``batch_interval`` is the least time between BatchProgress events (seconds), so a fast
    training loop never floods the user interface.
    """

    def __init__(self, model: keras.Model, hyper_params: HyperParams | Mapping[str, Any],
                 report: Reporter = no_report, cancel: CancelToken | None = None,
                 batch_interval: float = 0.25, *,
                 checkpoint_dir: str | os.PathLike[str] | None = None,
                 history_csv: str | os.PathLike[str] | None = None,
                 history_rows: Sequence[EpochRow] = ()) -> None:
        """``checkpoint_dir``: back up weights, optimizer and epoch at each epoch end
        (BackupAndRestore) and restore from there when it holds a checkpoint, so a
        killed training resumes at the next epoch. ``history_csv``: append each epoch's
        row as it lands. ``history_rows``: the epochs a resumed run already has."""
        self.model = model
        self.config: dict[str, Any] = (hyper_params.first()
                                       if isinstance(hyper_params, HyperParams)
                                       else dict(hyper_params))
        self.report = report
        self.cancel = cancel
        self.batch_interval = batch_interval
        self.checkpoint_dir = Path(checkpoint_dir) if checkpoint_dir is not None else None
        self.history_csv = Path(history_csv) if history_csv is not None else None
        self.history_rows = list(history_rows)

    def train(self, dataset: DatasetLike,
              callbacks: Sequence[keras.callbacks.Callback] = ()) -> TrainHistory:
        """Training only, on the whole training set (early stopping watches ``loss``)."""
        return self._fit(dataset.x, dataset.y, None, dataset, callbacks)

    def train_val(self, dataset: DatasetLike,
                  callbacks: Sequence[keras.callbacks.Callback] = ()) -> TrainHistory:
        """Training with validation on a stratified, seeded ``validation_split`` share.

        Uses the loader's per-class split, so every class with two or more images is on
        both sides (Keras's own ``validation_split`` would take the last slice unshuffled).
        """
        share = float(self.config["validation_split"])
        train_idx, val_idx = stratified_split(dataset.y, share, int(self.config["seed"]))
        if len(train_idx) == 0 or len(val_idx) == 0:
            raise ValueError(f"validation_split {share} leaves no images to "
                             f"{'train on' if len(train_idx) == 0 else 'validate on'} "
                             f"({len(dataset.y)} images)")
        return self._fit(dataset.x[train_idx], dataset.y[train_idx],
                         (dataset.x[val_idx], dataset.y[val_idx]), dataset, callbacks)

    def _fit(self, x: np.ndarray, y: np.ndarray,
             validation: tuple[np.ndarray, np.ndarray] | None, dataset: DatasetLike,
             extra: Sequence[keras.callbacks.Callback]) -> TrainHistory:
        check_fits(self.model, dataset.image_shape, dataset.num_classes)
        if len(y) == 0:
            raise ValueError("the training set is empty")
        config = self.config
        epochs = int(config["epochs"])
        batch_size = int(config["batch_size"])
        patience = int(config.get("patience", 0))
        monitor = "val_loss" if validation is not None else "loss"
        history = TrainHistory(rows=list(self.history_rows),
                               validation=validation is not None, monitor=monitor,
                               epochs=epochs)
        state = _RunState(self.cancel)
        if state.check():
            history.stopped = True
            return history

        keras.utils.set_random_seed(int(config["seed"]))
        class_weight = None
        if config.get("class_weight", "none") == "balanced":
            class_weight = balanced_class_weights(y, dataset.num_classes)

        batches = math.ceil(len(y) / batch_size)
        callbacks: list[keras.callbacks.Callback] = [
            _EpochSeeds(int(config["seed"])),
            _TimeDecay(config),
            *extra,
        ]
        early: _EarlyStopping | None = None
        if patience > 0:
            best_path = (Path(self.checkpoint_dir) / BEST_WEIGHTS
                         if self.checkpoint_dir is not None else None)
            early = _EarlyStopping(state, history=history, best_path=best_path,
                                   monitor=monitor, patience=patience, mode="min",
                                   restore_best_weights=True, verbose=0)
            callbacks.append(early)
        callbacks.append(_ProgressCallback(state, history, self.report, epochs, batches,
                                           self.batch_interval))
        if self.history_csv is not None:
            callbacks.append(_HistoryAppend(history, self.history_csv))
        if self.checkpoint_dir is not None:
            callbacks.append(_Backup(state, self.checkpoint_dir, history, self.history_csv))
        callbacks.append(_CancelCallback(state, history))

        # BackupAndRestore tells fit where to start through this attribute, and Keras
        # never clears it: a later fit of the same model would skip epochs.
        self.model._initial_epoch = None
        try:
            with releasing_traced_gradients():
                self.model.fit(
                    x, y, batch_size=batch_size, epochs=epochs, verbose=0,
                    validation_data=validation, class_weight=class_weight,
                    callbacks=callbacks, shuffle=True,
                )
        finally:
            self.model._initial_epoch = None

        history.stopped = state.stop_seen
        if early is not None and not history.stopped:
            history.early_stopped = early.stopped_epoch > 0
            if early.best_weights is not None:
                history.restored_epoch = early.best_epoch + 1
        return history
