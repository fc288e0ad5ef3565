"""The testing screen under Pilot: the seed's test scenarios 1 and 2 on the demo set,
classifying a folder to CSV, a model that does not fit the test set, and greyed-out keys."""

from __future__ import annotations

import csv
import shutil
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from conftest import wait_for as wait_until
from textual.pilot import Pilot
from textual.widgets import DataTable, Input, Static

from convonet.core.data import DataPrep, Dataset
from convonet.core.demo import demo_params_paths, ensure_demo
from convonet.core.model import NetModel, load_model, save_model
from convonet.core.params import DataParams, HyperParams
from convonet.core.runs import RunFolder
from convonet.core.testing import NetTesting
from convonet.core.training import NetTraining
from convonet.tui.dialogs import ErrorDialog
from convonet.tui.screens.testing import TestingScreen
from convonet.tui.session import Session
from convonet.tui.widgets.confusion_grid import ConfusionGrid
from convonet.tui.widgets.file_picker import FilePicker
from convonet.tui.widgets.test_results import MistakeStrip


@dataclass
class Demo:
    data_json: Path
    hyper_json: Path
    data_params: DataParams
    hyper_params: HyperParams
    train: Dataset
    test: Dataset
    model: Any
    cache: Path


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Demo:
    """The bundled demo set and a small model trained on it for one epoch."""
    folder = ensure_demo(tmp_path_factory.mktemp("demo"))
    data_json, hyper_json = demo_params_paths(folder)
    data_params = DataParams.load(data_json)
    hyper_params = HyperParams.load(hyper_json).edit(num_filters=4, num_units=16, epochs=1)
    cache = tmp_path_factory.mktemp("cache")
    prep = DataPrep(data_params, cache_dir=cache)
    train = prep.prep_data("train")
    test = prep.prep_data("test", train_classes=train.class_names)
    model = NetModel(hyper_params).build(train.image_shape, train.num_classes,
                                         train.class_names)
    NetTraining(model, hyper_params).train(train)
    return Demo(data_json, hyper_json, data_params, hyper_params, train, test, model, cache)


async def open_testing(pilot: Pilot[Any]) -> TestingScreen:
    await pilot.press("6")
    await wait_until(pilot, lambda: isinstance(pilot.app.screen, TestingScreen),
                     "the testing screen")
    return pilot.app.screen  # type: ignore[return-value]


async def run_key(pilot: Pilot[Any], key: str, done: Callable[[], Any], what: str) -> None:
    await pilot.press(key)
    await pilot.app.workers.wait_for_complete()
    await wait_until(pilot, done, what)


def heatmap_counts(screen: TestingScreen) -> np.ndarray:
    """The counts drawn in the heatmap's cells, read back from its grid."""
    grid = screen.query_one("#heatmap", ConfusionGrid)
    rows = [grid.get_row_at(i)[1:-1] for i in range(grid.row_count)]
    return np.array([[int(str(getattr(c, "plain", c)).strip()) for c in row] for row in rows])


async def evaluate_and_predict(pilot: Pilot[Any], screen: TestingScreen) -> None:
    app: Any = pilot.app
    await run_key(pilot, "e", lambda: app.session.evaluation is not None
                  and not screen._busy, "the evaluation")
    await run_key(pilot, "p", lambda: app.session.prediction is not None
                  and not screen._busy, "the prediction")


