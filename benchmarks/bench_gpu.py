"""GPU, jax backend: the core's epoch time against plain Keras and a stateless scan loop.

    python benchmarks/bench_gpu.py --npz datasets/fashion-mnist.npz \
        [--epochs 3] [--batch-sizes 64,512] [--limit N]

Three sides train the reference CNN (the sample MNIST hyper params' first values) on the
Fashion-MNIST training set, for each batch size, with the jax backend:
- ``plain``: ``model.fit(x, y, verbose=0, shuffle=True)``, what a script would do;
- ``core``: ``execute(TrainSpec(...))``, the recorded training the app and ``convonet
  train`` run (a run folder with the start model, a checkpoint and a history row each
  epoch, the model saved at the end), with a reporter that hands every event to another
  thread through a queue, as the app's worker does with ``post_message``;
- ``scan``: the same Keras model through Keras's stateless API (``stateless_call``,
  ``optimizer.stateless_apply``), one jitted ``lax.scan`` over an epoch's batches with the
  training set already on the device. A reference for what the hardware can do, not
  something the app uses; it drops the last partial batch. On a CPU it is several times
  slower than ``fit`` (XLA's CPU backend runs the convolutions in a loop body poorly;
  ``--scan-unroll 8`` helps some), so only its accuracy means anything there.
They alternate epoch runs (plain, core, scan, plain ...); the first round warms up
(tracing, compiling) and is dropped. Prints the median seconds per epoch, the ratios
core/plain and core/scan, and each model's accuracy on the 10,000 test images at its final
epoch (no epoch is chosen; the figure only checks the sides agree); writes
benchmarks/results/gpu.json.

The GPU machine has neither TensorFlow nor the Fashion-MNIST package nor a network, so
the data travels as one ``.npz`` and Keras as wheels. Only ``convonet.core.model``,
``params``, ``training``, ``events``, the run records and the task layer are imported
from the project (no textual, no TensorFlow). Here, with Debian's ``dataset-fashion-mnist``::

    echo /.whl/ >> .git/info/exclude
    python3 -m pip download --no-deps --only-binary=:all: --python-version 3.12 \
        --implementation cp --platform manylinux_2_28_x86_64 \
        --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
        -d .whl keras==3.15.1 namex optree typing_extensions
    python benchmarks/bench_gpu.py --write-npz datasets/fashion-mnist.npz

then on the GPU machine, carrying ``.whl`` and ``datasets/fashion-mnist.npz``::

    python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/site \
        .whl/*.whl && PYTHONPATH=/tmp/site:src KERAS_BACKEND=jax \
        python3 benchmarks/bench_gpu.py --npz datasets/fashion-mnist.npz
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
RESULTS = Path(__file__).resolve().parent / "results"

#: Measured on an H200 at batch 64 (the issue's figures), printed beside ours.
H200_BATCH64_S = {"plain fit": "1.3-1.7", "hand-written jax loop": "0.26",
                  "stateless scan": "0.30"}


def write_npz(out: Path) -> None:
    """Fashion-MNIST from Debian's IDX files as one .npz of uint8 images and labels."""
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from fashion_mnist import load_split

    x_train, y_train = load_split("train")
    x_test, y_test = load_split("test")
    out.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(out, x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test)
    print(f"wrote {out}: {len(y_train)} training and {len(y_test)} test images")


@dataclass
class Arrays:
    """The arrays a training reads (``convonet.core.training.DatasetLike``), with what
    its run record keeps of a dataset (no skipped files, no fingerprint)."""

    x: np.ndarray
    y: np.ndarray
    class_names: list[str]
    skipped: list[Any] = field(default_factory=list)
    fingerprint: str = ""

    @property
    def image_shape(self) -> tuple[int, int, int]:
        return (int(self.x.shape[1]), int(self.x.shape[2]), int(self.x.shape[3]))

    @property
    def num_classes(self) -> int:
        return len(self.class_names)


def _scaled(images: np.ndarray) -> np.ndarray:
    """uint8 (n, 28, 28) -> float32 (n, 28, 28, 1) in [0, 1], as the app's loader gives."""
    return (images.astype(np.float32) / 255.0)[..., None]


def load_npz(path: Path, limit: int | None) -> tuple[Arrays, Arrays]:
    with np.load(path) as data:
        x_train, y_train = data["x_train"], data["y_train"]
        x_test, y_test = data["x_test"], data["y_test"]
    if limit:
        x_train, y_train = x_train[:limit], y_train[:limit]
    names = [str(c) for c in range(int(max(y_train.max(), y_test.max())) + 1)]
    return (Arrays(_scaled(x_train), y_train.astype(np.int64), names),
            Arrays(_scaled(x_test), y_test.astype(np.int64), names))


