"""SVG snapshots of the testing screen after a prediction, at 80x24 and 120x40.

The prediction is hand-made (a fixed confusion matrix on four lung-CT class names) and the
model is an untrained three-layer stand-in, so nothing depends on training. Update with
``pytest tests/test_snapshots_testing.py --snapshot-update`` and look at the SVGs first.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from convonet.tui.session import Session


def _controller(fixed_prediction: tuple[Any, Any]) -> Session:
    import keras

    from convonet.core.testing import Evaluation

    prediction, test_set = fixed_prediction
    model = keras.Sequential([keras.Input((16, 16, 1)), keras.layers.Flatten(),
                              keras.layers.Dense(4, activation="softmax")])
    return Session(model=model, model_path=Path("app_results/lung.keras"),
                      test_set=test_set, prediction=prediction,
                      evaluation=Evaluation(loss=0.5123, accuracy=0.83, count=100))


async def _show_prediction(pilot: Any) -> None:
    await pilot.press("6")
    await pilot.pause()
    pilot.app.screen._reveal("#prediction")
    await pilot.pause()


def test_testing_screen_80x24(snap_compare: Any, make_app: Any,
                              fixed_prediction: tuple[Any, Any]) -> None:
    app = make_app(session=_controller(fixed_prediction), results_dir="app_results")
    assert snap_compare(app, terminal_size=(80, 24), run_before=_show_prediction)


def test_testing_screen_120x40(snap_compare: Any, make_app: Any,
                               fixed_prediction: tuple[Any, Any]) -> None:
    app = make_app(session=_controller(fixed_prediction), results_dir="app_results")
    assert snap_compare(app, terminal_size=(120, 40), run_before=_show_prediction)
