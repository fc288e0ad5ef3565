"""The app at the scale its users run it: the full Fashion-MNIST PNG tree (60,000 + 10,000
files), driven key by key through Pilot.

Every test of the smaller kind passed while the app could not load any training set of
8,000 or more small files (the process-pool decoder did not start under Textual), so this
test loads both sets cold, through the app's own keys, and goes on to initialize, train one
epoch on all 60,000 images, evaluate, predict and tune, checking the numbers on screen
against the run folders on disk.

The PNG tree is written once from Debian's ``dataset-fashion-mnist`` IDX files (about 25 s)
into ``CONVONET_TEST_DATA`` (default ``~/.cache/convonet-tests``) and re-used by later runs.
Without the IDX files the test is skipped, except in CI (``CI`` set), where it fails.
"""

from __future__ import annotations

import csv
import importlib.util
import json
import os
from functools import partial
from pathlib import Path
from typing import Any

import pytest
from conftest import wait_for
from textual.widgets import DataTable, Static

from convonet.core.params import DataParams, HyperParams
from convonet.tui.session import Session

REPO = Path(__file__).resolve().parent.parent
IDX_DIR = Path("/usr/share/datasets/fashion-mnist")
TRAIN_COUNTS = [6000] * 10
TEST_COUNTS = [1000] * 10

pytestmark = pytest.mark.slow