def main() -> None:
    parser = argparse.ArgumentParser(description="GPU benchmark (jax backend)")
    parser.add_argument("--npz", type=Path, default=Path("datasets/fashion-mnist.npz"))
    parser.add_argument("--write-npz", type=Path, metavar="PATH", default=None,
                        help="write the npz from /usr/share/datasets/fashion-mnist and exit")
    parser.add_argument("--epochs", type=int, default=3, help="epoch runs per side")
    parser.add_argument("--batch-sizes", default="64,512")
    parser.add_argument("--limit", type=int, default=None,
                        help="training images (default: 60,000)")
    parser.add_argument("--scan-unroll", type=int, default=1,
                        help="steps per iteration of the scan loop (lax.scan's unroll)")
    parser.add_argument("--out", type=Path, default=None,
                        help="results file (default: benchmarks/results/gpu.json on a "
                        "GPU; a run on a CPU writes gpu-cpu-check.json, never the table's)")
    args = parser.parse_args()
    if args.write_npz is not None:
        write_npz(args.write_npz)  # needs neither jax nor keras
        return
    batch_sizes = [int(b) for b in args.batch_sizes.split(",")]
    run(args.npz, args.limit, args.epochs, batch_sizes, args.scan_unroll, args.out)


def run(npz: Path, limit: int | None, epochs: int, batch_sizes: list[int], unroll: int,
        out: Path | None) -> None:
    os.environ.setdefault("KERAS_BACKEND", "jax")
    import jax
    import keras

    if keras.backend.backend() != "jax":
        sys.exit(f"needs KERAS_BACKEND=jax (got {keras.backend.backend()})")

    device = jax.devices()[0]
    if out is None:  # a check on a CPU must not stand in the table as the GPU's numbers
        out = RESULTS / ("gpu.json" if device.platform == "gpu" else "gpu-cpu-check.json")
    print(f"device {device} ({device.device_kind}), keras {keras.__version__}, "
          f"jax {jax.__version__}", flush=True)
    train, test = load_npz(npz, limit)
    # The scan side's data lives on the device for the whole run, as in the issue's
    # reference; plain and core get numpy arrays, as the app passes them to fit.
    on_device = (jax.device_put(train.x), jax.device_put(train.y.astype(np.int32)))
    records = Path(tempfile.mkdtemp(prefix="convonet-bench-"))  # the core side's runs
    results = {str(batch_size): bench_batch_size(batch_size, train, test, on_device, epochs,
                                                 unroll, records)
               for batch_size in batch_sizes}

    print(f"\nmedian s/epoch on {len(train.y)} images, {device.device_kind}; test accuracy "
          f"on {len(test.y)} images at the final epoch ({epochs + 1}; no epoch chosen)")
    print(f"{'batch':>6} {'plain':>8} {'core':>8} {'scan':>8} {'core/plain':>11} "
          f"{'core/scan':>10}   accuracy plain / core / scan")
    for batch, res in results.items():
        med, acc = res["median_s"], res["test_accuracy"]
        print(f"{batch:>6} {med['plain']:>8.3f} {med['core']:>8.3f} {med['scan']:>8.3f} "
              f"{res['ratio_core_over_plain']:>11.3f} {res['ratio_core_over_scan']:>10.2f}"
              f"   {acc['plain']:.2%} / {acc['core']:.2%} / {acc['scan']:.2%}")
    print("H200 reference at batch 64 (s/epoch): "
          + ", ".join(f"{k} {v}" for k, v in H200_BATCH64_S.items()))

    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({
        "date": time.strftime("%Y-%m-%d"), "backend": keras.backend.backend(),
        "device": str(device), "device_kind": device.device_kind,
        "versions": {"keras": keras.__version__, "jax": jax.__version__},
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(),
                    "python": platform.python_version()},
        "images": len(train.y), "test_images": len(test.y), "epoch_runs": epochs,
        "scan_unroll": unroll,
        "batch_sizes": results, "h200_batch64_reference_s": H200_BATCH64_S}, indent=2))
    print(f"wrote {out}")


