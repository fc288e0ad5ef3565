"""TensorFlow on a CPU: ``steps_per_execution`` and ``jit_compile`` for the reference CNN.

    python benchmarks/bench_tf_options.py [--limit 20000] [--rounds 3] [--batch-size 64]

One model per setting (same start weights), one epoch of plain ``fit`` each in turn, round
after round; the first round (tracing, XLA compiling) is dropped. Prints each setting's
median seconds per epoch and its median ratio to the default (1 step, no XLA) over the
rounds. Writes benchmarks/results/tf_options.json.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
from bench_common import interleave, pair_stats, ratio_text  # noqa: E402
from fashion_mnist import load_split  # noqa: E402

from convonet.core.model import build_model  # noqa: E402
from convonet.core.params import HyperParams  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
SETTINGS = [(1, False), (8, False), (32, False), (1, True), (8, True), (32, True)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--limit", type=int, default=20000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--settings", default=None,
                        help="steps:xla pairs, e.g. 1:off,32:off (default: all six)")
    parser.add_argument("--out", type=Path,
                        default=Path(__file__).resolve().parent / "results" / "tf_options.json")
    args = parser.parse_args()
    images, labels = load_split("train")
    x = (images[: args.limit].astype(np.float32) / 255.0)[..., None]
    y = labels[: args.limit].astype(np.int64)
    config = HyperParams.load(ROOT / "app_input" / "mnist_hyper_params.json").first()
    settings = SETTINGS if not args.settings else [
        (int(a), b == "on") for a, b in (p.split(":") for p in args.settings.split(","))]
    sides = {}
    for steps, jit in settings:
        keras.utils.set_random_seed(int(config["seed"]))
        model = build_model(config, x.shape[1:], 10)
        model.compile(optimizer=model.optimizer, loss=model.loss, metrics=["accuracy"],
                      steps_per_execution=steps, jit_compile=jit)

        def fit(model: keras.Model = model) -> float:
            t0 = time.perf_counter()
            model.fit(x, y, batch_size=args.batch_size, epochs=1, verbose=0, shuffle=True)
            return time.perf_counter() - t0

        sides[f"steps {steps}, xla {'on' if jit else 'off'}"] = fit
    times = interleave(sides, args.rounds)
    base = next(iter(sides))
    print(f"\n{len(y)} images, batch {args.batch_size}, {keras.backend.backend()}, "
          f"{os.cpu_count()} CPUs; median s/epoch and ratio to '{base}':")
    summary = {}
    for name in sides:
        stats = pair_stats(times, name, base)
        summary[name] = {"median_s": statistics.median(times[name]), "vs_default": stats}
        print(f"  {name:>20}: {statistics.median(times[name]):6.2f} s  {ratio_text(stats)}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"date": time.strftime("%Y-%m-%d"), "images": len(y),
                                    "batch_size": args.batch_size, "runs_s": times,
                                    "summary": summary}, indent=2))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
