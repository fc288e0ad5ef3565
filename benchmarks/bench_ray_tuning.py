"""Tuning folds on Ray against the in-process search, on a Fashion-MNIST subset.

    python benchmarks/bench_ray_tuning.py [--limit 1200] [--epochs 1] [--small]

The searches run as ``convonet tune`` runs them (``execute(TuneSpec)``, run folders
included, in a temporary folder), on the same subset, grid (bench_tuning.py's: 32
combinations, 3 folds; ``--small``: 4 of them) and seeds:

1. in process (TensorFlow on every core of this machine), first and last (the faster of
   the two is the reference: the first also pays TensorFlow's first use);
2. through Ray with one worker holding every core (``cpus_per_fold`` = the cores): the
   executor's overhead, target at most 1.10x;
3. through Ray with one single-core worker per core, against (1);
4. two Ray nodes simulated on this machine (``ray.cluster_utils.Cluster``: a head and a
   worker node, one core each), one search over both: which nodes ran folds.

Ray's times are given whole (the local cluster and its workers started, the search, the
cluster shut down) and from the workers being ready (``ExecutorReady``) to the end.
The fold scores of every Ray search are compared with (1)'s. Writes
benchmarks/results/ray_tuning.json.
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
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")

import keras  # noqa: E402
import numpy as np  # noqa: E402
from fashion_mnist import NAMES, load_split  # noqa: E402

from convonet.core.data import Dataset  # noqa: E402
from convonet.core.events import Event  # noqa: E402
from convonet.core.params import HyperParams  # noqa: E402
from convonet.core.tuning import ExecutorReady  # noqa: E402
from convonet.tasks import execute  # noqa: E402
from convonet.tasks.tune import TuneSpec  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"


def subset(limit: int) -> Dataset:
    images, labels = load_split("train")
    x = (images[:limit].astype(np.float32) / 255.0)[..., None]
    return Dataset(x=x, y=labels[:limit].astype(np.int64), class_names=list(NAMES),
                   root=None)


def grid(epochs: int, small: bool) -> HyperParams:
    if small:
        return HyperParams.new().edit(
            batch_size=64, epochs=epochs, init_rate="0.05,0.02", decay=0.1,
            num_filters=16, num_units="128,256", dropout=0.3, cv_folds=3,
            tuning_share=1.0, seed=42)
    return HyperParams.new().edit(
        batch_size="64,128", epochs=epochs, init_rate="0.05,0.02,0.01,0.005", decay=0.1,
        num_filters="16,32", num_units="128,256", dropout=0.3, cv_folds=3,
        tuning_share=1.0, seed=42)


def search(data: Dataset, hp: HyperParams, results: Path, **ray: Any) -> dict[str, Any]:
    ready: list[float] = []

    def report(event: Event) -> None:
        if isinstance(event, ExecutorReady) and not ready:
            ready.append(time.perf_counter())
            print(f"    ready: {[(w.name, w.node_id[:8], w.device) for w in event.workers]}",
                  flush=True)

    t0 = time.perf_counter()
    outcome = execute(TuneSpec(hyper_params=hp, train_set=data, results_dir=results, **ray),
                      report=report)
    t1 = time.perf_counter()
    assert outcome.run is not None
    scores = {f"{f['combination_index']}/{f['fold']}": (f["accuracy"], f["loss"])
              for f in outcome.result.folds}
    return {"wall_s": t1 - t0, "after_ready_s": t1 - (ready[0] if ready else t0),
            "fits": outcome.result.fits_done, "status": str(outcome.status),
            "scores": scores, "executor": outcome.run.info.get("executor", {})}


def two_nodes(data: Dataset, hp: HyperParams, results: Path) -> dict[str, Any]:
    """A head and a worker node, one core each, on this machine; one search over both."""
    import ray
    from ray.cluster_utils import Cluster

    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1})
    cluster.add_node(num_cpus=1)
    cluster.wait_for_nodes()
    ray.init(address=cluster.address, log_to_driver=False)
    try:
        out = search(data, hp, results, ray="auto", cpus_per_fold=1)
    finally:
        ray.shutdown()
        cluster.shutdown()
    out["nodes_in_cluster"] = 2
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description="Ray tuning benchmark")
    parser.add_argument("--limit", type=int, default=1200, help="training images used")
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--small", action="store_true", help="4 combinations, not 32")
    args = parser.parse_args()
    cores = len(os.sched_getaffinity(0))
    data, hp = subset(args.limit), grid(args.epochs, args.small)
    runs = Path(tempfile.mkdtemp(prefix="convonet-bench-ray-"))
    out: dict[str, Any] = {}
    for name, ray in (("in_process", {}),
                      ("ray_one_worker", {"ray": "auto", "cpus_per_fold": cores}),
                      ("ray_single_core_workers", {"ray": "auto", "cpus_per_fold": 1}),
                      ("in_process_again", {})):
        print(f"{name} ...", flush=True)
        out[name] = search(data, hp, runs, **ray)
        print(f"  {out[name]['wall_s']:.1f} s ({out[name]['after_ready_s']:.1f} s after "
              f"the workers were ready), {out[name]['fits']} fits", flush=True)
    print("two_nodes ...", flush=True)
    out["two_nodes"] = two_nodes(data, hp, runs)
    # the faster of the two in-process runs (the first also pays TensorFlow's first use)
    base = min(out["in_process"], out["in_process_again"], key=lambda r: r["wall_s"])
    same = {k: v["scores"] == base["scores"] for k, v in out.items()
            if not k.startswith("in_process")}
    nodes = out["two_nodes"]["executor"].get("nodes", [])
    lines = {
        "ray_one_worker / in_process (whole)":
            out["ray_one_worker"]["wall_s"] / base["wall_s"],
        "ray_one_worker / in_process (after ready), target <= 1.10":
            out["ray_one_worker"]["after_ready_s"] / base["wall_s"],
        f"{cores} single-core workers / one {cores}-core process (whole)":
            out["ray_single_core_workers"]["wall_s"] / base["wall_s"],
        f"{cores} single-core workers / one {cores}-core process (after ready)":
            out["ray_single_core_workers"]["after_ready_s"] / base["wall_s"],
    }
    print()
    for label, ratio in lines.items():
        print(f"{label}: {ratio:.2f}")
    print(f"scores equal to in-process: {same}")
    print(f"two nodes: {len(nodes)} nodes ran folds, {out['two_nodes']['wall_s']:.1f} s")
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / "ray_tuning.json"
    path.write_text(json.dumps({
        "date": time.strftime("%Y-%m-%d"), "backend": keras.backend.backend(),
        "machine": {"cpus": cores, "platform": platform.platform(),
                    "load_at_end": os.getloadavg()},
        "images": args.limit, "epochs": args.epochs, "small": args.small,
        "ratios": lines, "scores_equal": same, "runs": out}, indent=2, default=str))
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
