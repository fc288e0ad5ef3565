"""SVG snapshots of the shell at 80x24 and 120x40, with fixed labels, names and paths.

Update the baseline after a deliberate change with ``pytest tests/test_snapshots.py
--snapshot-update`` and look at the new SVGs before committing them.
"""

from __future__ import annotations

from typing import Any


def test_params_screen_80x24(snap_compare: Any, make_app: Any,
                             named_params_controller: Any) -> None:
    app = make_app(session=named_params_controller, results_dir="app_results")
    assert snap_compare(app, terminal_size=(80, 24))


def test_params_screen_120x40(snap_compare: Any, make_app: Any,
                              named_params_controller: Any) -> None:
    app = make_app(session=named_params_controller, results_dir="app_results")
    assert snap_compare(app, terminal_size=(120, 40))


def test_training_screen_120x40(snap_compare: Any, make_app: Any,
                                named_params_controller: Any) -> None:
    app = make_app(session=named_params_controller, results_dir="app_results")
    assert snap_compare(app, press=["4"], terminal_size=(120, 40))


def test_keys_help_80x24(snap_compare: Any, make_app: Any,
                         named_params_controller: Any) -> None:
    app = make_app(session=named_params_controller, results_dir="app_results")
    assert snap_compare(app, press=["question_mark"], terminal_size=(80, 24))


def test_error_dialog_80x24(snap_compare: Any, make_app: Any,
                            named_params_controller: Any) -> None:
    app = make_app(session=named_params_controller, results_dir="app_results")

    async def fail(pilot: Any) -> None:
        pilot.app.show_error("Loading the training set failed",
                             "train/: field 'train_dir': folder not found\n\n"
                             "Check the path in the data params, or load other params.")
        await pilot.pause()

    assert snap_compare(app, terminal_size=(80, 24), run_before=fail)


def test_about_80x24(snap_compare: Any, make_app: Any,
                     named_params_controller: Any) -> None:
    app = make_app(session=named_params_controller, results_dir="app_results")
    assert snap_compare(app, press=["f2"], terminal_size=(80, 24))