def _writer() -> Any:
    """benchmarks/fashion_mnist.py, the one script that writes the PNG tree."""
    spec = importlib.util.spec_from_file_location("fashion_mnist",
                                                  REPO / "benchmarks" / "fashion_mnist.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def fashion_mnist_tree() -> Path:
    if not (IDX_DIR / "train-images-idx3-ubyte.gz").exists():
        message = (f"Fashion-MNIST IDX files not found in {IDX_DIR}: "
                   "apt-get install -y dataset-fashion-mnist")
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    base = Path(os.environ.get("CONVONET_TEST_DATA",
                               Path.home() / ".cache" / "convonet-tests"))
    return Path(_writer().write_pngs(base / "fashion-mnist-png"))


#: Real-size steps take minutes.
wait_until = partial(wait_for, timeout=600)


def text_of(screen: Any, selector: str) -> str:
    return str(screen.query_one(selector, Static).render())


def no_error_dialog(app: Any) -> None:
    from convonet.tui.dialogs import ErrorDialog

    if isinstance(app.screen, ErrorDialog):
        raise AssertionError(f"error dialog: {app.screen.message}")


def run_folders(results: Path, task: str) -> list[Path]:
    """The run folders whose run.json names this task."""
    return sorted(p.parent for p in (results / "runs").glob("*/run.json")
                  if json.loads(p.read_text()).get("task") == task)


async def test_fashion_mnist_in_the_app_load_train_evaluate_predict_tune(
        fashion_mnist_tree: Path, make_app: Any, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CONVONET_CACHE_DIR", str(tmp_path / "cache"))  # decode cold
    data_json = tmp_path / "fashion_data_params.json"
    DataParams({"train_dir": str(fashion_mnist_tree / "train"),
                "test_dir": str(fashion_mnist_tree / "test")}).save(data_json)
    # The MNIST sample's first combination, one epoch; tuning: one combination, 2 folds.
    sample = HyperParams.load(REPO / "app_input" / "mnist_hyper_params.json")
    hyper = sample.edit(**{**sample.first(), "epochs": 1, "cv_folds": 2, "tuning_share": 0.2})
    hyper_json = tmp_path / "fashion_hyper_params.json"
    hyper.save(hyper_json)
    controller = Session(data_params=DataParams.load(data_json),
                            hyper_params=HyperParams.load(hyper_json))
    app = make_app(session=controller)
    results = Path(app.results_dir)

    async with app.run_test(size=(120, 40)) as pilot:
        # -- 2 t, 2 T: both sets, 70,000 files, decoded through the app's own worker
        await pilot.press("2")
        data = app.screen
        await pilot.press("t")
        await app.workers.wait_for_complete()
        await pilot.pause()
        no_error_dialog(app)
        train = controller.train_set
        assert train is not None and len(train) == 60_000
        assert train.counts == TRAIN_COUNTS and train.image_shape == (28, 28, 1)
        assert not train.skipped and not train.from_cache
        table = data.query_one("#set-train").query_one(DataTable)
        shown = [str(table.get_row_at(i)[2]) for i in range(table.row_count)]
        assert shown == ["6,000"] * 10
        await pilot.press("T")
        await app.workers.wait_for_complete()
        await pilot.pause()
        no_error_dialog(app)
        assert controller.test_set is not None and controller.test_set.counts == TEST_COUNTS

        # -- 3 i: the seed's model, 818,026 parameters
        await pilot.press("3", "i")
        await wait_until(pilot, lambda: controller.model is not None, "the model")
        assert controller.model.count_params() == 818_026
        assert "818,026" in " ".join(str(s.render()) for s in app.screen.query(Static))

        # -- 4 t: one epoch on all 60,000 images
        await pilot.press("4", "t")
        screen = app.screen
        await wait_until(pilot, lambda: text_of(screen, "#progress-line").startswith("Done"),
                         "one epoch of training")
        no_error_dialog(app)
        history = controller.history
        assert history is not None and len(history.rows) == 1 and not history.stopped
        accuracy = history.rows[0].accuracy
        assert accuracy > 0.6  # one epoch of the seed's CNN: about 0.8
        assert text_of(screen, "#progress-line").startswith("Done: 1 epoch")
        [train_run] = run_folders(results, "training")
        record = json.loads((train_run / "run.json").read_text())
        assert record["status"] == "finished"
        with (train_run / "history.csv").open() as fh:
            rows = list(csv.DictReader(fh))
        assert len(rows) == 1
        assert float(rows[0]["accuracy"]) == pytest.approx(accuracy, abs=1e-6)
        assert (train_run / "model.keras").exists()

        # -- 6 e p: evaluation and prediction on all 10,000 test images
        await pilot.press("6", "e")
        testing = app.screen
        await wait_until(pilot, lambda: controller.evaluation is not None, "the evaluation")
        await app.workers.wait_for_complete()
        await pilot.pause()
        evaluation = controller.evaluation
        table = testing.query_one("#evaluation-table", DataTable)
        assert str(table.get_cell("count", "value")) == "10000"
        assert str(table.get_cell("accuracy", "value")) == f"{evaluation.accuracy * 100:.2f} %"
        assert evaluation.accuracy > 0.6
        await pilot.press("p")
        await wait_until(pilot, lambda: controller.prediction is not None, "the prediction")
        await app.workers.wait_for_complete()
        await pilot.pause()
        prediction = controller.prediction
        assert int(prediction.confusion.sum()) == 10_000
        assert prediction.accuracy == pytest.approx(evaluation.accuracy, abs=1e-6)
        [predict_run] = run_folders(results, "prediction")
        with (predict_run / "confusion.csv").open() as fh:
            cells = [row[1:] for row in list(csv.reader(fh))[1:]]
        assert sum(int(v) for row in cells for v in row) == 10_000

        # -- 5 t: one combination, 2 folds on the tuning share (12,000 images)
        await pilot.press("5")
        tuning = app.screen
        assert "1 combination" in text_of(tuning, "#tune-info")
        await pilot.press("t")
        await wait_until(pilot, lambda: tuning._job is None and controller.tuning is not None,
                         "the search")
        await app.workers.wait_for_complete()
        await pilot.pause()
        no_error_dialog(app)
        result = controller.tuning
        assert result is not None and not result.stopped and result.fits_done == 2
        assert tuning.partial.row_count == 2
        assert tuning.results.row_count == 1
        [tune_run] = run_folders(results, "tuning")
        folds = [json.loads(line) for line in (tune_run / "folds.jsonl").read_text().splitlines()]
        fold_rows = [f for f in folds if f["kind"] == "fold"]
        assert len(fold_rows) == 2
        assert sum(f["test_size"] for f in fold_rows) == 12_000
        mean = sum(f["accuracy"] for f in fold_rows) / 2
        with (tune_run / "results.csv").open() as fh:
            [best] = list(csv.DictReader(fh))
        assert float(best["mean_test_score"]) == pytest.approx(mean, abs=1e-6)
        shown = f"{mean * 100:.1f}"  # the table and the summary line show one decimal
        row = [getattr(cell, "plain", str(cell)).strip() for cell in tuning.results.get_row_at(0)]
        assert shown in row
        assert f"best {shown}%" in text_of(tuning, "#tune-line")
