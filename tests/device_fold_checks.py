"""Checks of tuning folds on the jax device loop (``core.device_folds``), run inside the
device-loop checks' child process (``tests/device_loop_checks.py``, KERAS_BACKEND=jax).

Tiny data: 90 8x8 images, 3 classes; 2 stratified folds of 45 training rows at batch 16
(2 whole batches and one of 13 rows a fold, in both folds).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from typing import Any

import keras
import numpy as np

from convonet.core.events import CancelToken, Event
from convonet.core.model import build_model
from convonet.core.params import HyperParams
from convonet.core.tuning import CombinationFailed, FoldEnd, tune

GRID: dict[str, Any] = {"num_filters": 2, "num_units": 8, "epochs": 2, "batch_size": 16,
                        "kernel_size": 3, "dropout": 0.1, "momentum": 0.9, "decay": 0.5,
                        "init_rate": "0.05,0.2", "cv_folds": 2, "tuning_share": 1.0,
                        "seed": 3}


def tiny_data(per_class: int = 30, classes: int = 3, size: int = 8
              ) -> tuple[np.ndarray, np.ndarray]:
    """Learnable images whose labels are sorted by class."""
    rng = np.random.default_rng(0)
    y = np.repeat(np.arange(classes), per_class).astype(np.int64)
    x = rng.normal(0.0, 0.5, size=(len(y), size, size, 1)).astype(np.float32)
    for c in range(classes):
        x[y == c, 2 * c: 2 * c + 2, :, 0] += 2.0
    return x, y


def nan_build(config: Mapping[str, Any], input_shape: tuple[int, int, int],
              num_classes: int) -> keras.Model:
    """num_filters=4: a model whose loss is NaN (it diverges)."""
    model = build_model(config, input_shape, num_classes)
    if config["num_filters"] == 4:
        model = keras.Sequential([model, keras.layers.Lambda(lambda t: t * float("nan"))])
        model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
    return model


class StopAfterPolls(CancelToken):
    """Sets itself after ``n`` more polls once armed: a stop in the middle of a fit."""

    def __init__(self) -> None:
        super().__init__()
        self.left: int | None = None

    def arm(self, n: int) -> None:
        self.left = n

    @property
    def cancelled(self) -> bool:
        if self.left is not None:
            self.left -= 1
            if self.left < 0:
                self.cancel()
        return super().cancelled


def folds(events: list[Event]) -> list[dict[str, Any]]:
    return [{"combination": e.combination_index, "fold": e.fold, "accuracy": e.accuracy,
             "loss": e.loss} for e in events if isinstance(e, FoldEnd)]


def search(mode: str, params: HyperParams, cancel: CancelToken | None = None,
           report: Callable[[Event], None] | None = None, **kwargs: Any) -> dict[str, Any]:
    from convonet.core.device_folds import DeviceFolds

    os.environ["CONVONET_DEVICE_LOOP"] = mode
    x, y = tiny_data()
    events: list[Event] = []

    def record(event: Event) -> None:
        events.append(event)
        if report is not None:
            report(event)

    puts = DeviceFolds.puts
    result = tune(x, y, params, report=record, cancel=cancel, **kwargs)
    return {"folds": folds(events), "stopped": result.stopped, "puts": DeviceFolds.puts - puts,
            "failed": [{"combination": e.combination_index, "diverged": e.diverged,
                        "reason": e.reason} for e in events
                       if isinstance(e, CombinationFailed)]}


def tuning_checks(compile_count: Any) -> dict[str, Any]:
    """The grid with the device loop off and on (its compiles counted), a stop in the
    middle of the second fold, and a diverging combination."""
    params = HyperParams(GRID)
    out: dict[str, Any] = {"off": search("off", params)}
    with compile_count() as compiles:
        out["on"] = search("on", params)
    out["compiles"] = compiles.names
    cancel = StopAfterPolls()

    def stop_in_fold_2(event: Event) -> None:
        if isinstance(event, FoldEnd):
            cancel.arm(2)  # the search's check, the first chunk's batch-begin, its end

    out["stop"] = search("on", params, cancel, stop_in_fold_2)
    out["diverged"] = search("on", HyperParams({**GRID, "init_rate": 0.05,
                                                 "num_filters": "4,2", "epochs": 1}),
                             build=nan_build)
    os.environ["CONVONET_DEVICE_LOOP"] = "on"
    return out
