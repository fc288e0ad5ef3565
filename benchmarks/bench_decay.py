"""Choose the sample MNIST hyper params' ``decay`` on the validation split, then test once.

    nice python benchmarks/bench_decay.py [--decays 0,0.01,0.03,0.1] [--epochs 5]
        [--data /work/fmnist]

For each decay value, trains the reference CNN (the sample hyper params' first values,
``--epochs`` epochs, one seed) on Fashion-MNIST's 60,000 training images less the
hyper params' ``validation_split`` (0.2: 48,000 train, 12,000 validation, stratified and
seeded as the app splits), with early stopping off so every run has the same length.
Each run is scored by its best epoch's validation accuracy; the decay with the best
score wins. Only then are the 10,000 test images evaluated, once, for the winner:
at its validation-chosen epoch and at its final epoch. Writes
benchmarks/results/decay.json.

``--train-limit N`` runs the same comparison on a stratified, seeded subset of N
training images (a shared CPU cannot always afford four times 48,000 images).

``--data`` is a class-per-folder Fashion-MNIST tree (``benchmarks/fashion_mnist.py``
writes one); the decoded arrays are cached, so a second run loads in seconds.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from dataclasses import asdict, replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
from honest_accuracy import ValidationChoice, final_and_chosen  # noqa: E402

from convonet.core.data import DataPrep, Dataset, stratified_split  # noqa: E402
from convonet.core.model import NetModel  # noqa: E402
from convonet.core.params import DataParams, HyperParams  # noqa: E402
from convonet.core.training import NetTraining  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
RESULTS = Path(__file__).resolve().parent / "results"


def subset(train: Dataset, limit: int) -> Dataset:
    """A stratified, seeded subset of ``limit`` training images (the test set is untouched)."""
    _, keep = stratified_split(train.y, limit / len(train.y), 42)
    keep = np.sort(keep)
    return replace(train, x=train.x[keep], y=train.y[keep])


def main() -> None:
    parser = argparse.ArgumentParser(description="Choose decay on the validation split")
    parser.add_argument("--decays", default="0,0.01,0.03,0.1")
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--hyper-params", type=Path,
                        default=ROOT / "app_input" / "mnist_hyper_params.json")
    parser.add_argument("--data", type=Path, default=Path("/work/fmnist"))
    parser.add_argument("--train-limit", type=int, default=None,
                        help="use a stratified, seeded subset of this many training images "
                             "(the validation split is then held out of the subset)")
    args = parser.parse_args()
    decays = [float(d) for d in args.decays.split(",")]

    dp = DataParams({"image_size": [28, 28], "color_mode": "grayscale"}).edit(
        train_dir=str(args.data / "train"), test_dir=str(args.data / "test"))
    prep = DataPrep(dp)
    train = prep.prep_data("train")
    if args.train_limit is not None and args.train_limit < len(train):
        train = subset(train, args.train_limit)
    print(f"{len(train)} training images; decays {decays}; {args.epochs} epochs", flush=True)

    runs = []
    models = {}
    for decay in decays:
        hp = HyperParams.load(args.hyper_params).edit(decay=decay, epochs=args.epochs,
                                                      patience=0)
        model = NetModel(hp).build(train.image_shape, train.num_classes, train.class_names)
        choice = ValidationChoice()
        print(f"decay {decay}:", flush=True)
        t0 = time.perf_counter()
        NetTraining(model, hp).train_val(train, callbacks=[choice])
        seconds = time.perf_counter() - t0
        runs.append({"decay": decay, "best_val_accuracy": choice.best_val_accuracy,
                     "best_epoch": choice.best_epoch,
                     "final_val_accuracy": choice.rows[-1]["val_accuracy"],
                     "seconds": seconds, "epochs": choice.rows})
        models[decay] = (model, choice)
        print(f"  best val acc {choice.best_val_accuracy:.4f} at epoch {choice.best_epoch}; "
              f"{seconds / args.epochs:.1f} s/epoch", flush=True)
        # Keep only the leader's model in memory.
        leader = max(runs, key=lambda r: r["best_val_accuracy"])["decay"]
        models = {leader: models[leader]}

    winner = max(runs, key=lambda r: r["best_val_accuracy"])
    test = prep.prep_data("test", train_classes=train.class_names)
    model, choice = models[winner["decay"]]
    honest = final_and_chosen(model, choice, test)
    print(f"\nchosen on validation: decay {winner['decay']} (val acc "
          f"{winner['best_val_accuracy']:.4f}, epoch {honest.chosen_epoch}); test accuracy "
          f"{honest.chosen_test_accuracy:.4f} at that epoch, "
          f"{honest.final_test_accuracy:.4f} at the final epoch {honest.final_epoch} "
          f"({len(test)} test images)")
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / "decay.json"
    out.write_text(json.dumps({
        "date": time.strftime("%Y-%m-%d"), "backend": keras.backend.backend(),
        "cpus": os.cpu_count(), "hyper_params": HyperParams.load(args.hyper_params).first(),
        "epochs": args.epochs, "train_images": len(train), "runs": runs,
        "chosen_decay": winner["decay"],
        "test": asdict(honest)}, indent=2))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
