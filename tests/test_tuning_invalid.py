"""Tuning refuses what training refuses: a combination whose layers cannot fit the images.

Keras builds ``kernel_size`` 9 on 8x8 images without complaint ("same" padding), so before
this check the search fitted it, could rank it best and ``--save-best`` could write it,
after which training refused it. Now the one check training makes
(``architecture_problem``) marks it invalid before anything runs: never fitted, never
ranked, never applied; a grid of only such combinations is refused up front.

Tiny data: 8x8 grayscale images, 3 classes, one epoch of a 2-filter network per fit.
"""

from __future__ import annotations

import csv
import json
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import keras
import numpy as np
import pytest
from conftest import wait_for as wait_until
from PIL import Image

from convonet.cli import main
from convonet.core.architecture import architecture_problem
from convonet.core.data import Dataset
from convonet.core.events import CancelToken, Event
from convonet.core.model import ModelError, NetModel, build_model
from convonet.core.params import HyperParams
from convonet.core.run_history import load_tuning
from convonet.core.runs import RunFolder
from convonet.core.tuning import (
    CombinationInvalid,
    FoldEnd,
    InvalidGridError,
    TuneStart,
    tune,
)
from convonet.tui.screens.tuning import TuningScreen
from convonet.tui.session import Session

TINY: dict[str, Any] = {"num_filters": 2, "num_units": 8, "epochs": 1, "batch_size": 16,
                        "dropout": 0.1, "init_rate": 0.05, "cv_folds": 2,
                        "tuning_share": 1.0, "seed": 3}
#: The reason the row, the ledger, training and the messages all give for kernel 9 on 8x8.
K9 = ("kernel_size 9 is larger than the 8x8 images: use a kernel_size of at most 8 in the "
      "hyper params, or a larger image_size in the data params")
ALL_INVALID = ("every combination is invalid, none can run: kernel_size 9, 11 are larger "
               "than the 8x8 images; use a kernel_size of at most 8 in the hyper params, or "
               "a larger image_size in the data params")


def tiny_data(per_class: int = 12, classes: int = 3, size: int = 8
              ) -> tuple[np.ndarray, np.ndarray]:
    """Learnable 8x8 images: each class lights its own rows."""
    rng = np.random.default_rng(0)
    y = np.repeat(np.arange(classes), per_class).astype(np.int64)
    x = rng.normal(0.0, 0.3, size=(len(y), size, size, 1)).astype(np.float32)
    for c in range(classes):
        x[y == c, 2 * c: 2 * c + 2, :, 0] += 2.0
    return x, y


def hp(**changes: Any) -> HyperParams:
    return HyperParams({**TINY, **changes})


class RecordingBuild:
    """``build_model`` that remembers the kernel sizes it was asked to build."""

    def __init__(self) -> None:
        self.kernels: list[int] = []

    def __call__(self, config: Mapping[str, Any], input_shape: tuple[int, int, int],
                 num_classes: int) -> keras.Model:
        self.kernels.append(int(config["kernel_size"]))
        return build_model(config, input_shape, num_classes)


# ---- the core ------------------------------------------------------------------------------
def test_training_and_tuning_share_one_check() -> None:
    config = {**HyperParams().first(), "kernel_size": 9}
    problem = architecture_problem(config, (8, 8, 1))
    assert problem is not None and (problem.field, problem.value) == ("kernel_size", 9)
    assert problem.message == K9
    with pytest.raises(ModelError) as caught:
        NetModel(config).build((8, 8, 1), 3)
    assert str(caught.value) == K9
    assert architecture_problem({**config, "kernel_size": 8}, (8, 8, 1)) is None
    small = architecture_problem({**config, "kernel_size": 1}, (3, 3, 1))
    assert small is not None and small.message == (
        "image_size 3x3 is too small for two 2x2 poolings: use at least 4x4 (image_size in "
        "the data params)")


