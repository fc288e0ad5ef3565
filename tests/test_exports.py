"""Exports and terminal reality: the screenshot key, TensorBoard logs, key remapping from a
config file, NO_COLOR and 16/256-colour terminals."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from textual.filter import Monochrome, NoColor

from convonet import keymap
from convonet.cli import main
from convonet.core import exports


def notes(app: Any) -> list[str]:
    return [str(n.message) for n in app._notifications]


@pytest.fixture
def config_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty config folder of our own, so the user's real keys file never leaks in."""
    folder = tmp_path / "config"
    folder.mkdir()
    monkeypatch.setenv(keymap.CONFIG_ENV, str(folder))
    return folder


# ---- the screenshot key ------------------------------------------------------------------
async def test_screenshot_key_saves_an_svg_in_the_results(make_app: Callable[..., Any],
                                                          config_dir: Path) -> None:
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("f12")
        await pilot.press("f12")  # twice in one second: two files, none overwritten
        await pilot.pause()
        shots = sorted((app.results_dir / "screenshots").glob("*.svg"))
        assert len(shots) == 2
        assert shots[0].name.startswith("convonet-params-")
        svg = shots[0].read_text(encoding="utf-8")
        assert svg.lstrip().startswith("<svg") and "convonet" in svg
        assert any(str(shots[0]) in note for note in notes(app))


