"""Shared fixtures of the TUI tests: an app with fixed labels and no demo set needed."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from convonet.core.params import DataParams, HyperParams
from convonet.core.state import Controller

#: A fixed header label, so tests never import Keras to find the device.
BACKEND_LABEL = "tensorflow · CPU"


@pytest.fixture
def make_app(tmp_path: Path) -> Callable[..., Any]:
    """Build a ``ConvonetApp`` on a fresh controller, its results in ``tmp_path``."""
    from convonet.tui.app import ConvonetApp

    def make(app_class: type[ConvonetApp] = ConvonetApp,
             controller: Controller | None = None, **kwargs: Any) -> ConvonetApp:
        kwargs.setdefault("backend_label", BACKEND_LABEL)
        kwargs.setdefault("results_dir", tmp_path / "results")
        return app_class(controller=controller or Controller(), **kwargs)

    return make


@pytest.fixture
def named_params_controller() -> Controller:
    """Default params that carry the demo's file names (nothing is read from disk)."""
    return Controller(
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
def tiny_controller() -> Controller:
    """A controller with a tiny training set and hyper params for a 1,279-param network."""
    return Controller(
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
    """A ``Prediction`` built from a fixed confusion matrix, and a matching test set of
    16x16 grayscale patterns (so the strip of wrong images has something to draw)."""
    import numpy as np
    from sklearn.metrics import precision_recall_fscore_support

    from convonet.core.data import Dataset
    from convonet.core.testing import ClassReport, Prediction

    cm = np.array(LUNG_CONFUSION, dtype=np.int64)
    y_true = np.repeat(np.arange(4), cm.sum(axis=1)).astype(np.int64)
    y_pred = np.concatenate([np.repeat(np.arange(4), row) for row in cm]).astype(np.int64)
    n = len(y_true)
    probs = np.zeros((n, 4))
    for k in range(n):
        top = 0.40 + 0.55 * ((k * 37) % 100) / 100  # a fixed spread of confidences
        probs[k, :] = (1.0 - top) / 3
        probs[k, y_pred[k]] = top
    labels = list(range(4))
    p, r, f, s = precision_recall_fscore_support(y_true, y_pred, labels=labels,
                                                 zero_division=0)
    per_class = [ClassReport(i, LUNG_CLASSES[i], float(p[i]), float(r[i]), float(f[i]),
                             int(s[i])) for i in labels]
    averages = []
    for avg in ("macro", "weighted"):
        ap, ar, af, _ = precision_recall_fscore_support(y_true, y_pred, labels=labels,
                                                        average=avg, zero_division=0)
        averages.append(ClassReport(-1, f"{avg} avg", float(ap), float(ar), float(af), n))
    prediction = Prediction(y_true=y_true, y_pred=y_pred, probabilities=probs,
                            class_names=list(LUNG_CLASSES), confusion=cm, per_class=per_class,
                            macro=averages[0], weighted=averages[1])
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
#: Held-out accuracy per (combination, fold) of a 2x2 grid with 3 folds; combination 3
#: fails on its second fold.
TUNE_ACCURACY = {0: [0.861, 0.874, 0.852], 1: [0.902, 0.915, 0.897],
                 2: [0.884, 0.893, 0.871], 3: [0.931]}
TUNE_FAILURE = "the training loss became NaN: the combination diverged"


def tune_hyper_params() -> HyperParams:
    """The demo's small network with a 2x2 grid (lr x filters) and 3 folds."""
    return HyperParams(path="demo_hyper_params.json").edit(
        init_rate="0.02,0.05", num_filters="16,32", num_units=128, epochs=5, batch_size=32,
        cv_folds=3, tuning_share=0.5)


def make_tune_records(hyper: HyperParams | None = None) -> tuple[Any, list[dict[str, Any]]]:
    """A ``Tuner`` on a token dataset and the fold/failed records a search would write,
    in the order they finished (nothing is fitted: the records are made up)."""
    import numpy as np

    from convonet.core.tuning import Tuner

    hyper = hyper or tune_hyper_params().edit(tuning_share=1.0)
    x = np.zeros((12, 4, 4, 1), dtype=np.float32)
    y = np.repeat(np.arange(3), 4).astype(np.int64)
    tuner = Tuner(x, y, hyper)
    records: list[dict[str, Any]] = []
    for ci, accs in TUNE_ACCURACY.items():
        for k, acc in enumerate(accs):
            records.append({"kind": "fold", "rung": 0, "n_resources": 500,
                            "combination_index": ci, "params": tuner.candidates[ci],
                            "fold": k, "accuracy": acc, "loss": round(1.45 - acc * 1.3, 4),
                            "fit_time": 6.2 + ci * 1.1 + k * 0.1, "score_time": 0.3,
                            "train_size": 333, "test_size": 167,
                            "time": "2025-01-01T12:00:00"})
    records.append({"kind": "failed", "rung": 0, "combination_index": 3,
                    "params": tuner.candidates[3], "fold": 1, "reason": TUNE_FAILURE,
                    "time": "2025-01-01T12:01:00"})
    return tuner, records


def make_fixed_tune_result(stopped: bool = False) -> Any:
    """A finished (or stopped) ``TuneResult`` of the recorded 2x2 grid, with its table
    built by the core's own code."""
    from convonet.core.runs import RunFolder

    tuner, records = make_tune_records()
    if stopped:  # the last combination never ran
        records = [r for r in records if r["combination_index"] < 2]
    tuner.load_records(records)
    tuner.order = [r for r in records if r["kind"] == "fold"]
    tuner.rung_members = [list(range(len(tuner.candidates)))]
    tuner.fits_done = len(tuner.order)
    tuner.total_fits = 12 - (0 if stopped else 2)  # a failure drops its folds to come
    tuner.stopped = stopped
    tuner.run = RunFolder("app_results/runs/20250101-120000-tuning")
    return tuner.result()


@pytest.fixture
def fixed_tune_result() -> Callable[..., Any]:
    """``fixed_tune_result(stopped=False)``: see ``make_fixed_tune_result``."""
    return make_fixed_tune_result


@pytest.fixture
def tune_records() -> Callable[..., Any]:
    """``tune_records()`` -> (tuner, records): see ``make_tune_records``."""
    return make_tune_records
