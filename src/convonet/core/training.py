"""Training (the seed's NetTraining): training only, or with a held-out validation split.

Progress goes out as core events (TrainStart, throttled BatchProgress, EpochEnd) and a
``CancelToken`` stops training at the next batch. A stop keeps the weights and the history
so far; the cut-short epoch is recorded as partial with the metrics of the batches it ran.

Keras's fit loop still runs validation and ``on_epoch_end`` after ``stop_training`` is set,
so the cancel callback also sets ``model.stop_evaluating``. ``evaluate`` resets that flag
when it starts, so the callback sets it again in ``on_test_begin``; Keras then runs one
validation batch before it looks at the flag. Those partial validation numbers are dropped.

The history rows live in ``train_history``, the fit's callbacks in ``train_callbacks`` and
the checkpoint and per-epoch history file in ``checkpoints``; the names importers use are
re-exported here.
"""

from __future__ import annotations

import contextlib
import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol

import keras
import numpy as np

from convonet.core.checkpoints import BEST_WEIGHTS, _Backup, _HistoryAppend, checkpoint_epoch
from convonet.core.data import DataError, stratified_split
from convonet.core.distribution import DataParallelism
from convonet.core.events import CancelToken, Notice, Reporter, no_report
from convonet.core.graph_memory import releasing_traced_gradients
from convonet.core.model import check_fits
from convonet.core.model_options import backbone_phases
from convonet.core.params import HyperParams
from convonet.core.tensorflow_guard import set_random_seed
from convonet.core.train_callbacks import (
    _CancelCallback,
    _DivergenceStop,
    _EarlyStopping,
    _EpochSeeds,
    _ProgressCallback,
    _RunState,
    _TimeDecay,
    epoch_seed,
)
from convonet.core.train_history import (
    HISTORY_COLUMNS,
    EpochRow,
    TrainHistory,
    read_history_csv,
    write_history_csv,
)

__all__ = [
    "BEST_WEIGHTS", "HISTORY_COLUMNS", "DatasetLike", "EpochRow", "NetTraining",
    "TrainHistory", "balanced_class_weights", "checkpoint_epoch", "epoch_seed",
    "read_history_csv", "write_history_csv",
]


class DatasetLike(Protocol):
    """What training and testing read from a dataset (``convonet.core.data.Dataset``)."""

    x: np.ndarray
    y: np.ndarray
    class_names: list[str]

    @property
    def image_shape(self) -> tuple[int, int, int]: ...

    @property
    def num_classes(self) -> int: ...


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
                 history_rows: Sequence[EpochRow] = (),
                 distribution: DataParallelism | None = None) -> None:
        """``checkpoint_dir``: back up weights, optimizer and epoch at each epoch end
        (BackupAndRestore) and restore from there when it holds a checkpoint, so a
        killed training resumes at the next epoch. ``history_csv``: append each epoch's
        row as it lands. ``history_rows``: the epochs a resumed run already has.
        ``distribution``: train data-parallel over several devices
        (``core.distribution``)."""
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
        self.distribution = distribution

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
            raise DataError(f"validation_split {share} leaves no images to "
                            f"{'train on' if len(train_idx) == 0 else 'validate on'} "
                            f"({len(dataset.y)} images); add images to the training set, "
                            "change validation_split in the hyper params, or train without "
                            "validation")
        return self._fit(dataset.x[train_idx], dataset.y[train_idx],
                         (dataset.x[val_idx], dataset.y[val_idx]), dataset, callbacks)

    def _fit(self, x: np.ndarray, y: np.ndarray,
             validation: tuple[np.ndarray, np.ndarray] | None, dataset: DatasetLike,
             extra: Sequence[keras.callbacks.Callback]) -> TrainHistory:
        check_fits(self.model, dataset.image_shape, dataset.num_classes)
        if len(y) == 0:
            raise DataError("the training set is empty; load a training set with images in "
                            "its class folders")
        if self.distribution is not None:
            x, y, validation = self.distribution.even_sets(x, y, validation, self.report)
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

        set_random_seed(int(config["seed"]))
        class_weight = None
        if config.get("class_weight", "none") == "balanced":
            class_weight = balanced_class_weights(y, dataset.num_classes)

        batches = math.ceil(len(y) / batch_size)
        callbacks: list[keras.callbacks.Callback] = [
            _EpochSeeds(int(config["seed"])),
            _TimeDecay(config),
            *backbone_phases(config, checkpoint_epoch(self.checkpoint_dir)
                             if self.checkpoint_dir is not None else 0),
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
        validation_batches = (math.ceil(len(validation[1]) / batch_size)
                              if validation is not None else 0)
        callbacks.append(_ProgressCallback(state, history, self.report, epochs, batches,
                                           self.batch_interval, validation_batches))
        callbacks.append(_DivergenceStop(y, history, self.report, config))
        if self.history_csv is not None:
            callbacks.append(_HistoryAppend(history, self.history_csv))
        if self.checkpoint_dir is not None:
            callbacks.append(_Backup(state, self.checkpoint_dir, history, self.history_csv))
        callbacks.append(_CancelCallback(state, history))

        self._run_fit(x, y, validation, class_weight, callbacks, batch_size, epochs)
        history.stopped = state.stop_seen
        if early is not None and not history.stopped:
            history.early_stopped = early.stopped_epoch > 0
            if early.best_weights is not None:
                history.restored_epoch = early.best_epoch + 1
        return history

    def _run_fit(self, x: np.ndarray, y: np.ndarray,
                 validation: tuple[np.ndarray, np.ndarray] | None,
                 class_weight: dict[int, float] | None,
                 callbacks: list[keras.callbacks.Callback], batch_size: int,
                 epochs: int) -> None:
        """Keras's fit, or the jax device loop; on a copy over several devices when
        ``distribution`` says so (its trained state comes back into ``self.model``); both
        split each batch over the devices."""
        training = (self.distribution.training(self.model, self.report)
                    if self.distribution is not None
                    else contextlib.nullcontext(self.model))
        with training as model:
            # BackupAndRestore tells fit where to start through this attribute, and Keras
            # never clears it: a later fit of the same model would skip epochs.
            model._initial_epoch = None
            try:
                with releasing_traced_gradients():
                    if self._on_device(x, validation):
                        from convonet.core.device_loop import DeviceTrainer

                        DeviceTrainer(model, batch_size, self.report).fit(
                            x, y, epochs=epochs, validation_data=validation,
                            class_weight=class_weight, callbacks=callbacks)
                    else:
                        model.fit(
                            x, y, batch_size=batch_size, epochs=epochs, verbose=0,
                            validation_data=validation, class_weight=class_weight,
                            callbacks=callbacks, shuffle=True,
                        )
            finally:
                model._initial_epoch = None

    def _on_device(self, x: np.ndarray,
                   validation: tuple[np.ndarray, np.ndarray] | None) -> bool:
        """Whether the jax device loop trains (``core.device_loop``); says why not when the
        data is too large for the device."""
        if keras.backend.backend() != "jax":
            return False
        from convonet.core.device_loop import use_device_loop

        nbytes = x.nbytes + (validation[0].nbytes if validation is not None else 0)
        use, reason = use_device_loop(nbytes)
        if reason is not None:
            self.report(Notice(reason))
        return use