@pytest.fixture(scope="module")
def mixed(tmp_path_factory: pytest.TempPathFactory) -> tuple[Any, list[Event], RecordingBuild]:
    """kernel_size 3,9 on 8x8 images: one combination runs, one is marked invalid."""
    x, y = tiny_data()
    events: list[Event] = []
    build = RecordingBuild()
    result = tune(x, y, hp(kernel_size="3,9"), report=events.append, build=build,
                  results_dir=tmp_path_factory.mktemp("results"))
    return result, events, build


def test_an_invalid_combination_is_marked_before_anything_runs(
        mixed: tuple[Any, list[Event], RecordingBuild]) -> None:
    result, events, build = mixed
    assert build.kernels and set(build.kernels) == {3}  # kernel 9 was never built
    start = events[0]
    assert isinstance(start, TuneStart)
    assert (start.combinations, start.invalid, start.total_fits) == (2, 1, 2)
    invalid = [e for e in events if isinstance(e, CombinationInvalid)]
    assert [(e.combination_index, e.params["kernel_size"], e.field, e.reason)
            for e in invalid] == [(1, 9, "kernel_size", K9)]
    first_fold = next(i for i, e in enumerate(events) if isinstance(e, FoldEnd))
    assert events.index(invalid[0]) < first_fold
    assert {e.params["kernel_size"] for e in events if isinstance(e, FoldEnd)} == {3}
    assert result.fits_done == result.total_fits == 2


def test_an_invalid_row_is_never_ranked_best(
        mixed: tuple[Any, list[Event], RecordingBuild]) -> None:
    result = mixed[0]
    assert result.best_params is not None and result.best_params["kernel_size"] == 3
    assert result.failures == []
    ranked = result.ranked()
    assert [(r["params"]["kernel_size"], r["status"], r["rank_test_score"]) for r in ranked
            ] == [(3, "ok", 1), (9, "invalid", 2)]
    row = ranked[1]
    assert row["reason"] == K9 and np.isnan(row["mean_test_score"])
    [record] = result.invalid
    assert record == {"kind": "invalid", "rung": 0, "combination_index": 1,
                      "params": row["params"], "field": "kernel_size", "reason": K9}


def test_the_run_folder_marks_it_in_results_and_the_ledger(
        mixed: tuple[Any, list[Event], RecordingBuild]) -> None:
    run = mixed[0].run
    assert run is not None and run.info["status"] == "finished"
    assert run.info["metrics"]["invalid"] == 1
    with (run.path / "results.csv").open() as fh:
        rows = list(csv.DictReader(fh))
    assert [(r["param_kernel_size"], r["status"], r["reason"], r["rank_test_score"])
            for r in rows] == [("3", "ok", "", "1"), ("9", "invalid", K9, "2")]
    ledger = run.read_jsonl("folds.jsonl")
    assert [r["kind"] for r in ledger] == ["invalid", "fold", "fold"]
    assert ledger[0]["reason"] == K9 and ledger[0]["field"] == "kernel_size"


def test_the_runs_screen_table_says_invalid(
        mixed: tuple[Any, list[Event], RecordingBuild], tmp_path: Path) -> None:
    run = mixed[0].run
    assert run is not None
    table = load_tuning(run.path)
    assert table.source == "results.csv"
    assert [row[-1] for row in table.rows] == ["ok", f"invalid: {K9}"]
    copy = Path(shutil.copytree(run.path, tmp_path / "run"))
    (copy / "results.csv").unlink()  # as a search killed before writing its table
    ledger = load_tuning(copy)
    assert ledger.source == "folds.jsonl"
    assert [row[-1] for row in ledger.rows] == [f"invalid: {K9}", "ok", "ok"]
    assert ledger.rows[0][-3:-1] == ["", ""]  # no accuracy or loss: it never ran


