"""Divergence: a NaN loss, or training accuracy back at chance for two epochs after having
been above it, stops training with a notice; the history, the run record and headless
``convonet train`` say so.

The forced-divergent run: the tiny bar set with init_rate 0.3, momentum 0.99 (an
effective step of 30) and batch 8 learns in epoch 1 (training accuracy 0.46, chance 0.33)
and collapses to chance in epochs 2 and 3 on TensorFlow's CPU with seed 42.
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from conftest import make_tiny_set
from headless_helpers import write_tiny_folder

from convonet.core.events import EpochEnd, Event, Notice
from convonet.core.model import NetModel
from convonet.core.params import HyperParams
from convonet.core.records import resume_problem
from convonet.core.run_history import summarize
from convonet.core.runs import RunFolder
from convonet.core.train_history import (
    ABOVE_CHANCE_MARGIN,
    AT_CHANCE_MARGIN,
    ChanceWatch,
    chance_accuracy,
)
from convonet.core.training import NetTraining
from convonet.tasks import Status

#: The forced-divergent hyper params (see the module's docstring).
DIVERGENT = {"num_filters": 4, "num_units": 16, "epochs": 6, "batch_size": 8,
             "init_rate": 0.3, "momentum": 0.99, "decay": 0, "seed": 42, "patience": 0}
SANE = {**DIVERGENT, "init_rate": 0.05, "momentum": 0.9}


def feed(watch: ChanceWatch, epochs: list[tuple[float, float]]) -> list[str | None]:
    return [watch.epoch(loss, acc) for loss, acc in epochs]


# ---- the rule, on fake histories (no training) -------------------------------------------
def test_chance_is_the_largest_class_share() -> None:
    assert chance_accuracy(np.array([0, 1, 2, 3] * 5)) == 0.25
    assert chance_accuracy(np.array([0] * 6 + [1] * 2 + [2] * 2)) == 0.6


def test_two_epochs_at_chance_after_learning_is_divergence() -> None:
    watch = ChanceWatch(0.25)
    reasons = feed(watch, [(1.2, 0.50), (1.0, 0.70), (1.386, 0.25), (1.386, 0.26)])
    assert reasons[:3] == [None, None, None]
    assert reasons[3] is not None and "chance" in reasons[3] and "0.700" in reasons[3]


def test_one_epoch_at_chance_is_not_divergence() -> None:
    watch = ChanceWatch(0.25)
    assert feed(watch, [(1.0, 0.7), (1.386, 0.25), (0.9, 0.6), (1.386, 0.25)]) == [None] * 4


def test_never_above_chance_is_not_divergence() -> None:
    """A slow start (or a model that never learns) is not a collapse."""
    watch = ChanceWatch(0.25)
    just_above = 0.25 + ABOVE_CHANCE_MARGIN  # not *more* than the margin above
    assert feed(watch, [(1.4, 0.25), (1.4, just_above), (1.4, 0.25), (1.4, 0.25)]) \
        == [None] * 4


def test_at_chance_has_a_margin() -> None:
    watch = ChanceWatch(0.25)
    at = 0.25 + AT_CHANCE_MARGIN
    assert feed(watch, [(1.0, 0.8), (1.3, at), (1.3, at)])[-1] is not None
    watch = ChanceWatch(0.25)
    above = 0.25 + AT_CHANCE_MARGIN + 0.01
    assert feed(watch, [(1.0, 0.8), (1.3, above), (1.3, above)]) == [None] * 3


def test_above_chance_allows_for_few_images() -> None:
    """On 54 images a first epoch at 0.43 (chance 0.33) is within two standard errors of
    chance (0.13): not "above", so falling back is no divergence; on 480 it is."""
    epochs = [(1.15, 0.426), (1.10, 0.296), (1.10, 0.296)]
    assert feed(ChanceWatch(1 / 3, 54), epochs) == [None] * 3
    assert feed(ChanceWatch(1 / 3, 480), epochs)[-1] is not None


@pytest.mark.parametrize("loss", [math.nan, math.inf])
def test_a_non_finite_loss_diverges_at_once(loss: float) -> None:
    reason = ChanceWatch(0.25).epoch(loss, 0.25)
    assert reason is not None and str(loss) in reason


# ---- the core, on a forced-divergent tiny run --------------------------------------------
def fit(params: dict[str, Any], data: Any = None) -> tuple[Any, list[Event]]:
    data = data if data is not None else make_tiny_set()
    hp = HyperParams().edit(**params)
    model = NetModel(hp).build(data.image_shape, data.num_classes)
    events: list[Event] = []
    history = NetTraining(model, hp, report=events.append).train(data)
    return history, events


def test_a_collapse_to_chance_stops_training_at_that_epoch() -> None:
    history, events = fit(DIVERGENT)
    assert history.diverged_epoch == 3
    assert "chance" in (history.diverged_reason or "")
    assert [r.epoch for r in history.rows] == [1, 2, 3]  # stopped there, of 6
    assert not history.stopped and not history.early_stopped
    notices = [e for e in events if isinstance(e, Notice)]
    assert len(notices) == 1
    text = notices[0].text
    assert text.startswith("Training diverged at epoch 3: training accuracy stayed at chance")
    assert "init_rate, now 0.3" in text and "batch_norm" in text
    # The notice comes after the epoch's own EpochEnd.
    assert isinstance(events[events.index(notices[0]) - 1], EpochEnd)


def test_a_nan_loss_stops_training_in_its_epoch() -> None:
    data = make_tiny_set()
    data.x[5, 0, 0, 0] = np.nan  # one poisoned pixel: the loss is NaN from epoch 1
    history, events = fit(SANE, data)
    assert history.diverged_epoch == 1 and len(history.rows) == 1
    assert history.diverged_reason == "the training loss became nan"
    assert any(isinstance(e, Notice) and "diverged at epoch 1" in e.text for e in events)


def test_a_sane_run_does_not_diverge() -> None:
    history, events = fit(SANE)
    assert history.diverged_epoch is None and len(history.rows) == 6
    assert history.rows[-1].accuracy > 0.9
    assert not any(isinstance(e, Notice) for e in events)


# ---- the task layer's run record -----------------------------------------------------------
def test_the_run_record_says_diverged_and_does_not_resume(tmp_path: Path) -> None:
    from task_helpers import train

    data = make_tiny_set()
    hp = HyperParams().edit(**DIVERGENT)
    model = NetModel(hp).build(data.image_shape, data.num_classes)
    outcome = train(model, hp, data, False, tmp_path, save=True)
    assert outcome.status is Status.DIVERGED and outcome.saved is None
    assert outcome.diverged_notice is not None \
        and outcome.diverged_notice.startswith("Training diverged at epoch 3")
    run = RunFolder(outcome.run.path)
    assert run.info["status"] == "diverged"
    assert run.info["metrics"]["diverged_epoch"] == 3
    assert run.info["diverged"].startswith("epoch 3: training accuracy stayed at chance")
    summary = summarize(run.path)
    assert summary.status == "diverged" and summary.error == run.info["diverged"]
    problem = resume_problem(run)
    assert problem is not None and "diverged (epoch 3" in problem


# ---- headless --------------------------------------------------------------------------
def test_headless_train_prints_the_divergence_and_fails(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from convonet.cli import main

    data = write_tiny_folder(tmp_path / "in", classes=3, per_class=40, size=16)
    # On these PNG bars with validation (the command's default) 0.2 is the rate that
    # learns first (accuracy 0.58 in epoch 2) and collapses in epochs 3 and 4.
    hyper = HyperParams().edit(**{**DIVERGENT, "init_rate": 0.2}).save(
        tmp_path / "in" / "hyper.json")
    common = ["train", "--data-params", str(data), "--hyper-params", str(hyper),
              "--results-dir", str(tmp_path / "results")]
    assert main(common) == 1
    captured = capsys.readouterr()
    out = " ".join(captured.out.split())
    found = re.search(r"diverged after (\d) of 6 epoch\(s\)", out)
    assert found is not None, out
    k = found.group(1)
    assert f"Training diverged at epoch {k}: training accuracy stayed at chance" in out
    assert "lower the learning rate (init_rate, now 0.2) or turn on batch_norm" in out
    assert f"warning: Training diverged at epoch {k}" in " ".join(captured.err.split())
    assert main([*common, "--json", "--force"]) == 1
    printed = json.loads(capsys.readouterr().out)
    assert printed["status"] == "diverged"
    assert printed["diverged"]["epoch"] == int(k)
    assert any(f"diverged at epoch {k}" in n for n in printed["notices"])


# ---- tuning ----------------------------------------------------------------------------
def test_a_diverging_combination_is_marked_diverged_not_failed(tmp_path: Path) -> None:
    """init_rate 0.2 with momentum 0.99 collapses to chance in its first fold (epoch 3);
    0.05 in the same grid scores normally. With a cap of one failure in a row, the
    divergence is no failure: the search goes on."""
    from convonet.core.tuning import CombinationFailed, FoldEnd, tune
    from tests.test_tuning import hp, tiny_data

    x, y = tiny_data()
    events: list[Event] = []
    result = tune(x, y, hp(init_rate="0.2,0.05", momentum=0.99, batch_size=8, epochs=5,
                           cv_folds=2),
                  report=events.append, results_dir=tmp_path, max_consecutive_failures=1)
    by_rate = {r["param_init_rate"]: r for r in result.rows}
    diverged, sane = by_rate[0.2], by_rate[0.05]
    assert diverged["status"] == "diverged"
    assert diverged["reason"].startswith("diverged at epoch 3: training accuracy stayed at "
                                         "chance")
    assert math.isnan(diverged["mean_test_score"])
    assert sane["status"] == "ok" and sane["mean_test_score"] > 0.5
    assert result.best_params is not None and result.best_params["init_rate"] == 0.05
    [failed] = [e for e in events if isinstance(e, CombinationFailed)]
    assert failed.diverged and failed.traceback_file == ""
    assert len([e for e in events if isinstance(e, FoldEnd)]) == 2
    assert result.diverged == result.failures and len(result.diverged) == 1
    run = result.run
    assert run is not None and run.status == "finished"
    assert run.info["metrics"]["diverged"] == 1 and run.info["metrics"]["failed"] == 0
    [ledger] = [r for r in run.read_jsonl("folds.jsonl") if r["kind"] == "failed"]
    assert ledger["diverged"] is True
    table = {r["param_init_rate"]: r for r in run.read_csv("results.csv")}
    assert table["0.2"]["status"] == "diverged"
    # What the tuning screen and `convonet tune` show of it.
    from rich.console import Console

    from convonet.rendering import tuning_table
    from convonet.tui.tuning_text import ended_text, partial_rows, result_rows

    [row] = [r for r in result_rows(result) if r["p:init_rate"] == 0.2]
    assert row["status"].startswith("diverged at epoch 3") and row["acc"] is None
    [fold_row] = [r for r in partial_rows(result, result.searched) if r["fold"] == 1
                  and r["p:init_rate"] == 0.2]
    assert fold_row["note"].startswith("diverged at epoch 3")
    assert " · 1 diverged · " in ended_text(result) and "failed" not in ended_text(result)
    console = Console(width=200, record=True)
    console.print(tuning_table(result))
    assert "diverged at epoch 3" in console.export_text()
