"""UI responsiveness while training runs: key press to screen change, in a Pilot run.

    python benchmarks/bench_ui.py [--limit 12000] [--presses 40]

Starts the app headless (Textual's Pilot) on a Fashion-MNIST subset with the reference
CNN, starts "Training only" on the training screen, then, while the worker trains,
switches screens by key (4 -> 2 -> 4 ...) and measures the time from each key press until
the new screen is current and drawn. Reports the median and 90th percentile (target:
median under 100 ms) next to the same measurement with no training running, and writes
benchmarks/results/ui.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402,F401  (imported before the app runs, as the CLI does)

from fashion_mnist import write_pngs  # noqa: E402

from convonet.core.data import DataPrep  # noqa: E402
from convonet.core.model import NetModel  # noqa: E402
from convonet.core.params import DataParams, HyperParams  # noqa: E402
from convonet.core.state import Controller  # noqa: E402
from convonet.tui.app import ConvonetApp  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
RESULTS = Path(__file__).resolve().parent / "results"


async def switch_times(app: ConvonetApp, pilot, presses: int) -> list[float]:  # type: ignore[no-untyped-def]
    times: list[float] = []
    for i in range(presses):
        key, mode = ("2", "data") if i % 2 == 0 else ("4", "training")
        t0 = time.perf_counter()
        await pilot.press(key)
        while app.current_mode != mode:
            await asyncio.sleep(0.001)
        await pilot.pause()  # until the screen has processed its pending messages
        times.append(time.perf_counter() - t0)
    return times


async def run(limit: int, presses: int) -> dict[str, object]:
    root = write_pngs(Path("datasets") / "fashion-mnist")
    dp = DataParams({"image_size": [28, 28], "color_mode": "grayscale"}).edit(
        train_dir=str(root / "train"))
    train = DataPrep(dp).prep_data("train")
    train.x, train.y = train.x[:limit], train.y[:limit]
    hp = HyperParams.load(ROOT / "app_input" / "mnist_hyper_params.json").edit(
        epochs=50, patience=0)
    model = NetModel(hp).build(train.image_shape, train.num_classes, train.class_names)
    controller = Controller(data_params=dp, hyper_params=hp, train_set=train, model=model)
    app = ConvonetApp(controller=controller, results_dir=Path("/tmp/convonet-bench-ui"),
                      backend_label="bench")
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("4")
        idle = await switch_times(app, pilot, presses)
        await pilot.press("4")
        await pilot.pause()
        await pilot.press("t")  # Training only
        await asyncio.sleep(3.0)  # past graph tracing, into steady batches
        busy = await switch_times(app, pilot, presses)
        running = bool(app.tasks.running())
        app.tasks.cancel_all()
        while app.tasks.running():
            await asyncio.sleep(0.05)
    ms = lambda v: [round(x * 1000, 1) for x in v]  # noqa: E731
    return {
        "idle_ms": ms(idle), "training_ms": ms(busy), "training_was_running": running,
        "idle_median_ms": statistics.median(idle) * 1000,
        "training_median_ms": statistics.median(busy) * 1000,
        "training_p90_ms": sorted(busy)[int(0.9 * len(busy)) - 1] * 1000,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description="UI responsiveness benchmark")
    parser.add_argument("--limit", type=int, default=12000)
    parser.add_argument("--presses", type=int, default=40)
    args = parser.parse_args()
    res = asyncio.run(run(args.limit, args.presses))
    print(f"key press -> screen changed: idle median {res['idle_median_ms']:.1f} ms; while "
          f"training median {res['training_median_ms']:.1f} ms, p90 "
          f"{res['training_p90_ms']:.1f} ms (target median < 100 ms); training ran "
          f"throughout: {res['training_was_running']}")
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / "ui.json"
    out.write_text(json.dumps({"date": time.strftime("%Y-%m-%d"), **res}, indent=2))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
