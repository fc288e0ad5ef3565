"""The error dialog: the user's mistakes without a traceback, internal errors with one
behind the details key and always in the log.

The Pilot tests read the screen as the user sees it (every cell's text), so a traceback
anywhere on it, in any widget, fails them.
"""

from __future__ import annotations

import errno
import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from conftest import wait_for
from PIL import Image
from rich.console import Console

from convonet.core.data import DataError, DataPrep
from convonet.core.errors import ConvonetError
from convonet.core.params import DataParams, ParamsError
from convonet.noise import LOG_NAME, route_noise_to_log
from convonet.tui.dialogs import ErrorDialog
from convonet.tui.session import Session
from convonet.tui.tasks import describe_error, split_advice


@pytest.fixture(autouse=True)
def cache_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Each test decodes into its own dataset cache, never the user's."""
    folder = tmp_path / "cache"
    monkeypatch.setenv("CONVONET_CACHE_DIR", str(folder))
    return folder


@pytest.fixture
def log_file(tmp_path: Path) -> Iterator[Path]:
    """The results folder's log, routed as ``convonet`` (cli.run_tui) routes it."""
    path = tmp_path / "results" / LOG_NAME
    with route_noise_to_log(path):
        yield path


def screen_text(app: Any) -> str:
    """Every character on the terminal, the dialog and the screen under it alike."""
    width, height = app.size
    console = Console(width=width, height=height, file=io.StringIO(), record=True,
                      legacy_windows=False, safe_box=False)
    console.print(app.screen._compositor.render_update(
        full=True, screen_stack=app._background_screens))
    return console.export_text()


def flat(text: str) -> str:
    """The screen's words with the dialog's borders and line breaks taken out."""
    for ch in "█▀▄│╭╮╰╯─▊▎▔▁":
        text = text.replace(ch, " ")
    return " ".join(text.split())


async def load_and_fail(pilot: Any) -> ErrorDialog:
    """Press t on the data screen and wait for the error dialog."""
    app = pilot.app
    await pilot.press("2")
    await pilot.press("t")
    await wait_for(pilot, lambda: isinstance(app.screen, ErrorDialog), "the error dialog")
    await app.workers.wait_for_complete()
    await pilot.pause()
    dialog = app.screen
    assert isinstance(dialog, ErrorDialog)
    return dialog


def png_folder(root: Path, classes: tuple[str, ...] = ("cats", "dogs"), per_class: int = 3
               ) -> Path:
    rng = np.random.default_rng(0)
    for name in classes:
        (root / name).mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            pixels = (rng.random((8, 8)) * 255).astype(np.uint8)
            Image.fromarray(pixels, "L").save(root / name / f"{i}.png")
    return root


# ---- what the dialog says ---------------------------------------------------------------
def test_our_messages_split_into_what_is_wrong_and_what_to_do() -> None:
    assert split_advice("folder 'x' has no files (e.g. a; b); put images in it") == (
        "folder 'x' has no files (e.g. a; b)", "Put images in it")
    assert split_advice("no advice here") == ("no advice here", "")

    text = describe_error(DataError("dataset folder '/d' does not exist; fix the path in "
                                    "the data params"))
    assert (text.problem, text.advice) == ("dataset folder '/d' does not exist",
                                           "Fix the path in the data params")
    assert text.summary == "dataset folder '/d' does not exist; fix the path in the data params"
    assert not text.internal and text.traceback == ""


def test_a_message_without_advice_gets_one_for_its_kind() -> None:
    text = describe_error(ParamsError("0 is out of range: expected 1..65536",
                                      file="hyper.json", field="batch_size"))
    assert "batch_size" in text.problem and text.advice.startswith("Correct that value")
    assert not text.internal

    missing = describe_error(FileNotFoundError(errno.ENOENT, "No such file or directory",
                                               "/data/x.keras"))
    assert missing.problem == "No such file or directory: '/data/x.keras'"
    assert missing.advice == "Check the path: that file or folder does not exist."
    assert "[Errno" in missing.summary and not missing.internal
    denied = describe_error(PermissionError(errno.EACCES, "Permission denied", "/r/m.keras"))
    assert denied.advice.startswith("Choose a file or folder you may use")
    full = describe_error(OSError(errno.ENOSPC, "No space left on device", "/r/run.csv"))
    assert full.advice.startswith("Free some disk space") and not full.internal


def test_the_advice_and_title_are_the_error_classs() -> None:
    text = describe_error(ParamsError("0 is out of range: expected 1..65536",
                                      file="hyper.json", field="batch_size"))
    assert text.advice == ParamsError.advice and text.title == ParamsError.title

    class QuotaError(ConvonetError):
        title = "Quota"
        advice = "Ask for a larger quota."

    quota = describe_error(QuotaError("the shared folder is over its quota"))
    assert (quota.title, quota.advice) == ("Quota", "Ask for a larger quota.")
    assert not quota.internal
    said = describe_error(QuotaError("over quota; delete old runs"))
    assert said.advice == "Delete old runs"  # the message's own advice comes first


def test_a_bare_value_error_is_internal() -> None:
    try:
        raise ValueError("the training set is empty")
    except ValueError as exc:
        text = describe_error(exc)
    assert text.internal and text.title == "Internal error"
    assert text.summary == "ValueError: the training set is empty"


