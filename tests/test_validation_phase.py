"""The validation pass of each epoch is announced (a ``Validating`` event), so the screen
and headless output say what runs between an epoch's last batch and its numbers instead
of sitting at ``batch N/N``. Real training on tiny data."""

from __future__ import annotations

import math
import threading
from typing import Any

import pytest
from conftest import wait_for as wait_until
from test_training import fresh, make_set, params
from textual.widgets import Static

from convonet.core.events import BatchProgress, EpochEnd, Event, TrainStart, Validating
from convonet.core.training import NetTraining
from convonet.tui.screens import training as training_screen


def test_each_epoch_reports_its_validation_pass_between_its_batches_and_its_end() -> None:
    data = make_set(counts=(60, 60, 60))
    hp = params(validation_split=0.25, epochs=2, batch_size=8)
    events: list[Event] = []
    NetTraining(fresh(hp, data), hp, report=events.append, batch_interval=0).train_val(data)
    held_out = 3 * 15  # a quarter of each class
    batches = math.ceil(held_out / 8)
    for epoch in (1, 2):
        kinds = [e for e in events if getattr(e, "epoch", None) == epoch]
        validating = [e for e in kinds if isinstance(e, Validating)]
        assert validating[0].batch == 0 and validating[-1].batch == batches
        assert all(v.batches == batches and v.epochs == 2 for v in validating)
        assert [v.batch for v in validating] == sorted(v.batch for v in validating)
        # After the last training batch, before the epoch's end.
        first = kinds.index(validating[0])
        assert all(isinstance(e, BatchProgress) for e in kinds[:first])
        assert kinds[first - 1].batch == math.ceil((180 - held_out) / 8)  # type: ignore[attr-defined]
        assert isinstance(kinds[-1], EpochEnd) and kinds[-1].logs["val_accuracy"] >= 0


def test_training_without_validation_sends_no_validation_events() -> None:
    data = make_set()
    hp = params(epochs=1)
    events: list[Event] = []
    NetTraining(fresh(hp, data), hp, report=events.append, batch_interval=0).train(data)
    assert not any(isinstance(e, Validating) for e in events)
    assert isinstance(events[0], TrainStart) and isinstance(events[-1], EpochEnd)


def line_of(screen: Any) -> str:
    return str(screen.query_one("#progress-line", Static).render())


async def test_the_training_screen_says_it_is_validating(
        make_app: Any, tiny_controller: Any, wait_for_tasks: Any,
        monkeypatch: pytest.MonkeyPatch) -> None:
    real = training_screen.train_network
    seen = threading.Event()

    def held_at_validation(*args: Any, report: Any, cancel: Any, **kwargs: Any) -> Any:
        def hold(event: Event) -> None:
            report(event)
            # The first validation pass waits until the screen has shown it, so the check
            # does not depend on how fast 2 batches evaluate.
            if isinstance(event, Validating) and event.epoch == 1 and event.batch == 0:
                seen.wait(60)
        return real(*args, report=hold, cancel=cancel, **kwargs)

    monkeypatch.setattr(training_screen, "train_network", held_at_validation)
    app = make_app(session=tiny_controller)
    async with app.run_test(size=(100, 24)) as pilot:
        try:
            await pilot.press("3", "i")
            await wait_for_tasks(pilot)
            await pilot.press("4", "v")
            screen = app.screen
            # 120 images, 24 held out for validation: 2 batches of 16.
            await wait_until(pilot, lambda: line_of(screen).startswith(
                "Epoch 1/2 · validating: batch 0/2 · ETA "), "the validation pass")
        finally:
            seen.set()
        await wait_for_tasks(pilot)
        await wait_until(pilot, lambda: line_of(screen).startswith("Done: 2 epochs"),
                         "the end of the run")
        assert "validating" not in line_of(screen)


def test_headless_says_which_epoch_is_validating() -> None:
    from convonet import headless
    from convonet.headless.output import Display

    output = headless.Output(json_mode=False)
    with Display(output, "training") as display:
        display.handle(TrainStart(epochs=3, batches=4, validation=True))
        display.handle(BatchProgress(epoch=2, epochs=3, batch=4, batches=4, logs={}))
        display.handle(Validating(epoch=2, epochs=3, batch=1, batches=5))
        task = display.progress.tasks[display.tasks["batches"]]  # type: ignore[union-attr]
        assert task.description == "epoch 2/3 · validating 1/5"
        assert task.completed == 4
        display.handle(EpochEnd(epoch=2, epochs=3, logs={"loss": 0.5, "accuracy": 0.8},
                                seconds=1.0))
        assert task.description == "epoch 2/3"
