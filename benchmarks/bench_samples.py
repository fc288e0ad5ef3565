"""The samples side by side: the tuned Fashion-MNIST sample against the seed's (MNIST) one.

    python benchmarks/bench_samples.py [--samples fashion,mnist] [--epochs 15]
        [--data datasets/fashion-mnist] [--train-limit N]

Each sample's hyper params (their first values) train through the project's own path,
``execute(TrainSpec(..., validation=True))``: the 60,000 training images less the
``validation_split`` held out stratified and seeded as the app holds it out, ``--epochs``
epochs, early stopping off so every epoch runs. After training, the 10,000 test images
are evaluated twice: with the final epoch's weights and with those of the epoch with the
best validation accuracy. The test set never chooses anything. Prints, per sample: the
chosen epoch, its validation and test accuracy, the final epoch's, training seconds,
seconds per epoch, and whether it stayed within 15 epochs and 10 minutes; the load
average before and after (the CPU may be shared). Writes benchmarks/results/samples.json
(one entry per sample, so the two sides may also run as two invocations).
Target for the Fashion-MNIST sample: at least 93.5% at the validation-chosen epoch.
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
import numpy as np  # noqa: E402
from fashion_mnist import write_pngs  # noqa: E402
from honest_accuracy import ValidationChoice, final_and_chosen  # noqa: E402

from convonet.core.data import DataPrep, Dataset, stratified_split  # noqa: E402
from convonet.core.model import NetModel  # noqa: E402
from convonet.core.params import DataParams, HyperParams  # noqa: E402
from convonet.tasks import execute  # noqa: E402
from convonet.tasks.train import TrainSpec  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
RESULTS = Path(__file__).resolve().parent / "results"
SAMPLES = {"fashion": ROOT / "app_input" / "fashion_mnist_hyper_params.json",
           "mnist": ROOT / "app_input" / "mnist_hyper_params.json"}
MAX_EPOCHS, MAX_SECONDS, TARGET = 15, 600.0, 0.935


class TimedChoice(ValidationChoice):
    """The validation choice, plus each epoch's wall time."""

    def __init__(self) -> None:
        super().__init__()
        self.epoch_seconds: list[float] = []
        self._began = 0.0

    def on_epoch_begin(self, epoch: int, logs: Any = None) -> None:
        self._began = time.perf_counter()

    def on_epoch_end(self, epoch: int, logs: Any = None) -> None:
        self.epoch_seconds.append(time.perf_counter() - self._began)
        super().on_epoch_end(epoch, logs)


def load(data: Path, train_limit: int | None) -> tuple[DataParams, Dataset, Dataset]:
    """The PNG tree through the project's loader (its cache makes a second load quick)."""
    root = data if (data / ".complete").exists() else write_pngs(data)
    dp = DataParams({"image_size": [28, 28], "color_mode": "grayscale"}).edit(
        train_dir=str(root / "train"), test_dir=str(root / "test"))
    prep = DataPrep(dp)
    train = prep.prep_data("train")
    test = prep.prep_data("test", train_classes=train.class_names)
    if train_limit is not None and train_limit < len(train):
        _, keep = stratified_split(train.y, train_limit / len(train), 0)
        keep = np.sort(keep)
        train = Dataset(x=train.x[keep], y=train.y[keep], class_names=train.class_names,
                        root=train.root, fingerprint=f"{train.fingerprint}:{train_limit}")
    return dp, train, test


