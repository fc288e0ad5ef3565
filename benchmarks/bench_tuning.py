"""Tuning strategies: the full grid against successive halving, on a Fashion-MNIST subset.

    python benchmarks/bench_tuning.py [--limit 12000] [--epochs 3]

Both searches run as the app and ``convonet tune`` run them (``execute(TuneSpec)``, run
folders and fold records included, in a temporary results folder) on the same subset, grid
and folds: 32 combinations (init_rate x batch_size x num_filters x num_units, the size of
the seed's MNIST grid), 3 folds.
For each: wall time, fits, the best combination and its cross-validated accuracy, and that
combination's test accuracy after retraining on the whole subset (all 10,000 test
images), at the retraining's final epoch: the combination is chosen by cross-validation
on the subset, never on the test set.
Also the resident memory after every fit of the grid (it should stay flat), from
/proc/self/statm. Writes benchmarks/results/tuning.json. Target: halving at most 40% of
the grid's time with its best within 0.5 points.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
from bench_common import rss_mb  # noqa: E402
from fashion_mnist import write_pngs  # noqa: E402

from convonet.core.data import DataPrep  # noqa: E402
from convonet.core.events import Event  # noqa: E402
from convonet.core.model import NetModel  # noqa: E402
from convonet.core.params import DataParams, HyperParams  # noqa: E402
from convonet.core.tuning import FoldEnd  # noqa: E402
from convonet.tasks import execute  # noqa: E402
from convonet.tasks.testing import EvaluateSpec  # noqa: E402
from convonet.tasks.train import TrainSpec  # noqa: E402
from convonet.tasks.tune import TuneSpec  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"


def main() -> None:
    parser = argparse.ArgumentParser(description="Tuning benchmark")
    parser.add_argument("--limit", type=int, default=12000, help="training images used")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--data", type=Path, default=Path("datasets"))
    parser.add_argument("--results-dir", type=Path, default=None,
                        help="where the run folders go (default: a temporary folder)")
    args = parser.parse_args()
    records = args.results_dir or Path(tempfile.mkdtemp(prefix="convonet-bench-"))

    root = write_pngs(args.data / "fashion-mnist")
    dp = DataParams({"image_size": [28, 28], "color_mode": "grayscale"}).edit(
        train_dir=str(root / "train"), test_dir=str(root / "test"))
    prep = DataPrep(dp)
    train = prep.prep_data("train")
    test = prep.prep_data("test", train_classes=train.class_names)
    train.x, train.y = train.x[: args.limit], train.y[: args.limit]
    base = HyperParams.new().edit(
        batch_size="64,128", epochs=args.epochs, init_rate="0.05,0.02,0.01,0.005",
        decay=0.1, num_filters="16,32", num_units="128,256", dropout=0.3, cv_folds=3,
        tuning_share=1.0, seed=42)

    results: dict[str, object] = {}
    for strategy in ("grid", "halving"):
        hp = base.edit(search=strategy)
        memory: list[float] = []

        def report(event: Event, memory: list[float] = memory,
                   strategy: str = strategy) -> None:
            if isinstance(event, FoldEnd):
                memory.append(round(rss_mb(), 1))
                print(f"  {strategy}: fit {event.fits_done}/{event.total_fits} "
                      f"acc {event.accuracy:.4f} ({event.seconds:.1f} s)", flush=True)

        t0 = time.perf_counter()
        result = execute(TuneSpec(hyper_params=hp, train_set=train, results_dir=records),
                         report=report).result
        wall = time.perf_counter() - t0
        best_hp = hp.apply(result.best_params)
        model = NetModel(best_hp).build(train.image_shape, train.num_classes)
        execute(TrainSpec(model=model, hyper_params=best_hp, dataset=train,
                          results_dir=records))
        test_acc = execute(EvaluateSpec(model=model, dataset=test,
                                        results_dir=records)).evaluation.accuracy
        results[strategy] = {
            "wall_s": wall, "fits": result.fits_done, "best_params": result.best_params,
            "best_cv_accuracy": result.best_score, "test_accuracy_after_retraining": test_acc,
            "rss_mb_after_each_fit": memory,
        }
        print(f"{strategy}: {wall:.0f} s, {result.fits_done} fits, best {result.best_params} "
              f"cv {result.best_score:.4f}, test {test_acc:.4f}", flush=True)

    grid, halving = results["grid"], results["halving"]  # type: ignore[assignment]
    ratio = halving["wall_s"] / grid["wall_s"]  # type: ignore[index]
    gap = (grid["test_accuracy_after_retraining"]  # type: ignore[index]
           - halving["test_accuracy_after_retraining"]) * 100  # type: ignore[index]
    mem = grid["rss_mb_after_each_fit"]  # type: ignore[index]
    print(f"\nhalving/grid time {ratio:.2f} (target <= 0.40); test accuracy gap of the "
          "CV-chosen bests (final epoch of retraining) "
          f"{gap:+.2f} points (target within 0.5); grid RSS first/last fit "
          f"{mem[0]:.0f}/{mem[-1]:.0f} MB over {len(mem)} fits")
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / "tuning.json"
    out.write_text(json.dumps({
        "date": time.strftime("%Y-%m-%d"), "backend": keras.backend.backend(),
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform()},
        "images": len(train.y), "epochs": args.epochs, "results": results,
        "halving_over_grid_time": ratio, "test_accuracy_gap_points": gap}, indent=2,
        default=str))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
