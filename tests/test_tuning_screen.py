"""The tuning screen under Pilot: a live search stopped after its first fold (partial table on
screen and on disk), a 2x2 grid run to the end and its best applied (the seed's scenario 2),
greyed-out keys with reasons, sorting, and the strategy switch."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import pytest
from conftest import wait_for as wait_until
from textual.pilot import Pilot
from textual.widgets import Static

from convonet.core.params import HyperParams
from convonet.tui.commands import command_state, menu_commands
from convonet.tui.screens.tuning import TuningScreen
from convonet.tui.session import Session

SEARCHED = {"init_rate": [0.05, 0.1], "num_filters": [2, 4]}


def grid_params() -> HyperParams:
    """A 2x2 grid of a tiny network: 4 combinations x 2 folds = 8 fits of one epoch."""
    return HyperParams().edit(init_rate="0.05,0.1", num_filters="2,4", num_units=8,
                              epochs=1, batch_size=16, cv_folds=2, tuning_share=1.0)


async def open_tuning(pilot: Pilot[Any]) -> TuningScreen:
    await pilot.press("5")
    screen = pilot.app.screen
    assert isinstance(screen, TuningScreen)
    return screen


async def until_ended(pilot: Pilot[Any], screen: TuningScreen) -> None:
    await wait_until(pilot, lambda: screen._job is None, "the search to end")
    await pilot.app.workers.wait_for_complete()
    await pilot.pause()


def text_of(screen: Any, selector: str) -> str:
    return str(screen.query_one(selector, Static).render())


def menu_item(title: str) -> Any:
    return next(c for c in menu_commands() if c.title == title)


async def test_stop_after_the_first_fold_keeps_the_partial_table_on_screen_and_disk(
        make_app: Any, tiny_set: Any) -> None:
    controller = Session(hyper_params=grid_params(), train_set=tiny_set())
    app = make_app(session=controller)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_tuning(pilot)
        assert "4 combinations × 2 folds = 8 fits" in text_of(screen, "#tune-info")
        assert "lr 0.05/0.1" in text_of(screen, "#tune-info")
        assert screen.check_action("stop_tuning", ()) is False  # not in the footer yet
        await pilot.press("t")
        assert screen.check_action("stop_tuning", ()) is True
        assert screen.check_action("tune", ()) is None
        await wait_until(pilot, lambda: screen.partial.row_count >= 1, "the first fold")
        assert "ETA" in text_of(screen, "#tune-line")
        await pilot.press("s")
        await until_ended(pilot, screen)

        result = controller.tuning
        assert result is not None and result.stopped
        assert 1 <= result.fits_done < 8
        assert screen.partial.row_count == result.fits_done  # every finished fold, kept
        assert screen.results.display and screen.results.row_count == 4
        assert screen.check_action("stop_tuning", ()) is False
        assert text_of(screen, "#tune-line").startswith(
            f"Stopped after {result.fits_done} of 8 fits")
        status = text_of(screen, "#tune-status")
        assert "results.csv" in status and "folds.jsonl" in status

        run = result.run.path
        assert run.parent.parent == Path(app.results_dir)
        folds = [json.loads(line) for line in (run / "folds.jsonl").read_text().splitlines()]
        assert len([f for f in folds if f["kind"] == "fold"]) == result.fits_done
        with (run / "results.csv").open() as fh:
            assert len(list(csv.DictReader(fh))) == 4
        # the loaded params keep their own file: the run folder saves a copy
        assert controller.hyper_params.path is None


async def test_a_2x2_grid_to_the_end_then_apply_the_best(make_app: Any,
                                                         tiny_set: Any) -> None:
    controller = Session(hyper_params=grid_params(), train_set=tiny_set())
    app = make_app(session=controller)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await open_tuning(pilot)
        assert screen.check_action("apply_best", ()) is None  # nothing to apply yet
        await pilot.press("t")
        await until_ended(pilot, screen)

        result = controller.tuning
        assert result is not None and not result.stopped and result.fits_done == 8
        assert screen.partial.row_count == 8
        shown = screen.results.sorted_rows()
        assert len(shown) == 4 and [r["rank"] for r in shown] == sorted(r["rank"]
                                                                      for r in shown)
        best = result.best_params
        assert best is not None
        assert {k: shown[0][f"p:{k}"] for k in SEARCHED} == {k: best[k] for k in SEARCHED}
        assert shown[0]["status"].startswith("best")
        assert text_of(screen, "#tune-line").startswith("Done: 8 fits")

        # the tables outlive a screen switch
        await pilot.press("1")
        await pilot.press("5")
        assert app.screen is screen and screen.results.row_count == 4

        assert screen.check_action("apply_best", ()) is True
        await pilot.press("a")
        await pilot.pause()
        first = controller.hyper_params.first()
        assert {k: first[k] for k in SEARCHED} == {k: best[k] for k in SEARCHED}
        # the rest of the grid is kept for a later search
        assert sorted(controller.hyper_params.init_rate) == sorted(SEARCHED["init_rate"])
        assert "hyper" in controller.unsaved_params
        assert any("applied:" in n.message and "(3, i)" in n.message
                   for n in app._notifications)


async def test_tuning_is_greyed_out_without_a_training_set(make_app: Any) -> None:
    app = make_app(session=Session(hyper_params=grid_params()))
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_tuning(pilot)
        assert screen.check_action("tune", ()) is None
        assert screen.check_action("apply_best", ()) is None
        assert screen.check_action("stop_tuning", ()) is False
        assert "Cannot tune: no training set" in text_of(screen, "#tune-status")
        assert command_state(app, menu_item("Tuning"))[0] is False
        assert command_state(app, menu_item("Stop Tuning"))[0] is False
        await pilot.press("t", "a", "s")
        await pilot.pause()
        assert not app.workers and app.session.tuning is None


async def test_a_recorded_result_sorts_by_any_column(make_app: Any,
                                                     fixed_tune_result: Any) -> None:
    controller = Session(hyper_params=grid_params())
    controller.tuning = fixed_tune_result()
    app = make_app(session=controller)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await open_tuning(pilot)
        table = screen.results
        assert [r["rank"] for r in table.sorted_rows()] == [1, 2, 3, 4]
        failed = table.sorted_rows()[-1]
        assert failed["status"].startswith("failed: the training loss became NaN")
        assert failed["acc"] is None  # its one fold is no score
        table.focus()
        await pilot.press("o")  # rank -> #
        assert table.sort_key == "n"
        assert [r["n"] for r in table.sorted_rows()] == [1, 2, 3, 4]
        await pilot.press("O")
        assert [r["n"] for r in table.sorted_rows()] == [4, 3, 2, 1]
        table.sort_by("acc")  # best first, the failed row last
        accs = [r["acc"] for r in table.sorted_rows()]
        assert accs[:3] == sorted(accs[:3], reverse=True) and accs[3] is None
        # a header click sorts by that column, a second click flips it
        await pilot.click(table, offset=(2, 1))  # under the title line
        assert table.sort_key == "rank" and not table.sort_descending
        await pilot.click(table, offset=(2, 1))  # under the title line
        assert table.sort_descending
        # the partial table: every fold, and the failure once with its reason
        notes = [r["note"] for r in screen.partial.sorted_rows()]
        assert len(notes) == 11 and sum(n.startswith("failed:") for n in notes) == 1


async def test_the_sort_keys_follow_the_users_keymap(make_app: Any, fixed_tune_result: Any,
                                                     tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    from convonet import keymap

    folder = tmp_path / "config"
    folder.mkdir()
    (folder / "keys.toml").write_text('"table.sort" = "f7"\n"table.reverse" = "f8"\n')
    monkeypatch.setenv(keymap.CONFIG_ENV, str(folder))
    session = Session(hyper_params=grid_params())
    session.tuning = fixed_tune_result()
    app = make_app(session=session)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await open_tuning(pilot)
        table = screen.results
        table.focus()
        before = table.sort_key
        await pilot.press("o")  # its old key does nothing now
        assert table.sort_key == before
        await pilot.press("f7")
        assert table.sort_key == "n"
        await pilot.press("f8")
        assert [r["n"] for r in table.sorted_rows()] == [4, 3, 2, 1]


async def test_the_strategy_key_switches_grid_and_halving(make_app: Any,
                                                          tiny_set: Any) -> None:
    controller = Session(hyper_params=grid_params(), train_set=tiny_set())
    app = make_app(session=controller)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_tuning(pilot)
        await pilot.press("g")
        await pilot.pause()
        assert controller.hyper_params.search == "halving"
        assert "hyper" in controller.unsaved_params
        assert text_of(screen, "#tune-info").startswith("Successive halving")
        await pilot.press("g")
        await pilot.pause()
        assert controller.hyper_params.search == "grid"
        assert text_of(screen, "#tune-info").startswith("Grid search")


async def test_a_search_that_cannot_start_says_why(make_app: Any, tiny_set: Any) -> None:
    # halving on too few images: greyed out before it starts, with the core's reason
    hyper = grid_params().edit(search="halving", num_filters="2,4,6")
    controller = Session(hyper_params=hyper, train_set=tiny_set(per_class=3))
    app = make_app(session=controller)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_tuning(pilot)
        assert screen.check_action("tune", ()) is None
        status = text_of(screen, "#tune-status")
        assert "successive halving needs at least" in status and "g switches" in status
        await pilot.press("g")  # the full grid can run on it
        await pilot.pause()
        assert screen.check_action("tune", ()) is True
        # a tuning share too small for the folds: the core refuses, the error is shown
        controller.hyper_params = controller.hyper_params.edit(tuning_share=0.2)
        await pilot.press("t")
        await until_ended(pilot, screen)
        assert type(app.screen).__name__ == "ErrorDialog"
        line = text_of(screen, "#tune-line")
        assert line.startswith("Tuning failed after 0 fits: ") and "tuning share" in line
        assert controller.tuning is None