def bench(name: str, path: Path, epochs: int, dp: DataParams, train: Dataset,
          test: Dataset) -> dict[str, Any]:
    # Early stopping is off so every epoch runs; the epoch is chosen on validation after.
    hp = HyperParams.load(path).edit(epochs=epochs, patience=0)
    model = NetModel(hp).build(train.image_shape, train.num_classes, train.class_names)
    params = int(model.count_params())
    print(f"\n{name}: {path.name}, {params:,} parameters, {len(train):,} training images "
          f"less validation_split {hp.first()['validation_split']}", flush=True)
    choice = TimedChoice()
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory() as results_dir:
        t0 = time.perf_counter()
        outcome = execute(TrainSpec(model=model, hyper_params=hp, dataset=train,
                                    validation=True, results_dir=results_dir,
                                    data_params=dp, callbacks=(choice,)))
        train_s = time.perf_counter() - t0
    honest = final_and_chosen(model, choice, test)
    ran = len(choice.epoch_seconds)
    return {"sample": name, "hyper_params_file": str(path.relative_to(ROOT)),
            "config": hp.first(), "parameters": params, "status": str(outcome.status),
            "train_images": len(train), "test_images": len(test), "epochs_run": ran,
            "train_seconds": train_s, "seconds_per_epoch": train_s / max(ran, 1),
            "epoch_seconds": choice.epoch_seconds, "epochs": choice.rows,
            "test": asdict(honest),
            "within_15_epochs": ran <= MAX_EPOCHS, "within_10_minutes": train_s <= MAX_SECONDS,
            "load_average_before": load_before, "load_average_after": os.getloadavg()}


def line(r: dict[str, Any]) -> str:
    t = r["test"]
    return (f"{r['sample']:8s} chosen epoch {t['chosen_epoch']:2d} (on validation): val "
            f"{t['chosen_val_accuracy']:.4f} test {t['chosen_test_accuracy']:.4f} | final "
            f"epoch {t['final_epoch']:2d}: val {t['final_val_accuracy']:.4f} test "
            f"{t['final_test_accuracy']:.4f} | {r['train_seconds']:.0f} s training, "
            f"{r['seconds_per_epoch']:.1f} s/epoch | within 15 epochs: "
            f"{'yes' if r['within_15_epochs'] else 'no'}, within 10 min: "
            f"{'yes' if r['within_10_minutes'] else 'no'} | load average "
            f"{r['load_average_before'][0]:.1f} -> {r['load_average_after'][0]:.1f}")


def main() -> None:
    parser = argparse.ArgumentParser(description="The samples side by side")
    parser.add_argument("--samples", default="fashion,mnist",
                        help=f"comma-separated, of {', '.join(SAMPLES)}")
    parser.add_argument("--epochs", type=int, default=MAX_EPOCHS)
    parser.add_argument("--data", type=Path, default=Path("datasets/fashion-mnist"))
    parser.add_argument("--train-limit", type=int, default=None,
                        help="a stratified subset of the training images (exploring only)")
    args = parser.parse_args()
    names = [n.strip() for n in args.samples.split(",") if n.strip()]
    unknown = [n for n in names if n not in SAMPLES]
    if unknown:
        parser.error(f"unknown sample(s) {unknown}: use {', '.join(SAMPLES)}")
    dp, train, test = load(args.data, args.train_limit)
    results = []
    for name in names:
        results.append(bench(name, SAMPLES[name], args.epochs, dp, train, test))
        print(line(results[-1]), flush=True)
        if args.train_limit is None:  # an exploration on a subset is not a result
            save(results[-1])
    print()
    for r in results:
        print(line(r))


def save(result: dict[str, Any]) -> None:
    """Adds (or replaces) one sample's entry in results/samples.json, as soon as it ends."""
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / "samples.json"
    previous = json.loads(out.read_text()) if out.exists() else {}
    entries = {**previous.get("samples", {}),
               result["sample"]: {**result, "date": time.strftime("%Y-%m-%d %H:%M")}}
    out.write_text(json.dumps({
        "backend": keras.backend.backend(),
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform()},
        "method": "epoch chosen on the validation split; test evaluated after training",
        "target": {"fashion_test_accuracy": TARGET, "epochs": MAX_EPOCHS,
                   "seconds": MAX_SECONDS},
        "samples": entries}, indent=2))
    print(f"wrote {out}", flush=True)


if __name__ == "__main__":
    main()
