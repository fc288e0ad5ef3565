"""The parts of the GPU benchmark that need a process of their own (``bench_gpu.py`` runs
them): the first epoch of a new process, with a cold and then a warm compile cache, and
tuning the sample grid with the device loop on and off.

    python benchmarks/gpu_phases.py --phase first-epoch|tune --npz PATH [--limit N] ...

Each child prints one JSON line; ``run_phases`` starts them with the environment each
needs (``CONVONET_COMPILE_CACHE``, ``CONVONET_DEVICE_LOOP``) and gathers the lines.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))


def first_epoch(npz: Path, limit: int | None, batch_size: int) -> dict[str, Any]:
    """One recorded one-epoch training in a fresh process: wall time and compile time."""
    from bench_common import QueueForwarder
    from bench_gpu import load_npz

    from convonet.core.events import Compiling, EpochEnd
    from convonet.core.model import build_model
    from convonet.core.params import HyperParams
    from convonet.tasks import execute
    from convonet.tasks.train import TrainSpec

    train, _ = load_npz(npz, limit)
    hp = HyperParams.load(ROOT / "app_input" / "mnist_hyper_params.json").edit(
        epochs=1, batch_size=batch_size, patience=0)
    model = build_model(hp.first(), train.image_shape, train.num_classes)
    seen: list[Any] = []
    forwarder = QueueForwarder()

    def report(event: Any) -> None:
        if isinstance(event, (Compiling, EpochEnd)):
            seen.append(event)
        forwarder(event)

    t0 = time.perf_counter()
    execute(TrainSpec(model=model, hyper_params=hp, dataset=train,
                      results_dir=tempfile.mkdtemp(prefix="convonet-bench-")), report=report)
    wall = time.perf_counter() - t0
    forwarder.close()
    compiled = [e.seconds for e in seen if isinstance(e, Compiling) and e.seconds is not None]
    epoch = [e.seconds for e in seen if isinstance(e, EpochEnd)]
    return {"first_epoch_wall_s": wall, "epoch_s": epoch[0] if epoch else None,
            "compile_s": compiled[0] if compiled else None}


def tune(npz: Path, limit: int | None, edits: dict[str, Any]) -> dict[str, Any]:
    """The sample MNIST grid through ``execute(TuneSpec)``, as ``convonet tune`` runs it."""
    from bench_gpu import load_npz

    from convonet.core.params import HyperParams
    from convonet.tasks import execute
    from convonet.tasks.tune import TuneSpec

    train, _ = load_npz(npz, limit)
    hp = HyperParams.load(ROOT / "app_input" / "mnist_hyper_params.json")
    if edits:
        hp = hp.edit(**edits)
    t0 = time.perf_counter()
    outcome = execute(TuneSpec(hyper_params=hp, train_set=train,
                               results_dir=tempfile.mkdtemp(prefix="convonet-bench-")))
    seconds = time.perf_counter() - t0
    result = outcome.result
    return {"seconds": seconds, "status": str(outcome.status),
            "best_params": getattr(result, "best_params", None),
            "best_score": getattr(result, "best_score", None)}


def _child(args: list[str], env: dict[str, str]) -> dict[str, Any]:
    done = subprocess.run([sys.executable, str(Path(__file__).resolve()), *args],
                          env={**os.environ, **env}, capture_output=True, text=True)
    if done.returncode != 0:
        return {"error": (done.stderr.strip().splitlines() or ["failed"])[-1]}
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def run_phases(npz: Path, limit: int | None, batch_size: int, tune_edits: dict[str, Any],
               tune_limit: int | None, without_tf: bool, skip_tune: bool) -> dict[str, Any]:
    """First epochs (cold, then warm compile cache) and tuning (device loop on, off)."""
    common = ["--npz", str(npz)] + (["--without-tensorflow"] if without_tf else [])
    cache = tempfile.mkdtemp(prefix="convonet-compile-cache-")
    out: dict[str, Any] = {}
    first = [*common, "--phase", "first-epoch", "--batch-size", str(batch_size)]
    if limit:
        first += ["--limit", str(limit)]
    for name in ("cold_cache", "warm_cache"):
        out[f"first_epoch_{name}"] = _child(first, {"CONVONET_COMPILE_CACHE": cache})
        print(f"first epoch, new process, {name.replace('_', ' ')}: "
              f"{out[f'first_epoch_{name}']}", flush=True)
    if skip_tune:
        return out
    tuning = [*common, "--phase", "tune", "--edits", json.dumps(tune_edits)]
    if tune_limit:
        tuning += ["--limit", str(tune_limit)]
    # Today's path: fit, nothing cached; the new one: the device loop, a cold cache.
    sides = {"device_loop_off": {"CONVONET_DEVICE_LOOP": "off", "CONVONET_COMPILE_CACHE": "off"},
             "device_loop_on": {"CONVONET_DEVICE_LOOP": "on",
                                "CONVONET_COMPILE_CACHE": tempfile.mkdtemp(
                                    prefix="convonet-compile-cache-")}}
    for name, env in sides.items():
        out[f"tune_{name}"] = _child(tuning, env)
        print(f"tuning the sample grid, {name.replace('_', ' ')}: {out[f'tune_{name}']}",
              flush=True)
    off, on = out["tune_device_loop_off"], out["tune_device_loop_on"]
    if "seconds" in off and "seconds" in on:
        out["tune_speedup"] = off["seconds"] / on["seconds"]
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--phase", choices=("first-epoch", "tune"), required=True)
    parser.add_argument("--npz", type=Path, required=True)
    parser.add_argument("--limit", type=int, default=None)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--edits", default="{}", help="JSON edits of the sample grid")
    parser.add_argument("--without-tensorflow", action="store_true")
    args = parser.parse_args()
    if args.without_tensorflow:
        from bench_common import block_tensorflow

        block_tensorflow()
    os.environ.setdefault("KERAS_BACKEND", "jax")
    result = (first_epoch(args.npz, args.limit, args.batch_size) if args.phase == "first-epoch"
              else tune(args.npz, args.limit, json.loads(args.edits)))
    result["tensorflow_imported"] = "tensorflow" in sys.modules
    print(json.dumps(result, default=str))


if __name__ == "__main__":
    main()
