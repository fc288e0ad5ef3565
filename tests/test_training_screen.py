"""The training screen under Pilot: the seed's training scenario 1, stopping half way,
training again, greyed-out keys with reasons, and charts that outlive screen switches."""

from __future__ import annotations

import re
import time
from collections.abc import Mapping
from typing import Any

import pytest
from conftest import wait_for as wait_until
from textual.pilot import Pilot
from textual.widgets import DataTable, Static

from convonet.core.events import BatchProgress
from convonet.tui.commands import command_state, menu_commands
from convonet.tui.screens import training as training_screen
from convonet.tui.screens.training import TrainingScreen
from convonet.tui.session import Session
from convonet.tui.tasks import CoreEvent
from convonet.tui.widgets.charts import MetricChart


async def settle(pilot: Pilot[Any], wait_for_tasks: Any) -> None:
    """Every worker done and the screens out of their busy state."""
    await wait_for_tasks(pilot)
    app = pilot.app
    screens = []
    for mode in ("model", "training"):
        try:
            screens.extend(app.get_screen_stack(mode)[:1])
        except KeyError:  # not opened yet
            continue
    await wait_until(pilot, lambda: all(s._job is None for s in screens), "tasks to end")
    await pilot.pause()


def text_of(screen: Any, selector: str) -> str:
    return str(screen.query_one(selector, Static).render())


def charts(screen: Any) -> dict[str, Mapping[str, Any]]:
    return {chart.metric: chart.series for chart in screen.query(MetricChart)}


def menu_item(title: str) -> Any:
    return next(c for c in menu_commands() if c.title == title)


async def test_training_scenario_1_edit_initialize_train_with_validation(
        make_app: Any, tiny_set: Any, wait_for_tasks: Any) -> None:
    controller = Session(train_set=tiny_set())
    app = make_app(session=controller)
    async with app.run_test(size=(80, 24)) as pilot:
        # Edit hyper params (the params screen writes them to the controller the same way).
        controller.hyper_params = controller.hyper_params.edit(
            num_filters=4, num_units=16, epochs=2, batch_size=16)
        await pilot.press("3", "i")
        await settle(pilot, wait_for_tasks)
        model = controller.model
        assert model is not None and model.count_params() == 1279
        await pilot.press("4")
        screen = app.screen
        assert isinstance(screen, TrainingScreen)
        assert screen.check_action("stop_training", ()) is False  # not in the footer now
        assert "train the new model" in text_of(screen, "#train-info")
        await pilot.press("v")
        await settle(pilot, wait_for_tasks)

        history = controller.history
        assert history is not None and history.validation and not history.stopped
        assert [r.epoch for r in history.rows] == [1, 2]
        assert controller.model is model and controller.model_dirty
        series = charts(screen)
        assert len(series["accuracy"]["accuracy"]) == 2
        assert len(series["accuracy"]["val_accuracy"]) == 2
        assert len(series["loss"]["loss"]) == 2 and len(series["loss"]["val_loss"]) == 2
        assert screen.query_one("#train-epochs", DataTable).row_count == 2
        assert text_of(screen, "#progress-line").startswith("Done: 2 epochs")
        assert "val acc" in text_of(screen, "#progress-line")
        assert "continue from these weights (2 epochs so far)" in \
            text_of(screen, "#train-info")
        assert screen.check_action("stop_training", ()) is False

        # Repeat until satisfied: training only, from the weights reached so far.
        await pilot.press("t")
        await settle(pilot, wait_for_tasks)
        assert controller.history is not history and not controller.history.validation
        assert "val_accuracy" not in charts(screen)["accuracy"]
        assert "(4 epochs so far)" in text_of(screen, "#train-info")

        # The charts stay across screen switches.
        await pilot.press("3", "4")
        assert app.screen is screen
        assert len(charts(screen)["loss"]["loss"]) == 2


class _SlowTraining:
    """NetTraining whose batches take a little while, so a stop lands mid-run."""

    real: Any = None  # the real NetTraining, set by the test before patching

    def __init__(self, model: Any, hyper_params: Any, **kwargs: Any) -> None:
        import keras

        class Slow(keras.callbacks.Callback):
            def on_train_batch_end(self, batch: int, logs: Any = None) -> None:
                time.sleep(0.01)

        self._slow = Slow()
        self._inner = self.real(model, hyper_params, batch_interval=0.0, **kwargs)

    def train(self, dataset: Any) -> Any:
        return self._inner.train(dataset, callbacks=[self._slow])

    def train_val(self, dataset: Any) -> Any:
        return self._inner.train_val(dataset, callbacks=[self._slow])


