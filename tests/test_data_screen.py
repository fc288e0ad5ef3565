"""The data screen under Pilot: load, read the class table, cancel half way, skipped files."""

from __future__ import annotations

import shutil
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from conftest import wait_for
from PIL import Image
from textual.pilot import Pilot
from textual.widgets import DataTable, ProgressBar, Static

import convonet.core.data.decoding as data_decoding
import convonet.core.data.prep as data_prep
from convonet.core.demo import demo_params_paths
from convonet.core.params import DataParams, HyperParams
from convonet.tui.commands import command_state, menu_commands
from convonet.tui.dialogs import ErrorDialog
from convonet.tui.screens.data import DataScreen
from convonet.tui.session import Session
from convonet.tui.widgets.data_panels import SetPanel, SkippedDialog, share_bar
from convonet.tui.widgets.images import ImageGrid


@pytest.fixture(autouse=True)
def cache_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Each test decodes into its own dataset cache, never the user's."""
    folder = tmp_path / "cache"
    monkeypatch.setenv("CONVONET_CACHE_DIR", str(folder))
    return folder


def demo_controller(demo: Path) -> Session:
    data_json, hyper_json = demo_params_paths(demo)
    return Session(data_params=DataParams.load(data_json),
                      hyper_params=HyperParams.load(hyper_json))


def class_rows(app: Any, which: str) -> list[tuple[str, ...]]:
    table = app.screen.query_one(f"#set-{which}", SetPanel).query_one(DataTable)
    return [tuple(str(c) for c in table.get_row_at(i)) for i in range(table.row_count)]


def folder_counts(root: Path) -> list[int]:
    return [len(list(d.iterdir())) for d in sorted(root.iterdir()) if d.is_dir()]


async def load(pilot: Pilot[Any], key: str) -> None:
    await pilot.press(key)
    await pilot.app.workers.wait_for_complete()
    await pilot.pause()


async def test_load_the_demo_sets_and_read_the_class_tables(make_app: Any,
                                                            demo_folder: Path) -> None:
    app = make_app(session=demo_controller(demo_folder))
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("2")
        screen = app.screen
        assert isinstance(screen, DataScreen)
        assert screen.check_action("cancel_load", ()) is None
        assert screen.check_action("show_skipped", ()) is None

        await load(pilot, "t")
        train = app.session.train_set
        assert train is not None
        counts = folder_counts(demo_folder / "train")
        rows = class_rows(app, "train")
        assert [r[:3] for r in rows] == [(str(i), str(i), f"{n:,}")
                                         for i, n in enumerate(counts)]
        assert rows[0][3] == f"{counts[0] / sum(counts):.1%}"
        assert rows[int(np.argmax(counts))][4] == share_bar(1, 1)  # the largest: a full bar
        summary = str(screen.query_one("#set-train .set-summary", Static).render())
        assert "28×28 px · 1 channel (grayscale) · 10 classes" in summary
        assert "no files skipped" in summary

        await load(pilot, "T")
        test = app.session.test_set
        assert test is not None and test.class_matching == []
        assert [r[2] for r in class_rows(app, "test")] == [
            f"{n:,}" for n in folder_counts(demo_folder / "test")]
        assert app.session.train_set is train  # loading the test set keeps training

        grid = screen.query_one("#sample-grid", ImageGrid)
        first = list(grid._labels)
        assert first and all(label.split() == [label[0]] * 2 for label in first)
        await pilot.press("r")
        assert grid._labels != first  # other samples
        await pilot.press("v")
        assert "training set" in str(screen.query_one("#samples").border_title)


def _slow_extract(real: Any) -> Any:
    def slow(*args: Any, **kwargs: Any) -> Any:
        time.sleep(0.004)
        return real(*args, **kwargs)
    return slow


