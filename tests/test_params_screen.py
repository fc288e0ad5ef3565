"""The params screen under Pilot: load through the picker, edit with a typo, fix, save."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from conftest import wait_for
from textual.pilot import Pilot
from textual.widgets import Input, Static

from convonet.core.params import HyperParams, ParamsError
from convonet.tui.commands import command_state, menu_commands
from convonet.tui.dialogs import ConfirmDialog
from convonet.tui.screens.params import ParamsPanel, ParamsScreen
from convonet.tui.session import Session
from convonet.tui.widgets.file_picker import FilePicker
from convonet.tui.widgets.params_form import FieldRow, ParamsForm

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A working folder holding a copy of the sample params, as the app is run from."""
    shutil.copytree(REPO / "app_input", tmp_path / "app_input")
    monkeypatch.chdir(tmp_path)
    return tmp_path


async def pick(pilot: Pilot[Any], key: str, name: str) -> None:
    """Open a picker with ``key`` and type ``name`` after the folder it starts in."""
    app = pilot.app
    await pilot.press(key)
    await wait_for(pilot, lambda: isinstance(app.screen, FilePicker), "the file picker")
    box = app.screen.query_one("#picker-path", Input)
    assert box.value.endswith("app_input/"), box.value  # starts in ./app_input
    await pilot.press(*name)
    await pilot.press("enter")
    await wait_for(pilot, lambda: not isinstance(app.screen, FilePicker), "the picker to close")


def panel_text(app: Any, kind: str) -> str:
    panel = app.screen.query_one(f"#panel-{kind}", ParamsPanel)
    return f"{panel.border_title}\n{panel.plain}"


def core_message(name: str, text: str) -> str:
    try:
        HyperParams.spec(name).parse(text)
    except ParamsError as exc:
        return exc.message
    raise AssertionError(f"{text!r} was accepted")


async def test_load_edit_with_a_typo_fix_and_save(make_app: Any, workdir: Path) -> None:
    app = make_app()
    target = workdir / "app_input" / "mnist_hyper_params.json"
    async with app.run_test(size=(100, 34)) as pilot:
        await pick(pilot, "L", "mnist_hyper_params.json")
        assert app.session.hyper_params.path == target
        assert "mnist_hyper_params.json" in app.sub_title
        assert "64,80" in panel_text(app, "hyper")  # a multi-valued field, both values

        await pilot.press("E")
        await wait_for(pilot, lambda: isinstance(app.screen, ParamsForm), "the form")
        form = app.screen
        row = form.query_one("#row-batch_size", FieldRow)
        assert app.focused is row.query_one(Input)
        await pilot.press("ctrl+u", *"64,8o")
        error = str(row.query_one(".field-error", Static).render())
        assert error == "✗ " + core_message("batch_size", "64,8o")
        assert row.has_class("-invalid")

        await pilot.press("ctrl+s")  # refused: the form stays open and says why
        assert app.screen is form
        assert "batch_size" in str(form.query_one("#form-status", Static).render())

        await pilot.press("backspace", "1", "ctrl+s")
        await wait_for(pilot, lambda: app.screen is not form, "the form to close")
        assert app.session.hyper_params.batch_size == (64, 81)
        assert "modified" in panel_text(app, "hyper")

        before = target.read_text()
        await pilot.press("S")
        await wait_for(pilot, lambda: isinstance(app.screen, FilePicker), "the save picker")
        assert app.screen.query_one("#picker-path", Input).value == str(target)
        await pilot.press("enter")
        await wait_for(pilot, lambda: not isinstance(app.screen, FilePicker), "saving")
        await pilot.pause()
        assert "modified" not in panel_text(app, "hyper")
        assert not app.session.unsaved_params

    saved = json.loads(target.read_text())
    assert target.read_text() != before
    assert saved["batch_size"] == "64,81" and saved["epochs"] == "5,10"
    assert HyperParams.load(target).batch_size == (64, 81)
    assert sorted(p.name for p in target.parent.iterdir() if p.name.startswith(".")) == []


async def test_data_params_with_missing_folders_load_and_are_marked(
        make_app: Any, workdir: Path) -> None:
    app = make_app()
    async with app.run_test(size=(100, 34)) as pilot:
        await pick(pilot, "l", "mnist_data_params.json")
        assert app.session.data_params.path is not None
        text = panel_text(app, "data")
        assert text.count("does not exist") == 2  # train_dir and test_dir

        await pilot.press("e")
        await wait_for(pilot, lambda: isinstance(app.screen, ParamsForm), "the form")
        row = app.screen.query_one("#row-train_dir", FieldRow)
        assert row.has_class("-warned") and not row.has_class("-invalid")
        assert "does not exist" in str(row.query_one(".field-warning", Static).render())
        await pilot.press("ctrl+u", *"../nowhere", "down")
        assert "nowhere" in str(row.query_one(".field-warning", Static).render())
        await pilot.press("ctrl+s")  # a missing folder does not block the edit
        await wait_for(pilot, lambda: isinstance(app.screen, ParamsScreen), "the form to close")
        assert app.session.data_params.train_dir == "../nowhere"


async def test_unsaved_edits_are_asked_about_before_quit_and_new(make_app: Any,
                                                                workdir: Path) -> None:
    app = make_app()
    async with app.run_test(size=(100, 34)) as pilot:
        await pilot.press("E")
        await wait_for(pilot, lambda: isinstance(app.screen, ParamsForm), "the form")
        await pilot.press("ctrl+u", *"16", "ctrl+s")
        await wait_for(pilot, lambda: isinstance(app.screen, ParamsScreen), "the form to close")
        assert "new, not saved" in panel_text(app, "hyper")

        await pilot.press("N")
        assert isinstance(app.screen, ConfirmDialog)
        await pilot.press("n")
        assert app.session.hyper_params.batch_size == (16,)

        await pilot.press("q")
        assert isinstance(app.screen, ConfirmDialog)
        assert "hyper params have unsaved changes" in app.screen.question
        await pilot.press("n")
        assert isinstance(app.screen, ParamsScreen)


async def test_a_bad_file_shows_an_error_and_keeps_the_params(make_app: Any,
                                                              workdir: Path) -> None:
    (workdir / "app_input" / "broken.json").write_text('{"batch_size": 0}')
    app = make_app()
    async with app.run_test(size=(100, 34)) as pilot:
        await pick(pilot, "L", "broken.json")
        await wait_for(pilot, lambda: type(app.screen).__name__ == "ErrorDialog", "the error")
        assert "batch_size" in app.screen.summary and "out of range" in app.screen.summary
        await pilot.press("escape")
        assert app.session.hyper_params.path is None


async def test_save_is_greyed_out_until_there_is_something_to_save(make_app: Any,
                                                                  workdir: Path) -> None:
    app = make_app(session=Session())
    async with app.run_test(size=(100, 34)) as pilot:
        screen = app.screen
        assert screen.check_action("save_data_params", ()) is None
        save = next(c for c in menu_commands() if c.action == "save_hyper_params")
        assert command_state(app, save) == (False, "not available now")
        await pilot.press("S")
        assert app.screen is screen  # nothing opened, nothing failed
        await pilot.press("n")
        assert screen.check_action("save_data_params", ()) is True
        load = next(c for c in menu_commands() if c.action == "load_data_params")
        assert command_state(app, load) == (True, "")
