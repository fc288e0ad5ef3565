"""Shared widgets: the keyboard file picker and half-block images."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from conftest import wait_for
from textual.app import App, ComposeResult
from textual.widgets import Input, Static

from convonet.tui.widgets.file_picker import FilePicker, PathSuggester
from convonet.tui.widgets.images import UPPER_HALF, halfblock, image_grid


class PickerApp(App[None]):
    def __init__(self, picker: FilePicker) -> None:
        super().__init__()
        self.picker = picker
        self.chosen: list[Path | None] = []

    def compose(self) -> ComposeResult:
        yield Static("host")

    def on_mount(self) -> None:
        self.push_screen(self.picker, self.chosen.append)


def make_tree(tmp_path: Path) -> Path:
    (tmp_path / "params").mkdir()
    (tmp_path / "params" / "mnist_hyper.json").write_text("{}")
    (tmp_path / "params" / "notes.txt").write_text("x")
    (tmp_path / "params" / ".hidden.json").write_text("{}")
    return tmp_path / "params"


async def test_picker_opens_a_typed_json_path(tmp_path: Path) -> None:
    folder = make_tree(tmp_path)
    app = PickerApp(FilePicker("Load hyper params", folder, suffixes=(".json",)))
    async with app.run_test() as pilot:
        await pilot.pause()
        await pilot.press(*"mni")
        box = app.screen.query_one("#picker-path", Input)
        # the completion shows from the cursor on: "mni" + "st_hyper.json"
        await wait_for(pilot, lambda: "mnis" in box.render_line(0).text,
                       "the type-ahead completion")
        await pilot.press("right")  # accept the type-ahead completion
        assert box.value.endswith("mnist_hyper.json")
        await pilot.press("enter")
        await pilot.pause()
    assert app.chosen == [(folder / "mnist_hyper.json").resolve()]


async def test_picker_refuses_missing_and_wrong_kind_then_cancels(tmp_path: Path) -> None:
    folder = make_tree(tmp_path)
    app = PickerApp(FilePicker("Load", folder, suffixes=(".json",)))
    async with app.run_test() as pilot:
        await pilot.pause()
        await pilot.press(*"nope.json", "enter")
        error = app.screen.query_one("#picker-error", Static)
        assert "does not exist" in str(error.render())
        box = app.screen.query_one("#picker-path", Input)
        box.value = str(folder / "notes.txt")
        await pilot.press("enter")
        assert "is not a .json file" in str(error.render())
        await pilot.press("escape")
        await pilot.pause()
    assert app.chosen == [None]


async def test_picker_save_adds_the_suffix(tmp_path: Path) -> None:
    folder = make_tree(tmp_path)
    app = PickerApp(FilePicker("Save", folder, suffixes=(".keras",), save=True,
                               default_name="model"))
    async with app.run_test() as pilot:
        await pilot.pause()
        await pilot.press("enter")
        await pilot.pause()
    assert app.chosen == [(folder / "model.keras").resolve()]


async def test_path_suggester_completes_folders_and_wanted_files(tmp_path: Path) -> None:
    folder = make_tree(tmp_path)
    suggester = PathSuggester((".json",))
    assert await suggester.get_suggestion(str(tmp_path / "par")) == str(folder) + "/"
    assert await suggester.get_suggestion(str(folder) + "/no") is None  # .txt is filtered
    assert await suggester.get_suggestion(str(folder) + "/.hid") is None


def test_halfblock_draws_two_pixel_rows_per_line() -> None:
    image = np.zeros((4, 3, 1), dtype=np.float32)
    image[0] = 1.0  # top row white
    text = halfblock(image)
    lines = text.plain.split("\n")
    assert lines == [UPPER_HALF * 3, UPPER_HALF * 3]
    first = text.spans[0].style
    assert "rgb(255,255,255)" in str(first.color.name) or first.color.triplet == (255, 255, 255)
    assert first.bgcolor.triplet == (0, 0, 0)


def test_halfblock_shrinks_large_images_to_fit() -> None:
    text = halfblock(np.random.default_rng(0).random((128, 128, 3)), max_width=32,
                     max_height=16)
    lines = text.plain.split("\n")
    assert len(lines) <= 16 and max(len(line) for line in lines) <= 32


def test_image_grid_labels_each_image() -> None:
    from rich.console import Console

    console = Console(width=120, record=True, color_system=None)
    images = [np.full((8, 8, 1), v, dtype=np.float32) for v in (0.0, 0.5, 1.0)]
    console.print(image_grid(images, ["0 zero", "1 one", "2 two"], columns=3))
    out = console.export_text()
    for label in ("0 zero", "1 one", "2 two"):
        assert label in out


def test_confusion_table_shows_counts_names_and_colours_by_row_share() -> None:
    from rich.console import Console

    from convonet.tui.widgets.heatmap import confusion_table, share_colour

    cm = np.array([[50, 2, 0], [3, 40, 7], [0, 1, 60]])
    console = Console(width=120, record=True, color_system="truecolor")
    console.print(confusion_table(cm, ["adenocarcinoma", "large", "normal"]))
    out = console.export_text()
    for token in ("adenocarcinoma", "large", "normal", "50", "40", "60", "52"):
        assert token in out
    header = next(line for line in out.splitlines() if line.startswith("true"))
    assert header.split()[-4:] == ["adenocarc…", "large", "normal", "n"]
    # The diagonal of a good model is the brightest colour, an empty cell the darkest.
    assert sum(share_colour(1.0)) > sum(share_colour(0.5)) > sum(share_colour(0.0))


async def test_metric_chart_keeps_its_series() -> None:
    from convonet.tui.widgets.charts import MetricChart

    class ChartApp(App[None]):
        def compose(self) -> ComposeResult:
            yield MetricChart("accuracy", "Accuracy")

    app = ChartApp()
    async with app.run_test(size=(80, 24)) as pilot:
        chart = app.query_one(MetricChart)
        chart.add_epoch({"accuracy": 0.5, "val_accuracy": 0.4, "loss": 1.0})
        chart.add_epoch({"accuracy": 0.7, "val_accuracy": 0.6, "loss": 0.8})
        await pilot.pause()
        assert chart.series == {"accuracy": [0.5, 0.7], "val_accuracy": [0.4, 0.6]}
        chart.set_history([{"accuracy": 0.9}])
        assert chart.series == {"accuracy": [0.9]}