def bench_batch_size(batch_size: int, train: Arrays, test: Arrays, on_device: Any,
                     epochs: int, unroll: int, records: Path) -> dict[str, Any]:
    """Alternating epoch runs of the three sides at one batch size, and their accuracy."""
    import jax
    import keras
    from bench_common import QueueForwarder  # beside this script

    from convonet.core.model import build_model
    from convonet.core.params import HyperParams
    from convonet.tasks import execute
    from convonet.tasks.train import TrainSpec

    hp = HyperParams.load(ROOT / "app_input" / "mnist_hyper_params.json").edit(
        epochs=1, batch_size=batch_size, patience=0)
    config = hp.first()
    seed = int(config["seed"])
    models = {}
    for side in ("plain", "core", "scan"):
        keras.utils.set_random_seed(seed)  # the same start weights on every side
        models[side] = build_model(config, train.image_shape, train.num_classes)
    scan = ScanTrainer(models["scan"], batch_size, unroll, jax, keras)
    key = jax.random.PRNGKey(seed)

    times: dict[str, list[float]] = {"plain": [], "core": [], "scan": []}
    events = 0
    for r in range(epochs + 1):  # the first round warms up (tracing) and is dropped
        keras.utils.set_random_seed(seed)
        t0 = time.perf_counter()
        models["plain"].fit(train.x, train.y, batch_size=batch_size, epochs=1,
                            verbose=0, shuffle=True)
        plain = time.perf_counter() - t0

        forwarder = QueueForwarder()
        t0 = time.perf_counter()
        execute(TrainSpec(model=models["core"], hyper_params=hp, dataset=train,
                          results_dir=records), report=forwarder)
        core = time.perf_counter() - t0
        forwarder.close()
        events += forwarder.seen

        key, epoch_key = jax.random.split(key)
        t0 = time.perf_counter()
        loss = scan.epoch(*on_device, epoch_key)  # waits for the device
        scan_s = time.perf_counter() - t0

        label = "warm-up" if r == 0 else f"run {r}"
        print(f"batch {batch_size} {label}: plain {plain:.2f} s, core {core:.2f} s "
              f"({forwarder.seen} events), scan {scan_s:.2f} s (loss {loss:.3f})",
              flush=True)
        if r:
            for side, seconds in (("plain", plain), ("core", core), ("scan", scan_s)):
                times[side].append(seconds)

    scan.write_back()
    accuracy = {side: float(model.evaluate(test.x, test.y, batch_size=1024, verbose=0,
                                           return_dict=True)["accuracy"])
                for side, model in models.items()}
    med = {k: statistics.median(v) for k, v in times.items()}
    return {"runs_s": times, "median_s": med,
            "ratio_core_over_plain": med["core"] / med["plain"],
            "ratio_core_over_scan": med["core"] / med["scan"],
            "test_accuracy": accuracy, "epochs_trained": epochs + 1,
            "scan_batches_per_epoch": len(train.y) // batch_size, "events": events}


class ScanTrainer:
    """A Keras model trained through its stateless API, one jitted scan per epoch.

    The variables live here as jax arrays between epochs; ``write_back`` puts them into
    the model so it can be evaluated like the others.
    """

    def __init__(self, model: Any, batch_size: int, unroll: int, jax: Any,
                 keras: Any) -> None:
        self.model = model
        self.jax = jax
        optimizer = model.optimizer
        optimizer.build(model.trainable_variables)
        # The compiled model's loss, on its softmax outputs.
        loss_fn = keras.losses.SparseCategoricalCrossentropy()

        def loss_and_state(trainable, non_trainable, x, y):
            # non_trainable holds the dropout layer's seed state, which advances each step.
            y_pred, non_trainable = model.stateless_call(trainable, non_trainable, x,
                                                         training=True)
            return loss_fn(y, y_pred), non_trainable

        grad_fn = jax.value_and_grad(loss_and_state, has_aux=True)

        def step(state, batch):
            trainable, non_trainable, opt_vars = state
            (loss, non_trainable), grads = grad_fn(trainable, non_trainable, *batch)
            trainable, opt_vars = optimizer.stateless_apply(opt_vars, grads, trainable)
            return (trainable, non_trainable, opt_vars), loss

        def epoch(state, x, y, key):
            batches = x.shape[0] // batch_size  # static under jit: the last partial is dropped
            order = jax.random.permutation(key, x.shape[0])[: batches * batch_size]
            order = order.reshape(batches, batch_size)

            def indexed_step(state, idx):
                return step(state, (x[idx], y[idx]))

            state, losses = jax.lax.scan(indexed_step, state, order, unroll=unroll)
            return state, losses.mean()

        self._epoch = jax.jit(epoch)
        self.state = ([v.value for v in model.trainable_variables],
                      [v.value for v in model.non_trainable_variables],
                      [v.value for v in optimizer.variables])

    def epoch(self, x: Any, y: Any, key: Any) -> float:
        """One epoch over the device arrays; returns the mean training loss."""
        self.state, loss = self._epoch(self.state, x, y, key)
        self.jax.block_until_ready(self.state)
        return float(loss)

    def write_back(self) -> None:
        trainable, non_trainable, opt_vars = self.state
        for variable, value in zip(self.model.trainable_variables, trainable, strict=True):
            variable.assign(value)
        for variable, value in zip(self.model.non_trainable_variables, non_trainable,
                                   strict=True):
            variable.assign(value)
        for variable, value in zip(self.model.optimizer.variables, opt_vars, strict=True):
            variable.assign(value)


if __name__ == "__main__":
    main()
