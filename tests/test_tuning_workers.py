"""Where tuning folds run, in the app: the tuning screen's Workers panel fed the executor's
events directly (no Ray cluster, nothing fitted), the in-process/Ray switch (r, the
palette's "Tuning Executor"), the search it starts, and ``convonet --ray`` on app start."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pytest
from conftest import wait_for
from rich.console import Console
from textual.pilot import Pilot
from textual.widgets import Static

from convonet.cli import CliError, build_parser, executor_settings
from convonet.core.tuning import (
    ExecutorReady,
    FoldEnd,
    FoldProgress,
    FoldRequeued,
    FoldStart,
    TuneStart,
    WorkerInfo,
)
from convonet.tui.commands import command_state, menu_commands
from convonet.tui.screens.tuning import TASK_NAME, TuningScreen
from convonet.tui.session import Session
from convonet.tui.tasks import TaskHandle

WORKERS = (WorkerInfo("w0", "node1", "GPU 0"), WorkerInfo("w1", "node2", "GPU 0 (1/4)"))
P0, P1 = {"init_rate": 0.02}, {"init_rate": 0.05}
START = TuneStart(total_fits=4, combinations=2, folds=2, strategy="grid", samples=100,
                  searched=("init_rate",))


def session(tiny_set: Any, **kwargs: Any) -> Session:
    from convonet.core.params import HyperParams

    hyper = HyperParams().edit(init_rate="0.02,0.05", num_filters=2, num_units=8, epochs=1,
                               batch_size=16, cv_folds=2, tuning_share=1.0)
    return Session(hyper_params=hyper, train_set=tiny_set(), **kwargs)


async def running_screen(pilot: Pilot[Any]) -> TuningScreen:
    """The tuning screen with a search "in progress" (events fed by the test)."""
    await pilot.press("5")
    screen = pilot.app.screen
    assert isinstance(screen, TuningScreen)
    screen._job = TaskHandle(name=TASK_NAME, target=screen)
    screen.show_event(START)
    return screen


def panel_text(screen: TuningScreen) -> str:
    panel = screen.query_one("#tune-workers", Static)
    out = io.StringIO()
    Console(file=out, width=100, force_terminal=False).print(panel.content)
    return f"{panel.border_title}\n{out.getvalue()}"


def notes(app: Any) -> list[str]:
    return [str(n.message) for n in app._notifications]


async def last_note(pilot: Pilot[Any], count: int) -> str:
    """The latest notification, once there are ``count`` of them."""
    await wait_for(pilot, lambda: len(notes(pilot.app)) >= count, f"notification {count}")
    return notes(pilot.app)[-1]


async def test_the_panel_shows_which_fold_runs_where_and_each_workers_epochs(
        make_app: Any, tiny_set: Any) -> None:
    app = make_app(session=session(tiny_set))
    async with app.run_test(size=(100, 30)) as pilot:
        screen = await running_screen(pilot)
        panel = screen.query_one("#tune-workers", Static)
        screen.show_event(ExecutorReady("ray", WORKERS, "10.0.0.1:6379"))
        await wait_for(pilot, lambda: panel.region.height > 0, "the Workers panel")
        assert screen.show_event(FoldStart(0, P0, 0, worker="w0"))
        assert screen.show_event(FoldStart(1, P1, 0, worker="w1"))
        assert screen.show_event(FoldProgress(0, 0, epoch=2, epochs=5, loss=0.4312,
                                              accuracy=0.881, worker="w0"))
        text = panel_text(screen)
        assert "Workers · Ray at 10.0.0.1:6379 · 2 of 2 fitting a fold" in text
        rows = [" ".join(line.split()) for line in text.splitlines()[2:]]
        assert rows == ["w0 node1 GPU 0 #1 fold 1 2/5 0.4312 88.1 0",
                        "w1 node2 GPU 0 (1/4) #2 fold 1 … 0"]

        screen.show_event(FoldEnd(0, P0, 0, accuracy=0.9, loss=0.3, seconds=2.0,
                                  fits_done=1, total_fits=4, worker="w0"))
        screen.show_event(FoldRequeued(1, 0, 0, worker="w1", reason="its node was lost"))
        rows = [" ".join(line.split()) for line in panel_text(screen).splitlines()[2:]]
        assert rows == ["w0 node1 GPU 0 idle 1", "w1 node2 GPU 0 (1/4) lost 0"]
        assert "0 of 2 fitting a fold" in panel_text(screen)
        assert await last_note(pilot, 1) == (
            "worker w1 (node2 GPU 0 (1/4)) was lost while fitting #2 fold 1 (its node was "
            "lost); the fold is queued again (a second loss fails its combination)")
        assert screen.partial.row_count == 1  # the fold's row, as in process

        screen.show_event(FoldStart(1, P1, 0, worker="w0"))
        screen.search_ended()  # the search ended: nobody fits anything any more
        assert "#2 fold 1" not in panel_text(screen)
        assert panel.region.height > 0  # the counts stay until the next search


async def test_in_process_the_panel_stays_hidden(make_app: Any, tiny_set: Any) -> None:
    app = make_app(session=session(tiny_set))
    async with app.run_test(size=(100, 30)) as pilot:
        screen = await running_screen(pilot)
        local = WorkerInfo("local", "this machine", "CPU")
        for event in (ExecutorReady("in-process", (local,)), FoldStart(0, P0, 0, worker="local"),
                      FoldProgress(0, 0, 1, 1, 0.5, 0.5, worker="local")):
            assert screen.show_event(event)
        await pilot.pause()
        assert not screen.has_class("-remote")
        assert screen.query_one("#tune-workers", Static).region.height == 0
        assert notes(app) == []


async def test_r_switches_the_next_search_between_this_process_and_ray(
        make_app: Any, tiny_set: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    specs: list[dict[str, Any]] = []

    def tune_task(*args: Any, report: Any, cancel: Any, **kwargs: Any) -> None:
        specs.append(kwargs)

    monkeypatch.setattr("convonet.tui.screens.tuning.tune_task", tune_task)
    app = make_app(session=session(tiny_set, ray_address="10.0.0.1:6379",
                                   gpus_per_fold=0.25))
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.press("5")
        screen = app.screen
        info = screen.query_one("#tune-info", Static)
        assert "Folds run" not in str(info.render())
        command = next(c for c in menu_commands() if c.title == "Tuning Executor")
        assert command_state(app, command) == (True, "")

        await pilot.press("r")
        assert app.session.ray == "10.0.0.1:6379"
        assert await last_note(pilot, 1) == (
            "next search: the folds run on the Ray cluster at 10.0.0.1:6379, 0.25 of a GPU "
            "per fold")
        assert ("Folds run on the Ray cluster at 10.0.0.1:6379, 0.25 of a GPU per fold · "
                "r: in this process") in str(info.render())
        await pilot.press("t")
        await wait_for(pilot, lambda: specs, "the search to start")
        assert specs[-1] == {"ray": "10.0.0.1:6379", "gpus_per_fold": 0.25}
        await wait_for(pilot, lambda: not screen.running, "the search to end")

        await pilot.press("r")
        assert app.session.ray is None and "Folds run" not in str(info.render())
        assert await last_note(pilot, 2) == "next search: the folds run in this process"
        await pilot.press("t")
        await wait_for(pilot, lambda: len(specs) == 2, "the second search")
        assert specs[-1] == {"ray": None, "gpus_per_fold": 0.25}


async def test_without_ray_installed_r_says_how_to_install_it(
        make_app: Any, tiny_set: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("convonet.tui.screens.tuning.ray_missing",
                        lambda: "Ray is not installed: pip install 'convonet[ray]'")
    app = make_app(session=session(tiny_set))
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.press("5", "r")
        assert app.session.ray is None
        assert await last_note(pilot, 1) == (
            "Ray is not installed: pip install 'convonet[ray]', then start convonet again. "
            "Until then the folds run in this process.")


# ---- convonet --ray, on app start -----------------------------------------------------------
def start(*argv: str, environ: dict[str, str] | None = None) -> tuple[Session, list[str]]:
    args = build_parser().parse_args(list(argv))
    found, said = Session(), []
    executor_settings(args, found, said, environ or {})
    return found, said


def test_the_app_starts_on_ray_or_offers_ray_address(monkeypatch: pytest.MonkeyPatch
                                                     ) -> None:
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    found, said = start()
    assert (found.ray, found.ray_address, found.gpus_per_fold, said) == (None, "auto", 1.0, [])
    found, _ = start("--ray", "--gpus-per-fold", "0.5")
    assert (found.ray, found.ray_address, found.gpus_per_fold) == ("auto", "auto", 0.5)
    found, _ = start("tui", "--ray", "head:6379")
    assert (found.ray, found.ray_address) == ("head:6379", "head:6379")
    found, said = start(environ={"RAY_ADDRESS": "head:6379"})
    assert (found.ray, found.ray_address, said) == (None, "head:6379", [])
    found, said = start(environ={"RAY_ADDRESS": "ray://head:10001"})
    assert found.ray_address == "auto" and "Ray Client address" in said[0]
    assert said[0].endswith("The tuning screen's r offers a local Ray cluster instead.")


def test_app_start_refuses_ray_when_it_is_not_installed(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("convonet.executors.ray_missing",
                        lambda: "Ray is not installed: pip install 'convonet[ray]'")
    with pytest.raises(CliError) as exc:
        start("--ray")
    assert str(exc.value) == ("--ray: Ray is not installed: pip install 'convonet[ray]', or "
                              "leave --ray out to tune in this process")


def test_serve_hands_the_executor_to_each_tab(tmp_path: Path) -> None:
    from convonet import serve

    args = build_parser().parse_args(["serve", "--ray", "head:6379", "--gpus-per-fold",
                                      "0.5"])
    assert serve.app_command(args, python="python3") == (
        "python3 -m convonet tui --ray head:6379 --gpus-per-fold 0.5")