def test_a_grid_of_only_invalid_combinations_is_refused(tmp_path: Path) -> None:
    x, y = tiny_data()
    build = RecordingBuild()
    with pytest.raises(InvalidGridError) as caught:
        tune(x, y, hp(kernel_size="9,11", num_filters="2,3"), build=build,
             results_dir=tmp_path)
    assert str(caught.value) == ALL_INVALID
    assert isinstance(caught.value, ValueError)  # a user's error: the message is the story
    assert build.kernels == [] and list(tmp_path.iterdir()) == []  # nothing ran or written


@pytest.mark.slow
def test_halving_plans_only_the_valid_combinations(tmp_path: Path) -> None:
    x, y = tiny_data()
    events: list[Event] = []
    result = tune(x, y, hp(kernel_size="3,9,11", num_filters="2,3", search="halving"),
                  report=events.append)
    start = events[0]
    assert isinstance(start, TuneStart)
    assert (start.combinations, start.invalid, start.total_fits) == (6, 4, 4)
    assert result.best_params is not None and result.best_params["kernel_size"] == 3
    assert sorted(r["status"] for r in result.rows) == ["invalid"] * 4 + ["ok"] * 2


@pytest.mark.slow
def test_a_resumed_search_marks_it_once(tmp_path: Path) -> None:
    x, y = tiny_data()
    params = hp(kernel_size="3,9")
    cancel = CancelToken()

    def stop_after_first(event: Event) -> None:
        if isinstance(event, FoldEnd):
            cancel.cancel()

    first = tune(x, y, params, report=stop_after_first, cancel=cancel, results_dir=tmp_path)
    assert first.stopped and first.run is not None
    events: list[Event] = []
    again = tune(x, y, params, resume_from=first.run, report=events.append)
    assert [e.resumed for e in events if isinstance(e, CombinationInvalid)] == [True]
    assert [e.resumed for e in events if isinstance(e, FoldEnd)] == [True, False]
    assert not again.stopped and again.fits_done == again.total_fits == 2
    kinds = [r["kind"] for r in first.run.read_jsonl("folds.jsonl")]
    assert kinds == ["invalid", "fold", "fold"]
    assert again.best_params is not None and again.best_params["kernel_size"] == 3