async def test_screenshot_into_an_unwritable_place_is_a_message(
        make_app: Callable[..., Any], config_dir: Path, tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    app = make_app(results_dir=blocker)
    async with app.run_test() as pilot:
        await pilot.press("f12")
        await pilot.pause()
        assert any("Cannot save the screenshot" in note for note in notes(app))
        assert app.is_running


# ---- key remapping -----------------------------------------------------------------------
async def test_keymap_file_remaps_a_screen_key(make_app: Callable[..., Any],
                                               config_dir: Path) -> None:
    (config_dir / "keys.toml").write_text(
        '"goto.training" = "f4"\n'
        'goto.data = ["ctrl+t", "f6"]  # dotted keys and lists work too\n')
    app = make_app()
    async with app.run_test() as pilot:
        await pilot.press("4")  # its old key does nothing now
        await pilot.pause()
        assert app.current_mode == "params"
        await pilot.press("f4")
        await pilot.pause()
        assert app.current_mode == "training"
        await pilot.press("f6")
        await pilot.pause()
        assert app.current_mode == "data"
        assert not notes(app)


async def test_bad_keymap_entries_are_named_and_the_rest_applies(
        make_app: Callable[..., Any], config_dir: Path) -> None:
    path = config_dir / "keys.json"
    path.write_text(json.dumps({"goto.nowhere": "f9", "goto.model": "cmd+m",
                                "app.about": 3, "goto.tuning": "f5"}))
    app = make_app()
    async with app.run_test() as pilot:
        await pilot.pause()
        messages = notes(app)
        assert len(messages) == 3
        assert all(str(path) in m for m in messages)
        assert any("'goto.nowhere' is not a binding id" in m for m in messages)
        assert any("'goto.model'" in m and "cmd" in m for m in messages)
        assert any("'app.about'" in m for m in messages)
        await pilot.press("f5")
        await pilot.pause()
        assert app.current_mode == "tuning" and app.is_running


async def test_unreadable_keymap_file_is_a_notification(make_app: Callable[..., Any],
                                                        config_dir: Path) -> None:
    path = config_dir / "keys.toml"
    path.write_text('goto.training = "f4\n')  # unterminated string
    app = make_app()
    async with app.run_test() as pilot:
        await pilot.pause()
        (message,) = notes(app)
        assert str(path) in message and "not valid TOML" in message
        await pilot.press("4")  # the default keys still work
        await pilot.pause()
        assert app.current_mode == "training"


def test_clashing_key_is_reported(config_dir: Path) -> None:
    path = config_dir / "keys.toml"
    path.write_text('"goto.training" = "q"\n')
    result = keymap.read_keymap(path)
    assert result.keys == {"goto.training": "q"}
    assert any("'app.quit' also uses" in p for p in result.problems)
    # Swapping two keys is not a clash.
    path.write_text('"goto.training" = "q"\n"app.quit" = "4"\n')
    assert keymap.read_keymap(path).problems == []


def test_keys_command_lists_every_binding_id(config_dir: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    (config_dir / "keys.toml").write_text('"goto.training" = "f4"\n')
    assert main(["keys"]) == 0
    out = capsys.readouterr().out
    assert str(config_dir / "keys.toml") in out
    for binding_id in ("goto.params", "app.quit", "app.screenshot", "training.stop"):
        assert binding_id in out
    assert any(line.split()[:2] == ["goto.training", "f4*"] for line in out.splitlines())


# ---- colours -----------------------------------------------------------------------------
def test_no_color_is_honoured(make_app: Callable[..., Any], config_dir: Path,
                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NO_COLOR", "1")
    app = make_app()
    assert app.no_color
    assert any(isinstance(f, (Monochrome, NoColor)) for f in app._filters)


@pytest.mark.parametrize("term, system", [("xterm", "standard"), ("xterm-256color", "256"),
                                          ("screen-256color", "256")])
def test_terminal_colour_depth_follows_term(make_app: Callable[..., Any], config_dir: Path,
                                            monkeypatch: pytest.MonkeyPatch, term: str,
                                            system: str) -> None:
    """Textual renders in the colours TERM offers: 16 for xterm, 256 under tmux/screen."""
    monkeypatch.setenv("TERM", term)
    for name in ("COLORTERM", "TEXTUAL_COLOR_SYSTEM", "NO_COLOR", "FORCE_COLOR"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr("textual.constants.COLOR_SYSTEM", "auto")
    assert make_app().console.color_system == system


# ---- TensorBoard -------------------------------------------------------------------------
def test_tensorboard_is_off_unless_asked(monkeypatch: pytest.MonkeyPatch,
                                         tmp_path: Path) -> None:
    monkeypatch.delenv(exports.TENSORBOARD_ENV, raising=False)
    assert exports.tensorboard_callbacks(tmp_path) == []
    monkeypatch.setenv(exports.TENSORBOARD_ENV, "0")
    assert not exports.tensorboard_requested()
    monkeypatch.setenv(exports.TENSORBOARD_ENV, "1")
    assert exports.tensorboard_requested()
    assert not exports.tensorboard_requested(False)  # the caller's flag wins


def test_tensorboard_missing_is_one_line_not_a_failure(monkeypatch: pytest.MonkeyPatch,
                                                       tmp_path: Path) -> None:
    real_find_spec = exports.importlib.util.find_spec
    monkeypatch.setattr(exports.importlib.util, "find_spec",
                        lambda name, *a: None if name == "tensorboard"
                        else real_find_spec(name, *a))
    told: list[str] = []
    assert exports.tensorboard_callbacks(tmp_path, enabled=True, on_missing=told.append) == []
    assert len(told) == 1 and "convonet[tensorboard]" in told[0]


@pytest.mark.skipif(exports.tensorboard_missing() is not None,
                    reason="tensorboard is not installed (the 'tensorboard' extra)")
def test_tensorboard_logs_land_in_the_run_folder(tmp_path: Path) -> None:
    import keras
    import numpy as np

    callbacks = exports.tensorboard_callbacks(tmp_path / "run", enabled=True)
    assert len(callbacks) == 1
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2, activation="softmax")])
    model.compile("sgd", "sparse_categorical_crossentropy", metrics=["accuracy"])
    x = np.random.default_rng(0).random((16, 4), dtype="float32")
    y = np.arange(16) % 2
    model.fit(x, y, epochs=2, validation_split=0.25, verbose=0, callbacks=callbacks)
    logs = tmp_path / "run" / exports.TENSORBOARD_DIR
    assert list((logs / "train").glob("events.out.tfevents.*"))
    assert list((logs / "validation").glob("events.out.tfevents.*"))