async def test_cancel_a_load_half_way_keeps_the_set_and_loads_again(
        make_app: Any, demo_folder: Path, cache_dir: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    app = make_app(session=demo_controller(demo_folder))
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.press("2")
        screen = app.screen
        await load(pilot, "t")
        before = app.session.train_set
        assert before is not None

        shutil.rmtree(cache_dir)  # decode again, slowly
        real = data_decoding.extract_image
        monkeypatch.setattr(data_decoding, "extract_image", _slow_extract(real))
        await pilot.press("t")
        bar = screen.query_one("#load-bar", ProgressBar)
        await wait_for(pilot, lambda: (bar.progress or 0) > 0, "some images decoded")
        assert screen.has_class("-loading")
        assert screen.check_action("load_test_dataset", ()) is None  # one load at a time
        label = str(screen.query_one("#load-label").render())
        assert "/ 1,438 images" in label and "images/s" in label and "ETA" in label
        await pilot.press("c")
        await app.workers.wait_for_complete()
        await pilot.pause()
        assert bar.progress < bar.total
        assert not screen.has_class("-loading")
        assert app.session.train_set is before  # the previous set stays
        assert not app.tasks.running() or all(h.token.cancelled for h in app.tasks.running())

        monkeypatch.setattr(data_decoding, "extract_image", real)
        await load(pilot, "t")
        again = app.session.train_set
        assert again is not before and len(again) == len(before)


def _write_set(root: Path) -> None:
    rng = np.random.default_rng(0)
    for name in ("cats", "dogs"):
        (root / name).mkdir(parents=True)
        for i in range(3):
            pixels = (rng.random((12, 12, 3)) * 255).astype(np.uint8)
            Image.fromarray(pixels, "RGB").save(root / name / f"{i}.png")
    (root / "dogs" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really a png")
    (root / "cats" / "notes.txt").write_text("not an image")


async def test_skipped_files_are_counted_and_listed_with_reasons(make_app: Any,
                                                                 tmp_path: Path) -> None:
    root = tmp_path / "pets"
    _write_set(root)
    params = DataParams({"train_dir": str(root), "image_size": [12, 12], "color_mode": "rgb"})
    app = make_app(session=Session(data_params=params))
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.press("2")
        screen = app.screen
        assert screen.check_action("load_test_dataset", ()) is None  # no test_dir
        await load(pilot, "t")
        summary = str(screen.query_one("#set-train .set-summary", Static).render())
        assert "2 file(s) skipped" in summary
        assert "12×12 px · 3 channels (RGB) · 2 classes" in summary
        assert [r[2] for r in class_rows(app, "train")] == ["3", "3"]

        await pilot.press("f")
        assert isinstance(app.screen, SkippedDialog)
        table = app.screen.query_one(DataTable)
        rows = {str(table.get_row_at(i)[1]): str(table.get_row_at(i)[2])
                for i in range(table.row_count)}
        assert set(rows) == {"cats/notes.txt", "dogs/broken.png"}
        assert all("not an image" in reason for reason in rows.values())
        await pilot.press("escape")
        assert app.screen is screen


async def test_what_cannot_run_is_greyed_out_with_a_reason(make_app: Any) -> None:
    app = make_app(session=Session())
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("2")
        screen = app.screen
        assert screen.check_action("load_training_dataset", ()) is None
        load_train = next(c for c in menu_commands() if c.action == "load_training_dataset")
        assert command_state(app, load_train) == (False, "not available now")
        await pilot.press("t")
        assert not app.workers  # nothing started, nothing failed
        hint = str(screen.query_one("#set-train .set-summary", Static).render())
        assert "no train_dir in the data params" in hint


async def test_a_load_too_big_for_memory_is_refused(make_app: Any, demo_folder: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(data_prep, "available_memory", lambda: 1_000_000)
    app = make_app(session=demo_controller(demo_folder))
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.press("2")
        await pilot.press("t")
        await wait_for(pilot, lambda: isinstance(app.screen, ErrorDialog), "the error")
        assert "more than half" in app.screen.summary
        assert "1,438 images" in app.screen.summary
        await pilot.press("escape")
        assert app.session.train_set is None


async def test_test_folders_named_differently_show_the_index_mapping(
        make_app: Any, tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    for part, names in (("train", ["adeno_left_T2", "normal_scans"]),
                        ("test", ["adeno", "normal"])):
        for name in names:
            (tmp_path / part / name).mkdir(parents=True)
            for i in range(2):
                pixels = (rng.random((8, 8)) * 255).astype(np.uint8)
                Image.fromarray(pixels, "L").save(tmp_path / part / name / f"{i}.png")
    params = DataParams({"train_dir": str(tmp_path / "train"),
                         "test_dir": str(tmp_path / "test"), "image_size": [8, 8]})
    app = make_app(session=Session(data_params=params))
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("2")
        await load(pilot, "t")
        await load(pilot, "T")
        assert app.session.test_set.class_matching == [("adeno_left_T2", "adeno"),
                                                          ("normal_scans", "normal")]
        text = str(app.screen.query_one("#set-test .set-warnings", Static).render())
        assert "matched by sorted order" in text
        assert "0 → adeno_left_T2 ← adeno" in text and "1 → normal_scans ← normal" in text