def test_an_internal_error_keeps_its_traceback() -> None:
    try:
        {}["missing"]  # noqa: B018 - a real exception with a real traceback
    except KeyError as exc:
        text = describe_error(exc)
    assert text.internal and text.summary == "KeyError: 'missing'"
    assert text.traceback.startswith("Traceback (most recent call last):")
    assert "test_an_internal_error_keeps_its_traceback" in text.traceback


# ---- in the app --------------------------------------------------------------------------
async def test_a_missing_training_folder_shows_no_traceback(
        make_app: Any, tmp_path: Path, log_file: Path) -> None:
    root = tmp_path / "no-such-folder" / "train"
    app = make_app(session=Session(data_params=DataParams(
        {"train_dir": str(root), "image_size": [8, 8]})))
    async with app.run_test(size=(160, 40)) as pilot:
        dialog = await load_and_fail(pilot)
        assert dialog.error_title == "Loading the training set failed"
        words = flat(screen_text(app))
        assert "Loading the training set failed" in words
        assert f"dataset folder '{root}' does not exist" in words
        assert "What to do: Fix the path in the data params (relative paths are read from " \
               "the params file's folder)" in words
        assert "Traceback" not in words and "DataError" not in words
        assert "fault in convonet" not in words and "d details" not in words
        assert not dialog.query(".buttons #toggle-details")
        await pilot.press("d")  # no details to reveal: nothing changes
        await pilot.pause()
        assert "Traceback" not in flat(screen_text(app))
        await pilot.press("escape")
        assert app.screen is not dialog and app.session.train_set is None
    text = log_file.read_text()
    assert f"dataset folder '{root}' does not exist" in text and "Traceback" not in text


async def test_a_class_folder_without_readable_images_shows_no_traceback(
        make_app: Any, tmp_path: Path) -> None:
    root = png_folder(tmp_path / "set", classes=("cats",))
    (root / "dogs").mkdir()
    (root / "dogs" / "notes.txt").write_text("not an image")
    (root / "dogs" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n broken")
    before_params = DataParams({"train_dir": str(png_folder(tmp_path / "good")),
                                "image_size": [8, 8]})
    app = make_app(session=Session(data_params=before_params))
    async with app.run_test(size=(160, 40)) as pilot:
        await pilot.press("2")
        await pilot.press("t")
        await app.workers.wait_for_complete()
        await pilot.pause()
        kept = app.session.train_set
        assert kept is not None and len(kept) == 6
        app.session.data_params = before_params.edit(train_dir=str(root))
        dialog = await load_and_fail(pilot)
        words = flat(screen_text(app))
        assert f"class folder '{root / 'dogs'}' has no readable images (2 file(s) skipped" \
            in words
        assert "What to do: Add images Pillow can read or remove the folder" in words
        assert "Traceback" not in words
        await pilot.press("escape")
        assert app.screen is not dialog and app.session.train_set is kept


async def test_a_permission_error_shows_no_traceback(
        make_app: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = png_folder(tmp_path / "set")

    def denied(*args: Any, **kwargs: Any) -> Any:
        # Tests run as root, where chmod takes nothing away: the error is injected.
        raise PermissionError(errno.EACCES, "Permission denied", str(root / "cats"))

    monkeypatch.setattr(DataPrep, "prep_data", denied)
    app = make_app(session=Session(data_params=DataParams(
        {"train_dir": str(root), "image_size": [8, 8]})))
    async with app.run_test(size=(160, 40)) as pilot:
        await load_and_fail(pilot)
        words = flat(screen_text(app))
        assert f"Permission denied: '{root / 'cats'}'" in words and "[Errno" not in words
        assert "What to do: Choose a file or folder you may use, or change its " \
               "permissions." in words
        assert "Traceback" not in words and "fault in convonet" not in words


async def test_an_internal_error_hides_its_traceback_until_d_and_logs_it(
        make_app: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        log_file: Path) -> None:
    root = png_folder(tmp_path / "set")

    def broken(self: DataPrep, *args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("resize returned no array")

    monkeypatch.setattr(DataPrep, "prep_data", broken)
    app = make_app(session=Session(data_params=DataParams(
        {"train_dir": str(root), "image_size": [8, 8]})))
    async with app.run_test(size=(160, 40)) as pilot:
        dialog = await load_and_fail(pilot)
        words = flat(screen_text(app))
        assert "RuntimeError: resize returned no array" in words
        assert "This is a fault in convonet, not in your data or params" in words
        assert f"written to {log_file}" in words
        assert "Traceback" not in words and "def broken" not in words

        await pilot.press("d")
        await pilot.pause()
        assert dialog.details_shown
        words = flat(screen_text(app))
        assert "raise RuntimeError(\"resize returned no array\")" in words
        assert "RuntimeError: resize returned no array" in words

        await pilot.press("d")
        await pilot.pause()
        assert not dialog.details_shown
        assert "raise RuntimeError" not in flat(screen_text(app))

        copied: list[str] = []
        app.copy_to_clipboard = copied.append  # type: ignore[method-assign]
        await pilot.press("c")
        assert copied and copied[0].startswith("Loading the training set failed\n\n"
                                               "RuntimeError: resize returned no array")
        assert "Traceback (most recent call last)" in copied[0]
        await pilot.press("escape")
        assert app.screen is not dialog
    text = log_file.read_text()
    assert "ERROR convonet.app" in text
    assert "Loading the training set failed: RuntimeError: resize returned no array" in text
    assert "Traceback (most recent call last)" in text
    assert 'raise RuntimeError("resize returned no array")' in text
