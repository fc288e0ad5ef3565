"""SVG snapshots of the runs screen at 80x24 and 120x40, from hand-written run folders.

The results folder is given relative to a fixed working folder, so the paths shown are the
same on every machine. Update after a deliberate change with ``pytest
tests/test_snapshots_runs.py --snapshot-update`` and look at the SVGs before committing.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest


@pytest.fixture
def runs_app(make_app: Any, fixed_runs: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.chdir(fixed_runs.parent)
    return make_app(results_dir=Path(fixed_runs.name))


def test_runs_list_80x24(snap_compare: Any, runs_app: Any) -> None:
    # the cursor on the interrupted run: its resume state shows below the list
    assert snap_compare(runs_app, press=["7", "down"], terminal_size=(80, 24))


def test_runs_list_marked_120x40(snap_compare: Any, runs_app: Any) -> None:
    assert snap_compare(runs_app, press=["7", "down", "down", "down", "down", "down",
                                         "space", "down", "space"],
                        terminal_size=(120, 40))


def test_run_training_80x24(snap_compare: Any, runs_app: Any) -> None:
    assert snap_compare(runs_app, press=["7", "down", "down", "down", "down", "down",
                                         "enter"], terminal_size=(80, 24))


def test_run_prediction_120x40(snap_compare: Any, runs_app: Any) -> None:
    assert snap_compare(runs_app, press=["7", "down", "down", "down", "enter"],
                        terminal_size=(120, 40))


def test_compare_curves_120x40(snap_compare: Any, runs_app: Any) -> None:
    assert snap_compare(runs_app, press=["7", "down", "down", "down", "down", "down",
                                         "space", "down", "space", "c"],
                        terminal_size=(120, 40))


def test_compare_params_differences_80x24(snap_compare: Any, runs_app: Any) -> None:
    assert snap_compare(runs_app, press=["7", "down", "down", "down", "down", "down",
                                         "space", "down", "space", "c", "o"],
                        terminal_size=(80, 24))
