"""Accuracy and memory: the sample hyper params on all of Fashion-MNIST.

    python benchmarks/bench_accuracy.py [--epochs 15]
        [--hyper-params app_input/mnist_hyper_params.json]

Trains the reference CNN through the app's core (``NetTraining.train_val``: the 60,000
training images less the hyper params' ``validation_split``, held out stratified and
seeded as the app holds it out; the sample hyper params' first values, ``--epochs``
epochs, early stopping off so every epoch runs). After training, evaluates the 10,000
test images twice: with the final epoch's weights and with the weights of the epoch with
the best validation accuracy. The test set never chooses anything. Prints validation
accuracy per epoch, both test accuracies (each labelled), and the peak resident memory
of the process (loading + training), and writes benchmarks/results/accuracy.json.
Target: at least 92.0% within 15 epochs, at the validation-chosen epoch.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import sys
import time
from dataclasses import asdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
from fashion_mnist import write_pngs  # noqa: E402
from honest_accuracy import ValidationChoice, final_and_chosen  # noqa: E402

from convonet.core.data import DataPrep  # noqa: E402
from convonet.core.model import NetModel  # noqa: E402
from convonet.core.params import DataParams, HyperParams  # noqa: E402
from convonet.core.training import NetTraining  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
RESULTS = Path(__file__).resolve().parent / "results"


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


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
    # Early stopping is off so every epoch runs; the epoch is chosen on validation after.
    hp = HyperParams.load(args.hyper_params).edit(epochs=args.epochs, patience=0)
    net = NetModel(hp)
    model = net.build(train.image_shape, train.num_classes, train.class_names)
    choice = ValidationChoice()
    t0 = time.perf_counter()
    NetTraining(model, hp).train_val(train, callbacks=[choice])
    train_s = time.perf_counter() - t0
    honest = final_and_chosen(model, choice, test)
    print(f"\ntest accuracy {honest.chosen_test_accuracy:.4f} at epoch "
          f"{honest.chosen_epoch}, chosen on validation (val acc "
          f"{honest.chosen_val_accuracy:.4f}; target >= 0.920); "
          f"{honest.final_test_accuracy:.4f} at the final epoch {honest.final_epoch}; "
          f"{len(test)} test images; {train_s / args.epochs:.1f} s/epoch; "
          f"load {load_s:.1f} s; peak RSS after loading {rss_after_load:.0f} MB, after "
          f"training {peak_rss_mb():.0f} MB")
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / "accuracy.json"
    out.write_text(json.dumps({
        "date": time.strftime("%Y-%m-%d"), "backend": keras.backend.backend(),
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform()},
        "hyper_params": hp.first(), "epochs": choice.rows, "test": asdict(honest),
        "method": "epoch chosen on the validation split; test evaluated after training",
        "seconds_per_epoch": train_s / args.epochs, "load_s": load_s,
        "peak_rss_mb_after_load": rss_after_load, "peak_rss_mb": peak_rss_mb()}, indent=2))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