async def test_scenario_1_evaluate_and_predict_after_training(
        demo: Demo, make_app: Any, tmp_path: Path) -> None:
    controller = Session(data_params=demo.data_params, hyper_params=demo.hyper_params,
                            train_set=demo.train, test_set=demo.test, model=demo.model)
    app = make_app(session=controller)
    expected = NetTesting(demo.model).evaluate(demo.test)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await open_testing(pilot)
        await evaluate_and_predict(pilot, screen)

        table = screen.query_one("#evaluation-table", DataTable)
        assert str(table.get_cell("accuracy", "value")) == f"{expected.accuracy * 100:.2f} %"
        assert str(table.get_cell("count", "value")) == str(len(demo.test))
        assert controller.evaluation.accuracy == pytest.approx(expected.accuracy)
        assert controller.evaluation.loss == pytest.approx(expected.loss, rel=1e-5)

        counts = heatmap_counts(screen)
        assert counts.shape == (10, 10)
        assert int(counts.sum()) == len(demo.test)
        assert np.array_equal(counts, controller.prediction.confusion)
        assert controller.prediction.accuracy == pytest.approx(expected.accuracy, abs=1e-6)

        report = screen.query_one("#report-table", DataTable)
        assert report.row_count == 10 + 2
        for i in range(10):
            assert str(report.get_cell(f"class-{i}", "class")) == str(i)
            assert str(report.get_cell(f"class-{i}", "support")) == str(demo.test.counts[i])
        assert str(report.get_cell("macro avg", "class")) == "macro avg"

        prediction = controller.prediction
        wrong = prediction.most_confident_wrong(8)
        labels = screen.query_one("#wrong-strip", MistakeStrip).labels
        assert wrong and len(labels) == len(wrong)
        first = wrong[0]
        assert labels[0] == (f"{prediction.y_true[first]} → {prediction.y_pred[first]} "
                             f"({prediction.confidence[first] * 100:.0f}%)")

        # One set of CSVs, in the prediction's run folder (as headless writes them), and
        # the evaluation and the prediction record their data params as headless's do.
        results = tmp_path / "results"
        assert not list(results.glob("prediction-*.csv"))
        confusion_csv = sorted(results.glob("runs/*-prediction/confusion.csv"))
        report_csv = sorted(results.glob("runs/*-prediction/report.csv"))
        assert len(confusion_csv) == 1 and len(report_csv) == 1
        for task in ("evaluation", "prediction"):
            run = RunFolder.find(results, task)[-1]
            assert run.file("data_params.json").is_file() and run.info["dataset_fingerprint"]
        with confusion_csv[0].open(encoding="utf-8") as fh:
            rows = list(csv.reader(fh))[1:]
        assert sum(int(v) for row in rows for v in row[1:]) == len(demo.test)
        saved = str(screen.query_one("#saved-note", Static).render())
        assert confusion_csv[0].name in saved


async def test_scenario_2_reloaded_model_gives_the_same_numbers(
        demo: Demo, make_app: Any, tmp_path: Path) -> None:
    before = NetTesting(demo.model).evaluate(demo.test)
    model_file = save_model(demo.model, tmp_path / "results" / "demo.keras",
                            class_names=demo.train.class_names)

    # A new start: params from their files, the model from disk, the test set reloaded.
    data_params = DataParams.load(demo.data_json)
    controller = Session(data_params=data_params,
                            hyper_params=HyperParams.load(demo.hyper_json))
    controller.model = load_model(model_file)
    controller.model_path = model_file
    controller.test_set = DataPrep(data_params, cache_dir=demo.cache).prep_data("test")
    app = make_app(session=controller)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_testing(pilot)
        assert "demo.keras" in str(screen.query_one("#testing-status", Static).render())
        await evaluate_and_predict(pilot, screen)
        assert controller.evaluation.accuracy == pytest.approx(before.accuracy, abs=1e-7)
        assert controller.evaluation.loss == pytest.approx(before.loss, rel=1e-5)
        assert controller.prediction.accuracy == pytest.approx(before.accuracy, abs=1e-6)
        assert int(heatmap_counts(screen).sum()) == len(demo.test)


async def test_classify_a_folder_and_export_csv(demo: Demo, make_app: Any,
                                                tmp_path: Path) -> None:
    folder = tmp_path / "new images"
    shutil.copytree(demo.data_json.parent / "test" / "3", folder)
    images = sorted(folder.glob("*.png"))
    (folder / "notes.txt").write_text("not an image", encoding="utf-8")
    (folder / "broken.png").write_bytes(b"not a png at all")

    controller = Session(data_params=demo.data_params, hyper_params=demo.hyper_params,
                            train_set=demo.train, model=demo.model)
    app = make_app(session=controller)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await open_testing(pilot)
        assert screen.check_action("classify_images", ()) is True
        assert screen.check_action("evaluate", ()) is None  # no test set yet

        await pilot.press("c")
        await wait_until(pilot, lambda: isinstance(app.screen, FilePicker), "the picker")
        app.screen.query_one("#picker-path", Input).value = str(folder)
        await pilot.press("enter")
        table = screen.query_one("#classified-table", DataTable)
        await app.workers.wait_for_complete()
        await wait_until(pilot, lambda: table.row_count > 0 and not screen._busy,
                         "the classified images")
        assert table.row_count == len(images)
        assert str(table.get_cell("row-0", "file")) == images[0].name
        assert any("skipped 1 file" in n.message for n in app._notifications)

        await pilot.press("x")
        await wait_until(pilot, lambda: isinstance(app.screen, FilePicker), "the saver")
        box = app.screen.query_one("#picker-path", Input)
        assert box.value.startswith(str((tmp_path / "results").resolve()))
        out = tmp_path / "results" / "classified.csv"
        box.value = str(out)
        await pilot.press("enter")
        await wait_until(pilot, out.exists, "the CSV file")
        with out.open(encoding="utf-8") as fh:
            rows = list(csv.DictReader(fh))
        assert len(rows) == len(images)
        assert [Path(r["file"]).name for r in rows] == [p.name for p in images]
        assert all(0.0 <= float(r["confidence"]) <= 1.0 for r in rows)


