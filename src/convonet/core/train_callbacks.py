"""The Keras callbacks of one fit: stop at the next batch, early stopping that survives a
stop and a resume, time-based learning-rate decay, per-epoch seeds, and progress events
with the history rows.

Keras's fit loop still runs validation and ``on_epoch_end`` after ``stop_training`` is set,
so the cancel callback also sets ``model.stop_evaluating``. ``evaluate`` resets that flag
when it starts, so the callback sets it again in ``on_test_begin``; Keras then runs one
validation batch before it looks at the flag. Those partial validation numbers are dropped.
"""

from __future__ import annotations

import math
import os
import random
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import keras
import numpy as np

from convonet.core.events import (
    BatchProgress,
    CancelToken,
    EpochEnd,
    Reporter,
    TrainStart,
    Validating,
)
from convonet.core.model import learning_rate_at
from convonet.core.train_history import EpochRow, TrainHistory


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

    # Only train, epoch and train-end hooks (always on the training thread), no batch hooks.
    async_safe = True

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

    # An epoch hook only (always on the training thread).
    async_safe = True

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
                 epochs: int, batches: int, interval: float,
                 validation_batches: int = 0) -> None:
        super().__init__()
        self.state = state
        self.history = history
        self.report = report
        self.epochs = epochs
        self.batches = batches
        self.interval = interval
        self.validation_batches = validation_batches
        self._started = False
        self._epoch_start = 0.0
        self._last_batch_event = -math.inf
        self._batches_done = 0
        self._validated = 0
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

    # This callback goes to fit only, so its test hooks are the validation pass.
    def on_test_begin(self, logs: Mapping[str, Any] | None = None) -> None:
        self._last_batch_event = time.monotonic()
        self._validated = 0
        self.report(Validating(epoch=self._epoch, epochs=self.epochs, batch=0,
                               batches=self.validation_batches))

    def on_test_batch_end(self, batch: int, logs: Mapping[str, Any] | None = None) -> None:
        # Async like the training batches: keep the highest batch seen.
        self._validated = max(self._validated, min(batch + 1, self.validation_batches))
        now = time.monotonic()
        if now - self._last_batch_event < self.interval:
            return
        self._last_batch_event = now
        self.report(Validating(epoch=self._epoch, epochs=self.epochs, batch=self._validated,
                               batches=self.validation_batches))

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


# ---- divergence ------------------------------------------------------------------------
# The rule (``ChanceWatch``) and the notice's words live in ``train_history`` (plain Python,
# testable without Keras); imported where used, so this section stays self-contained.
class _DivergenceStop(keras.callbacks.Callback):
    """Stops the fit at the end of the epoch where training diverged (``ChanceWatch``)
    and records it: in ``history`` (``diverged_epoch``, ``diverged_reason``) and as a
    warning ``Notice`` naming the epoch and what to change.

    Reads only the epoch-end logs (no batch hooks), so Keras keeps async dispatch.
    """

    async_safe = True

    def __init__(self, y: np.ndarray, history: TrainHistory | None = None,
                 report: Reporter | None = None,
                 config: Mapping[str, Any] | None = None) -> None:
        from convonet.core.train_history import ChanceWatch, chance_accuracy

        super().__init__()
        self.watch = ChanceWatch(chance_accuracy(y), len(y))
        self.history = history
        self.report = report
        self.config = config
        self.epoch: int | None = None  # 1-based epoch it diverged at
        self.reason: str | None = None

    def on_epoch_end(self, epoch: int, logs: Mapping[str, Any] | None = None) -> None:
        if self.epoch is not None:
            return
        logs = logs or {}
        rows = self.history.rows if self.history is not None else []
        if "loss" not in logs or (rows and rows[-1].partial):  # a stop cut it short
            return
        accuracy = _float(logs["accuracy"]) if "accuracy" in logs else math.nan
        reason = self.watch.epoch(_float(logs["loss"]), accuracy)
        if reason is None:
            return
        self.epoch, self.reason = epoch + 1, reason
        self.model.stop_training = True
        if self.history is not None:
            self.history.diverged_epoch, self.history.diverged_reason = self.epoch, reason
        if self.report is not None:
            from convonet.core.events import Notice  # here: this section stays self-contained

            self.report(Notice(self.notice(), level="warning"))

    def notice(self) -> str:
        from convonet.core.train_history import divergence_notice

        return divergence_notice(self.epoch or 0, self.reason or "", self.config)