async def test_stop_half_way_keeps_the_model_and_a_partial_history(
        make_app: Any, tiny_controller: Any, wait_for_tasks: Any,
        monkeypatch: pytest.MonkeyPatch) -> None:
    import convonet.core.training as core_training

    monkeypatch.setattr(_SlowTraining, "real", core_training.NetTraining)
    monkeypatch.setattr(core_training, "NetTraining", _SlowTraining)
    tiny_controller.hyper_params = tiny_controller.hyper_params.edit(epochs=20)
    batches: list[BatchProgress] = []

    def hook(message: Any) -> None:
        if isinstance(message, CoreEvent) and isinstance(message.event, BatchProgress):
            batches.append(message.event)

    app = make_app(session=tiny_controller)
    async with app.run_test(size=(80, 24), message_hook=hook) as pilot:
        await pilot.press("3", "i")
        await settle(pilot, wait_for_tasks)
        model = tiny_controller.model
        await pilot.press("4", "v")
        screen = app.screen
        await wait_until(pilot, lambda: bool(batches), "the first batch")
        await wait_until(pilot, lambda: "batch" in text_of(screen, "#progress-line"),
                         "the progress line")
        assert re.match(r"Epoch \d+/20 · batch \d/6 · ETA (\d+h)?(\d+m)?\d+s? · loss ",
                        text_of(screen, "#progress-line"))
        assert "lr 0.02" in text_of(screen, "#progress-line")
        assert screen.check_action("stop_training", ()) is True  # in the footer now
        assert screen.check_action("train", ()) is None  # greyed while it runs
        assert app.get_screen_stack("model")[0].check_action("load_network_model", ()) \
            is None
        await pilot.press("s")
        assert screen.check_action("stop_training", ()) is False  # asked once is enough
        await settle(pilot, wait_for_tasks)

        history = tiny_controller.history
        assert history.stopped and 1 <= len(history.rows) < 20
        assert history.rows[-1].partial
        assert tiny_controller.model is model and tiny_controller.model_dirty
        line = text_of(screen, "#progress-line")
        assert line.startswith(f"Stopped at epoch {history.rows[-1].epoch} of 20 (partial)")
        assert "model and history so far kept" in line
        table = screen.query_one("#train-epochs", DataTable)
        assert str(table.get_row_at(table.row_count - 1)[0]).endswith("partial")
        assert screen.check_action("train_with_validation", ()) is True


async def test_training_is_greyed_out_with_reasons(make_app: Any, tiny_set: Any,
                                                  wait_for_tasks: Any) -> None:
    controller = Session()
    app = make_app(session=controller)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("4")
        screen = app.screen
        assert screen.check_action("train", ()) is None
        assert screen.check_action("train_with_validation", ()) is None
        assert "no training set" in text_of(screen, "#train-reason")
        assert not command_state(app, menu_item("Training Only"))[0]
        assert not command_state(app, menu_item("Training With Validation"))[0]
        await pilot.press("t")
        await pilot.pause()
        assert not app.workers and controller.history is None

        controller.train_set = tiny_set()
        await pilot.press("3", "4")  # coming back re-reads the controller
        assert "no model" in text_of(screen, "#train-reason")

        from convonet.core.model import NetModel

        net = NetModel(controller.hyper_params.edit(num_filters=4, num_units=16))
        controller.model = net.build((20, 20, 1), 3)
        await pilot.press("3", "4")
        reason = text_of(screen, "#train-reason")
        assert "20x20x1" in reason and "16x16x1" in reason
        assert screen.check_action("train", ()) is None

        controller.model = net.build((16, 16, 1), 3)
        await pilot.press("3", "4")
        assert screen.check_action("train", ()) is True
        assert screen.check_action("train_with_validation", ()) is True
        assert command_state(app, menu_item("Training Only"))[0]
        assert not text_of(screen, "#train-reason")


async def test_a_new_model_clears_the_charts(make_app: Any, tiny_controller: Any,
                                            wait_for_tasks: Any) -> None:
    app = make_app(session=tiny_controller)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("3", "i")
        await settle(pilot, wait_for_tasks)
        await pilot.press("4", "t")
        await settle(pilot, wait_for_tasks)
        screen = app.screen
        assert charts(screen)["loss"]
        await pilot.press("3", "i", "y")  # trained and unsaved: asks first
        await settle(pilot, wait_for_tasks)
        assert tiny_controller.history is None and not tiny_controller.model_dirty
        await pilot.press("4")
        assert not charts(screen)["loss"]
        assert text_of(screen, "#progress-line") == "No training yet for this model"
        assert screen.query_one("#train-epochs", DataTable).row_count == 0


def test_ended_text_says_how_a_run_ended() -> None:
    from convonet.core.training import EpochRow, TrainHistory

    def row(epoch: int, partial: bool = False) -> EpochRow:
        return EpochRow(epoch, 0.5, 0.8, 0.6, 0.7, 0.02, 1.5, 10, partial)

    done = TrainHistory(rows=[row(1), row(2)], validation=True, epochs=2)
    assert training_screen.ended_text(done) == (
        "Done: 2 epochs, 3s · loss 0.500 · acc 0.800 · val loss 0.600 · val acc 0.700")
    early = TrainHistory(rows=[row(1), row(2), row(3)], early_stopped=True,
                         restored_epoch=1, monitor="val_loss", epochs=10)
    assert training_screen.ended_text(early) == (
        "Early stop after epoch 3 of 10 (no better val loss) · weights of epoch 1 restored: "
        "loss 0.500 · acc 0.800 · val loss 0.600 · val acc 0.700")
    stopped = TrainHistory(rows=[row(1, partial=True)], stopped=True, epochs=5)
    assert training_screen.ended_text(stopped).startswith("Stopped at epoch 1 of 5 (partial)")
    assert "before the first epoch" in training_screen.ended_text(
        TrainHistory(stopped=True, epochs=5))


def test_the_summary_reports_the_restored_epoch_not_the_last() -> None:
    """Early stopping restored epoch 2: its numbers are the result, not the collapsed
    last epoch's (those stay in the epoch table)."""
    from convonet.core.training import EpochRow, TrainHistory

    rows = [EpochRow(1, 0.9, 0.60, 0.8, 0.62, 0.02, 1.0, 10),
            EpochRow(2, 0.3, 0.91, 0.35, 0.89, 0.02, 1.0, 10),
            EpochRow(3, 2.1, 0.23, 2.3, 0.25, 0.02, 1.0, 10)]
    early = TrainHistory(rows=rows, validation=True, early_stopped=True, restored_epoch=2,
                         monitor="val_loss", epochs=10)
    text = training_screen.ended_text(early)
    assert "acc 0.910 · val loss 0.350 · val acc 0.890" in text
    assert "0.230" not in text and "0.250" not in text