async def test_model_that_does_not_fit_the_test_set_names_both_shapes(
        demo: Demo, make_app: Any) -> None:
    rng = np.random.default_rng(0)
    other = Dataset(x=rng.random((12, 16, 16, 3), dtype=np.float32),
                    y=np.repeat(np.arange(3), 4).astype(np.int64),
                    class_names=["a", "b", "c"], root=Path("other"))
    controller = Session(test_set=other, model=demo.model)
    app = make_app(session=controller)
    async with app.run_test(size=(80, 24)) as pilot:
        await open_testing(pilot)
        await pilot.press("e")
        await wait_until(pilot, lambda: isinstance(app.screen, ErrorDialog), "the error")
        dialog = app.screen
        assert isinstance(dialog, ErrorDialog)
        assert "28x28x1" in dialog.summary and "16x16x3" in dialog.summary
        assert "10 classes" in dialog.summary and "3 classes" in dialog.summary
        assert controller.evaluation is None and not app.workers


async def test_keys_are_greyed_out_with_reasons(make_app: Any) -> None:
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_testing(pilot)
        for action in ("evaluate", "predict", "classify_images", "export_classifications"):
            assert screen.check_action(action, ()) is None
        bindings = screen.active_bindings
        assert not bindings["e"].enabled and not bindings["c"].enabled
        status = str(screen.query_one("#testing-status", Static).render())
        assert "No model" in status and "No test set" in status
        await pilot.press("e", "p", "c")
        await pilot.pause()
        assert not app.workers and screen is app.screen
        assert app.session.evaluation is None


async def test_differently_named_test_folders_show_the_training_names(
        demo: Demo, make_app: Any) -> None:
    renamed = replace(demo.test, class_names=[f"digit_{i}" for i in range(10)],
                      class_matching=[(str(i), f"digit_{i}") for i in range(10)])
    controller = Session(train_set=demo.train, test_set=renamed, model=demo.model)
    app = make_app(session=controller)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await open_testing(pilot)
        await run_key(pilot, "p", lambda: controller.prediction is not None
                      and not screen._busy, "the prediction")
        assert controller.prediction.class_names == demo.train.class_names
        report = screen.query_one("#report-table", DataTable)
        assert str(report.get_cell("class-3", "class")) == "3"
        note = str(screen.query_one("#matching-note", Static).render())
        assert "3 ← digit_3" in note and "3 3" not in note


async def test_prediction_writes_its_csvs_once_in_its_run_folder(
        demo: Demo, make_app: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from convonet.core.testing import Prediction

    def loose_copy(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("a second, loose copy of the prediction CSVs was written")

    monkeypatch.setattr(Prediction, "to_csv", loose_copy)
    results = tmp_path / "results"
    controller = Session(test_set=demo.test, model=demo.model)
    app = make_app(session=controller, results_dir=results)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_testing(pilot)
        await run_key(pilot, "p", lambda: controller.prediction is not None
                      and not screen._busy, "the prediction")
        assert int(heatmap_counts(screen).sum()) == len(demo.test)
        run = RunFolder.find(results, "prediction")[-1]
        saved = str(screen.query_one("#saved-note", Static).render())
        assert str(run.file("confusion.csv")) in saved and str(run.file("report.csv")) in saved
        assert sorted(p.name for p in results.rglob("*.csv")) == ["confusion.csv",
                                                                 "report.csv"]


async def test_prediction_into_an_unwritable_results_folder_is_refused(
        demo: Demo, make_app: Any, tmp_path: Path) -> None:
    not_a_folder = tmp_path / "results-file"
    not_a_folder.write_text("a file where the results folder should be", encoding="utf-8")
    controller = Session(test_set=demo.test, model=demo.model)
    app = make_app(session=controller, results_dir=not_a_folder)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_testing(pilot)
        await pilot.press("p")
        await wait_until(pilot, lambda: isinstance(app.screen, ErrorDialog), "the error")
        assert app.screen.summary == (
            f"cannot write the results folder {not_a_folder}: it is a file, not a folder; "
            "choose another results folder with --results-dir / CONVONET_RESULTS_DIR")
        await pilot.press("escape")
        assert app.screen is screen and not screen._busy
        assert controller.prediction is None and controller.model is demo.model
