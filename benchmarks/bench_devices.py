"""One device against data-parallel training on several (``--devices``), on this machine.

    KERAS_BACKEND=jax python benchmarks/bench_devices.py [--images 4000] [--batch-size 64] \
        [--devices all] [--runs 3] [--virtual-cpus 2]

Trains the reference CNN (the sample MNIST hyper params' first values, the same start
weights) for two epochs per run on Fashion-MNIST training images with ``NetTraining.train``:
one device, then the devices ``--devices`` names (``core.distribution``), interleaved; the
first round warms up and is dropped. Prints, for each side, the median seconds of the
runs' first epochs (a data-parallel training trains a fresh copy of the model, so each
run traces and compiles its step again; the compile cache, on as in the app, keeps the
compile short) and of their second epochs (the steady state), the ratio of those, and the
last loss of each side.

Without a GPU, ``--virtual-cpus N`` splits the CPU into N jax devices
(``XLA_FLAGS=--xla_force_host_platform_device_count=N``): that shows the data-parallel path
runs and what its splitting costs there, not a speed-up (the virtual devices share the
same cores). On a box with several GPUs leave it out and give ``--devices all``.
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
    parser = argparse.ArgumentParser(description="one device vs data-parallel training")
    parser.add_argument("--images", type=int, default=4000)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--devices", default="all")
    parser.add_argument("--runs", type=int, default=3, help="timed runs per side")
    parser.add_argument("--virtual-cpus", type=int, default=0,
                        help="split the CPU into this many jax devices (no GPU)")
    args = parser.parse_args()
    os.environ.setdefault("KERAS_BACKEND", "jax")
    if args.virtual_cpus:
        os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") + " --xla_force_host_"
                                   f"platform_device_count={args.virtual_cpus}").strip()
    os.environ.setdefault("CONVONET_DEVICE_LOOP", "off")
    import keras

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from fashion_mnist import load_split

    from convonet.core.compile_cache import ensure_compile_cache
    from convonet.core.data import Dataset, to_float32
    from convonet.core.distribution import available_devices, data_parallelism
    from convonet.core.model import build_model
    from convonet.core.params import HyperParams
    from convonet.core.training import NetTraining

    x, y = load_split("train")
    data = Dataset(x=to_float32(x[:args.images, ..., None]),
                   y=y[:args.images].astype(np.int64),
                   class_names=[str(i) for i in range(10)], root=None)
    hp = HyperParams.load(ROOT / "app_input" / "mnist_hyper_params.json").edit(
        epochs=2, batch_size=args.batch_size, patience=0)
    parallel = data_parallelism(args.devices, args.batch_size)
    label = parallel.describe() if parallel is not None else "one device"
    print(f"keras {keras.__version__} on {keras.backend.backend()}, {len(data)} images, "
          f"{os.cpu_count()} CPUs, devices {available_devices()}; {label}", flush=True)
    config = hp.first()
    ensure_compile_cache()
    models = {}
    for side in ("one", "many"):
        keras.utils.set_random_seed(1)
        models[side] = build_model(config, data.image_shape, data.num_classes)
    first: dict[str, list[float]] = {"one": [], "many": []}
    second: dict[str, list[float]] = {"one": [], "many": []}
    losses: dict[str, float] = {}
    for run in range(args.runs + 1):
        for side, model in models.items():
            clock = epoch_clock(keras)
            history = NetTraining(model, hp, distribution=parallel if side == "many"
                                  else None).train(data, [clock])
            losses[side] = history.rows[-1].loss
            print(f"{'warm-up' if run == 0 else f'run {run}'} {side}: epochs "
                  f"{', '.join(f'{t:.2f}' for t in clock.seconds)} s, loss "
                  f"{losses[side]:.4f}", flush=True)
            if run:
                first[side].append(clock.seconds[0])
                second[side].append(clock.seconds[1])
    count = parallel.count if parallel is not None else 1
    med = {side: (statistics.median(first[side]), statistics.median(second[side]))
           for side in first}
    print(f"batch {args.batch_size}: first epoch one device {med['one'][0]:.2f} s, "
          f"{count} devices {med['many'][0]:.2f} s; second epoch one device "
          f"{med['one'][1]:.2f} s, {count} devices {med['many'][1]:.2f} s, ratio "
          f"{med['many'][1] / med['one'][1]:.2f} (spread one {min(second['one']):.2f}-"
          f"{max(second['one']):.2f}, {count} devices {min(second['many']):.2f}-"
          f"{max(second['many']):.2f}); last loss {losses['one']:.4f} vs "
          f"{losses['many']:.4f}", flush=True)


def epoch_clock(keras: Any) -> Any:
    """A callback that keeps each epoch's seconds, from its start to its end."""

    class EpochClock(keras.callbacks.Callback):  # type: ignore[misc,name-defined]
        def __init__(self) -> None:
            super().__init__()
            self.seconds: list[float] = []
            self._started = 0.0

        def on_epoch_begin(self, epoch: int, logs: object = None) -> None:
            self._started = time.perf_counter()

        def on_epoch_end(self, epoch: int, logs: object = None) -> None:
            self.seconds.append(time.perf_counter() - self._started)

    return EpochClock()


if __name__ == "__main__":
    main()
