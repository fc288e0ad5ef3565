"""Tuning: grid and halving through one loop that streams, stops, isolates failures, resumes.

Tiny data (120 images of 8x8x1, 3 classes, labels sorted by class) and tiny models keep
each fit under a second on two CPU cores.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import keras
import numpy as np
import pytest
from sklearn.base import clone
from sklearn.model_selection import GridSearchCV, ParameterGrid

from convonet.core.events import CancelToken, Event, TaskDone
from convonet.core.model import build_model
from convonet.core.params import HyperParams
from convonet.core.runs import RunFolder
from convonet.core.tuning import (
    CombinationFailed,
    FatalTuningError,
    FoldEnd,
    NonFiniteLoss,
    RungStart,
    Tuner,
    TuneStart,
    _log_loss,
    cv_splitter,
    failure_reason,
    fit_params,
    halving_schedule,
    make_estimator,
    tune,
    tuning_data,
)

TINY: dict[str, Any] = {"num_filters": 2, "num_units": 8, "epochs": 1, "batch_size": 16,
                        "kernel_size": 3, "dropout": 0.1, "init_rate": 0.05, "cv_folds": 3,
                        "tuning_share": 1.0, "seed": 3}


def tiny_data(per_class: int = 40, classes: int = 3, size: int = 8, signal: float = 2.0
              ) -> tuple[np.ndarray, np.ndarray]:
    """Learnable images whose labels are sorted by class (the trap for unstratified folds)."""
    rng = np.random.default_rng(0)
    y = np.repeat(np.arange(classes), per_class).astype(np.int64)
    x = rng.normal(0.0, 0.5, size=(len(y), size, size, 1)).astype(np.float32)
    for c in range(classes):
        x[y == c, 2 * c: 2 * c + 2, :, 0] += signal
    return x, y


def hp(**changes: Any) -> HyperParams:
    return HyperParams({**TINY, **changes})


def faulty_build(config: Mapping[str, Any], input_shape: tuple[int, int, int],
                 num_classes: int) -> keras.Model:
    """num_filters=3: layers that cannot fit an 8x8 image; 4: a model whose loss is NaN
    (it diverges)."""
    if config["num_filters"] == 3:
        return keras.Sequential([keras.Input(input_shape),
                                 keras.layers.Conv2D(3, 9, padding="valid")])
    model = build_model(config, input_shape, num_classes)
    if config["num_filters"] == 4:
        model = keras.Sequential([model, keras.layers.Lambda(lambda t: t * float("nan"))])
        model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
    return model


class StopAfterPolls(CancelToken):
    """Sets itself after ``n`` more polls once armed: a stop in the middle of a fit."""

    def __init__(self) -> None:
        super().__init__()
        self.left: int | None = None
        self.polls = 0

    def arm(self, n: int) -> None:
        self.left = n

    @property
    def cancelled(self) -> bool:
        if self.left is not None:
            self.polls += 1
            self.left -= 1
            if self.left < 0:
                self.cancel()
        return super().cancelled


# ---- no fits ---------------------------------------------------------------------------
def test_grid_size_is_the_product_of_value_counts() -> None:
    x, y = tiny_data()
    params = hp(num_filters="2,3,4", kernel_size="3,5", epochs="1,2", dropout="0.1,0.2")
    tuner = Tuner(x, y, params)
    assert params.grid_size() == 3 * 2 * 2 * 2
    assert len(tuner.candidates) == 24
    assert len({json.dumps(c, sort_keys=True) for c in tuner.candidates}) == 24
    assert tuner.total_fits == 24 * 3
    assert tuner.searched == ["dropout", "epochs", "kernel_size", "num_filters"]


def test_folds_are_stratified_even_when_labels_are_sorted() -> None:
    x, y = tiny_data()
    params = hp(tuning_share=0.5)
    xs, ys, shape = tuning_data(x, y, params)
    assert shape == (8, 8, 1) and xs.shape == (60, 64)
    assert np.bincount(ys).tolist() == [20, 20, 20]
    for train, test in cv_splitter(params).split(xs, ys):
        for part in (train, test):  # every class, in equal shares (within one image)
            counts = np.bincount(ys[part], minlength=3)
            assert counts.min() > 0 and np.ptp(counts) <= 1


def test_halving_schedule_matches_scikit_learn() -> None:
    from sklearn.experimental import enable_halving_search_cv  # noqa: F401
    from sklearn.model_selection import HalvingGridSearchCV, StratifiedKFold
    from sklearn.tree import DecisionTreeClassifier

    for n_candidates, per_class in ((2, 40), (4, 40), (9, 40), (32, 200), (10, 100)):
        x = np.random.default_rng(0).normal(size=(3 * per_class, 2))
        y = np.repeat(np.arange(3), per_class)
        search = HalvingGridSearchCV(DecisionTreeClassifier(random_state=0),
                                     {"max_depth": list(range(1, n_candidates + 1))},
                                     cv=StratifiedKFold(3), factor=3, refit=False)
        search.fit(x, y)
        ours = halving_schedule(n_candidates, len(y), 3, 3)
        assert [c for c, _ in ours] == search.n_candidates_
        assert [r for _, r in ours] == search.n_resources_


def test_failure_reasons_separate_a_combination_from_a_fatal_error() -> None:
    class ResourceExhaustedError(RuntimeError):
        pass

    assert failure_reason(MemoryError()).startswith("out of memory")
    assert failure_reason(ResourceExhaustedError("OOM when allocating")).startswith(
        "out of memory")
    assert failure_reason(RuntimeError("CUDA out of memory. Tried ...")).startswith(
        "out of memory")
    assert failure_reason(NonFiniteLoss("loss became nan")).startswith("NaN loss")
    assert "image size" in str(failure_reason(ValueError(
        "\x1b[1mComputed output size would be zero or negative.\x1b[0m")))
    assert failure_reason(ValueError("could not convert the data")) is None
    assert failure_reason(TypeError("a bug")) is None


def test_time_based_decay_sets_the_rate_per_epoch() -> None:
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    model.compile(optimizer=keras.optimizers.SGD(0.1), loss="mse")
    config = {**hp().first(), "init_rate": 0.1, "decay": 0.5}
    [decay] = [cb for cb in fit_params(config)["callbacks"]
               if type(cb).__name__ == "_TimeBasedDecay"]
    decay.set_model(model)
    decay.on_epoch_begin(2)
    assert float(model.optimizer.learning_rate) == pytest.approx(0.1 / (1 + 0.5 * 2))


def test_bad_data_is_fatal_before_any_fit() -> None:
    x, y = tiny_data()
    with pytest.raises(FatalTuningError, match="fewer than cv_folds"):
        tune(x, y, hp(tuning_share=0.05))
    with pytest.raises(FatalTuningError, match="one per image"):
        tune(x, y[:-1], hp())
    bad = x.copy()
    bad[0, 0, 0, 0] = np.nan
    with pytest.raises(FatalTuningError, match="NaN"):
        tune(bad, y, hp())


# ---- one grid with failing combinations, shared by several tests ------------------------
@pytest.fixture(scope="module")
def failing_grid(tmp_path_factory: pytest.TempPathFactory
                 ) -> tuple[Any, list[Event], RunFolder]:
    x, y = tiny_data()
    events: list[Event] = []
    result = tune(x, y, hp(num_filters="2,3,4,5"), report=events.append,
                  results_dir=tmp_path_factory.mktemp("results"), build=faulty_build)
    assert result.run is not None
    return result, events, result.run


@pytest.mark.slow
def test_events_arrive_per_fold(failing_grid: tuple[Any, list[Event], RunFolder]) -> None:
    result, events, _ = failing_grid
    assert isinstance(events[0], TuneStart) and isinstance(events[-1], TaskDone)
    start = events[0]
    assert (start.total_fits, start.combinations, start.folds, start.strategy) == (
        12, 4, 3, "grid")
    folds = [e for e in events if isinstance(e, FoldEnd)]
    assert [(e.combination_index, e.fold) for e in folds] == [
        (0, 0), (0, 1), (0, 2), (3, 0), (3, 1), (3, 2)]
    assert [e.fits_done for e in folds] == [1, 2, 3, 4, 5, 6]
    assert folds[-1].total_fits == 6  # the failed combinations' fits are off the plan
    for e in folds:
        assert 0.0 <= e.accuracy <= 1.0 and np.isfinite(e.loss) and e.seconds > 0
        assert e.params["num_filters"] in (2, 5) and not e.resumed


@pytest.mark.slow
def test_a_failing_combination_is_recorded_once_and_the_rest_run(
        failing_grid: tuple[Any, list[Event], RunFolder]) -> None:
    result, events, run = failing_grid
    failed = [e for e in events if isinstance(e, CombinationFailed)]
    assert [(e.combination_index, e.params["num_filters"]) for e in failed] == [(1, 3), (2, 4)]
    assert "image size" in failed[0].reason
    assert failed[1].reason == "diverged at epoch 1: the training loss became nan"
    assert failed[1].diverged and not failed[0].diverged
    by_filters = {r["param_num_filters"]: r for r in result.rows}
    assert by_filters[3]["status"] == "failed" and by_filters[4]["status"] == "diverged"
    assert by_filters[2]["status"] == by_filters[5]["status"] == "ok"
    assert by_filters[3]["rank_test_score"] == by_filters[4]["rank_test_score"] == 3
    assert result.best_params is not None and result.best_params["num_filters"] in (2, 5)
    lines = run.read_jsonl("folds.jsonl")
    assert [r["kind"] for r in lines].count("failed") == 2
    assert [r["kind"] for r in lines].count("fold") == 6
    # a failure while building keeps its whole traceback too; the table, one line
    built = next(r for r in lines if r["kind"] == "failed" and r["combination_index"] == 1)
    text = run.file(built["traceback"]).read_text(encoding="utf-8")
    assert "Traceback (most recent call last)" in text and "faulty_build" in text
    assert "\n" not in by_filters[3]["reason"]


@pytest.mark.slow
def test_results_table_and_run_record(
        failing_grid: tuple[Any, list[Event], RunFolder]) -> None:
    result, _, run = failing_grid
    for column in ("params", "param_num_filters", "split0_test_score", "split2_test_score",
                   "mean_test_score", "std_test_score", "rank_test_score", "mean_fit_time",
                   "std_fit_time", "mean_score_time", "mean_test_loss", "status", "reason"):
        assert column in result.columns
    best = result.rows[result.best_index]
    assert best["rank_test_score"] == 1 and best["mean_test_score"] == result.best_score
    scores = [best[f"split{k}_test_score"] for k in range(3)]
    assert best["mean_test_score"] == pytest.approx(np.mean(scores))
    assert best["std_test_score"] == pytest.approx(np.std(scores))
    table = run.read_csv("results.csv")
    assert len(table) == 4 and table[0]["rank_test_score"] == "1"
    assert json.loads(table[0]["params"]) == result.best_params
    info = run.info
    assert info["status"] == "finished" and info["ended"]
    assert info["metrics"]["best_score"] == pytest.approx(result.best_score)
    assert run.status == "finished"


# ---- stop ------------------------------------------------------------------------------
@pytest.mark.slow
def test_stop_after_the_first_fold_keeps_exactly_the_finished_folds(tmp_path: Path) -> None:
    x, y = tiny_data()
    cancel = CancelToken()
    events: list[Event] = []

    def report(event: Event) -> None:
        events.append(event)
        if isinstance(event, FoldEnd):
            cancel.cancel()

    result = tune(x, y, hp(num_filters="2,4"), report=report, cancel=cancel,
                  results_dir=tmp_path)
    assert result.stopped and result.status == "stopped"
    assert [(f["combination_index"], f["fold"]) for f in result.folds] == [(0, 0)]
    assert sum(isinstance(e, FoldEnd) for e in events) == 1
    assert isinstance(events[-1], TaskDone) and events[-1].status == "stopped"
    assert events[-1].result is result
    run = result.run
    assert run is not None and run.info["status"] == "stopped"
    assert len(run.read_jsonl("folds.jsonl")) == 1
    table = run.read_csv("results.csv")  # the partial table is saved
    assert [row["status"] for row in table] == ["stopped", "stopped"]
    first = next(row for row in table if row["combination_index"] == "0")
    assert first["split0_test_score"] and not first["split1_test_score"]
    assert first["reason"] == "stopped after 1 of 3 folds"


@pytest.mark.slow
def test_a_stop_during_a_fit_discards_only_that_fit(tmp_path: Path) -> None:
    x, y = tiny_data()
    cancel = StopAfterPolls()
    seen: list[FoldEnd] = []

    def report(event: Event) -> None:
        if isinstance(event, FoldEnd):
            seen.append(event)
            cancel.arm(3)  # the next fit: its start check, then a stop in its first batches

    result = tune(x, y, hp(epochs=3), report=report, cancel=cancel, results_dir=tmp_path)
    assert result.stopped and len(seen) == 1 and len(result.folds) == 1
    # the token is polled before the fit, at each batch's start and end, and after the
    # fit: a fit running all its 15 batches would poll it over 30 times
    assert 4 <= cancel.polls <= 10
    assert result.run is not None and len(result.run.read_jsonl("folds.jsonl")) == 1


# ---- halving ---------------------------------------------------------------------------
@pytest.mark.slow
def test_halving_runs_fewer_full_size_fits_than_the_grid() -> None:
    x, y = tiny_data()
    events: list[Event] = []
    params = hp(num_filters="2,3,4", cv_folds=2, search="halving")
    result = tune(x, y, params, report=events.append)
    rungs = [e for e in events if isinstance(e, RungStart)]
    assert [(r.candidates, r.n_resources) for r in rungs] == [(3, 40), (1, 120)]
    folds = [e for e in events if isinstance(e, FoldEnd)]
    assert len(folds) == result.fits_done == result.total_fits == 3 * 2 + 1 * 2
    full = [e for e in folds if e.n_resources == 120]
    grid_fits = params.grid_size() * 2
    assert len(full) == 2 < grid_fits  # only the promoted third sees all the data
    trained = sum(f["train_size"] for f in result.folds)
    assert trained < grid_fits * 60  # images fitted: 240 vs 360 for the grid
    promoted = {e.combination_index for e in full}
    first = {r["combination_index"]: r["mean_test_score"] for r in result.rows
             if r["iter"] == 0}
    assert promoted == set(sorted(first, key=lambda c: (-first[c], c))[:1])
    assert result.best_index is not None
    assert result.rows[result.best_index]["iter"] == 1
    assert result.best_params is not None
    assert result.best_params["num_filters"] in {
        result.rows[i]["param_num_filters"] for i, r in enumerate(result.rows)
        if r["iter"] == 1}


# ---- GridSearchCV gives the same numbers ------------------------------------------------
@pytest.mark.slow
def test_same_scores_as_grid_search_cv() -> None:
    x, y = tiny_data(signal=0.6)  # a harder set, so that scores differ between folds
    params = hp(num_filters="2,4", cv_folds=2, epochs=2)
    ours = tune(x, y, params)

    xs, ys, shape = tuning_data(x, y, params)
    base = params.first()
    candidates = [{**base, **c} for c in ParameterGrid(params.grid())]
    estimator = make_estimator(base, shape, params.seed)
    grid = {"model_kwargs": [{**estimator.model_kwargs, "config": c} for c in candidates]}

    def held_out_loss(est: Any, X: np.ndarray, y_true: np.ndarray) -> float:
        proba = est.decision_function(X)
        return float(-np.mean(np.log(np.clip(proba[np.arange(len(y_true)), y_true],
                                             1e-7, 1.0))))

    search = GridSearchCV(estimator, grid, cv=cv_splitter(params), refit=False,
                          scoring={"accuracy": "accuracy", "loss": held_out_loss},
                          error_score="raise")
    search.fit(xs, ys, **fit_params(base))
    theirs = search.cv_results_
    for k in range(2):
        ours_acc = [r[f"split{k}_test_score"] for r in ours.rows]
        ours_loss = [r[f"split{k}_test_loss"] for r in ours.rows]
        np.testing.assert_allclose(ours_acc, theirs[f"split{k}_test_accuracy"], atol=0.03)
        np.testing.assert_allclose(ours_loss, theirs[f"split{k}_test_loss"], rtol=1e-3)
    np.testing.assert_allclose([r["mean_test_score"] for r in ours.rows],
                               theirs["mean_test_accuracy"], atol=0.03)
    assert len({r["split0_test_score"] for r in ours.rows}
               | {r["split1_test_score"] for r in ours.rows}) > 1  # not all equal


def test_reused_models_score_exactly_as_freshly_built_ones() -> None:
    """Folds and combinations that share an architecture re-use one traced model, reset
    to its start state; every score equals a fresh build's, to the last bit. One
    architecture whose combinations change the learning rate and the batch size: the
    training settings a reused model must take anew."""
    x, y = tiny_data(signal=0.6)
    params = hp(init_rate="0.05,0.02", batch_size="16,20", cv_folds=2, epochs=2, dropout=0.3)
    tuner = Tuner(x, y, params)
    ours = tuner.run_search()
    tuner.reuse.release()
    assert (tuner.reuse.builds, tuner.reuse.reuses) == (1, 7)  # 1 architecture, 8 fits

    xs, ys, shape = tuning_data(x, y, params)
    for row in ours.rows:
        config = {**params.first(), **row["params"]}
        for k, (train, test) in enumerate(cv_splitter(params).split(xs, ys)):
            est = clone(make_estimator(config, shape, params.seed))
            est.fit(xs[train], ys[train], **fit_params(config, ys[train]))
            proba = est.model_.predict(xs[test], batch_size=int(config["batch_size"]))
            accuracy = float(np.mean(est.classes_[proba.argmax(axis=1)] == ys[test]))
            assert row[f"split{k}_test_score"] == accuracy
            assert row[f"split{k}_test_loss"] == _log_loss(ys[test], proba, est.classes_)
            keras.backend.clear_session()


def test_combinations_run_grouped_by_architecture() -> None:
    grid = hp(num_filters="2,4", init_rate="0.05,0.02")  # num_filters varies slowest
    tuner = Tuner(*tiny_data(), grid.edit(num_units="8,12"))
    order = tuner.reuse.order(tuner.candidates, range(len(tuner.candidates)),
                              tuner.base_config)
    arch = [(tuner.candidates[ci]["num_filters"], tuner.candidates[ci]["num_units"])
            for ci in order]
    assert sorted(order) == list(range(8))
    assert [a for i, a in enumerate(arch) if i == 0 or arch[i - 1] != a] == \
        list(dict.fromkeys(arch))  # each architecture's fits are consecutive


# ---- kill -9 and resume ------------------------------------------------------------------
CHILD = textwrap.dedent("""
    import os, signal, sys, threading
    import numpy as np
    from convonet.core.params import HyperParams
    from convonet.core.tuning import FoldEnd, tune

    data = np.load(sys.argv[1])
    params = HyperParams.load(sys.argv[2])

    def report(event):
        if isinstance(event, FoldEnd):
            print("FOLD", event.combination_index, event.fold, flush=True)
            if event.fits_done == 3:  # kill -9 in the middle of the 4th fit
                threading.Timer(0.2, os.kill, (os.getpid(), signal.SIGKILL)).start()

    tune(data["x"], data["y"], params, report=report, results_dir=sys.argv[3])
    print("NOT KILLED", flush=True)
