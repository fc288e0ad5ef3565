"""The jax device loop (``core.device_loop``): the same training as Keras's fit, exact
scores, one compile, stop, resume, class weights, early stopping and the fallback.

The suite runs on TensorFlow, so the jax checks run in one child process
(``tests/device_loop_checks.py``, KERAS_BACKEND=jax) that prints JSON; the tests here
assert on it. The tiny set is 90 8x8 images, 3 classes, batch 16: 72 training rows with
validation, so each epoch has 4 whole batches and a smaller last one.

Tolerance: the device loop runs Keras's own train step on the same batches in the same
order, so it matches fit to float32 rounding; losses are compared at rel 1e-4 and
accuracies within one image of the 72 (ties of near-equal probabilities may flip on
other CPUs).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import keras
import pytest
from headless_helpers import jax_test_cache

from convonet.core.device_loop import device_loop_mode, use_device_loop

HERE = Path(__file__).resolve().parent
LOSS = {"rel": 1e-4}
ACCURACY = {"abs": 1.01 / 72}


@pytest.fixture(scope="module")
def checks(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    results = tmp_path_factory.mktemp("device-loop")
    env = {**os.environ, "KERAS_BACKEND": "jax", "CONVONET_DEVICE_LOOP": "on",
           "TF_CPP_MIN_LOG_LEVEL": "3", "JAX_PLATFORMS": "cpu",
           "CONVONET_RESULTS_DIR": str(results / "results"),
           "CONVONET_CACHE_DIR": str(results / "cache"),
           "CONVONET_CONFIG_DIR": str(results / "config"),
           "CONVONET_TEST_JAX_CACHE": str(jax_test_cache()),
           "PYTHONPATH": os.pathsep.join([str(HERE.parent / "src"),
                                          os.environ.get("PYTHONPATH", "")])}
    done = subprocess.run([sys.executable, str(HERE / "device_loop_checks.py"),
                           str(results)], env=env, cwd=HERE, capture_output=True,
                          text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    out: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    assert out["backend"] == "jax"
    return out


def assert_same(device: list[dict[str, Any]], fit: list[dict[str, Any]]) -> None:
    assert [r["epoch"] for r in device] == [r["epoch"] for r in fit]
    for a, b in zip(device, fit, strict=True):
        assert a["batches"] == b["batches"]
        assert a["learning_rate"] == pytest.approx(b["learning_rate"], rel=1e-6)
        for name in ("loss", "val_loss"):
            if b[name] is None:
                assert a[name] is None
            else:
                assert a[name] == pytest.approx(b[name], **LOSS), (b["epoch"], name)
        for name in ("accuracy", "val_accuracy"):
            if b[name] is not None:
                assert a[name] == pytest.approx(b[name], **ACCURACY), (b["epoch"], name)


def test_device_loop_trains_as_fit_does(checks: dict[str, Any]) -> None:
    """Three epochs with validation, dropout, momentum and decay, from the same weights."""
    agreement = checks["agreement"]
    assert len(agreement["on"]) == 3
    assert all(r["batches"] == 5 for r in agreement["on"])  # 4 whole batches + 8 rows
    assert_same(agreement["on"], agreement["off"])


def test_one_compile_serves_every_epoch_and_learning_rate(checks: dict[str, Any]) -> None:
    agreement = checks["agreement"]
    rates = [r["learning_rate"] for r in agreement["on"]]
    assert len(set(rates)) == 3  # the decay changed it each epoch
    assert sorted(agreement["compiles"]) == sorted(
        ["train_chunk", "train_tail", "test_chunk", "test_tail"])
    assert agreement["compiling"] == [True, False]  # Compiling(), then its seconds
    assert agreement["batch_events"] >= 3


def test_validation_evaluate_and_predict_are_exact(checks: dict[str, Any]) -> None:
    exact = checks["agreement"]["exact"]
    assert exact["val"] == pytest.approx(exact["val_numpy"], rel=1e-5)
    assert exact["evaluate"] == pytest.approx(exact["evaluate_numpy"], rel=1e-5)
    assert exact["evaluate"] == pytest.approx(exact["evaluate_keras"], rel=1e-5)
    assert exact["predict_max_diff"] < 1e-5


def test_class_weights_act_as_in_fit(checks: dict[str, Any]) -> None:
    weighted, unweighted = checks["weighted"], checks["unweighted"]
    assert_same(weighted["on"], weighted["off"])
    assert weighted["on"][0]["loss"] != pytest.approx(unweighted["on"][0]["loss"], rel=1e-3)


def test_early_stopping_acts(checks: dict[str, Any]) -> None:
    early = checks["early"]
    assert early["early_stopped"] is True
    assert early["epochs"] < 5
    assert early["restored_epoch"] is not None


def test_stop_mid_epoch_keeps_the_finished_epochs_and_resume_continues(
        checks: dict[str, Any]) -> None:
    run = checks["resume"]
    assert run["stopped_status"] == "stopped"
    stopped = run["stopped"]
    assert [r["epoch"] for r in stopped] == [1, 2]
    assert not stopped[0]["partial"] and stopped[1]["partial"]
    assert stopped[1]["batches"] < 5
    assert stopped[0]["loss"] == run["whole"][0]["loss"]
    assert run["resumed_status"] == "finished"
    assert_same(run["resumed"], run["whole"])


def test_data_too_large_for_the_device_falls_back_to_fit(checks: dict[str, Any]) -> None:
    too_large = checks["too_large"]
    assert too_large["epochs"] == 1 and too_large["compiling"] == 0
    [notice] = too_large["notices"]
    assert "with Keras's fit instead" in notice and "free" in notice


def test_tensorflow_keeps_fit(monkeypatch: pytest.MonkeyPatch) -> None:
    assert keras.backend.backend() == "tensorflow"
    monkeypatch.setenv("CONVONET_DEVICE_LOOP", "on")
    assert device_loop_mode() == "on"
    assert use_device_loop(10) == (False, None)
    monkeypatch.setenv("CONVONET_DEVICE_LOOP", "sometimes")
    assert device_loop_mode() == "auto"


# ---- tuning folds (core.device_folds; tests/device_fold_checks.py) ----------------------
# A grid of 2 learning rates x 2 folds, 2 epochs with decay. On the device a fold trains
# with Keras's own train step on the same batches as the wrapper's fit and predicts with
# its predict step: the scores agree to float32 rounding (loss rel 1e-5; accuracy exactly,
# within one test image of 45 should near-equal probabilities tie on another CPU).
def test_tuning_folds_on_the_device_score_as_the_estimators_do(
        checks: dict[str, Any]) -> None:
    tuning = checks["tuning"]
    on, off = tuning["on"], tuning["off"]
    assert [(f["combination"], f["fold"]) for f in on["folds"]] == \
        [(0, 0), (0, 1), (1, 0), (1, 1)]
    assert [(f["combination"], f["fold"]) for f in off["folds"]] == \
        [(f["combination"], f["fold"]) for f in on["folds"]]
    for a, b in zip(on["folds"], off["folds"], strict=True):
        assert a["loss"] == pytest.approx(b["loss"], rel=1e-5)
        assert a["accuracy"] == pytest.approx(b["accuracy"], abs=1.01 / 45)
    assert off["puts"] == 0  # off: the estimator's path, nothing put on the device


def test_tuning_puts_the_share_on_the_device_once_and_compiles_once(
        checks: dict[str, Any]) -> None:
    tuning = checks["tuning"]
    assert tuning["on"]["puts"] == 1  # one share for 4 folds of 2 combinations
    compiles = tuning["compiles"]
    # 2 learning rates x 2 folds x 2 epochs: one train chunk, one last smaller batch
    # (13 rows in both folds), one prediction chunk.
    assert compiles.count("train_chunk") == 1
    assert compiles.count("train_tail") == 1
    assert compiles.count("predict_chunk") == 1


def test_a_stop_mid_search_on_the_device_keeps_the_finished_folds(
        checks: dict[str, Any]) -> None:
    stop = checks["tuning"]["stop"]
    assert stop["stopped"] is True
    assert stop["folds"] == checks["tuning"]["on"]["folds"][:1]


def test_a_diverging_fold_on_the_device_marks_its_combination_diverged(
        checks: dict[str, Any]) -> None:
    diverged = checks["tuning"]["diverged"]
    [failed] = diverged["failed"]
    assert failed["combination"] == 0 and failed["diverged"] is True
    assert "diverged at epoch 1" in failed["reason"]
    assert [f["combination"] for f in diverged["folds"]] == [1, 1]


def test_nothing_on_jax_imports_tensorflow(checks: dict[str, Any]) -> None:
    """keras.utils.set_random_seed imports TensorFlow whenever it is installed; the core
    seeds through convonet.core.seeding, which leaves it alone on jax."""
    assert checks["tensorflow_imported"] is False
