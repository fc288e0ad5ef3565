"""Params files as editors write them: a UTF-8 byte-order mark, a key given twice.

Notepad (and some other Windows editors) start a UTF-8 file with a byte-order mark, which
``json.loads`` refuses; a key given twice would silently keep the last value. The app's
params screen, the app's command line and headless all read through ``_Params.load``, so
each path is tried here on real files.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from conftest import wait_for
from textual.pilot import Pilot
from textual.widgets import Input

from convonet import keymap
from convonet.cli import main
from convonet.core.params import DataParams, HyperParams, ParamsError
from convonet.tui.screens.params import ParamsScreen
from convonet.tui.widgets.file_picker import FilePicker
from convonet.tui.widgets.params_form import ParamsForm

BOM = b"\xef\xbb\xbf"


def write_bom(path: Path, data: dict[str, Any]) -> Path:
    """A JSON file as Notepad saves it: a byte-order mark, then UTF-8, CRLF line ends."""
    text = json.dumps(data, indent=2).replace("\n", "\r\n")
    path.write_bytes(BOM + text.encode("utf-8"))
    return path


@pytest.fixture
def dataset(tmp_path: Path) -> Path:
    """Two empty class folders: enough for data params whose folders must exist."""
    for name in ("a", "b"):
        (tmp_path / "set" / name).mkdir(parents=True)
    return tmp_path / "set"


# ---- the core loader -----------------------------------------------------------------------
def test_a_byte_order_mark_is_accepted_in_both_kinds(tmp_path: Path, dataset: Path) -> None:
    data = DataParams.load(write_bom(tmp_path / "data.json", {
        "train_dir": "set", "image_size": [8, 8], "test_split": 0.25}))
    assert data.train_path == dataset.resolve() and data.image_size == (8, 8)
    hyper = HyperParams.load(write_bom(tmp_path / "hyper.json", {
        "batch_size": "16,32", "epochs": 3}))
    assert hyper.batch_size == (16, 32) and hyper.epochs == (3,)


def test_saving_a_file_read_with_a_mark_writes_none(tmp_path: Path, dataset: Path) -> None:
    path = write_bom(tmp_path / "hyper.json", {"batch_size": "16,32", "dropout": 0.25})
    loaded = HyperParams.load(path)
    loaded.edit(epochs=4).save()
    raw = path.read_bytes()
    assert not raw.startswith(BOM)
    again = HyperParams.load(path)
    assert again == loaded.edit(epochs=4)
    assert json.loads(raw.decode("utf-8"))["batch_size"] == "16,32"

    data_path = write_bom(tmp_path / "data.json", {"train_dir": "set"})
    DataParams.load(data_path).save()
    assert not data_path.read_bytes().startswith(BOM)
    assert DataParams.load(data_path).train_path == dataset.resolve()


@pytest.mark.parametrize("kind", [DataParams, HyperParams])
def test_a_key_given_twice_is_refused_naming_file_key_and_values(
        tmp_path: Path, dataset: Path, kind: type[Any]) -> None:
    path = tmp_path / "twice.json"
    if kind is DataParams:
        path.write_text('{\n  "train_dir": "set",\n  "image_size": [28, 28],\n'
                        '  "image_size": [8, 8]\n}\n', encoding="utf-8")
        key, first, second = "image_size", "[28, 28]", "[8, 8]"
    else:
        path.write_text('{\n  "epochs": 10,\n  "batch_size": 64,\n  "epochs": "5,20"\n}\n',
                        encoding="utf-8")
        key, first, second = "epochs", "10", '"5,20"'
    with pytest.raises(ParamsError) as caught:
        kind.load(path)
    error = caught.value
    assert error.file == str(path) and error.field == key
    assert str(error) == (f"{path}: field '{key}': is given twice, as {first} and then as "
                          f"{second}; keep one of them and delete the other")


def test_a_key_given_twice_with_a_mark_still_names_the_key(tmp_path: Path) -> None:
    path = tmp_path / "hyper.json"
    path.write_bytes(BOM + b'{"seed": 1, "seed": 2}')
    with pytest.raises(ParamsError, match="field 'seed': is given twice, as 1 and then as 2"):
        HyperParams.load(path)


# ---- headless and the app's command line: the same loader ------------------------------------
def test_headless_reads_a_mark_and_refuses_a_key_twice(
        tmp_path: Path, dataset: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = write_bom(tmp_path / "data.json", {"train_dir": "set", "image_size": [8, 8]})
    twice = tmp_path / "hyper.json"
    twice.write_text('{"batch_size": 16, "batch_size": 32}', encoding="utf-8")
    status = main(["train", "--data-params", str(data), "--hyper-params", str(twice),
                   "--results-dir", str(tmp_path / "results")])
    err = capsys.readouterr().err.strip().splitlines()
    assert status == 2
    assert len(err) == 1, err
    assert str(twice) in err[0] and "field 'batch_size': is given twice, as 16 and then " \
        "as 32; keep one of them and delete the other" in err[0]


def test_headless_reads_data_params_with_a_mark(
        tmp_path: Path, dataset: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = write_bom(tmp_path / "data.json", {"train_dir": "set", "image_size": [8, 8]})
    missing = tmp_path / "none.keras"
    status = main(["evaluate", "--data-params", str(data), "--model", str(missing),
                   "--results-dir", str(tmp_path / "results")])
    err = [line for line in capsys.readouterr().err.splitlines() if "error:" in line]
    assert status == 2 and len(err) == 1, err
    # the params file was read: the one error is about the model that is not there
    assert str(missing) in err[0] and "data.json" not in err[0]


def test_the_app_command_line_reads_a_file_with_a_mark(tmp_path: Path, dataset: Path) -> None:
    from argparse import Namespace

    from convonet.cli import load_session

    data = write_bom(tmp_path / "data.json", {"train_dir": "set", "image_size": [8, 8]})
    hyper = write_bom(tmp_path / "hyper.json", {"epochs": 2})
    notices: list[str] = []
    controller = load_session(Namespace(data_params=data, hyper_params=hyper,
                                           demo=False, results_dir=None), notices)
    assert controller.data_params is not None and controller.data_params.image_size == (8, 8)
    assert controller.hyper_params is not None and controller.hyper_params.epochs == (2,)


# ---- the params screen: load through the picker, edit, save --------------------------------
async def pick(pilot: Pilot[Any], key: str, path: Path) -> None:
    """Open the picker with ``key`` and type the file's full path."""
    app = pilot.app
    await pilot.press(key)
    await wait_for(pilot, lambda: isinstance(app.screen, FilePicker), "the file picker")
    await pilot.press("ctrl+u", *str(path), "enter")
    await wait_for(pilot, lambda: not isinstance(app.screen, FilePicker), "the picker to close")


