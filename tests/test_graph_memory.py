"""Memory stays flat across many fits: TensorFlow's traced custom gradients are released.

Counts, not timings or RSS: the number of gradient functions TensorFlow holds and the
number of live Python objects after each fit are exact and do not depend on the machine.
"""

from __future__ import annotations

import gc
from dataclasses import dataclass, field

import keras
import numpy as np
import pytest

from convonet.core.graph_memory import (
    custom_gradient_count,
    gradient_registry,
    releasing_traced_gradients,
)
from convonet.core.model import build_model
from convonet.core.params import HyperParams
from convonet.core.training import NetTraining
from convonet.core.tuning import tune

pytestmark = pytest.mark.skipif(keras.backend.backend() != "tensorflow",
                                reason="the leak and its fix are TensorFlow's")

TINY = {"num_filters": 2, "num_units": 8, "epochs": 1, "batch_size": 16, "kernel_size": 3,
        "dropout": 0.1, "init_rate": 0.05, "cv_folds": 2, "tuning_share": 1.0, "seed": 3}


def tiny_data(per_class: int = 20, classes: int = 3, size: int = 8
              ) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    y = np.repeat(np.arange(classes), per_class).astype(np.int64)
    x = rng.normal(0.0, 0.5, size=(len(y), size, size, 1)).astype(np.float32)
    for c in range(classes):
        x[y == c, 2 * c: 2 * c + 2, :, 0] += 2.0
    return x, y


def plain_fit(x: np.ndarray, y: np.ndarray) -> None:
    model = build_model(HyperParams(TINY).first(), (8, 8, 1), 3)
    model.fit(x, y, epochs=1, batch_size=16, verbose=0)


def test_the_registry_is_where_tensorflow_keeps_it() -> None:
    """If TensorFlow moves its registry, the release silently does nothing: fail here."""
    assert gradient_registry() is not None


def test_a_plain_fit_leaves_traced_gradients_behind_and_the_release_removes_them() -> None:
    x, y = tiny_data()
    keras.backend.clear_session()
    start = custom_gradient_count()
    plain_fit(x, y)
    leaked = custom_gradient_count() - start
    assert leaked > 0  # the leak this module exists for is still there
    with releasing_traced_gradients():
        plain_fit(x, y)
    assert custom_gradient_count() - start == leaked  # the second fit left nothing


def test_a_model_trains_again_after_its_gradients_were_released() -> None:
    """Training continues from the same weights (the training screen's second run)."""
    x, y = tiny_data()
    hp = HyperParams({**TINY, "epochs": 2})
    model = build_model(hp.first(), (8, 8, 1), 3)
    data = _Set(x, y)
    first = NetTraining(model, hp).train(data)
    second = NetTraining(model, hp).train(data)
    assert len(first.rows) == 2 and len(second.rows) == 2
    assert all(np.isfinite(r.loss) for r in second.rows)
    assert second.rows[-1].loss < first.rows[0].loss


def test_tuning_keeps_no_graphs_and_no_objects_per_fit() -> None:
    x, y = tiny_data()
    keras.backend.clear_session()
    hp = HyperParams({**TINY, "num_units": "8,12"})  # 2 combinations x 2 folds
    tune(x, y, hp)  # warm up: imports, caches and first traces
    gc.collect()
    gradients, objects = custom_gradient_count(), len(gc.get_objects())
    tune(x, y, hp.edit(num_units="16,20"))  # 4 more fits, of models not built before
    gc.collect()
    assert custom_gradient_count() == gradients
    # before the release each fit kept about 8,000 objects alive (its whole graph)
    assert len(gc.get_objects()) - objects < 2_000


@dataclass
class _Set:
    x: np.ndarray
    y: np.ndarray
    class_names: list[str] = field(default_factory=lambda: ["a", "b", "c"])
    image_shape: tuple[int, int, int] = (8, 8, 1)
    num_classes: int = 3
