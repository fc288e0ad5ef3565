"""The real training path against plain fit, on the backend installed (TensorFlow here).

    python benchmarks/bench_training.py [--rounds 7] [--epochs 1] [--limit N] \
        [--batch-sizes 64,512] [--data datasets]

Both sides train the reference CNN (the sample MNIST hyper params' first values) on the
Fashion-MNIST training set with the same seed, start weights, batch size and time-based
learning-rate decay:
- ``plain``: ``model.fit(x, y, verbose=0, shuffle=True)``, what a script would do;
- ``real``: ``execute(TrainSpec(...))``, the recorded training the app and ``convonet
  train`` run (a run folder with the start model, a checkpoint and a history row each
  epoch, the model saved at the end), with a reporter that hands every event to another
  thread through a queue, as the app's worker does with ``post_message``. Its run folders
  go to a temporary folder (``--results-dir`` to keep them).
Each round runs ``--epochs`` epochs on each side in turn (plain, real, plain, real ...),
continuing from the weights they reached; the first round warms up and is dropped. Prints,
per batch size, the median seconds per epoch, the median of the per-round ratios real/plain
with their spread (min-max and quartiles), and each model's accuracy on the 10,000 test
images after its last epoch (never an epoch picked on the test set); writes
benchmarks/results/training.json.

On this 2-core machine an epoch of the full set takes either about 12 s or about 21 s at
random, on either side (six plain epochs in a row: 21.6, 11.7, 11.2, 10.9, 20.9, 12.0 s), so
the overhead is measured on 20,000 images, where epochs are not bimodal.
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
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
from bench_common import (  # noqa: E402
    QueueForwarder,
    decay_callback,
    interleave,
    pair_stats,
    ratio_text,
)
from fashion_mnist import write_pngs  # noqa: E402

from convonet.core.model import build_model  # noqa: E402
from convonet.core.params import DataParams, HyperParams  # noqa: E402
from convonet.tasks import execute  # noqa: E402
from convonet.tasks.load import LoadSpec  # noqa: E402
from convonet.tasks.train import TrainSpec  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
RESULTS = Path(__file__).resolve().parent / "results"


def main() -> None:
    parser = argparse.ArgumentParser(description="Real training path vs plain fit")
    parser.add_argument("--rounds", type=int, default=7, help="measured rounds per side")
    parser.add_argument("--epochs", type=int, default=1, help="epochs per side per round")
    parser.add_argument("--limit", type=int, default=20000,
                        help="training images (default 20,000; 0: all 60,000)")
    parser.add_argument("--batch-sizes", default="64,512")
    parser.add_argument("--data", type=Path, default=Path("datasets"))
    parser.add_argument("--results-dir", type=Path, default=None,
                        help="where the real side's run folders go (default: temporary)")
    parser.add_argument("--out", type=Path, default=RESULTS / "training.json")
    args = parser.parse_args()

    root = write_pngs(args.data / "fashion-mnist")
    dp = DataParams({"image_size": [28, 28], "color_mode": "grayscale"}).edit(
        train_dir=str(root / "train"), test_dir=str(root / "test"))
    train = execute(LoadSpec(dp, "train")).dataset
    test = execute(LoadSpec(dp, "test", train_classes=tuple(train.class_names))).dataset
    if args.limit:
        train.x, train.y = train.x[: args.limit], train.y[: args.limit]
    records = args.results_dir or Path(tempfile.mkdtemp(prefix="convonet-bench-"))
    results = {str(b): bench_batch_size(int(b), train, test, dp, args.rounds, args.epochs,
                                        records)
               for b in args.batch_sizes.split(",")}

    print(f"\n{len(train.y)} images, backend {keras.backend.backend()}, {args.rounds} rounds "
          f"of {args.epochs} epoch(s) per side; test accuracy on {len(test.y)} images "
          "after the last epoch")
    for batch, res in results.items():
        med, acc = res["median_s_per_epoch"], res["test_accuracy"]
        print(f"batch {batch}: s/epoch plain {med['plain']:.2f}, real {med['real']:.2f}; "
              f"real/plain {ratio_text(res['real_over_plain'])} (target <= 1.05); "
              f"accuracy plain {acc['plain']:.2%}, real {acc['real']:.2%}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({
        "date": time.strftime("%Y-%m-%d"), "backend": keras.backend.backend(),
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform()},
        "images": len(train.y), "test_images": len(test.y), "rounds": args.rounds,
        "epochs_per_round": args.epochs, "batch_sizes": results}, indent=2))
    print(f"wrote {args.out}")


def bench_batch_size(batch_size: int, train: Any, test: Any, dp: DataParams, rounds: int,
                     epochs: int, records: Path) -> dict[str, Any]:
    hp = HyperParams.load(ROOT / "app_input" / "mnist_hyper_params.json").edit(
        epochs=epochs, batch_size=batch_size, patience=0)
    config = hp.first()
    seed = int(config["seed"])
    models = {}
    for side in ("plain", "real"):
        keras.utils.set_random_seed(seed)  # the same start weights on both sides
        models[side] = build_model(config, train.image_shape, train.num_classes)
    events = []

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
                          data_params=dp, results_dir=records), report=forwarder)
        seconds = (time.perf_counter() - t0) / epochs
        forwarder.close()
        events.append(forwarder.seen)
        return seconds

    times = interleave({"plain": plain, "real": real}, rounds, f"batch {batch_size} ")
    accuracy = {side: float(model.evaluate(test.x, test.y, batch_size=1024, verbose=0,
                                           return_dict=True)["accuracy"])
                for side, model in models.items()}
    return {"s_per_epoch": times,
            "median_s_per_epoch": {k: statistics.median(v) for k, v in times.items()},
            "real_over_plain": pair_stats(times, "real", "plain"),
            "test_accuracy": accuracy, "epochs_trained": (rounds + 1) * epochs,
            "events_per_round": events}


if __name__ == "__main__":
    main()