async def test_the_params_screen_loads_a_mark_edits_and_saves_without_one(
        make_app: Any, tmp_path: Path) -> None:
    hyper = write_bom(tmp_path / "notepad_hyper.json", {"batch_size": "16,32", "epochs": 3})
    app = make_app()
    async with app.run_test(size=(100, 34)) as pilot:
        await pick(pilot, "L", hyper)
        assert isinstance(app.screen, ParamsScreen), type(app.screen).__name__
        assert app.session.hyper_params.path == hyper
        assert app.session.hyper_params.batch_size == (16, 32)

        await pilot.press("E")
        await wait_for(pilot, lambda: isinstance(app.screen, ParamsForm), "the form")
        row = app.screen.query_one("#row-epochs")
        row.query_one(Input).focus()
        await pilot.press("ctrl+u", *"7", "ctrl+s")
        await wait_for(pilot, lambda: isinstance(app.screen, ParamsScreen), "the form to close")
        await pilot.press("S")
        await wait_for(pilot, lambda: isinstance(app.screen, FilePicker), "the save picker")
        await pilot.press("enter")
        await wait_for(pilot, lambda: not isinstance(app.screen, FilePicker), "saving")
        await wait_for(pilot, lambda: not app.session.unsaved_params, "saved")

    raw = hyper.read_bytes()
    assert not raw.startswith(BOM)
    assert HyperParams.load(hyper).epochs == (7,)
    assert HyperParams.load(hyper).batch_size == (16, 32)


async def test_the_params_screen_shows_a_key_given_twice(make_app: Any, tmp_path: Path) -> None:
    twice = tmp_path / "twice_hyper.json"
    twice.write_text('{"dropout": 0.5, "dropout": 0.2}', encoding="utf-8")
    app = make_app()
    async with app.run_test(size=(100, 34)) as pilot:
        await pick(pilot, "L", twice)
        await wait_for(pilot, lambda: type(app.screen).__name__ == "ErrorDialog", "the error")
        summary = app.screen.summary
        assert str(twice) in summary
        assert "field 'dropout': is given twice, as 0.5 and then as 0.2; keep one" in summary
        await pilot.press("escape")
        await wait_for(pilot, lambda: isinstance(app.screen, ParamsScreen), "the screen")
        assert app.session.hyper_params.path is None  # the params kept, not replaced


# ---- the keymap file: the other file a user edits ------------------------------------------
def test_a_keymap_with_a_mark_applies(tmp_path: Path) -> None:
    toml = tmp_path / "keys.toml"
    toml.write_bytes(BOM + b'"goto.training" = "f3"\r\n')
    read = keymap.read_keymap(toml, known_ids={"goto.training"})
    assert read.problems == [] and read.keys == {"goto.training": "f3"}

    as_json = tmp_path / "keys.json"
    as_json.write_bytes(BOM + b'{"goto.training": "f3"}')
    read = keymap.read_keymap(as_json, known_ids={"goto.training"})
    assert read.problems == [] and read.keys == {"goto.training": "f3"}


def test_a_keymap_json_with_an_entry_twice_is_reported(tmp_path: Path) -> None:
    path = tmp_path / "keys.json"
    path.write_text('{"goto.training": "f3", "goto.training": "f4"}', encoding="utf-8")
    read = keymap.read_keymap(path, known_ids={"goto.training"})
    assert read.keys == {}
    assert read.problems == [f"{path}: entry 'goto.training' is given twice, as \"f3\" and "
                             "then as \"f4\"; keep one of them and delete the other; no keys "
                             "were changed"]
