"""The jax device loop against Keras's fit, through the core's training, on this machine.

    KERAS_BACKEND=jax python benchmarks/bench_device_loop.py [--images 10000] \
        [--batch-sizes 64,512] [--runs 3]

Trains the reference CNN (the sample MNIST hyper params' first values) for one epoch per
run on Fashion-MNIST training images (Debian's ``dataset-fashion-mnist``, float32 0..1 as
the loader gives them), with ``NetTraining.train`` and the setting
``CONVONET_DEVICE_LOOP`` switched between ``on`` and ``off`` run by run (interleaved; the
first round warms up, compiling, and is dropped). Prints the median seconds per epoch of
each and their ratio; this is how ``auto`` was chosen for a jax CPU.

With ``--tuning`` it times a search instead (``convonet.core.tuning.tune``, the folds
through ``core.device_folds`` when on): the sample MNIST hyper params with ``--grid``'s
changes, on ``--images`` images, on and off interleaved, and prints each search's seconds
and how far the two sides' fold scores are apart (they should agree to float32 rounding).
On a CPU this only shows that it runs: XLA runs the compiled loop slower there.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description="device loop vs fit (jax backend)")
    parser.add_argument("--images", type=int, default=10_000)
    parser.add_argument("--batch-sizes", default="64,512")
    parser.add_argument("--runs", type=int, default=3, help="timed runs per side")
    parser.add_argument("--tuning", action="store_true", help="time a search instead")
    parser.add_argument("--grid", default="epochs=1,init_rate=0.02;0.01,batch_size=64,"
                        "num_filters=32,num_units=512,cv_folds=2,tuning_share=1.0",
                        help="changes to the sample params for --tuning (';' between "
                        "values)")
    args = parser.parse_args()
    os.environ.setdefault("KERAS_BACKEND", "jax")
    import keras

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from fashion_mnist import load_split

    from convonet.core.data import Dataset, to_float32
    from convonet.core.model import build_model
    from convonet.core.params import HyperParams
    from convonet.core.training import NetTraining

    x, y = load_split("train")
    data = Dataset(x=to_float32(x[:args.images, ..., None]),
                   y=y[:args.images].astype(np.int64),
                   class_names=[str(i) for i in range(10)], root=None)
    print(f"keras {keras.__version__} on {keras.backend.backend()}, {len(data)} images "
          f"({data.x.dtype}), {os.cpu_count()} CPUs", flush=True)
    if args.tuning:
        time_tuning(data, args.grid, args.runs)
        return
    for batch_size in (int(b) for b in args.batch_sizes.split(",")):
        hp = HyperParams.load(ROOT / "app_input" / "mnist_hyper_params.json").edit(
            epochs=1, batch_size=batch_size, patience=0)
        config = hp.first()
        models = {mode: build_model(config, data.image_shape, data.num_classes)
                  for mode in ("on", "off")}
        times: dict[str, list[float]] = {"on": [], "off": []}
        for run in range(args.runs + 1):
            for mode, model in models.items():
                os.environ["CONVONET_DEVICE_LOOP"] = mode
                started = time.perf_counter()
                history = NetTraining(model, hp).train(data)
                seconds = time.perf_counter() - started
                print(f"batch {batch_size} {'warm-up' if run == 0 else f'run {run}'} "
                      f"device loop {mode}: {seconds:.2f} s, loss "
                      f"{history.rows[-1].loss:.4f}", flush=True)
                if run:
                    times[mode].append(seconds)
        on, off = statistics.median(times["on"]), statistics.median(times["off"])
        print(f"batch {batch_size}: device loop {on:.2f} s/epoch, fit {off:.2f} s/epoch, "
              f"ratio {on / off:.2f} (spread on {min(times['on']):.2f}-"
              f"{max(times['on']):.2f}, off {min(times['off']):.2f}-"
              f"{max(times['off']):.2f})", flush=True)


def time_tuning(data: Any, grid: str, runs: int) -> None:
    """The search on and off, interleaved (the first round, compiling, is dropped)."""
    from convonet.core.params import HyperParams
    from convonet.core.tuning import FoldEnd, tune

    changes = dict(item.split("=", 1) for item in grid.split(","))
    hp = HyperParams.load(ROOT / "app_input" / "mnist_hyper_params.json").edit(
        **{k: v.replace(";", ",") for k, v in changes.items()})
    times: dict[str, list[float]] = {"on": [], "off": []}
    scores: dict[str, list[tuple[float, float]]] = {}
    for run in range(runs + 1):
        for mode in ("on", "off"):
            os.environ["CONVONET_DEVICE_LOOP"] = mode
            folds: list[tuple[float, float]] = []
            started = time.perf_counter()
            tune(data.x, data.y, hp,
                 report=lambda e, f=folds: f.append((e.accuracy, e.loss))
                 if isinstance(e, FoldEnd) else None)
            seconds = time.perf_counter() - started
            scores[mode] = folds
            print(f"tuning {'warm-up' if run == 0 else f'run {run}'} device loop {mode}: "
                  f"{seconds:.2f} s, {len(folds)} folds", flush=True)
            if run:
                times[mode].append(seconds)
    apart = max((abs(a[i] - b[i]) for a, b in zip(scores["on"], scores["off"],
                                                  strict=True) for i in (0, 1)), default=0.0)
    on, off = statistics.median(times["on"]), statistics.median(times["off"])
    print(f"tuning: device loop {on:.2f} s, estimator's fit {off:.2f} s, ratio "
          f"{on / off:.2f}; fold scores at most {apart:.2e} apart", flush=True)


if __name__ == "__main__":
    main()
