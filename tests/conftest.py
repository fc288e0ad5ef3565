"""Shared fixtures of the TUI tests: an app with fixed labels and no demo set needed, the
one way tests wait (``wait_for``), and no blinking text cursor."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from convonet.core.params import DataParams, HyperParams
from convonet.tui.session import Session


def pytest_xdist_auto_num_workers(config: pytest.Config) -> int:
    """``-n auto`` (the README's test command): one worker more than there are cores.

    Many tests wait on a child process or on the app's screen, so with one worker per core
    the CPU idles in those waits; on 2 cores, 3 workers ran the suite in 13 min against
    15 min 19 s with 2. ``--maxprocesses 4`` caps it (each worker imports TensorFlow).
    """
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") \
        else (os.cpu_count() or 1)
    return cores + 1


#: A fixed header label, so tests never import Keras to find the device.
BACKEND_LABEL = "tensorflow · CPU"


async def wait_for(pilot: Any, condition: Callable[[], Any], what: str,
                   timeout: float = 60.0) -> None:
    """Let the app run until ``condition()`` is true; fail naming ``what`` after ``timeout``
    seconds. The one way Pilot tests wait: for what they assert, never for a fixed time
    (a loaded machine then only makes a test slower, not wrong)."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
        await pilot.pause(0.02)


@pytest.fixture(autouse=True)
def no_cursor_blink(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Text cursors that never blink, so a screenshot never depends on when it is taken."""
    from textual.widgets import Input, TextArea

    for widget in (Input, TextArea):
        original = widget.__init__

        def init(self: Any, *args: Any, _original: Any = original, **kwargs: Any) -> None:
            _original(self, *args, **kwargs)
            self.cursor_blink = False

        monkeypatch.setattr(widget, "__init__", init)
    yield


@pytest.fixture
def make_app(tmp_path: Path) -> Callable[..., Any]:
    """Build a ``ConvonetApp`` on a fresh session, its results in ``tmp_path``."""
    from convonet.tui.app import ConvonetApp

    def make(app_class: type[ConvonetApp] = ConvonetApp,
             session: Session | None = None, **kwargs: Any) -> ConvonetApp:
        kwargs.setdefault("backend_label", BACKEND_LABEL)
        kwargs.setdefault("results_dir", tmp_path / "results")
        return app_class(session=session or Session(), **kwargs)

    return make


@pytest.fixture
def named_params_controller() -> Session:
    """Default params that carry the demo's file names (nothing is read from disk)."""
    return Session(
        data_params=DataParams(path="demo_data_params.json"),
        hyper_params=HyperParams(path="demo_hyper_params.json"),
    )


@pytest.fixture
def wait_for_tasks() -> Callable[..., Any]:
    """``await wait_for_tasks(pilot)``: every worker done and its messages handled."""

    async def wait(pilot: Any) -> None:
        await pilot.app.workers.wait_for_complete()
        await pilot.pause()

    return wait


# ---- the model and training screens: a tiny learnable set and a tiny network -------------
def make_tiny_set(classes: int = 3, per_class: int = 40, size: int = 16,
                  channels: int = 1, seed: int = 0) -> Any:
    """A ``Dataset`` of noisy horizontal bars, one row band per class: learnable in seconds."""
    import numpy as np

    from convonet.core.data import Dataset

    rng = np.random.default_rng(seed)
    xs, ys = [], []
    band = max(1, size // classes)
    for k in range(classes):
        x = rng.random((per_class, size, size, channels), dtype=np.float32) * 0.3
        x[:, k * band:k * band + max(1, band - 1), :, :] += 0.7
        xs.append(x)
        ys.append(np.full(per_class, k, dtype=np.int64))
    return Dataset(x=np.concatenate(xs), y=np.concatenate(ys),
                   class_names=[f"class_{k}" for k in range(classes)], root=None)


@pytest.fixture
def tiny_set() -> Callable[..., Any]:
    """``tiny_set(classes=3, per_class=40, size=16)``: see ``make_tiny_set``."""
    return make_tiny_set


@pytest.fixture
def tiny_controller() -> Session:
    """A controller with a tiny training set and hyper params for a 1,279-param network."""
    return Session(
        hyper_params=HyperParams().edit(num_filters=4, num_units=16, epochs=2,
                                        batch_size=16),
        train_set=make_tiny_set(),
    )


@pytest.fixture(scope="session")
def demo_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The bundled demo set (train/, test/, its params JSON), written once per test run."""
    from convonet.core.demo import ensure_demo

    return ensure_demo(tmp_path_factory.mktemp("demo"))


# ---- the testing screen: a hand-made prediction, nothing trained ------------------------
LUNG_CLASSES = ["adenocarcinoma", "large.cell.carcinoma", "normal", "squamous.cell.carcinoma"]
#: Rows true, columns predicted; 100 test images.
LUNG_CONFUSION = [[24, 3, 1, 2], [4, 14, 0, 2], [0, 0, 25, 0], [3, 2, 0, 20]]


def make_fixed_prediction() -> tuple[Any, Any]:
    """A ``Prediction`` built by the core from a fixed confusion matrix, and a matching test
    set of 16x16 grayscale patterns (so the strip of wrong images has something to draw)."""
    import numpy as np

    from convonet.core.data import Dataset
    from convonet.core.testing import prediction_from

    cm = np.array(LUNG_CONFUSION, dtype=np.int64)
    y_true = np.repeat(np.arange(4), cm.sum(axis=1)).astype(np.int64)
    y_pred = np.concatenate([np.repeat(np.arange(4), row) for row in cm]).astype(np.int64)
    n = len(y_true)
    probs = np.zeros((n, 4))
    for k in range(n):
        top = 0.40 + 0.55 * ((k * 37) % 100) / 100  # a fixed spread of confidences
        probs[k, :] = (1.0 - top) / 3
        probs[k, y_pred[k]] = top
    prediction = prediction_from(y_true, probs, LUNG_CLASSES)
    assert (prediction.confusion == cm).all()
    rows, cols = np.mgrid[0:16, 0:16]
    x = np.stack([((rows + cols * (c + 1) + k) % 8 < 3 + c).astype(np.float32) * 0.9
                  for k, c in enumerate(y_true)])[..., None]
    test_set = Dataset(x=x, y=y_true, class_names=list(LUNG_CLASSES),
                       root=Path("data/lung/test"))
    return prediction, test_set


@pytest.fixture
def fixed_prediction() -> tuple[Any, Any]:
    """``(prediction, test_set)``: see ``make_fixed_prediction``."""
    return make_fixed_prediction()


# ---- the tuning screen: a recorded search, nothing fitted --------------------------------
#: Held-out accuracy per (combination, fold) of a 2x2 grid with 3 folds; combination 2 (the
#: second the search runs) fails on its second fold.
TUNE_ACCURACY = {0: [0.861, 0.874, 0.852], 1: [0.902, 0.915, 0.897], 2: [0.931],
                 3: [0.884, 0.893, 0.871]}
TUNE_FAILED_COMBINATION = 2
TUNE_FAILURE = "the training loss became NaN: the combination diverged"


def tune_hyper_params() -> HyperParams:
    """The demo's small network with a 2x2 grid (lr x filters) and 3 folds."""
    return HyperParams(path="demo_hyper_params.json").edit(
        init_rate="0.02,0.05", num_filters="16,32", num_units=128, epochs=5, batch_size=32,
        cv_folds=3, tuning_share=0.5)


def make_tune_records(hyper: HyperParams | None = None) -> tuple[Any, list[dict[str, Any]]]:
    """A ``Tuner`` on a token dataset and the fold/failed records a search would write,
    in the order the search runs the combinations (nothing is fitted: the accuracies are
    made up)."""
    import numpy as np

    from convonet.core.tuning import Tuner

    hyper = hyper or tune_hyper_params().edit(tuning_share=1.0)
    x = np.zeros((12, 4, 4, 1), dtype=np.float32)
    y = np.repeat(np.arange(3), 4).astype(np.int64)
    tuner = Tuner(x, y, hyper)
    records: list[dict[str, Any]] = []
    for ci in tuner.reuse.order(tuner.candidates, tuner.plan.valid, tuner.base_config):
        accs = TUNE_ACCURACY[ci]
        for k, acc in enumerate(accs):
            records.append({"kind": "fold", "rung": 0, "n_resources": 500,
                            "combination_index": ci, "params": tuner.candidates[ci],
                            "fold": k, "accuracy": acc, "loss": round(1.45 - acc * 1.3, 4),
                            "fit_time": 6.2 + ci * 1.1 + k * 0.1, "score_time": 0.3,
                            "train_size": 333, "test_size": 167,
                            "time": "2025-01-01T12:00:00"})
        if ci == TUNE_FAILED_COMBINATION:
            records.append({"kind": "failed", "rung": 0, "combination_index": ci,
                            "params": tuner.candidates[ci], "fold": len(accs),
                            "reason": TUNE_FAILURE, "time": "2025-01-01T12:01:00"})
    return tuner, records


def tune_fits(tuner: Any, records: list[dict[str, Any]]) -> int:
    """The fits a search plans once ``records`` are done: every fold of every combination,
    less the folds a failure drops (from the one that failed on), as the core counts."""
    dropped = sum(tuner.plan.n_folds - r["fold"] for r in records if r["kind"] == "failed")
    return int(tuner.plan.n_folds * len(tuner.candidates) - dropped)


def make_fixed_tune_result() -> Any:
    """A finished ``TuneResult`` of the recorded 2x2 grid, with its table built and ranked by
    the core's own code."""
    from convonet.core.runs import RunFolder

    tuner, records = make_tune_records()
    tuner.load_records(records)
    tuner.order = [r for r in records if r["kind"] == "fold"]
    tuner.rung_members = [list(range(len(tuner.candidates)))]
    tuner.fits_done = len(tuner.order)
    tuner.total_fits = tune_fits(tuner, records)
    tuner.run = RunFolder("app_results/runs/20250101-120000-tuning")
    return tuner.result()


@pytest.fixture
def fixed_tune_result() -> Callable[..., Any]:
    """``fixed_tune_result()``: see ``make_fixed_tune_result``."""
    return make_fixed_tune_result


@pytest.fixture
def tune_records() -> Callable[..., Any]:
    """``tune_records()`` -> (tuner, records): see ``make_tune_records``."""
    return make_tune_records


# ---- the runs screen: hand-written run folders with fixed times and numbers -------------
def _write_run(root: Path, name: str, record: dict[str, Any],
               files: dict[str, str] | None = None, hyper: dict[str, Any] | None = None,
               data: dict[str, Any] | None = None) -> Path:
    import json

    from convonet.core.params import DataParams, HyperParams

    folder = root / "runs" / name
    folder.mkdir(parents=True)
    base = {"pid": 1, "host": "gpu-box", "keras_backend": "tensorflow",
            "versions": {"python": "3.11.9", "keras": "3.15.0"}, "seed": 42,
            "dataset_fingerprint": "3f9a0c1d2e4b5a6c", "metrics": {}, "ended": None}
    (folder / "run.json").write_text(json.dumps({**base, **record}, indent=2))
    if hyper is not None:
        HyperParams().edit(**hyper).save(folder / "hyper_params.json")
    if data is not None:
        DataParams(data).save(folder / "data_params.json")
    for file, text in (files or {}).items():
        (folder / file).write_text(text)
    return folder


def _history_csv(rows: list[tuple[float, float, float | None, float | None]],
                 partial_last: bool = False) -> str:
    lines = ["epoch,loss,accuracy,val_loss,val_accuracy,learning_rate,seconds,batches,partial"]
    for i, (loss, acc, vloss, vacc) in enumerate(rows, start=1):
        partial = partial_last and i == len(rows)
        lines.append(f"{i},{loss},{acc},{'' if vloss is None else vloss},"
                     f"{'' if vacc is None else vacc},0.02,{30.5 + i},19,{partial}")
    return "\n".join(lines) + "\n"


#: The tuning run's results.csv, ranked best first.
_TUNING_RESULTS = ("params,param_num_filters,param_num_units,mean_test_score,std_test_score,"
                   "rank_test_score,mean_test_loss,mean_fit_time,status,reason,iter,"
                   "n_resources,combination_index\n"
                   '"{""num_filters"": 32, ""num_units"": 128}",32,128,0.9012,0.0110,1,0.3120,'
                   "41.2,ok,,0,600,3\n"
                   '"{""num_filters"": 32, ""num_units"": 64}",32,64,0.8870,0.0140,2,0.3480,'
                   "38.9,ok,,0,600,2\n"
                   '"{""num_filters"": 16, ""num_units"": 128}",16,128,0.8650,0.0210,3,0.3910,'
                   "30.1,ok,,0,600,1\n"
                   '"{""num_filters"": 16, ""num_units"": 64}",16,64,,,4,,,failed,'
                   "out of memory,0,600,0\n")


def write_fixed_runs(results_dir: Path) -> list[Path]:
    """Eight runs of every task and status, newest last here (the screen lists it first)."""
    data = {"train_dir": "data/demo/train", "test_dir": "data/demo/test",
            "image_size": [28, 28], "color_mode": "grayscale"}
    prediction, _ = make_fixed_prediction()  # its numbers and files as the core makes them
    t = "2025-03-14T{}+01:00"
    runs = [
        _write_run(results_dir, "20250314-084500-training",
                   {"task": "training", "status": "failed", "started": t.format("08:45:00"),
                    "ended": t.format("08:45:07"), "validation": True, "epochs": 5,
                    "error": "ValueError: the layers cannot fit 8x8 images"},
                   hyper={"epochs": 5, "kernel_size": 9}, data=data),
        _write_run(results_dir, "20250314-091500-training",
                   {"task": "training", "status": "finished", "started": t.format("09:15:00"),
                    "ended": t.format("09:17:42"), "validation": True, "epochs": 5,
                    "metrics": {"loss": 0.28, "accuracy": 0.912, "val_loss": 0.33,
                                "val_accuracy": 0.884, "epochs_done": 5}},
                   files={"history.csv": _history_csv(
                       [(1.21, 0.58, 0.98, 0.66), (0.74, 0.77, 0.61, 0.79),
                        (0.49, 0.85, 0.45, 0.84), (0.35, 0.89, 0.37, 0.87),
                        (0.28, 0.912, 0.33, 0.884)])},
                   hyper={"epochs": 5, "num_filters": 32, "num_units": 128}, data=data),
        _write_run(results_dir, "20250314-093000-training",
                   {"task": "training", "status": "stopped", "started": t.format("09:30:00"),
                    "ended": t.format("09:31:35"), "validation": True, "epochs": 5,
                    "metrics": {"loss": 0.52, "accuracy": 0.83, "val_loss": 0.55,
                                "val_accuracy": 0.81, "epochs_done": 3}},
                   files={"history.csv": _history_csv(
                       [(1.45, 0.49, 1.2, 0.58), (0.88, 0.72, 0.8, 0.74),
                        (0.52, 0.83, 0.55, 0.81), (0.47, 0.85, None, None)],
                       partial_last=True)},
                   hyper={"epochs": 5, "num_filters": 16, "num_units": 64,
                          "init_rate": 0.01}, data=data),
        _write_run(results_dir, "20250314-101000-tuning",
                   {"task": "tuning", "status": "finished", "started": t.format("10:10:00"),
                    "ended": t.format("10:18:20"),
                    "metrics": {"best_score": 0.9012, "fits_done": 12, "total_fits": 12,
                                "best_params": {"num_filters": 32, "num_units": 128}}},
                   files={"results.csv": _TUNING_RESULTS},
                   hyper={"num_filters": "16,32", "num_units": "64,128"}, data=data),
        _write_run(results_dir, "20250314-110500-prediction",
                   {"task": "prediction", "status": "finished",
                    "started": t.format("11:05:00"), "ended": t.format("11:05:04"),
                    "model": "app_results/lung.keras",
                    "metrics": {"accuracy": prediction.accuracy, "count": prediction.count,
                                "macro_f1": prediction.macro.f1}},
                   data=data),
        _write_run(results_dir, "20250314-111000-evaluation",
                   {"task": "evaluation", "status": "finished",
                    "started": t.format("11:10:00"), "ended": t.format("11:10:03"),
                    "model": "app_results/lung.keras",
                    "metrics": {"accuracy": 0.83, "loss": 0.4512, "count": 100}}, data=data),
        _write_run(results_dir, "20250314-113000-training",
                   {"task": "training", "status": "interrupted",
                    "started": t.format("11:30:00"), "validation": False, "epochs": 10,
                    "metrics": {}, "resume_offered": t.format("11:40:00")},
                   files={"history.csv": _history_csv(
                       [(1.3, 0.55, None, None), (0.8, 0.74, None, None),
                        (0.6, 0.8, None, None)]),
                          "start.keras": ""},  # the model it started from: resumable
                   hyper={"epochs": 10, "num_filters": 32, "num_units": 128}, data=data),
        _write_run(results_dir, "20250314-120000-classification",
                   {"task": "classification", "status": "finished",
                    "started": t.format("12:00:00"), "ended": t.format("12:00:02"),
                    "metrics": {"count": 3, "skipped": 0}},
                   files={"classifications.csv":
                          "file,index,class,confidence,top2_class,top2_confidence\n"
                          "new/a.png,2,normal,0.981200,adenocarcinoma,0.010000\n"
                          "new/b.png,0,adenocarcinoma,0.774000,normal,0.120000\n"
                          "new/c.png,3,squamous.cell.carcinoma,0.512000,normal,0.300000\n"},
                   data=data),
    ]
    prediction.to_csv(runs[4] / "confusion.csv", runs[4] / "report.csv")
    return runs


@pytest.fixture
def fixed_runs(tmp_path: Path) -> Path:
    """A results folder holding ``write_fixed_runs``'s eight runs; returns that folder."""
    results = tmp_path / "results"
    write_fixed_runs(results)
    return results
