"""The small-medical-set benchmark: the seed's lung sample against the medical sample on
a 4-class RGB set of a few hundred mixed-size images.

    python benchmarks/bench_medical.py [--data datasets/small-rgb] [--set-seed 0]
        [--epochs 15] [--samples lung,medical]

Builds the set with ``make_small_rgb_set.py`` (600 training, 160 test images, read at
128x128 RGB), then trains each sample's first values through the project's own path,
``execute(TrainSpec(...))`` with validation (the hyper params' ``validation_split``:
480 training and 120 validation images), ``--epochs`` epochs, early stopping off so
every epoch runs unless the divergence check stops the run. The epoch is chosen on the
validation split (best validation accuracy); the test set is evaluated after training,
with that epoch's weights and with the final epoch's, and chooses nothing. Prints, per
sample: whether training diverged or collapsed (and at which epoch), the chosen epoch,
its validation and test accuracy, the final epoch's, and the training time; writes
benchmarks/results/medical.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
from honest_accuracy import ValidationChoice, final_and_chosen  # noqa: E402
from make_small_rgb_set import make_set  # noqa: E402

from convonet.core.data import DataPrep  # noqa: E402
from convonet.core.events import Event, Notice  # noqa: E402
from convonet.core.model import NetModel  # noqa: E402
from convonet.core.params import DataParams, HyperParams  # noqa: E402
from convonet.tasks import execute  # noqa: E402
from convonet.tasks.train import TrainSpec  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
RESULTS = Path(__file__).resolve().parent / "results"
SAMPLES = {"lung": ROOT / "app_input" / "lung-hyper-params-1.json",
           "medical": ROOT / "app_input" / "medical-hyper-params.json"}
#: Training accuracy at most this far above chance counts as collapsed (the divergence
#: check's own margin), so a collapse the check did not stop on is still reported.
CHANCE_MARGIN = 0.02


def collapsed_epochs(rows: list[dict[str, float]], chance: float) -> list[int]:
    """The epochs whose training accuracy is back at chance after having been above it."""
    out, above = [], False
    for row in rows:
        if row["train_accuracy"] > chance + 0.05:
            above = True
        elif above and row["train_accuracy"] <= chance + CHANCE_MARGIN:
            out.append(int(row["epoch"]))
    return out


def train_sample(name: str, path: Path, epochs: int, train: Any, test: Any,
                 dp: DataParams, results_dir: Path) -> dict[str, Any]:
    hp = HyperParams.load(path).edit(epochs=epochs, patience=0)
    model = NetModel(hp).build(train.image_shape, train.num_classes, train.class_names)
    choice = ValidationChoice()
    notices: list[str] = []

    def report(event: Event) -> None:
        if isinstance(event, Notice):
            notices.append(event.text)
            print(f"  notice: {event.text}", flush=True)

    print(f"{name}: {path.name}, {model.count_params():,} parameters", flush=True)
    t0 = time.perf_counter()
    outcome = execute(TrainSpec(model=model, hyper_params=hp, dataset=train, validation=True,
                                results_dir=results_dir, data_params=dp,
                                callbacks=(choice,)), report=report)
    seconds = time.perf_counter() - t0
    honest = final_and_chosen(model, choice, test)
    counts = [int((train.y == c).sum()) for c in range(train.num_classes)]
    chance = max(counts) / sum(counts)
    return {"hyper_params": path.name, "first_values": hp.first(),
            "parameters": int(model.count_params()), "status": str(outcome.status),
            "diverged_epoch": outcome.history.diverged_epoch,
            "diverged_reason": outcome.history.diverged_reason,
            "collapsed_epochs": collapsed_epochs(choice.rows, chance),
            "notices": notices, "epochs": choice.rows, "test": asdict(honest),
            "train_seconds": round(seconds, 1),
            "seconds_per_epoch": round(seconds / max(1, len(choice.rows)), 1)}


def line(name: str, r: dict[str, Any], n_test: int) -> str:
    t = r["test"]
    if r["diverged_epoch"] is not None:
        state = f"diverged at epoch {r['diverged_epoch']} ({r['diverged_reason']})"
    elif r["collapsed_epochs"]:
        state = f"collapsed in epochs {r['collapsed_epochs']} (not stopped)"
    else:
        state = "no collapse"
    return (f"{name}: {state}; chosen epoch {t['chosen_epoch']} (validation accuracy "
            f"{t['chosen_val_accuracy']:.4f}) -> test {t['chosen_test_accuracy']:.4f}; "
            f"final epoch {t['final_epoch']} (validation {t['final_val_accuracy']:.4f}) "
            f"-> test {t['final_test_accuracy']:.4f}; {n_test} test images; "
            f"{r['train_seconds']:.0f} s training ({r['seconds_per_epoch']:.0f} s/epoch)")


def main() -> None:
    parser = argparse.ArgumentParser(description="Small-medical-set benchmark")
    parser.add_argument("--data", type=Path, default=Path("datasets") / "small-rgb")
    parser.add_argument("--set-seed", type=int, default=0)
    parser.add_argument("--epochs", type=int, default=15)
    parser.add_argument("--samples", default="lung,medical")
    args = parser.parse_args()

    dp_path = make_set(args.data, seed=args.set_seed)
    dp = DataParams.load(dp_path)
    prep = DataPrep(dp)
    train = prep.prep_data("train")
    test = prep.prep_data("test", train_classes=train.class_names)
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="convonet-bench-medical-") as records:
        for name in args.samples.split(","):
            results[name] = train_sample(name, SAMPLES[name], args.epochs, train, test, dp,
                                         Path(records))
            print(line(name, results[name], len(test)), flush=True)
    print()
    for name, r in results.items():
        print(line(name, r, len(test)))
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / "medical.json"
    out.write_text(json.dumps({
        "date": time.strftime("%Y-%m-%d"), "backend": keras.backend.backend(),
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform()},
        "set": {"seed": args.set_seed, "train_images": len(train), "test_images": len(test)},
        "method": "epoch chosen on the validation split; test evaluated after training",
        "samples": results}, indent=2, default=str))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
