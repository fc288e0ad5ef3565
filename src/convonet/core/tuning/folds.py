"""The fold runner: fit one clone of a combination on one fold and score it.

A stop ends the fit at the next batch and discards it; a fold that diverges (a NaN or
infinite loss, or training accuracy back at chance: the training's own rule,
``ChanceWatch``) marks the combination diverged (``CombinationDiverged``); an
out-of-memory error fails it (``CombinationError``); anything else is a
``FatalTuningError``.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping
from typing import Any

import keras
import numpy as np
from sklearn.base import clone
from sklearn.utils.class_weight import compute_class_weight

from convonet.core.events import CancelToken, Reporter, no_report
from convonet.core.graph_memory import releasing_traced_gradients
from convonet.core.model import learning_rate_at
from convonet.core.model_options import backbone_phases
from convonet.core.train_history import ChanceWatch, chance_accuracy
from convonet.core.tuning.errors import (
    CombinationDiverged,
    CombinationError,
    FatalTuningError,
    _short,
    failure_reason,
)
from convonet.core.tuning.estimator import BuildFn, ModelReuse, make_estimator


class _StopOnCancel(keras.callbacks.Callback):
    """Ends the fit at the next batch once the token is set."""

    # Async-safe: Keras may run batch-end hooks on a helper thread instead of turning every
    # batch's logs into numbers on the training thread (a per-batch sync). Reading the
    # token and setting the flag is safe from any thread; batch-begin hooks run on the
    # training thread, so a stop is seen before the next batch is dispatched.
    async_safe = True

    def __init__(self, cancel: CancelToken) -> None:
        super().__init__()
        self.cancel = cancel

    def on_train_batch_begin(self, batch: int, logs: Any = None) -> None:
        if self.cancel.cancelled:
            self.model.stop_training = True

    def on_train_batch_end(self, batch: int, logs: Any = None) -> None:
        if self.cancel.cancelled:
            self.model.stop_training = True


class _TimeBasedDecay(keras.callbacks.Callback):
    """lr = init_rate / (1 + decay * epoch), set at each epoch's start.

    Keras's LearningRateScheduler reads the rate back through ``np.array`` first, which
    warns under NumPy 2 on every epoch; this only writes it.
    """

    async_safe = True  # an epoch hook only: never the reason Keras dispatches per batch

    def __init__(self, config: Mapping[str, Any]) -> None:
        super().__init__()
        self.config = dict(config)

    def on_epoch_begin(self, epoch: int, logs: Any = None) -> None:
        self.model.optimizer.learning_rate = learning_rate_at(self.config, epoch)


class _FailOnDivergence(keras.callbacks.Callback):
    """Raises ``CombinationDiverged`` at the end of the epoch where the fold diverged,
    by training's rule (``ChanceWatch``: a NaN/inf loss, or accuracy back at chance for
    two epochs after having been above it). TerminateOnNaN would print instead."""

    async_safe = True  # epoch-end logs only

    def __init__(self, y_train: np.ndarray | None) -> None:
        super().__init__()
        self.watch = ChanceWatch(chance_accuracy(y_train), len(y_train)) \
            if y_train is not None else ChanceWatch(0.0)
        self.check_chance = y_train is not None

    async_safe = True  # an epoch hook only: never the reason Keras dispatches per batch

    def on_epoch_end(self, epoch: int, logs: Any = None) -> None:
        logs = logs or {}
        loss = logs.get("loss")
        if loss is None:
            return
        accuracy = float(logs["accuracy"]) if self.check_chance and "accuracy" in logs \
            else math.nan
        reason = self.watch.epoch(float(loss), accuracy)
        if reason is not None:
            raise CombinationDiverged(f"diverged at epoch {epoch + 1}: {reason}")


#: Told after each training epoch of a fold: (epoch 1-based, epochs, the epoch's logs).
EpochHook = Callable[[int, int, Mapping[str, Any]], None]


class _ReportEpochs(keras.callbacks.Callback):
    """Hands each epoch's logs (loss, accuracy) to ``hook``: a fold's progress."""

    async_safe = True  # an epoch hook only: never the reason Keras dispatches per batch

    def __init__(self, hook: EpochHook, epochs: int) -> None:
        super().__init__()
        self.hook = hook
        self.epochs = epochs

    def on_epoch_end(self, epoch: int, logs: Any = None) -> None:
        self.hook(epoch + 1, self.epochs, dict(logs or {}))


def fit_params(config: Mapping[str, Any], y_train: np.ndarray | None = None,
               cancel: CancelToken | None = None,
               on_epoch: EpochHook | None = None) -> dict[str, Any]:
    """Arguments for ``SKLearnClassifier.fit`` (constructor ``fit_kwargs`` are lost on clone)."""
    cfg = dict(config)
    callbacks: list[keras.callbacks.Callback] = [
        _TimeBasedDecay(cfg),
        _FailOnDivergence(y_train),
        *backbone_phases(cfg),
    ]
    if cancel is not None:
        callbacks.append(_StopOnCancel(cancel))
    if on_epoch is not None:  # after the divergence check: a diverged epoch is not progress
        callbacks.append(_ReportEpochs(on_epoch, int(cfg["epochs"])))
    out: dict[str, Any] = {"epochs": int(cfg["epochs"]), "batch_size": int(cfg["batch_size"]),
                           "verbose": 0, "callbacks": callbacks}
    if cfg.get("class_weight") == "balanced" and y_train is not None:
        classes = np.unique(y_train)
        weights = compute_class_weight("balanced", classes=classes, y=y_train)
        # the wrapper one-hot encodes the sorted classes present, so index i = classes[i]
        out["class_weight"] = {i: float(w) for i, w in enumerate(weights)}
    return out


class FoldRunner:
    """Fits folds of the tuning share ``X`` (2-D), ``y``; one model kept per architecture.

    On jax with the device loop on (``core.device_loop.use_device_loop``), folds train
    and predict on the device (``core.device_folds``), the share put there once; the
    scores are those of the wrapper's fit and predict. Otherwise each fold fits a clone
    of the scikit-learn estimator."""

    def __init__(self, X: np.ndarray, y: np.ndarray, image_shape: tuple[int, int, int],
                 seed: int, build: BuildFn, cancel: CancelToken,
                 report: Reporter = no_report) -> None:
        self.X, self.y, self.image_shape = X, y, image_shape
        self.seed = seed
        self.cancel = cancel
        self.report = report
        self.reuse = ModelReuse(build)
        self._device: Any = _UNDECIDED

    def estimator(self, config: Mapping[str, Any]) -> keras.wrappers.SKLearnClassifier:
        return make_estimator(config, self.image_shape, self.seed, self.reuse.build,
                              self.reuse)

    def device(self) -> Any:
        """The share's ``DeviceFolds``, or None for the estimator's path (decided once)."""
        if self._device is _UNDECIDED:
            self._device = None
            if keras.backend.backend() == "jax":
                from convonet.core.device_folds import DeviceFolds

                self._device = DeviceFolds.for_share(self.X, self.y, self.report)
        return self._device

    def fit_fold(self, estimator: Any, config: Mapping[str, Any], train: np.ndarray,
                 test: np.ndarray, on_epoch: EpochHook | None = None
                 ) -> dict[str, Any] | None:
        """Fit one clone on one fold and score it; None if a stop cut the fit short.
        ``on_epoch`` hears of each training epoch (the fold's progress)."""
        device = self.device()
        on_device = device is not None and device.takes(config, train)
        est: Any = None if on_device else clone(estimator)
        try:
            t0 = time.perf_counter()
            with releasing_traced_gradients():
                if on_device:
                    model, classes = self._fit_on_device(device, config, train, on_epoch)
                else:
                    est.fit(self.X[train], self.y[train],
                            **fit_params(config, self.y[train], self.cancel, on_epoch))
                    model, classes = est.model_, est.classes_
            fit_time = time.perf_counter() - t0
            if self.cancel.cancelled:
                return None
            t1 = time.perf_counter()
            if on_device:
                proba = device.predict(model, test, int(config["batch_size"]))
            else:
                proba = model.predict(self.X[test], batch_size=int(config["batch_size"]),
                                      verbose=0)
            if not np.isfinite(proba).all():
                raise CombinationDiverged("diverged: the model predicts NaN")
            pred = classes[np.argmax(proba, axis=1)]
            accuracy = float(np.mean(pred == self.y[test]))
            loss = _log_loss(self.y[test], proba, classes)
            score_time = time.perf_counter() - t1
        except CombinationError:
            raise
        except Exception as exc:
            reason = failure_reason(exc)
            if reason is None:
                raise FatalTuningError(f"{type(exc).__name__}: {_short(exc)}") from exc
            raise CombinationError(reason) from exc
        finally:
            del est  # the model stays with self.reuse until the architecture changes
        return {"accuracy": accuracy, "loss": loss, "fit_time": fit_time,
                "score_time": score_time, "train_size": int(len(train)),
                "test_size": int(len(test))}

    def _fit_on_device(self, device: Any, config: Mapping[str, Any], train: np.ndarray,
                       on_epoch: EpochHook | None = None
                       ) -> tuple[keras.Model, np.ndarray]:
        """What the estimator's fit does (the reset model, the same arguments and seed),
        on the rows of the share on the device."""
        params = fit_params(config, self.y[train], self.cancel, on_epoch)
        model = self.reuse.model_for(config, self.image_shape, len(device.classes),
                                     self.seed)
        device.fit(model, train, **params)
        return model, device.classes


#: Not yet decided whether folds run on the device.
_UNDECIDED = object()


def _log_loss(y: np.ndarray, proba: np.ndarray, classes: np.ndarray) -> float:
    """Mean categorical crossentropy, clipped as Keras clips (1e-7)."""
    col = {int(c): i for i, c in enumerate(classes)}
    p = np.array([proba[i, col[int(t)]] if int(t) in col else 0.0 for i, t in enumerate(y)])
    return float(-np.mean(np.log(np.clip(p, 1e-7, 1.0))))

