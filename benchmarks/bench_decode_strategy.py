"""Which decoder the loader should pick, measured as the app runs it.

    python benchmarks/bench_decode_strategy.py [--repeats 3] [--limit N]

Cold loads (empty cache) of the Fashion-MNIST training PNGs (60,000 28x28 files) with each
of the loader's strategies (serial, threads, processes), interleaved, while ``sys.stderr``
is replaced the way Textual replaces it during an app run (``fileno()`` is -1), so the
process pool starts through the same path as in the app. Also reports what ``auto``
picks for this set. Prints a table and writes benchmarks/results/decode_strategy.json.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from fashion_mnist import write_pngs  # noqa: E402

from convonet.core.data import DataPrep  # noqa: E402
from convonet.core.params import DataParams  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"
STRATEGIES = ("serial", "threads", "processes")


class AppLikeStderr:
    """Textual's stand-in for sys.stderr while an app runs: no file descriptor."""

    def write(self, text: str) -> int:
        return len(text)

    def flush(self) -> None:
        pass

    def isatty(self) -> bool:
        return False

    def fileno(self) -> int:
        return -1


def cold_load(params: DataParams, workers: str, cache: Path) -> tuple[float, int, str]:
    shutil.rmtree(cache, ignore_errors=True)
    prep = DataPrep(params, cache_dir=cache, workers=workers)
    real = sys.stderr
    sys.stderr = AppLikeStderr()  # type: ignore[assignment]
    try:
        t0 = time.perf_counter()
        n = len(prep.prep_data("train"))
        elapsed = time.perf_counter() - t0
    finally:
        sys.stderr = real
    return elapsed, n, prep.last_strategy


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--limit", type=int, default=None,
                        help="images per split (default: all 60,000)")
    parser.add_argument("--data", type=Path, default=Path("datasets"))
    args = parser.parse_args()
    tree = write_pngs(args.data / ("fashion-mnist" if args.limit is None
                                   else f"fashion-mnist-{args.limit}"), args.limit)
    params = DataParams({"train_dir": str(tree / "train")})
    cache = Path(tempfile.mkdtemp(prefix="convonet-bench-strategy-"))
    times: dict[str, list[float]] = {s: [] for s in STRATEGIES}
    for r in range(args.repeats):
        for strategy in STRATEGIES:
            elapsed, n, used = cold_load(params, strategy, cache)
            assert used == strategy, (used, strategy)
            times[strategy].append(elapsed)
            print(f"  repeat {r + 1}: {strategy:9s} {elapsed:7.2f} s ({n} images)", flush=True)
    _, _, auto = cold_load(params, "auto", cache)
    shutil.rmtree(cache, ignore_errors=True)
    medians = {s: statistics.median(v) for s, v in times.items()}
    fastest = min(medians, key=medians.__getitem__)
    print("\nstrategy | median cold load | vs serial")
    for s in STRATEGIES:
        print(f"{s} | {medians[s]:.2f} s | {medians['serial'] / medians[s]:.2f}x")
    print(f"auto picks: {auto}; fastest measured: {fastest}")
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / "decode_strategy.json"
    out.write_text(json.dumps({"date": time.strftime("%Y-%m-%d"), "cpus": os.cpu_count(),
                               "runs_s": times, "medians_s": medians, "auto": auto,
                               "fastest": fastest}, indent=2))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