""")


@pytest.mark.slow
def test_kill_9_keeps_every_finished_fold_and_resume_runs_only_the_rest(
        tmp_path: Path) -> None:
    x, y = tiny_data()
    params = hp(num_filters="2,4")
    np.savez(tmp_path / "data.npz", x=x, y=y)
    params.save(tmp_path / "hp.json")
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    proc = subprocess.run([sys.executable, "-c", CHILD, str(tmp_path / "data.npz"),
                           str(tmp_path / "hp.json"), str(tmp_path / "results")],
                          capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == -9, proc.stderr[-2000:]
    reported = [tuple(map(int, ln.split()[1:])) for ln in proc.stdout.splitlines()
                if ln.startswith("FOLD")]
    assert len(reported) >= 3
    [run] = RunFolder.find(tmp_path / "results", "tuning")
    assert run.status == "interrupted"
    lines = run.read_jsonl("folds.jsonl")
    on_disk = [(r["combination_index"], r["fold"]) for r in lines]
    assert set(reported) <= set(on_disk) and len(on_disk) == len(set(on_disk))

    events: list[Event] = []
    result = tune(x, y, resume_from=run.path, report=events.append)
    folds = [e for e in events if isinstance(e, FoldEnd)]
    assert [(e.combination_index, e.fold) for e in folds if e.resumed] == on_disk
    fitted = [(e.combination_index, e.fold) for e in folds if not e.resumed]
    assert len(fitted) == 6 - len(on_disk) and not set(fitted) & set(on_disk)
    assert result.status == "finished" and result.fits_done == 6
    assert all(r["status"] == "ok" for r in result.rows)
    assert run.info["status"] == "finished" and len(run.info["resumed"]) == 1
    assert len(run.read_jsonl("folds.jsonl")) == 6
    assert len(run.read_csv("results.csv")) == 2


@pytest.mark.slow
def test_a_stopped_halving_search_resumes_alike(tmp_path: Path) -> None:
    x, y = tiny_data()
    params = hp(num_filters="2,3,5", cv_folds=2, search="halving")
    cancel = CancelToken()

    def report(event: Event) -> None:
        if isinstance(event, FoldEnd) and event.fits_done == 3:
            cancel.cancel()

    first = tune(x, y, params, report=report, cancel=cancel, results_dir=tmp_path,
                 build=faulty_build)
    assert first.stopped and first.fits_done == 3 and len(first.failures) == 1
    assert first.run is not None and first.run.status == "stopped"

    events: list[Event] = []
    result = tune(x, y, params, resume_from=first.run, report=events.append,
                  build=faulty_build)
    folds = [e for e in events if isinstance(e, FoldEnd)]
    assert sum(e.resumed for e in folds) == 3
    assert [(e.rung, e.n_resources) for e in folds if not e.resumed] == [(0, 40), (1, 120),
                                                                         (1, 120)]
    failed = [e for e in events if isinstance(e, CombinationFailed)]
    assert len(failed) == 1 and failed[0].resumed  # not retried
    assert result.status == "finished" and result.fits_done == result.total_fits == 6
    kinds = [r["kind"] for r in first.run.read_jsonl("folds.jsonl")]
    assert kinds.count("failed") == 1 and kinds.count("fold") == 6
    assert result.rows[result.best_index]["iter"] == 1


def test_resume_refuses_a_different_search(tmp_path: Path) -> None:
    x, y = tiny_data()
    run = RunFolder.create(tmp_path, "tuning")
    tuner = Tuner(x, y, hp(num_filters="2,4"))
    run.update(tuning=tuner.signature())
    with pytest.raises(FatalTuningError, match="grid"):
        tune(x, y, hp(num_filters="2,8"), resume_from=run)
    with pytest.raises(FatalTuningError, match="fingerprint"):
        tune(x[::-1].copy(), y[::-1].copy(), hp(num_filters="2,4"), resume_from=run)
