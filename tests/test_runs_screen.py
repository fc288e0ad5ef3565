"""The runs screen under Pilot: the list, opening a run, comparing two, deleting, resuming."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import numpy as np
from conftest import LUNG_CONFUSION
from textual.widgets import DataTable, TabbedContent

from convonet.tui.app import ConvonetApp
from convonet.tui.commands import command_state, menu_commands
from convonet.tui.dialogs import ConfirmDialog
from convonet.tui.screens.run_detail import CompareScreen, RunScreen
from convonet.tui.screens.runs import RunsScreen
from convonet.tui.widgets.charts import MetricChart
from convonet.tui.widgets.confusion_grid import ConfusionGrid
from convonet.tui.widgets.params_diff import ParamsDiffTable

NEWEST_FIRST = ["classify", "train", "evaluate", "predict", "tune", "train", "train", "train"]


def table_column(table: DataTable[Any], column: int) -> list[str]:
    return [str(table.get_row_at(i)[column]) for i in range(table.row_count)]


async def open_runs(pilot: Any) -> RunsScreen:
    await pilot.press("7")
    await pilot.pause()
    screen = pilot.app.screen
    assert isinstance(screen, RunsScreen)
    return screen


async def move_to(pilot: Any, screen: RunsScreen, name: str) -> None:
    index = [r.name for r in screen.runs].index(name)
    screen.query_one("#runs-table", DataTable).move_cursor(row=index)
    await pilot.pause()


async def test_the_list_shows_every_run_newest_first(make_app: Any, fixed_runs: Path) -> None:
    app = make_app(results_dir=fixed_runs)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_runs(pilot)
        table = screen.query_one("#runs-table", DataTable)
        assert table_column(table, 2) == NEWEST_FIRST
        assert table_column(table, 3)[:2] == ["finished", "interrupted"]
        assert table_column(table, 1)[0] == "03-14 12:00"  # no year at 80 columns
        assert "8 runs in" in str(screen.query_one("#runs-info").render())
        assert app.screen.check_action("compare_runs", ()) is None  # nothing marked


async def test_the_list_reads_the_folder_again_on_return_and_on_f5(
        make_app: Any, fixed_runs: Path) -> None:
    app = make_app(results_dir=fixed_runs)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await open_runs(pilot)
        assert table_column(screen.query_one("#runs-table", DataTable), 1)[0] \
            == "2025-03-14 12:00"  # the year at 120 columns
        shutil.copytree(fixed_runs / "runs" / "20250314-111000-evaluation",
                        fixed_runs / "runs" / "20250315-090000-evaluation")
        await pilot.press("1")
        await pilot.press("7")
        await pilot.pause()
        assert len(screen.runs) == 9 and screen.runs[0].name == "20250315-090000-evaluation"
        shutil.rmtree(fixed_runs / "runs" / "20250315-090000-evaluation")
        await pilot.press("f5")
        await pilot.pause()
        assert len(screen.runs) == 8


async def test_no_runs_yet_says_where_they_will_appear(make_app: Any, tmp_path: Path) -> None:
    app = make_app(results_dir=tmp_path / "empty")
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_runs(pilot)
        assert "No runs yet" in str(screen.query_one("#runs-info").render())
        for action in ("open_run", "mark_run", "delete_run", "resume_run"):
            assert screen.check_action(action, ()) is None


async def test_enter_opens_a_training_run_with_its_curves_and_epochs(
        make_app: Any, fixed_runs: Path) -> None:
    app = make_app(results_dir=fixed_runs)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_runs(pilot)
        await move_to(pilot, screen, "20250314-093000-training")
        await pilot.press("enter")
        await pilot.pause()
        run = app.screen
        assert isinstance(run, RunScreen)
        chart = run.query_one("#run-accuracy", MetricChart)
        assert chart.series["accuracy"] == [0.49, 0.72, 0.83, 0.85]
        assert chart.series["val_accuracy"] == [0.58, 0.74, 0.81]
        epochs = run.query_one("#run-epochs", DataTable)
        assert epochs.row_count == 4 and str(epochs.get_row_at(3)[0]) == "4*"  # partial
        tabs = run.query_one(TabbedContent)
        assert [p.id for p in tabs.query("TabPane")] == ["tab-curves", "tab-epochs",
                                                          "tab-params"]
        params = run.query_one("#run-params", DataTable)
        fields = table_column(params, 0)
        assert fields[0] == "folder" and "hyper.num_filters" in fields
        await pilot.press("escape")
        assert app.screen is screen


async def test_opening_tuning_prediction_and_classification_runs(
        make_app: Any, fixed_runs: Path) -> None:
    app = make_app(results_dir=fixed_runs)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await open_runs(pilot)
        await move_to(pilot, screen, "20250314-101000-tuning")
        await pilot.press("enter")
        await pilot.pause()
        results = app.screen.query_one("#run-results", DataTable)
        assert results.row_count == 4 and table_column(results, 0) == ["1", "2", "3", "4"]
        await pilot.press("escape")
        await move_to(pilot, screen, "20250314-110500-prediction")
        await pilot.press("enter")
        await pilot.pause()
        grid = app.screen.query_one(ConfusionGrid)
        np.testing.assert_array_equal(grid.matrix, np.array(LUNG_CONFUSION))
        assert app.screen.query_one("#run-report", DataTable).row_count == 6
        await pilot.press("escape")
        await move_to(pilot, screen, "20250314-120000-classification")
        await pilot.press("enter")
        await pilot.pause()
        assert app.screen.query_one("#run-images", DataTable).row_count == 3
        await pilot.press("escape")
        await move_to(pilot, screen, "20250314-084500-training")
        await pilot.press("enter")
        await pilot.pause()
        assert "cannot fit" in str(app.screen.query_one("#run-error").render())


async def test_mark_two_and_compare(make_app: Any, fixed_runs: Path) -> None:
    app = make_app(results_dir=fixed_runs)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_runs(pilot)
        await move_to(pilot, screen, "20250314-091500-training")
        await pilot.press("space")
        assert screen.check_action("compare_runs", ()) is None  # the cursor is on it
        await move_to(pilot, screen, "20250314-093000-training")
        assert screen.check_action("compare_runs", ()) is True  # marked + cursor
        await pilot.press("space")
        table = screen.query_one("#runs-table", DataTable)
        assert [m for m in table_column(table, 0) if m] == ["B", "A"]
        await pilot.press("c")
        await pilot.pause()
        compare = app.screen
        assert isinstance(compare, CompareScreen)
        assert (compare.a.name, compare.b.name) == ("20250314-091500-training",
                                                    "20250314-093000-training")
        chart = compare.query_one("#compare-accuracy", MetricChart)
        assert chart._overlays["A"]["accuracy"][-1] == 0.912
        assert chart._overlays["B"]["accuracy"] == [0.49, 0.72, 0.83, 0.85]
        diff = compare.query_one(ParamsDiffTable)
        differing = {d.field for d in diff.differing}
        assert {"hyper.num_filters", "hyper.num_units", "hyper.init_rate"} <= differing
        assert "hyper.batch_size" not in differing
        rows_all = diff.row_count
        await pilot.press("o")
        assert diff.row_count == len(diff.differing) < rows_all
        assert compare.query_one(TabbedContent).active == "tab-params"
        assert str(diff.get_row(diff.differing[0].field)[0]) == "≠"
        await pilot.press("escape")
        assert app.screen is screen


async def test_a_third_mark_replaces_the_oldest(make_app: Any, fixed_runs: Path) -> None:
    app = make_app(results_dir=fixed_runs)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_runs(pilot)
        for _ in range(3):
            await pilot.press("space", "down")
        assert screen.marked == [screen.runs[1].path, screen.runs[2].path]
        await pilot.press("up", "space")  # unmark
        assert screen.marked == [screen.runs[1].path]


async def test_compare_from_the_palette(make_app: Any, fixed_runs: Path) -> None:
    app = make_app(results_dir=fixed_runs)
    command = next(c for c in menu_commands() if c.title == "Compare Runs")
    async with app.run_test(size=(80, 24)) as pilot:
        await open_runs(pilot)
        assert command_state(app, command) == (False, "not available now")
        await pilot.press("space", "down", "space")
        assert command_state(app, command) == (True, "")


async def test_delete_asks_first(make_app: Any, fixed_runs: Path) -> None:
    app = make_app(results_dir=fixed_runs)
    target = fixed_runs / "runs" / "20250314-084500-training"
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_runs(pilot)
        await move_to(pilot, screen, target.name)
        await pilot.press("d")
        await pilot.pause()
        assert isinstance(app.screen, ConfirmDialog)
        await pilot.press("n")
        await pilot.pause()
        assert target.is_dir() and len(screen.runs) == 8
        await pilot.press("d")
        await pilot.pause()
        await pilot.press("y")
        await pilot.pause()
        assert not target.exists() and len(screen.runs) == 7
        assert app.screen is screen


async def test_delete_from_the_opened_run_goes_back_to_the_list(
        make_app: Any, fixed_runs: Path) -> None:
    app = make_app(results_dir=fixed_runs)
    target = fixed_runs / "runs" / "20250314-120000-classification"
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_runs(pilot)
        await pilot.press("enter", "d")
        await pilot.pause()
        await pilot.press("y")
        await pilot.pause()
        assert app.screen is screen and not target.exists()
        assert screen.runs[0].name == "20250314-113000-training"


class ResumingApp(ConvonetApp):
    """An app with the resume hook the runs screen calls."""

    resumed: list[Path]

    async def resume_run(self, path: Path) -> None:
        self.resumed = [*getattr(self, "resumed", []), path]


async def test_resume_calls_the_apps_hook_for_an_interrupted_run(
        make_app: Any, fixed_runs: Path) -> None:
    app = make_app(ResumingApp, results_dir=fixed_runs)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_runs(pilot)
        await move_to(pilot, screen, "20250314-091500-training")
        assert screen.check_action("resume_run", ()) is None  # finished: nothing to resume
        await move_to(pilot, screen, "20250314-113000-training")
        assert screen.check_action("resume_run", ()) is True
        assert "r resumes" in str(screen.query_one("#runs-hint").render())
        await pilot.press("r")
        await pilot.pause()
        assert app.resumed == [fixed_runs / "runs" / "20250314-113000-training"]
        await pilot.press("enter", "r")
        await pilot.pause()
        assert len(app.resumed) == 2
