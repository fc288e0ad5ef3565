"""SVG snapshots of the tuning screen at 80x24 and 120x40: a search running (recorded fold
events fed to the screen, nothing fitted) and a finished search (a recorded result).

Update after a deliberate change with ``pytest tests/test_snapshots_tuning.py
--snapshot-update`` and look at the SVGs first.
"""

from __future__ import annotations

from typing import Any

import pytest
from textual.pilot import Pilot

from convonet.tui.session import Session

RUN_DIR = "app_results/runs/20250101-120000-tuning"


def _controller(tiny_set: Any) -> Session:
    """A 10-class set of 1,000 images and the recorded grid's hyper params (2x2, 3 folds)."""
    from convonet.core.params import HyperParams

    hyper = HyperParams(path="demo_hyper_params.json").edit(
        init_rate="0.02,0.05", num_filters="16,32", num_units=128, epochs=5, batch_size=32,
        cv_folds=3, tuning_share=0.5)
    return Session(hyper_params=hyper,
                      train_set=tiny_set(classes=10, per_class=100, size=28))


async def _feed_a_running_search(pilot: Pilot[Any], tune_records: Any) -> None:
    """Open the screen and give it the events of a search five fits in, one failed: the
    recorded search's first events, counted as the core counts them."""
    from conftest import tune_fits

    from convonet.core.tuning import CombinationFailed, FoldEnd, TuneStart
    from convonet.tui.screens.tuning import TASK_NAME, TuningScreen
    from convonet.tui.tasks import TaskHandle

    await pilot.press("5")
    screen = pilot.app.screen
    assert isinstance(screen, TuningScreen)
    screen._job = TaskHandle(name=TASK_NAME, target=screen)  # a search "in progress"
    tuner, records = tune_records()
    searched = tuple(sorted(tuner.searched))
    screen.show_event(TuneStart(total_fits=tune_fits(tuner, []),
                                combinations=len(tuner.candidates), folds=tuner.plan.n_folds,
                                strategy="grid", samples=500, searched=searched,
                                run_dir=RUN_DIR))
    fits = [r for r in records if r["kind"] == "fold"][:5]
    shown = records[:records.index(fits[-1]) + 1]
    for i, rec in enumerate(shown):
        done = sum(r["kind"] == "fold" for r in shown[:i + 1])
        total = tune_fits(tuner, shown[:i + 1])
        if rec["kind"] == "failed":
            screen.show_event(CombinationFailed(rec["combination_index"], rec["params"],
                                                rec["reason"], fits_done=done,
                                                total_fits=total))
            continue
        screen.show_event(FoldEnd(combination_index=rec["combination_index"],
                                  params=rec["params"], fold=rec["fold"],
                                  accuracy=rec["accuracy"], loss=rec["loss"],
                                  seconds=rec["fit_time"] + rec["score_time"],
                                  fits_done=done, total_fits=total, n_resources=500))
    assert any(r["kind"] == "failed" for r in shown)
    screen.refresh_bindings()
    await pilot.pause()


@pytest.mark.parametrize("size", [(80, 24), (120, 40)], ids=["80x24", "120x40"])
def test_tuning_screen_running(snap_compare: Any, make_app: Any, tiny_set: Any,
                               tune_records: Any, size: tuple[int, int]) -> None:
    app = make_app(session=_controller(tiny_set), results_dir="app_results")

    async def run_before(pilot: Pilot[Any]) -> None:
        await _feed_a_running_search(pilot, tune_records)

    assert snap_compare(app, run_before=run_before, terminal_size=size)


@pytest.mark.parametrize("size", [(80, 24), (120, 40)], ids=["80x24", "120x40"])
def test_tuning_screen_finished(snap_compare: Any, make_app: Any, tiny_set: Any,
                                fixed_tune_result: Any, size: tuple[int, int]) -> None:
    controller = _controller(tiny_set)
    controller.tuning = fixed_tune_result()
    app = make_app(session=controller, results_dir="app_results")
    assert snap_compare(app, press=["5"], terminal_size=size)


async def _feed_folds_on_ray(pilot: Pilot[Any], tune_records: Any) -> None:
    """The running search above, its folds on three Ray workers on two nodes: two folds in
    flight (one two epochs in), one worker idle."""
    from convonet.core.tuning import ExecutorReady, FoldProgress, FoldStart, WorkerInfo
    from convonet.tui.screens.tuning import TuningScreen

    await _feed_a_running_search(pilot, tune_records)
    screen = pilot.app.screen
    assert isinstance(screen, TuningScreen)
    _, records = tune_records()
    params = {r["combination_index"]: r["params"] for r in records}
    workers = (WorkerInfo("w0", "gpu-node-1", "GPU 0"), WorkerInfo("w1", "gpu-node-1", "GPU 1"),
               WorkerInfo("w2", "gpu-node-2", "GPU 0 (1/2)"))
    screen.show_event(ExecutorReady("ray", workers, "10.0.0.1:6379"))
    screen.show_event(FoldStart(3, params[3], 1, worker="w0"))
    screen.show_event(FoldProgress(3, 1, epoch=2, epochs=5, loss=0.6931, accuracy=0.7625,
                                   worker="w0"))
    screen.show_event(FoldStart(3, params[3], 2, worker="w2"))
    await pilot.pause()


@pytest.mark.parametrize("size", [(80, 24), (120, 40)], ids=["80x24", "120x40"])
def test_tuning_screen_on_ray_workers(snap_compare: Any, make_app: Any, tiny_set: Any,
                                      tune_records: Any, size: tuple[int, int]) -> None:
    app = make_app(session=_controller(tiny_set), results_dir="app_results")

    async def run_before(pilot: Pilot[Any]) -> None:
        await _feed_folds_on_ray(pilot, tune_records)

    assert snap_compare(app, run_before=run_before, terminal_size=size)
