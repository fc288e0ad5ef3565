"""Accuracy and memory: the sample hyper params on all of Fashion-MNIST.

    python benchmarks/bench_accuracy.py [--epochs 15]
        [--hyper-params app_input/mnist_hyper_params.json]

Trains the reference CNN through the app's core (``NetTraining.train`` on the 60,000
training images, the sample hyper params' first values, epochs set to ``--epochs``) and
evaluates the 10,000 test images after every epoch. Prints test accuracy per epoch, the
best, and the peak resident memory of the process (loading + training), and writes
benchmarks/results/accuracy.json. Target: at least 92.0% within 15 epochs.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
from fashion_mnist import write_pngs  # noqa: E402

from convonet.core.data import DataPrep  # noqa: E402
from convonet.core.model import NetModel  # noqa: E402
from convonet.core.params import DataParams, HyperParams  # noqa: E402
from convonet.core.testing import NetTesting  # noqa: E402
from convonet.core.training import NetTraining  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
RESULTS = Path(__file__).resolve().parent / "results"


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


class TestEachEpoch(keras.callbacks.Callback):
    def __init__(self, test) -> None:  # type: ignore[no-untyped-def]
        super().__init__()
        self.test = test
        self.rows: list[dict[str, float]] = []

    def on_epoch_end(self, epoch: int, logs=None) -> None:  # type: ignore[no-untyped-def]
        ev = NetTesting(self.model).evaluate(self.test)
        self.rows.append({"epoch": epoch + 1, "test_accuracy": ev.accuracy,
                          "test_loss": ev.loss, "train_accuracy": float(logs["accuracy"])})
        print(f"epoch {epoch + 1:2d}: train acc {logs['accuracy']:.4f}  test acc "
              f"{ev.accuracy:.4f}  test loss {ev.loss:.4f}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description="Accuracy benchmark")
    parser.add_argument("--epochs", type=int, default=15)
    parser.add_argument("--hyper-params", type=Path,
                        default=ROOT / "app_input" / "mnist_hyper_params.json")
    parser.add_argument("--data", type=Path, default=Path("datasets"))
    args = parser.parse_args()

    root = write_pngs(args.data / "fashion-mnist")
    dp = DataParams({"image_size": [28, 28], "color_mode": "grayscale"}).edit(
        train_dir=str(root / "train"), test_dir=str(root / "test"))
    t0 = time.perf_counter()
    prep = DataPrep(dp)
    train = prep.prep_data("train")
    test = prep.prep_data("test", train_classes=train.class_names)
    load_s = time.perf_counter() - t0
    rss_after_load = peak_rss_mb()
    # Early stopping watches the training loss here (no validation split), so it is off:
    # the benchmark reports every epoch's test accuracy instead.
    hp = HyperParams.load(args.hyper_params).edit(epochs=args.epochs, patience=0)
    net = NetModel(hp)
    model = net.build(train.image_shape, train.num_classes, train.class_names)
    probe = TestEachEpoch(test)
    t0 = time.perf_counter()
    NetTraining(model, hp).train(train, callbacks=[probe])
    train_s = time.perf_counter() - t0
    best = max(probe.rows, key=lambda r: r["test_accuracy"])
    print(f"\nbest test accuracy {best['test_accuracy']:.4f} at epoch {best['epoch']} "
          f"(target >= 0.920); final {probe.rows[-1]['test_accuracy']:.4f}; "
          f"{train_s / args.epochs:.1f} s/epoch; load {load_s:.1f} s; "
          f"peak RSS after loading {rss_after_load:.0f} MB, after training "
          f"{peak_rss_mb():.0f} MB")
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / "accuracy.json"
    out.write_text(json.dumps({
        "date": time.strftime("%Y-%m-%d"), "backend": keras.backend.backend(),
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform()},
        "hyper_params": hp.first(), "epochs": probe.rows, "best": best,
        "seconds_per_epoch": train_s / args.epochs, "load_s": load_s,
        "peak_rss_mb_after_load": rss_after_load, "peak_rss_mb": peak_rss_mb()}, indent=2))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
