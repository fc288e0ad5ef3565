"""Training overhead: the app's core (callbacks and event forwarding) against plain fit.

    python benchmarks/bench_training.py [--epochs 3] [--limit N] [--batch-size 64]

Both sides train the reference CNN (the sample MNIST hyper params' first values) on the
Fashion-MNIST training set with the same seed, backend and batch size:
- ``plain``: ``model.fit(x, y, verbose=0)``, what a script would do;
- ``core``: ``execute(TrainSpec(...))``, the recorded training the app and ``convonet
  train`` run (a run folder with the start model, a checkpoint and a history row each
  epoch, the model saved at the end), with a reporter that hands every event to another
  thread through a queue, as the app's worker does with ``post_message``. Its run folders
  go to a temporary folder (``--results-dir`` to keep them).
They alternate epoch runs (plain, core, plain, core ...). Prints the median seconds per
epoch, the median of the per-run ratios core/plain, and the ratio of the fastest epochs
(min core / min plain), and writes benchmarks/results/training.json. On this 2-core
machine an epoch of the full set takes either about 12 s or about 21 s, on either side and
with a plain ``fit`` alone as well (six plain epochs in a row: 21.6, 11.7, 11.2, 10.9,
20.9, 12.0 s), so medians of a few runs can land in different modes; the fastest epochs
are the cost without that noise.
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
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
from bench_common import QueueForwarder  # noqa: E402
from fashion_mnist import write_pngs  # noqa: E402

from convonet.core.model import build_model  # noqa: E402
from convonet.core.params import DataParams, HyperParams  # noqa: E402
from convonet.tasks import execute  # noqa: E402
from convonet.tasks.load import LoadSpec  # noqa: E402
from convonet.tasks.train import TrainSpec  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
RESULTS = Path(__file__).resolve().parent / "results"


def main() -> None:
    parser = argparse.ArgumentParser(description="Training overhead benchmark")
    parser.add_argument("--epochs", type=int, default=3, help="epoch runs per side")
    parser.add_argument("--limit", type=int, default=None, help="images (default: 60,000)")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--data", type=Path, default=Path("datasets"))
    parser.add_argument("--train-dir", type=Path, default=None,
                        help="a folder of class folders of 28x28 grayscale images "
                        "(default: Fashion-MNIST written under --data)")
    parser.add_argument("--results-dir", type=Path, default=None,
                        help="where the core side's run folders go (default: a temporary "
                        "folder)")
    parser.add_argument("--out", type=Path, default=RESULTS / "training.json",
                        help="results file (default: benchmarks/results/training.json)")
    args = parser.parse_args()

    train_dir = args.train_dir or write_pngs(args.data / "fashion-mnist") / "train"
    dp = DataParams({"image_size": [28, 28], "color_mode": "grayscale"}).edit(
        train_dir=str(train_dir))
    ds = execute(LoadSpec(dp, "train")).dataset
    records = args.results_dir or Path(tempfile.mkdtemp(prefix="convonet-bench-"))
    if args.limit:
        ds.x, ds.y = ds.x[: args.limit], ds.y[: args.limit]
    hp = HyperParams.load(ROOT / "app_input" / "mnist_hyper_params.json").edit(
        epochs=1, batch_size=args.batch_size, patience=0)
    config = hp.first()

    plain_model = build_model(config, ds.image_shape, ds.num_classes)
    core_model = build_model(config, ds.image_shape, ds.num_classes)
    times: dict[str, list[float]] = {"plain": [], "core": []}
    events = 0
    for run in range(args.epochs + 1):  # the first pair warms up (graph tracing) and is dropped
        keras.utils.set_random_seed(int(config["seed"]))
        t0 = time.perf_counter()
        plain_model.fit(ds.x, ds.y, batch_size=args.batch_size, epochs=1, verbose=0,
                        shuffle=True)
        plain = time.perf_counter() - t0
        forwarder = QueueForwarder()
        t0 = time.perf_counter()
        execute(TrainSpec(model=core_model, hyper_params=hp, dataset=ds, data_params=dp,
                          results_dir=records), report=forwarder)
        core = time.perf_counter() - t0
        forwarder.close()
        events += forwarder.seen
        label = "warm-up" if run == 0 else f"run {run}"
        print(f"{label}: plain {plain:.2f} s, core {core:.2f} s "
              f"({forwarder.seen} events)", flush=True)
        if run:
            times["plain"].append(plain)
            times["core"].append(core)
    med = {k: statistics.median(v) for k, v in times.items()}
    pair_ratios = [c / p for c, p in zip(times["core"], times["plain"], strict=True)]
    ratio = statistics.median(pair_ratios)
    best_ratio = min(times["core"]) / min(times["plain"])
    print(f"\nmedian s/epoch on {len(ds.y)} images, batch {args.batch_size}, backend "
          f"{keras.backend.backend()}: plain {med['plain']:.2f}, core {med['core']:.2f}; "
          f"median of per-run ratios {ratio:.3f} (target <= 1.05; each: "
          f"{', '.join(f'{r:.2f}' for r in pair_ratios)}); fastest epochs "
          f"{min(times['core']):.2f} / {min(times['plain']):.2f} = {best_ratio:.3f}")
    out = args.out
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({
        "date": time.strftime("%Y-%m-%d"), "backend": keras.backend.backend(),
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform()},
        "images": len(ds.y), "batch_size": args.batch_size, "runs_s": times,
        "median_s": med, "ratio_core_over_plain": ratio,
        "per_run_ratios": pair_ratios, "ratio_fastest_core_over_fastest_plain":
        best_ratio, "fastest_s": {k: min(v) for k, v in times.items()}}, indent=2))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
