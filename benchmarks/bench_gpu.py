"""GPU, jax backend: the real training path against plain Keras and a raw scan loop.

One command on the GPU machine (see docs/benchmarks.md for what to carry there)::

    benchmarks/gpu_run.sh [--rounds 3] [--epochs 2] [--batch-sizes 64,512] [--limit N]

which installs the carried wheels into a temporary folder and runs this script with
``KERAS_BACKEND=jax``. Three sides train the reference CNN (the sample MNIST hyper params'
first values) on the Fashion-MNIST training set, at each batch size, from the same start
weights:
- ``plain``: ``model.fit(x, y, verbose=0, shuffle=True)`` with the same learning-rate decay;
- ``real``: ``execute(TrainSpec(...))``, the recorded training the app and ``convonet
  train`` run (run folder, checkpoints, history rows, the model saved at the end; on jax the
  device loop unless ``CONVONET_DEVICE_LOOP=off``), with a reporter that hands every event
  to another thread through a queue, as the app's worker does;
- ``scan``: the same Keras model through Keras's stateless API (``stateless_call``,
  ``optimizer.stateless_apply``), one jitted ``lax.scan`` over an epoch's batches with the
  training set already on the device: what the hardware can do, for reference (it drops
  the last partial batch and keeps the learning rate fixed). On a CPU it is several times
  slower than ``fit`` (``--scan-unroll 8`` helps some), so only its accuracy means much there.
Each round runs ``--epochs`` epochs per side in turn (plain, real, scan, plain ...); the
first round warms up (compiling) and is dropped. Prints the median seconds per epoch, the
median of the per-round ratios real/plain and real/scan with their spread, and each model's
accuracy on the 10,000 test images after its last epoch (never an epoch picked on the test
set). Then, each in a process of its own (``gpu_phases.py``): the first epoch of a new
process with a cold and then a warm compile cache, and tuning the sample grid
(``execute(TuneSpec)``) with the device loop off (today's path: fit, no cache) and on.
Writes benchmarks/results/gpu.json (a run on a CPU writes gpu-cpu-check.json).

``--without-tensorflow`` makes ``import tensorflow`` fail, as on the GPU machine, so a
check on a machine that has TensorFlow proves the script does not need it::

    KERAS_BACKEND=jax python benchmarks/bench_gpu.py --without-tensorflow --limit 2000 \
        --rounds 1 --epochs 1 --batch-sizes 512 --tune-edits '{"epochs": 1, ...}'
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

#: Measured on an H200 at batch 64 before the device loop was built, printed beside ours.
H200_BATCH64_S = {"plain fit": "1.17-1.57", "convonet train before (fit, run records)":
                  "1.75-1.89", "device-loop prototype": "0.214", "stateless scan": "0.30"}


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
    parser.add_argument("--rounds", type=int, default=3, help="measured rounds per side")
    parser.add_argument("--epochs", type=int, default=2, help="epochs per side per round")
    parser.add_argument("--batch-sizes", default="64,512")
    parser.add_argument("--limit", type=int, default=None,
                        help="training images (default: 60,000)")
    parser.add_argument("--scan-unroll", type=int, default=1,
                        help="steps per iteration of the scan loop (lax.scan's unroll)")
    parser.add_argument("--tune-edits", default="{}",
                        help="JSON edits of the sample grid (a quick check: fewer values)")
    parser.add_argument("--tune-limit", type=int, default=None,
                        help="training images the tuning reads (default: all)")
    parser.add_argument("--skip-tune", action="store_true")
    parser.add_argument("--without-tensorflow", action="store_true",
                        help="fail any import of tensorflow, as on the GPU machine")
    parser.add_argument("--out", type=Path, default=None,
                        help="results file (default: benchmarks/results/gpu.json on a "
                        "GPU; a run on a CPU writes gpu-cpu-check.json, never the table's)")
    args = parser.parse_args()
    if args.write_npz is not None:
        write_npz(args.write_npz)  # needs neither jax nor keras
        return
    if args.without_tensorflow:
        sys.path.insert(0, str(Path(__file__).resolve().parent))
        from bench_common import block_tensorflow

        block_tensorflow()
    run(args)


def run(args: argparse.Namespace) -> None:
    os.environ.setdefault("KERAS_BACKEND", "jax")
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import jax
    import keras
    from bench_common import ratio_text
    from gpu_phases import run_phases

    if keras.backend.backend() != "jax":
        sys.exit(f"needs KERAS_BACKEND=jax (got {keras.backend.backend()})")
    device = jax.devices()[0]
    out = args.out or RESULTS / ("gpu.json" if device.platform == "gpu"
                                 else "gpu-cpu-check.json")
    print(f"device {device} ({device.device_kind}), keras {keras.__version__}, "
          f"jax {jax.__version__}, CONVONET_DEVICE_LOOP="
          f"{os.environ.get('CONVONET_DEVICE_LOOP', '(unset)')}", flush=True)
    train, test = load_npz(args.npz, args.limit)
    # The scan side's data lives on the device for the whole run, as in the prototype
    # device loop; plain and real get numpy arrays, as the app passes them.
    on_device = (jax.device_put(train.x), jax.device_put(train.y.astype(np.int32)))
    records = Path(tempfile.mkdtemp(prefix="convonet-bench-"))  # the real side's runs
    results = {b: bench_batch_size(int(b), train, test, on_device, args, records)
               for b in args.batch_sizes.split(",")}
    phases = run_phases(args.npz, args.limit, int(args.batch_sizes.split(",")[0]),
                        json.loads(args.tune_edits), args.tune_limit,
                        args.without_tensorflow, args.skip_tune)

    print(f"\n{len(train.y)} images, {device.device_kind}, {args.rounds} rounds of "
          f"{args.epochs} epoch(s) per side; test accuracy on {len(test.y)} images after "
          "the last epoch")
    for batch, res in results.items():
        med, acc = res["median_s_per_epoch"], res["test_accuracy"]
        print(f"batch {batch}: s/epoch plain {med['plain']:.3f}, real {med['real']:.3f}, "
              f"scan {med['scan']:.3f}; real/plain {ratio_text(res['real_over_plain'])}; "
              f"real/scan {ratio_text(res['real_over_scan'])}; accuracy plain "
              f"{acc['plain']:.2%}, real {acc['real']:.2%}, scan {acc['scan']:.2%}")
    print(f"phases: {json.dumps(phases, default=str)}")
    print("H200 reference at batch 64 (s/epoch, measured before the device loop was built): "
          + ", ".join(f"{k} {v}" for k, v in H200_BATCH64_S.items()))
    print(f"tensorflow imported: {'tensorflow' in sys.modules}")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({
        "date": time.strftime("%Y-%m-%d"), "backend": keras.backend.backend(),
        "device": str(device), "device_kind": device.device_kind,
        "device_loop": os.environ.get("CONVONET_DEVICE_LOOP"),
        "versions": {"keras": keras.__version__, "jax": jax.__version__},
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(),
                    "python": platform.python_version()},
        "images": len(train.y), "test_images": len(test.y), "rounds": args.rounds,
        "epochs_per_round": args.epochs, "scan_unroll": args.scan_unroll,
        "batch_sizes": results, "phases": phases,
        "tensorflow_imported": "tensorflow" in sys.modules,
        "h200_batch64_reference_s": H200_BATCH64_S}, indent=2, default=str))
    print(f"wrote {out}")


def bench_batch_size(batch_size: int, train: Arrays, test: Arrays, on_device: Any,
                     args: argparse.Namespace, records: Path) -> dict[str, Any]:
    """Interleaved rounds of the three sides at one batch size, and their accuracy."""
    import jax
    import keras
    from bench_common import QueueForwarder, decay_callback, interleave, pair_stats

    from convonet.core.model import build_model
    from convonet.core.params import HyperParams
    from convonet.tasks import execute
    from convonet.tasks.train import TrainSpec

    epochs = args.epochs
    hp = HyperParams.load(ROOT / "app_input" / "mnist_hyper_params.json").edit(
        epochs=epochs, batch_size=batch_size, patience=0)
    config = hp.first()
    seed = int(config["seed"])
    models = {}
    for side in ("plain", "real", "scan"):
        keras.utils.set_random_seed(seed)  # the same start weights on every side
        models[side] = build_model(config, train.image_shape, train.num_classes)
    scan = ScanTrainer(models["scan"], batch_size, args.scan_unroll, jax, keras)
    keys = [jax.random.PRNGKey(seed)]

    def plain() -> float:
        keras.utils.set_random_seed(seed)
        t0 = time.perf_counter()
        models["plain"].fit(train.x, train.y, batch_size=batch_size, epochs=epochs,
                            verbose=0, shuffle=True, callbacks=[decay_callback(config)])
        return (time.perf_counter() - t0) / epochs

    def real() -> float:
        forwarder = QueueForwarder()
        t0 = time.perf_counter()
        execute(TrainSpec(model=models["real"], hyper_params=hp, dataset=train,
                          results_dir=records), report=forwarder)
        seconds = (time.perf_counter() - t0) / epochs
        forwarder.close()
        return seconds

    def scanned() -> float:
        t0 = time.perf_counter()
        for _ in range(epochs):
            keys[0], epoch_key = jax.random.split(keys[0])
            scan.epoch(*on_device, epoch_key)  # waits for the device
        return (time.perf_counter() - t0) / epochs

    times = interleave({"plain": plain, "real": real, "scan": scanned}, args.rounds,
                       f"batch {batch_size} ")
    scan.write_back()
    accuracy = {side: float(model.evaluate(test.x, test.y, batch_size=1024, verbose=0,
                                           return_dict=True)["accuracy"])
                for side, model in models.items()}
    return {"s_per_epoch": times,
            "median_s_per_epoch": {k: statistics.median(v) for k, v in times.items()},
            "real_over_plain": pair_stats(times, "real", "plain"),
            "real_over_scan": pair_stats(times, "real", "scan"),
            "test_accuracy": accuracy, "epochs_trained": (args.rounds + 1) * epochs,
            "scan_batches_per_epoch": len(train.y) // batch_size}


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
