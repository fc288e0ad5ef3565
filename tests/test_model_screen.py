"""The model screen under Pilot: initialize, summary, save and load through the picker,
mismatched and broken files, greyed-out keys, and the question before replacing a model."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from conftest import wait_for as wait_until
from textual.pilot import Pilot
from textual.widgets import DataTable, Input, Static

from convonet.tui.commands import command_state, menu_commands
from convonet.tui.dialogs import ConfirmDialog, ErrorDialog
from convonet.tui.screens.model import ModelScreen
from convonet.tui.session import Session
from convonet.tui.widgets.file_picker import FilePicker


def text_of(screen: Any, selector: str) -> str:
    return str(screen.query_one(selector, Static).render())


def menu_item(title: str) -> Any:
    return next(c for c in menu_commands() if c.title == title)


async def initialize(pilot: Pilot[Any], wait_for_tasks: Any) -> None:
    await pilot.press("3")
    await pilot.press("i")
    await wait_for_tasks(pilot)


async def test_without_data_initialize_is_greyed_out_and_says_why(make_app: Any) -> None:
    app = make_app(session=Session())
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("3")
        screen = app.screen
        assert isinstance(screen, ModelScreen)
        assert screen.check_action("initialize_network_model", ()) is None
        assert screen.check_action("save_network_model", ()) is None
        assert screen.check_action("load_network_model", ()) is True
        assert "no training set" in text_of(screen, "#model-reason")
        assert "No network model yet" in text_of(screen, "#model-status")
        await pilot.press("i")  # greyed out: nothing happens
        await pilot.pause()
        assert app.session.model is None and not app.workers
        enabled, _ = command_state(app, menu_item("Initialize New Network Model"))
        assert not enabled
        assert command_state(app, menu_item("Load Network Model"))[0]
        assert not command_state(app, menu_item("Save Network Model"))[0]


async def test_initialize_shows_the_summary_and_totals(make_app: Any, tiny_controller: Any,
                                                     wait_for_tasks: Any) -> None:
    app = make_app(session=tiny_controller)
    async with app.run_test(size=(80, 24)) as pilot:
        await initialize(pilot, wait_for_tasks)
        c = app.session
        assert c.model is not None and not c.model_dirty and c.model_path is None
        assert c.class_names == ["class_0", "class_1", "class_2"]
        assert c.model_config is not None and c.model_config["num_filters"] == 4
        screen = app.screen
        table = screen.query_one("#model-table", DataTable)
        types = [str(table.get_row_at(i)[1]) for i in range(table.row_count)]
        assert types == ["Conv2D", "MaxPooling2D", "Conv2D", "MaxPooling2D", "Flatten",
                         "Dense", "Dropout", "Dense"]
        assert str(table.get_row_at(0)[2]) == "(None, 16, 16, 4)"
        totals = text_of(screen, "#model-totals").splitlines()
        assert totals[0].split() == ["Total", "params:", "1,279", "(5.00", "KB)"]
        assert totals[2].split() == ["Non-trainable", "params:", "0", "(0", "B)"]
        info = text_of(screen, "#model-info")
        assert "16x16x1 → 3 classes" in info and "filters 4" in info and "units 16" in info
        assert "0 class_0 · 1 class_1 · 2 class_2" in text_of(screen, "#model-classes")
        assert "New model, not saved" in text_of(screen, "#model-status")
        # The hyper params change: the screen says the model no longer matches them.
        c.hyper_params = c.hyper_params.edit(num_units=32)
        screen.refresh_view(force=True)
        assert "changed since it was built (num_units)" in text_of(screen, "#model-info")


async def test_save_through_the_picker_then_load_it_back(make_app: Any, tiny_controller: Any,
                                                        wait_for_tasks: Any) -> None:
    app = make_app(session=tiny_controller)
    async with app.run_test(size=(100, 30)) as pilot:
        await initialize(pilot, wait_for_tasks)
        c = app.session
        built = c.model
        c.model_dirty = True  # as after training
        await pilot.press("s")
        assert isinstance(app.screen, FilePicker)
        path_box = app.screen.query_one("#picker-path", Input)
        assert path_box.value == str(app.results_dir.resolve() / "model.keras")
        await pilot.press("enter")
        await wait_for_tasks(pilot)
        target = app.results_dir.resolve() / "model.keras"
        assert target.is_file() and (target.parent / "model.classes.json").is_file()
        assert c.model_path == target and not c.model_dirty
        assert f"Model file {target}" in text_of(app.screen, "#model-status")

        await pilot.press("l")
        assert isinstance(app.screen, FilePicker)
        assert app.screen.query_one("#picker-path", Input).value == str(target)
        await pilot.press("enter")
        await wait_for_tasks(pilot)
        assert c.model is not built and c.model is not None
        assert c.model.count_params() == built.count_params()
        assert c.class_names == ["class_0", "class_1", "class_2"]
        assert c.model_config is None
        assert c.model_path == target and not c.model_dirty
        assert "architecture read from the file" in text_of(app.screen, "#model-info")

        # Saving over another existing file asks first.
        other = target.with_name("other.keras")
        other.write_bytes(b"old")
        await pilot.press("s")
        app.screen.query_one("#picker-path", Input).value = str(other)
        await pilot.press("enter")
        assert isinstance(app.screen, ConfirmDialog) and str(other) in app.screen.question
        await pilot.press("n")
        await pilot.pause()
        assert other.read_bytes() == b"old"


async def test_replacing_a_trained_unsaved_model_asks_first(make_app: Any,
                                                           tiny_controller: Any,
                                                           wait_for_tasks: Any) -> None:
    app = make_app(session=tiny_controller)
    async with app.run_test(size=(80, 24)) as pilot:
        await initialize(pilot, wait_for_tasks)
        c = app.session
        first = c.model
        c.model_dirty = True
        await pilot.press("i")
        assert isinstance(app.screen, ConfirmDialog)
        assert "not saved" in app.screen.question
        await pilot.press("n")
        await wait_for_tasks(pilot)
        assert c.model is first and c.model_dirty
        await pilot.press("i")
        await pilot.press("y")
        await wait_for_tasks(pilot)
        assert c.model is not first and not c.model_dirty


async def test_a_model_that_does_not_fit_the_data_is_refused_naming_both(
        make_app: Any, tiny_controller: Any, tiny_set: Any, wait_for_tasks: Any,
        tmp_path: Path) -> None:
    from convonet.core.model import NetModel

    saved = tmp_path / "sixteen.keras"
    net = NetModel(tiny_controller.hyper_params)
    net.build((16, 16, 1), 3, ["a", "b", "c"])
    net.save(saved)
    tiny_controller.train_set = tiny_set(classes=4, size=20)
    app = make_app(session=tiny_controller)
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.press("3")
        screen = app.screen
        await pilot.press("l")
        app.screen.query_one("#picker-path", Input).value = str(saved)
        await pilot.press("enter")
        await wait_until(pilot, lambda: isinstance(app.screen, ErrorDialog), "error dialog")
        dialog = app.screen
        assert dialog.error_title == "Loading the network model failed"
        summary = dialog.summary
        assert str(saved) in summary and "training set" in summary
        assert "16x16x1" in summary and "20x20x1" in summary
        assert "3 classes" in summary and "4 classes" in summary
        await pilot.press("escape")
        await wait_for_tasks(pilot)
        assert app.screen is screen and app.session.model is None
        assert screen.check_action("load_network_model", ()) is True


async def test_a_file_that_is_not_a_model_says_so(make_app: Any, wait_for_tasks: Any,
                                                 tmp_path: Path) -> None:
    bogus = tmp_path / "notes.keras"
    bogus.write_text("not a model")
    app = make_app(session=Session())
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.press("3")
        await pilot.press("l")
        app.screen.query_one("#picker-path", Input).value = str(bogus)
        await pilot.press("enter")
        await wait_until(pilot, lambda: isinstance(app.screen, ErrorDialog), "error dialog")
        assert "is not a Keras model file" in app.screen.summary
        await pilot.press("escape")
        await wait_for_tasks(pilot)
        assert app.session.model is None
        assert "No network model yet" in text_of(app.screen, "#model-status")


async def test_the_results_folder_is_created_for_the_picker(make_app: Any,
                                                           tmp_path: Path) -> None:
    results = tmp_path / "deep" / "results"
    app = make_app(session=Session(), results_dir=results)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("3")
        await pilot.press("l")
        assert isinstance(app.screen, FilePicker) and results.is_dir()
        await pilot.press("escape")
        await pilot.pause()
        assert isinstance(app.screen, ModelScreen) and app.session.model is None


async def test_an_edited_momentum_says_the_model_needs_rebuilding(
        make_app: Any, tiny_controller: Any, wait_for_tasks: Any) -> None:
    """Momentum is built into the model (its SGD optimizer): editing it on the params
    screen is flagged on the model screen as for the layer fields, without a manual
    refresh (the screen hears the session change)."""
    from convonet.tui.widgets.params_form import FieldRow, ParamsForm

    app = make_app(session=tiny_controller)
    async with app.run_test(size=(100, 34)) as pilot:
        await initialize(pilot, wait_for_tasks)
        screen = app.screen
        assert isinstance(screen, ModelScreen)
        assert "changed since" not in text_of(screen, "#model-info")
        await pilot.press("1", "E")
        await wait_until(pilot, lambda: isinstance(app.screen, ParamsForm), "the form")
        row = app.screen.query_one("#row-momentum", FieldRow)
        row.query_one(Input).focus()
        await pilot.press("ctrl+u", *"0.5", "ctrl+s")
        await wait_until(pilot, lambda: not isinstance(app.screen, ParamsForm),
                         "the form to close")
        assert app.session.hyper_params.momentum == (0.5,)
        assert "changed since it was built (momentum): i rebuilds" in text_of(
            screen, "#model-info")
        await pilot.press("3", "i")
        await wait_for_tasks(pilot)
        assert app.session.model_config is not None
        assert app.session.model_config["momentum"] == 0.5
        assert "changed since" not in text_of(screen, "#model-info")
