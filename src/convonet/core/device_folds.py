"""Tuning folds on the jax device loop (``core.device_loop``).

The tuning share goes to the device once, when the first fold needs it, and stays there
for every fold, combination and halving rung of the search. A fold trains the model on
the rows of its training part and predicts the rows of its test part, on the device,
with shapes that depend only on the share and the batch size: one compile serves every
fold, learning rate and epoch of an architecture and batch size.

The model's loss takes one-hot labels (the scikit-learn wrapper one-hot encodes the sorted
classes present in the training part); the device holds each label as its position among
the share's classes and makes each batch's one-hot rows. A fold whose training part lacks
a class (a tiny halving rung) would have fewer columns: it fits through the wrapper, as
before. So does a fit with a frozen phase (it changes what it trains part-way).

This module imports jax only inside the functions that run the device loop.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import keras
import numpy as np

from convonet.core.device_loop import DeviceTrainer, use_device_loop
from convonet.core.events import Notice, Reporter, no_report
from convonet.core.model_options import has_phases


class DeviceFolds:
    """The tuning share ``X`` (2-D), ``y`` (class labels), put on the device on first use.
    """

    #: How many tuning shares were put on a device (in this process).
    puts: ClassVar[int] = 0

    def __init__(self, X: np.ndarray, y: np.ndarray) -> None:
        self.X = X
        self.classes = np.unique(y)
        self.labels = np.searchsorted(self.classes, y).astype(np.int32)
        self._data: Any = None

    @classmethod
    def for_share(cls, X: np.ndarray, y: np.ndarray,
                  report: Reporter = no_report) -> DeviceFolds | None:
        """The share's folds on the device, or None when the device loop is off (or the
        share does not fit in the device memory: a notice says so)."""
        use, reason = use_device_loop(int(X.nbytes) + 4 * len(y))
        if reason is not None:
            report(Notice(reason.replace("training streams", "tuning streams").replace(
                "train on fewer or smaller images", "lower tuning_share or use smaller "
                "images")))
        return cls(X, y) if use else None

    def takes(self, config: Mapping[str, Any], train: np.ndarray) -> bool:
        """Whether this fold can fit on the device (see the module doc)."""
        return not has_phases(config) and \
            len(np.unique(self.labels[train])) == len(self.classes)

    @property
    def data(self) -> Any:
        """The share on the device (a ``DeviceSet``), put there on first use only."""
        if self._data is None:
            from convonet.core.device_steps import DeviceSet

            self._data = DeviceSet(self.X, self.labels)
            DeviceFolds.puts += 1
        return self._data

    def trainer(self, model: keras.Model, batch_size: int) -> DeviceTrainer:
        return DeviceTrainer(model, batch_size, one_hot=len(self.classes))

    def fit(self, model: keras.Model, train: np.ndarray, *, epochs: int, batch_size: int,
            callbacks: Sequence[keras.callbacks.Callback],
            class_weight: Mapping[int, float] | None = None, **_: Any) -> None:
        """``model.fit(X[train], one_hot(y[train]), ...)`` (``fit_params``'s arguments),
        on the device."""
        self.trainer(model, batch_size).fit_rows(
            self.data, train, epochs=epochs, class_weight=class_weight,
            callbacks=callbacks)

    def predict(self, model: keras.Model, test: np.ndarray, batch_size: int) -> np.ndarray:
        """``model.predict(X[test])``, on the device."""
        return self.trainer(model, batch_size).predict_rows(self.data, test)
