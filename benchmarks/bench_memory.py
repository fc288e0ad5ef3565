"""Memory across a long tuning: the same 32-combination search run twice in one process.

    python benchmarks/bench_memory.py [--limit 2400] [--passes 2]

A Fashion-MNIST subset, 32 combinations (init_rate x batch_size x num_units) x 3 folds,
one epoch each, as the app runs it (``execute(TuneSpec)``, run folder included). After
every fit it records the resident memory (/proc/self/statm); after every pass the number of
live Python objects and of traced gradient functions TensorFlow still holds. Flat means: the second
pass, which fits the very same models again, ends where the first one did. (Within a pass
the level rises with the largest model and batch seen so far: the allocator keeps what it
once needed.) Writes benchmarks/results/memory.json.
"""

from __future__ import annotations

import argparse
import gc
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
from convonet.core.graph_memory import custom_gradient_count  # noqa: E402
from convonet.core.params import DataParams, HyperParams  # noqa: E402
from convonet.core.tuning import FoldEnd  # noqa: E402
from convonet.tasks import execute  # noqa: E402
from convonet.tasks.tune import TuneSpec  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"


def main() -> None:
    parser = argparse.ArgumentParser(description="Memory across a long tuning")
    parser.add_argument("--limit", type=int, default=2400, help="training images used")
    parser.add_argument("--passes", type=int, default=2)
    parser.add_argument("--data", type=Path, default=Path("datasets"))
    args = parser.parse_args()

    root = write_pngs(args.data / "fashion-mnist")
    dp = DataParams({"image_size": [28, 28], "color_mode": "grayscale"}).edit(
        train_dir=str(root / "train"))
    train = DataPrep(dp).prep_data("train")
    train.x, train.y = train.x[: args.limit], train.y[: args.limit]
    y = train.y
    records = Path(tempfile.mkdtemp(prefix="convonet-bench-"))
    hp = HyperParams.new().edit(
        batch_size="64,128", epochs=1, num_filters=16, num_units="64,128",
        init_rate="0.1,0.05,0.02,0.01,0.005,0.002,0.001,0.0005", decay=0.1, cv_folds=3,
        tuning_share=1.0, seed=42)

    per_fit: list[float] = []
    passes = []

    def report(event: Event) -> None:
        if isinstance(event, FoldEnd):
            per_fit.append(round(rss_mb(), 1))

    for n in range(args.passes):
        t0 = time.perf_counter()
        start = len(per_fit)
        # As the app and `convonet tune` run it: run folder and fold records included.
        result = execute(TuneSpec(hyper_params=hp, train_set=train, results_dir=records),
                         report=report).result
        gc.collect()
        this = per_fit[start:]
        passes.append({"fits": result.fits_done, "seconds": time.perf_counter() - t0,
                       "rss_first_mb": this[0], "rss_last_mb": this[-1],
                       "rss_max_mb": max(this), "python_objects": len(gc.get_objects()),
                       "traced_gradients_held": custom_gradient_count()})
        p = passes[-1]
        print(f"pass {n + 1}: {p['fits']} fits in {p['seconds']:.0f} s, RSS "
              f"{p['rss_first_mb']:.0f} -> {p['rss_last_mb']:.0f} MB (max "
              f"{p['rss_max_mb']:.0f}), {p['python_objects']} Python objects, "
              f"{p['traced_gradients_held']} traced gradients held", flush=True)
    growth = passes[-1]["rss_last_mb"] - passes[0]["rss_last_mb"]
    fits_between = sum(p["fits"] for p in passes[1:])
    print(f"\nRSS at the end of the last pass minus the first: {growth:+.0f} MB over "
          f"{fits_between} more fits ({growth / max(1, fits_between):+.2f} MB/fit); "
          f"Python objects {passes[0]['python_objects']} -> "
          f"{passes[-1]['python_objects']}")
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / "memory.json"
    out.write_text(json.dumps({
        "date": time.strftime("%Y-%m-%d"), "backend": keras.backend.backend(),
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform()},
        "images": len(y), "combinations": 32, "folds": 3, "passes": passes,
        "rss_mb_after_each_fit": per_fit, "growth_mb_last_vs_first_pass": growth,
        "growth_mb_per_fit": growth / max(1, fits_between)}, indent=2))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
