"""SVG snapshots of the model screen (a summary) and the training screen (a recorded history,
nothing live) at 80x24 and 120x40.

The model is built in the test with Keras's name counters reset, so layer names are the same
whatever ran before. Update after a deliberate change with ``pytest
tests/test_snapshots_model_training.py --snapshot-update`` and look at the SVGs first.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from convonet.tui.session import Session

DIGITS = [str(i) for i in range(10)]


def _controller(tiny_set: Any) -> Session:
    """The demo's shape (28x28 grayscale digits) with the demo's small network."""
    import keras

    from convonet.core.model import NetModel
    from convonet.core.params import HyperParams

    hyper = HyperParams(path="demo_hyper_params.json").edit(
        num_filters=16, num_units=128, dropout=0.3, epochs=8, batch_size=32)
    keras.backend.clear_session()
    net = NetModel(hyper)
    model = net.build((28, 28, 1), 10, DIGITS)
    train_set = tiny_set(classes=10, per_class=2, size=28)
    train_set.class_names = list(DIGITS)
    controller = Session(hyper_params=hyper, train_set=train_set, model=model,
                         model_path=Path("app_results/digits.keras"),
                         class_names=list(DIGITS), model_config=dict(net.config))
    return controller


def _history() -> Any:
    """Eight epochs with validation, as a real run on the demo set might give."""
    from convonet.core.training import EpochRow, TrainHistory

    loss = [1.92, 1.05, 0.61, 0.42, 0.33, 0.27, 0.23, 0.20]
    acc = [0.41, 0.71, 0.83, 0.88, 0.91, 0.92, 0.94, 0.95]
    val_loss = [1.41, 0.74, 0.49, 0.38, 0.33, 0.31, 0.29, 0.29]
    val_acc = [0.62, 0.79, 0.86, 0.89, 0.90, 0.91, 0.92, 0.92]
    rows = [EpochRow(epoch=i + 1, loss=loss[i], accuracy=acc[i], val_loss=val_loss[i],
                     val_accuracy=val_acc[i], learning_rate=0.02, seconds=1.4, batches=36)
            for i in range(8)]
    return TrainHistory(rows=rows, validation=True, monitor="val_loss", epochs=8)


@pytest.mark.parametrize("size", [(80, 24), (120, 40)], ids=["80x24", "120x40"])
def test_model_screen_summary(snap_compare: Any, make_app: Any, tiny_set: Any,
                              size: tuple[int, int]) -> None:
    app = make_app(session=_controller(tiny_set), results_dir="app_results")
    assert snap_compare(app, press=["3"], terminal_size=size)


@pytest.mark.parametrize("size", [(80, 24), (120, 40)], ids=["80x24", "120x40"])
def test_training_screen_with_a_recorded_history(snap_compare: Any, make_app: Any,
                                                 tiny_set: Any,
                                                 size: tuple[int, int]) -> None:
    controller = _controller(tiny_set)
    controller.history = _history()
    controller.model_dirty = True
    app = make_app(session=controller, results_dir="app_results")
    assert snap_compare(app, press=["4"], terminal_size=size)
