"""SVG snapshots of the params screen (the edit form with an error) and the data screen
(after loading the demo's training and test sets) at 80x24 and 120x40.

The app runs from a folder whose paths show relative (``app_input/...``, ``train``), so the
pictures are the same on any machine. Update after a deliberate change with
``pytest tests/test_snapshots_params_data.py --snapshot-update`` and look at the SVGs.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest

from convonet.core.demo import demo_params_paths
from convonet.core.params import DataParams, HyperParams
from convonet.tui.session import Session

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def in_demo(demo_folder: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Session:
    """Run from the demo's folder, with the sample params beside it and a fresh cache."""
    monkeypatch.chdir(demo_folder)
    monkeypatch.setenv("CONVONET_CACHE_DIR", str(tmp_path / "cache"))
    if not (demo_folder / "app_input").exists():
        shutil.copytree(REPO / "app_input", demo_folder / "app_input")
    data_json, _ = demo_params_paths(".")
    return Session(data_params=DataParams.load(data_json),
                      hyper_params=HyperParams.load("app_input/mnist_hyper_params.json"))


async def _form_with_a_typo(pilot: Any) -> None:
    await pilot.press("E")
    await pilot.pause()
    await pilot.press("ctrl+u", *"64,8o")
    await pilot.pause()


async def _both_sets_loaded(pilot: Any) -> None:
    await pilot.press("2")
    for key in ("t", "T"):
        await pilot.press(key)
        await pilot.app.workers.wait_for_complete()
        await pilot.pause()
    pilot.app.clear_notifications()
    await pilot.pause()


@pytest.mark.parametrize("size", [(80, 24), (120, 40)], ids=["80x24", "120x40"])
def test_params_screen(snap_compare: Any, make_app: Any, in_demo: Session,
                       size: tuple[int, int]) -> None:
    app = make_app(session=in_demo, results_dir="app_results")
    assert snap_compare(app, terminal_size=size)


@pytest.mark.parametrize("size", [(80, 24), (120, 40)], ids=["80x24", "120x40"])
def test_params_form_with_an_error(snap_compare: Any, make_app: Any, in_demo: Session,
                                   size: tuple[int, int]) -> None:
    app = make_app(session=in_demo, results_dir="app_results")
    assert snap_compare(app, terminal_size=size, run_before=_form_with_a_typo)


@pytest.mark.parametrize("size", [(80, 24), (120, 40)], ids=["80x24", "120x40"])
def test_data_screen_after_loading(snap_compare: Any, make_app: Any, in_demo: Session,
                                   size: tuple[int, int]) -> None:
    app = make_app(session=in_demo, results_dir="app_results")
    assert snap_compare(app, terminal_size=size, run_before=_both_sets_loaded)
