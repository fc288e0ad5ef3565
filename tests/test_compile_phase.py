"""The compile phase (a ``Compiling`` event, sent by the jax device loop) on the training
screen and in headless output. TensorFlow never sends it, so the training here is real
and the two events are sent around it, as the jax backend sends them."""

from __future__ import annotations

import json
import threading
from typing import Any

import pytest
from conftest import wait_for as wait_until
from textual.widgets import Static

from convonet.core.events import BatchProgress, Compiling, EpochEnd, TrainStart
from convonet.tui.screens import training as training_screen


def line_of(screen: Any) -> str:
    return str(screen.query_one("#progress-line", Static).render())


async def test_the_training_screen_shows_compiling_then_the_compile_time(
        make_app: Any, tiny_controller: Any, wait_for_tasks: Any,
        monkeypatch: pytest.MonkeyPatch) -> None:
    real = training_screen.train_network
    compiled, shown = threading.Event(), threading.Event()

    def compiling_first(*args: Any, report: Any, cancel: Any, **kwargs: Any) -> Any:
        report(TrainStart(epochs=2, batches=8, validation=False))
        report(Compiling())
        compiled.wait(60)
        report(Compiling(seconds=1.4))
        shown.wait(60)
        return real(*args, report=report, cancel=cancel, **kwargs)

    monkeypatch.setattr(training_screen, "train_network", compiling_first)
    app = make_app(session=tiny_controller)
    async with app.run_test(size=(80, 24)) as pilot:
        try:
            await pilot.press("3", "i")
            await wait_for_tasks(pilot)
            await pilot.press("4", "t")
            screen = app.screen
            await wait_until(pilot, lambda: line_of(screen) == "Epoch 1/2 · compiling…",
                             "the compile phase")
            compiled.set()
            await wait_until(pilot,
                             lambda: line_of(screen) == "Epoch 1/2 · compiled in 1.4s",
                             "the compile time")
        finally:
            compiled.set()
            shown.set()
        await wait_for_tasks(pilot)
        await wait_until(pilot, lambda: line_of(screen).startswith("Done: 2 epochs"),
                         "the end of the run")
        assert "compil" not in line_of(screen)


def test_headless_prints_one_line_for_the_compile_and_records_it_in_json(
        capsys: pytest.CaptureFixture[str]) -> None:
    from convonet import headless
    from convonet.headless.output import Display

    events = [TrainStart(epochs=1, batches=4, validation=False), Compiling(),
              Compiling(seconds=1.4),
              BatchProgress(epoch=1, epochs=1, batch=4, batches=4, logs={"loss": 0.5}),
              EpochEnd(epoch=1, epochs=1, logs={"loss": 0.5, "accuracy": 0.8}, seconds=2.0)]
    output = headless.Output(json_mode=False)
    with Display(output, "training") as display:
        for event in events[:2]:
            display.handle(event)
        assert display.compiling
        task = display.progress.tasks[display.tasks["batches"]]  # type: ignore[union-attr]
        assert task.description == "epoch 1 · compiling…"
        for event in events[2:]:
            display.handle(event)
        assert not display.compiling
    err = capsys.readouterr().err
    assert err.count("compiled the training step in 1.4 s") == 1
    assert "epoch 1/1  loss 0.5000" in err

    output = headless.Output(json_mode=True)
    with Display(output, "training") as display:
        for event in events:
            display.handle(event)
    output.emit_json({"command": "train"})
    printed = json.loads(capsys.readouterr().out)
    assert printed["events"] == [{"event": "compiled", "seconds": 1.4}]

    output = headless.Output(json_mode=True)  # TensorFlow: no compile event, no record
    output.emit_json({"command": "train"})
    assert "events" not in json.loads(capsys.readouterr().out)
