"""Loading speed: our loader (cold and with a warm cache) against the usual alternatives.

    python benchmarks/bench_loading.py [--repeats 3] [--limit N] [--large 3000]

Sides, run interleaved in one invocation (median of ``--repeats``):
- ``ours_cold``: ``DataPrep.prep_data`` with an empty cache folder (decodes every file);
- ``ours_warm``: the same with the cache written by the cold run;
- ``pillow_loop``: a plain one-file-at-a-time Pillow loop into a float32 array;
- ``keras_idfd``: ``keras.utils.image_dataset_from_directory`` read out to arrays.
On the Fashion-MNIST PNG tree (60,000 28x28 images) and on a generated set of large RGB JPEGs
(300-600 px, resized to 128x128). Prints a table and writes JSON to benchmarks/results/.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from fashion_mnist import write_pngs  # noqa: E402

from convonet.core.data import DataPrep  # noqa: E402
from convonet.core.params import DataParams  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"


def pillow_loop(root: Path, size: tuple[int, int], mode: str) -> int:
    """What a user writes by hand: open, convert, resize, scale, one file after another."""
    classes = sorted(p.name for p in root.iterdir() if p.is_dir())
    xs, ys = [], []
    for index, name in enumerate(classes):
        for path in sorted((root / name).iterdir()):
            with Image.open(path) as im:
                im = im.convert(mode)
                if im.size != (size[1], size[0]):
                    im = im.resize((size[1], size[0]), Image.BILINEAR)
                xs.append(np.asarray(im, dtype=np.float32) / 255.0)
            ys.append(index)
    x = np.stack(xs)
    return len(x)


def keras_idfd(root: Path, size: tuple[int, int], mode: str) -> int:
    import keras

    ds = keras.utils.image_dataset_from_directory(
        root, image_size=size, color_mode=mode, batch_size=1024, shuffle=False, verbose=False)
    n = 0
    for xb, _ in ds:
        n += int(np.asarray(xb).shape[0])
    return n


def ours(root: Path, size: tuple[int, int], mode: str, cache: Path) -> int:
    dp = DataParams({"image_size": list(size), "color_mode": mode})
    dp = dp.edit(train_dir=str(root))
    return len(DataPrep(dp, cache_dir=cache).prep_data("train"))


def make_large_jpegs(out: Path, n: int, seed: int = 0) -> Path:
    marker = out / f".complete-{n}"
    if marker.exists():
        return out
    shutil.rmtree(out, ignore_errors=True)
    rng = np.random.default_rng(seed)
    for i in range(n):
        cls = i % 4
        (out / f"class{cls}").mkdir(parents=True, exist_ok=True)
        h, w = int(rng.integers(300, 601)), int(rng.integers(300, 601))
        # Smooth gradients plus noise: compresses like a photo, not like flat colour.
        yy, xx = np.mgrid[0:h, 0:w]
        base = np.stack([(xx * (cls + 1)) % 256, (yy * 2) % 256, (xx + yy) % 256], -1)
        noise = rng.integers(0, 40, size=(h, w, 3))
        Image.fromarray((base + noise).clip(0, 255).astype(np.uint8)).save(
            out / f"class{cls}" / f"{i:05d}.jpg", quality=90)
    marker.write_text("ok")
    return out


def bench(name: str, sides: dict[str, Callable[[], int]], repeats: int) -> dict[str, object]:
    times: dict[str, list[float]] = {k: [] for k in sides}
    counts: dict[str, int] = {}
    for r in range(repeats):
        for side, fn in sides.items():  # interleaved: each repeat runs every side once
            t0 = time.perf_counter()
            counts[side] = fn()
            times[side].append(time.perf_counter() - t0)
            print(f"  {name} repeat {r + 1}: {side:12s} {times[side][-1]:8.3f} s "
                  f"({counts[side]} images)", flush=True)
    medians = {k: statistics.median(v) for k, v in times.items()}
    return {"set": name, "medians_s": medians, "runs_s": times, "images": counts}


def main() -> None:
    parser = argparse.ArgumentParser(description="Loading benchmark")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--limit", type=int, default=None,
                        help="images per Fashion-MNIST split (default: all 60,000)")
    parser.add_argument("--large", type=int, default=3000, help="large JPEGs to generate")
    parser.add_argument("--data", type=Path, default=Path("datasets"))
    parser.add_argument("--skip-keras", action="store_true")
    args = parser.parse_args()

    fashion = write_pngs(args.data / ("fashion-mnist" if args.limit is None
                                      else f"fashion-mnist-{args.limit}"), args.limit)
    large = make_large_jpegs(args.data / "large-jpegs", args.large)
    results = []
    for name, root, size, mode in (("fashion-mnist train (PNG 28x28)", fashion / "train",
                                    (28, 28), "grayscale"),
                                   (f"large JPEGs x{args.large} -> 128x128", large,
                                    (128, 128), "rgb")):
        cache = Path(tempfile.mkdtemp(prefix="convonet-bench-cache-"))

        def cold(root=root, size=size, mode=mode, cache=cache) -> int:
            shutil.rmtree(cache, ignore_errors=True)
            return ours(root, size, mode, cache)

        def warm(root=root, size=size, mode=mode, cache=cache) -> int:
            return ours(root, size, mode, cache)

        sides: dict[str, Callable[[], int]] = {
            "ours_cold": cold,
            "ours_warm": warm,
            "pillow_loop": lambda root=root, size=size, mode=mode: pillow_loop(
                root, size, "L" if mode == "grayscale" else "RGB"),
        }
        if not args.skip_keras:
            sides["keras_idfd"] = lambda root=root, size=size, mode=mode: keras_idfd(
                root, size, mode)
        res = bench(name, sides, args.repeats)
        med = res["medians_s"]
        res["ratios"] = {
            "pillow_loop / ours_cold": med["pillow_loop"] / med["ours_cold"],
            "ours_warm_s": med["ours_warm"],
        }
        if "keras_idfd" in med:
            res["ratios"]["keras_idfd / ours_cold"] = med["keras_idfd"] / med["ours_cold"]
        results.append(res)
        shutil.rmtree(cache, ignore_errors=True)

    print("\nset | ours cold | ours warm | pillow loop | keras idfd | pillow/ours cold")
    for res in results:
        m = res["medians_s"]
        print(f"{res['set']} | {m['ours_cold']:.2f} s | {m['ours_warm']:.3f} s | "
              f"{m['pillow_loop']:.2f} s | "
              f"{m.get('keras_idfd', float('nan')):.2f} s | "
              f"{res['ratios']['pillow_loop / ours_cold']:.2f}x")
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / "loading.json"
    out.write_text(json.dumps({"date": time.strftime("%Y-%m-%d"), "machine": {
        "cpus": os.cpu_count(), "platform": platform.platform(),
        "python": platform.python_version()}, "results": results}, indent=2))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
