"""Checks of the jax device loop, run by tests/test_device_loop.py in one child process
(KERAS_BACKEND=jax, CONVONET_DEVICE_LOOP set per check). Prints one JSON object.

    python tests/device_loop_checks.py RESULTS_DIR
"""

from __future__ import annotations

import json
import logging
import math
import os
import sys
import time
from pathlib import Path
from typing import Any

import keras
import numpy as np
from device_fold_checks import tuning_checks
from task_helpers import resume, train

from convonet.core.data import Dataset, stratified_split
from convonet.core.events import BatchProgress, CancelToken, Compiling, Event, Notice
from convonet.core.model import NetModel
from convonet.core.params import HyperParams
from convonet.core.testing import NetTesting
from convonet.core.training import NetTraining, TrainHistory


def tiny_set(per_class: tuple[int, ...] = (30, 30, 30), size: int = 8) -> Dataset:
    """Noisy horizontal bars, one band per class (conftest's tiny set, without the app)."""
    rng = np.random.default_rng(0)
    xs, ys = [], []
    band = max(1, size // len(per_class))
    for k, count in enumerate(per_class):
        x = rng.random((count, size, size, 1), dtype=np.float32) * 0.3
        x[:, k * band:k * band + max(1, band - 1), :, :] += 0.7
        xs.append(x)
        ys.append(np.full(count, k, dtype=np.int64))
    return Dataset(x=np.concatenate(xs), y=np.concatenate(ys),
                   class_names=[f"class_{k}" for k in range(len(per_class))], root=None)


class CompileCount(logging.Handler):
    """Lists jax's compiles by name ("Finished XLA compilation of jit(name)" lines)."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.names: list[str] = []
        self.logger = logging.getLogger("jax")

    def __enter__(self) -> CompileCount:
        import jax

        self.logger.addHandler(self)
        self.logger.setLevel(logging.DEBUG)
        jax.config.update("jax_log_compiles", True)
        return self

    def __exit__(self, *exc: object) -> None:
        import jax

        jax.config.update("jax_log_compiles", False)
        self.logger.removeHandler(self)

    def emit(self, record: logging.LogRecord) -> None:
        text = record.getMessage()
        if "Finished XLA compilation of jit(" in text:
            self.names.append(text.split("jit(", 1)[1].split(")", 1)[0])


def hyper(**changes: Any) -> HyperParams:
    base: dict[str, Any] = {"epochs": 3, "num_filters": 2, "num_units": 8, "batch_size": 16,
                            "dropout": 0.3, "momentum": 0.9, "decay": 0.5,
                            "init_rate": 0.2, "seed": 11}
    base.update(changes)
    return HyperParams().edit(**base)


def fresh(hp: HyperParams, ds: Any) -> keras.Model:
    return NetModel(hp).build(ds.image_shape, ds.num_classes, ds.class_names)


def set_mode(mode: str) -> None:
    os.environ["CONVONET_DEVICE_LOOP"] = mode


def rows(history: TrainHistory) -> list[dict[str, Any]]:
    return [{k: v for k, v in row.items() if k != "seconds"} for row in history.as_rows()]


def agreement(ds: Any, val: bool, modes: tuple[str, ...] = ("off", "on"),
              **changes: Any) -> dict[str, Any]:
    """fit and the device loop from the same start weights; with the device loop, its
    compiles, events and exact scores too."""
    hp = hyper(**changes)
    out: dict[str, Any] = {}
    start = fresh(hp, ds).get_weights()
    for mode in modes:
        set_mode(mode)
        model = fresh(hp, ds)
        model.set_weights(start)
        events: list[Event] = []
        training = NetTraining(model, hp, report=events.append, batch_interval=0)
        with CompileCount() as compiles:
            history = training.train_val(ds) if val else training.train(ds)
        out[mode] = rows(history)
        if mode == "on":
            out["compiles"] = compiles.names
            out["compiling"] = [e.seconds is None for e in events
                                if isinstance(e, Compiling)]
            out["batch_events"] = len([e for e in events if isinstance(e, BatchProgress)])
            if val:
                out["exact"] = exact_scores(model, ds, history, hp)
    return out


def numpy_scores(probs: np.ndarray, y: np.ndarray) -> list[float]:
    p = np.clip(probs[np.arange(len(y)), y].astype(np.float64), 1e-7, 1 - 1e-7)
    return [float(-np.mean(np.log(p))), float(np.mean(np.argmax(probs, axis=1) == y))]


def exact_scores(model: keras.Model, ds: Any, history: TrainHistory,
                 hp: HyperParams) -> dict[str, Any]:
    """The last epoch's validation, and evaluate, against NumPy on the model's own
    predictions (the weights are the last epoch's: no early stopping)."""
    config = hp.first()
    _, val_idx = stratified_split(ds.y, float(config["validation_split"]),
                                  int(config["seed"]))
    tester = NetTesting(model, batch_size=32)  # 90 rows: a smaller last batch
    probs = tester.predict(ds).probabilities
    set_mode("off")
    keras_probs = model.predict(ds.x, batch_size=32, verbose=0)
    keras_eval = NetTesting(model, batch_size=32).evaluate(ds)
    set_mode("on")
    evaluation = tester.evaluate(ds)
    last = history.rows[-1]
    return {"val": [last.val_loss, last.val_accuracy],
            "val_numpy": numpy_scores(probs[val_idx], ds.y[val_idx]),
            "evaluate": [evaluation.loss, evaluation.accuracy],
            "evaluate_numpy": numpy_scores(probs, ds.y),
            "evaluate_keras": [keras_eval.loss, keras_eval.accuracy],
            "predict_max_diff": float(np.max(np.abs(probs - keras_probs)))}


def early_stopping(ds: Any) -> dict[str, Any]:
    set_mode("on")
    hp = hyper(epochs=5, patience=1, init_rate=1e-9, dropout=0.0)  # the loss never improves
    history = NetTraining(fresh(hp, ds), hp).train(ds)
    return {"epochs": len(history.rows), "early_stopped": history.early_stopped,
            "restored_epoch": history.restored_epoch}


def too_large(ds: Any) -> dict[str, Any]:
    """A device that cannot hold the images: fit trains, and a notice says why."""
    from convonet.core import device_loop

    set_mode("on")
    free = device_loop.device_free_bytes
    device_loop.device_free_bytes = lambda: 1000
    try:
        hp = hyper(epochs=1)
        events: list[Event] = []
        history = NetTraining(fresh(hp, ds), hp, report=events.append).train(ds)
    finally:
        device_loop.device_free_bytes = free
    return {"notices": [e.text for e in events if isinstance(e, Notice)],
            "compiling": len([e for e in events if isinstance(e, Compiling)]),
            "epochs": len(history.rows)}


def stop_and_resume(ds: Any, results: Path) -> dict[str, Any]:
    """A stop during epoch 2 keeps epoch 1; the resume gives the uninterrupted history."""
    set_mode("on")
    hp = hyper(epochs=3, validation_split=0.2)
    start = fresh(hp, ds).get_weights()

    def model() -> keras.Model:
        m = fresh(hp, ds)
        m.set_weights(start)
        return m

    whole = train(model(), hp, ds, True, results / "whole")
    cancel = CancelToken()

    def stop_in_epoch_2(event: Event) -> None:
        if isinstance(event, BatchProgress) and event.epoch == 2:
            cancel.cancel()

    from convonet.core import device_loop

    aim = device_loop.CHUNK_SECONDS
    device_loop.CHUNK_SECONDS = 0.0  # one batch a chunk: the stop lands mid-epoch
    try:
        stopped = train(model(), hp, ds, True, results / "stopped",
                        report=stop_in_epoch_2, cancel=cancel, batch_interval=0.0)
    finally:
        device_loop.CHUNK_SECONDS = aim
    resumed = resume(stopped.run, dataset=ds)
    return {"whole": rows(whole.history), "stopped_status": stopped.status,
            "stopped": rows(stopped.history), "resumed_status": resumed.status,
            "resumed": rows(resumed.history)}


def main() -> None:
    results = Path(sys.argv[1])
    import jax

    # Every model here has the same architecture: compile each step once for all. The
    # test passes a cache folder that outlives the run (compiling is most of its time).
    cache = os.environ.get("CONVONET_TEST_JAX_CACHE") or str(results / "jax-cache")
    jax.config.update("jax_compilation_cache_dir", cache)
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)
    ds = tiny_set()
    unbalanced = tiny_set((8, 30, 30))
    checks = {
        "agreement": lambda: agreement(ds, True, validation_split=0.2),
        "weighted": lambda: agreement(unbalanced, False, class_weight="balanced", epochs=2),
        "unweighted": lambda: agreement(unbalanced, False, ("on",), epochs=1),
        "early": lambda: early_stopping(ds),
        "too_large": lambda: too_large(ds),
        "resume": lambda: stop_and_resume(ds, results),
        "tuning": lambda: tuning_checks(CompileCount),
    }
    out: dict[str, Any] = {"backend": keras.backend.backend(), "seconds": {}}
    for name, check in checks.items():
        started = time.perf_counter()
        out[name] = check()
        out["seconds"][name] = round(time.perf_counter() - started, 1)
    # Training, validation, testing and tuning on jax never import TensorFlow (its C++
    # start-up lines would land on the app's screen).
    out["tensorflow_imported"] = "tensorflow" in sys.modules
    print(json.dumps(out, default=lambda v: None if isinstance(v, float)
                     and math.isnan(v) else str(v)))


if __name__ == "__main__":
    main()