# ---- headless ----------------------------------------------------------------------------
@pytest.fixture(scope="module")
def png_set(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A class-per-folder PNG tree of 8x8 images and its data params."""
    root = tmp_path_factory.mktemp("png")
    x, y = tiny_data()
    for i, (image, label) in enumerate(zip(x, y, strict=True)):
        folder = root / "train" / f"c{label}"
        folder.mkdir(parents=True, exist_ok=True)
        pixels = np.clip(image[..., 0] * 80 + 60, 0, 255).astype(np.uint8)
        Image.fromarray(pixels, mode="L").save(folder / f"{i}.png")
    (root / "data.json").write_text(json.dumps({"train_dir": "train", "image_size": [8, 8],
                                                "test_split": 0.2}))
    return root


@pytest.mark.slow
def test_headless_save_best_writes_the_valid_one(
        png_set: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "300")  # the table's status cell on one line
    hyper = hp(kernel_size="3,9").save(tmp_path / "hyper.json")
    best = tmp_path / "best.json"
    status = main(["tune", "--data-params", str(png_set / "data.json"), "--hyper-params",
                   str(hyper), "--results-dir", str(tmp_path / "results"),
                   "--save-best", str(best)])
    captured = capsys.readouterr()
    assert status == 0, captured.err
    assert f"invalid, not run: kernel_size=9: {K9}" in captured.err
    table = [line for line in captured.out.splitlines() if "invalid:" in line]
    assert len(table) == 1 and f"invalid: {K9}" in table[0]
    assert "0 combination(s) failed, 1 invalid (not run)" in captured.out
    saved = HyperParams.load(best)
    assert saved.first()["kernel_size"] == 3  # what training will use
    assert json.loads(best.read_text())["kernel_size"] == "3,9"  # the grid is kept

    status = main(["tune", "--data-params", str(png_set / "data.json"), "--hyper-params",
                   str(hyper), "--results-dir", str(tmp_path / "results2"), "--json"])
    out = json.loads(capsys.readouterr().out)
    assert status == 0 and out["best_params"]["kernel_size"] == 3
    assert [(r["params"]["kernel_size"], r["status"], r["reason"]) for r in out["rows"]] == [
        (3, "ok", ""), (9, "invalid", K9)]
    assert out["invalid"][0]["reason"] == K9


def test_headless_refuses_a_grid_of_only_invalid_ones(
        png_set: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    hyper = hp(kernel_size="9,11").save(tmp_path / "hyper.json")
    best = tmp_path / "best.json"
    status = main(["tune", "--data-params", str(png_set / "data.json"), "--hyper-params",
                   str(hyper), "--results-dir", str(tmp_path / "results"),
                   "--save-best", str(best)])
    errors = [line for line in capsys.readouterr().err.splitlines() if "error:" in line]
    assert status == 2
    assert errors == [f"convonet: error: {ALL_INVALID}"]
    assert not best.exists() and not RunFolder.find(tmp_path / "results")


# ---- the app's tuning screen -----------------------------------------------------------------
def eight_by_eight() -> Dataset:
    x, y = tiny_data()
    return Dataset(x=x, y=y, class_names=["c0", "c1", "c2"], root=None)


@pytest.mark.slow
async def test_the_tuning_screen_shows_it_and_a_applies_the_valid_one(make_app: Any) -> None:
    controller = Session(hyper_params=hp(kernel_size="3,9"), train_set=eight_by_eight())
    app = make_app(session=controller)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("5")
        screen = app.screen
        assert isinstance(screen, TuningScreen)
        await pilot.press("t")
        await wait_until(pilot, lambda: controller.tuning is not None and screen._job is None,
                         "the search to end")
        await app.workers.wait_for_complete()
        await pilot.pause()

        rows = {r["p:kernel_size"]: r for r in screen.results.sorted_rows()}
        assert rows[3]["status"].startswith("best") and rows[3]["rank"] == 1
        assert rows[9]["status"] == f"invalid: {K9}" and rows[9]["acc"] is None
        assert rows[9]["folds"] == "0/2"
        partial = [r for r in screen.partial.sorted_rows() if r.get("note")]
        assert [r["note"] for r in partial] == [f"invalid: {K9}"]
        line = str(screen.query_one("#tune-line").render())
        assert line.startswith("Done: 2 fits · 1 invalid · best")
        assert "1 invalid, not run" in str(screen.query_one("#tune-info").render())

        await pilot.press("a")
        await wait_until(pilot, lambda: controller.hyper_params.kernel_size[0] == 3,
                         "the best applied")
        assert controller.hyper_params.first()["kernel_size"] == 3


async def test_the_tuning_screen_says_why_nothing_can_be_tuned(make_app: Any) -> None:
    controller = Session(hyper_params=hp(kernel_size="9,11"), train_set=eight_by_eight())
    app = make_app(session=controller)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("5")
        screen = app.screen
        assert isinstance(screen, TuningScreen)
        status = str(screen.query_one("#tune-status").render())
        assert status == f"Cannot tune: {ALL_INVALID}"
        assert "2 combinations × 2 folds = 0 fits" in str(screen.query_one("#tune-info").render())
        assert screen.check_action("tune", ()) is None  # greyed out, with the reason above
        await pilot.press("t")
        await pilot.pause()
        assert screen._job is None and controller.tuning is None
        assert controller.hyper_params.kernel_size == (9, 11)  # kept as it was
        assert not RunFolder.find(Path(app.results_dir))

        # one valid value is enough: the plan counts the fits that will run
        controller.hyper_params = hp(kernel_size="3,9,11")
        app.session_changed("params")  # as the params screen says after an edit
        await wait_until(pilot, lambda: "Cannot tune" not in str(
            screen.query_one("#tune-status").render()), "the status to clear")
        assert "3 combinations × 2 folds = 2 fits on 36 images (100%) · 2 invalid, not run" \
            in str(screen.query_one("#tune-info").render())
