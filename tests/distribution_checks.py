"""Checks of data-parallel training, run by tests/test_distribution.py in child processes
with two CPU devices: jax's virtual devices (KERAS_BACKEND=jax), or TensorFlow's logical
ones (``tensorflow`` first: MirroredStrategy). Prints one JSON object.

    XLA_FLAGS=--xla_force_host_platform_device_count=2 python tests/distribution_checks.py DIR
    KERAS_BACKEND=tensorflow python tests/distribution_checks.py tensorflow DIR
"""

from __future__ import annotations

import json
import os
import sys
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

import keras
import numpy as np
from device_loop_checks import tiny_set
from task_helpers import resume, train

from convonet.core.errors import ConvonetError
from convonet.core.events import CancelToken, Event, Notice
from convonet.core.model import NetModel, load_model
from convonet.core.params import HyperParams
from convonet.core.runs import RunFolder

HYPER = {"epochs": 3, "batch_size": 16, "init_rate": 0.05, "decay": 0.1, "momentum": 0.9,
         "num_filters": 4, "kernel_size": 3, "num_units": 16, "dropout": 0.2,
         "validation_split": 0.2, "seed": 7}


class Placement(keras.callbacks.Callback):
    """Where the model that trains keeps its first weight (how many devices hold it)."""

    def __init__(self) -> None:
        super().__init__()
        self.devices: int | None = None
        self.model_id: int | None = None

    def on_train_begin(self, logs: Any = None) -> None:
        self.devices = placed_on(self.model)
        self.model_id = id(self.model)


def placed_on(model: keras.Model) -> int:
    """How many devices hold the model's first weight."""
    value = model.weights[0].value
    if keras.backend.backend() == "jax":
        return len(value.sharding.device_set)
    return len(getattr(value, "values", (value,)))  # a MirroredVariable's replicas


def one_training(results: Path, devices: str | None, ds: Any, hyper: HyperParams,
                 **fields: Any) -> dict[str, Any]:
    model = NetModel(hyper).build(ds.image_shape, ds.num_classes, ds.class_names)
    notices: list[str] = []
    placement = Placement()

    def report(event: Event) -> None:
        if isinstance(event, Notice):
            notices.append(event.text)

    started = time.perf_counter()
    outcome = train(model, hyper, ds, True, results, report=report, callbacks=[placement],
                    devices=devices, **fields)
    seconds = time.perf_counter() - started
    assert outcome.run is not None
    x = ds.x[:40]
    predicted = outcome.model.predict(x, verbose=0)
    reloaded = load_model(outcome.run.file("model.keras"))
    return {
        "history": [asdict(r) for r in outcome.history.rows],
        "status": str(outcome.status),
        "seconds": round(seconds, 2),
        "notices": notices,
        "run_devices": outcome.run.info.get("devices"),
        "trained_on": placement.devices,
        "same_model": outcome.model is model and placement.model_id != id(model),
        "model_devices": placed_on(outcome.model),
        "evaluate": outcome.model.evaluate(ds.x, ds.y, verbose=0, return_dict=True),
        "reload_devices": placed_on(reloaded),
        "reload_diff": float(np.abs(reloaded.predict(x, verbose=0) - predicted).max()),
        "run": str(outcome.run.path),
    }


def refusals(results: Path, ds: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, devices, batch in (("batch", "2", 15), ("too_many", "3", 16),
                                 ("unknown", "0,5", 16)):
        hyper = HyperParams({**HYPER, "batch_size": batch, "epochs": 1})
        model = NetModel(hyper).build(ds.image_shape, ds.num_classes, ds.class_names)
        try:
            train(model, hyper, ds, True, results / name, devices=devices)
            out[name] = None
        except ConvonetError as exc:
            out[name] = {"type": type(exc).__name__, "text": str(exc),
                         "runs": sorted(p.name for p in (results / name).glob("runs/*"))}
    return out


def stop_and_resume(results: Path, ds: Any, hyper: HyperParams) -> dict[str, Any]:
    """Stopped after epoch 1 on two devices, resumed on two: the whole history."""
    cancel = CancelToken()

    class StopAfterFirst(keras.callbacks.Callback):
        def on_epoch_end(self, epoch: int, logs: Any = None) -> None:
            if epoch == 0:
                cancel.cancel()

    model = NetModel(hyper).build(ds.image_shape, ds.num_classes, ds.class_names)
    first = train(model, hyper, ds, True, results, cancel=cancel,
                  callbacks=[StopAfterFirst()], devices="2")
    assert first.run is not None
    again = resume(RunFolder(first.run.path), dataset=ds, devices="2")
    return {"first_status": str(first.status), "status": str(again.status),
            "epochs": [r.epoch for r in again.history.rows if not r.partial],
            "history": [asdict(r) for r in again.history.rows]}


def tensorflow_checks(results: Path) -> None:
    """One and two logical CPU devices (MirroredStrategy), from the same weights."""
    import tensorflow as tf

    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(
        cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    ds, hyper = tiny_set(), HyperParams({**HYPER, "epochs": 2})
    out: dict[str, Any] = {"backend": keras.backend.backend()}
    out["one"] = one_training(results / "one", None, ds, hyper)
    out["two"] = one_training(results / "two", "2", ds, hyper)
    print(json.dumps(out, default=str))


def main() -> None:
    if sys.argv[1] == "tensorflow":
        tensorflow_checks(Path(sys.argv[2]))
        return
    import jax

    results = Path(sys.argv[1])
    cache = os.environ.get("CONVONET_TEST_JAX_CACHE") or str(results / "jax-cache")
    jax.config.update("jax_compilation_cache_dir", cache)
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)
    ds = tiny_set()  # 90 images: 72 training and 18 validation rows, both even
    hyper = HyperParams(HYPER)
    out: dict[str, Any] = {"backend": keras.backend.backend(),
                           "devices": [str(d) for d in jax.devices()]}
    os.environ["CONVONET_DEVICE_LOOP"] = "off"
    out["one"] = one_training(results / "one", None, ds, hyper)
    out["two"] = one_training(results / "two", "2", ds, hyper)
    os.environ["CONVONET_DEVICE_LOOP"] = "on"  # the device loop, data-parallel
    out["loop"] = one_training(results / "loop", "2", ds, hyper)
    os.environ["CONVONET_DEVICE_LOOP"] = "off"
    odd = tiny_set((31, 30, 30))  # 73 training rows: one sits out
    out["odd"] = one_training(results / "odd", "all", odd,
                              HyperParams({**HYPER, "epochs": 1}))
    out["refusals"] = refusals(results, ds)
    out["resume"] = stop_and_resume(results / "resume", ds, hyper)
    print(json.dumps(out, default=str))


if __name__ == "__main__":
    main()
