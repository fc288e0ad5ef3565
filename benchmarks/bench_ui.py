"""UI responsiveness while training runs: key press to screen change, in a Pilot run.

    python benchmarks/bench_ui.py [--limit 12000] [--presses 40]

Starts the app headless (Textual's Pilot) on a Fashion-MNIST subset with the reference
CNN, starts "Training only" on the training screen, then, while the worker trains,
switches screens by key (4 -> 2 -> 4 ...) and measures the time from each key event until
the first frame of the new screen is composed (a hook on ``App._display``), without Pilot's
own waits for idle. Reports the median and 90th percentile (target:
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
from convonet.tui.app import ConvonetApp  # noqa: E402
from convonet.tui.session import Session  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
RESULTS = Path(__file__).resolve().parent / "results"


class PaintWatch:
    """Timestamps of the frames the app composes, from ``App._display``.

    A headless app still composes every update and hands it to ``_display`` (it only skips
    the terminal write), so the first call for the new mode's screen marks the moment that
    screen has been painted.
    """

    def __init__(self, app: ConvonetApp) -> None:
        self.app = app
        self.mode: str | None = None
        self.painted_at: float | None = None
        self.done = asyncio.Event()
        original = app._display

        def display(screen, renderable):  # type: ignore[no-untyped-def]
            original(screen, renderable)
            if (self.mode is not None and self.painted_at is None and renderable is not None
                    and app.current_mode == self.mode and screen is app.screen):
                self.painted_at = time.perf_counter()
                self.done.set()

        app._display = display  # type: ignore[method-assign]

    def arm(self, mode: str) -> None:
        self.mode, self.painted_at = mode, None
        self.done.clear()


def send_key(app: ConvonetApp, key: str) -> None:
    """The key event Pilot sends, without Pilot's waits for idle afterwards."""
    from textual import events

    event = events.Key(key, key)
    event.set_sender(app)
    assert app._driver is not None
    app._driver.send_message(event)


async def switch_times(app: ConvonetApp, watch: PaintWatch, presses: int) -> list[float]:
    """Key press to the first frame painted for the new screen, per press."""
    times: list[float] = []
    for i in range(presses):
        key, mode = ("2", "data") if i % 2 == 0 else ("4", "training")
        watch.arm(mode)
        t0 = time.perf_counter()
        send_key(app, key)
        await asyncio.wait_for(watch.done.wait(), timeout=30)
        assert watch.painted_at is not None
        times.append(watch.painted_at - t0)
        await asyncio.sleep(0.1)  # let the new screen settle before the next press
    return times


def p90(values: list[float]) -> float:
    return sorted(values)[max(0, int(0.9 * len(values)) - 1)]


async def run(limit: int, presses: int) -> dict[str, object]:
    root = write_pngs(Path("datasets") / "fashion-mnist")
    dp = DataParams({"image_size": [28, 28], "color_mode": "grayscale"}).edit(
        train_dir=str(root / "train"))
    train = DataPrep(dp).prep_data("train")
    train.x, train.y = train.x[:limit], train.y[:limit]
    hp = HyperParams.load(ROOT / "app_input" / "mnist_hyper_params.json").edit(
        epochs=50, patience=0)
    model = NetModel(hp).build(train.image_shape, train.num_classes, train.class_names)
    controller = Session(data_params=dp, hyper_params=hp, train_set=train, model=model)
    app = ConvonetApp(session=controller, results_dir=Path("/tmp/convonet-bench-ui"),
                      backend_label="bench")
    async with app.run_test(size=(120, 40)) as pilot:
        watch = PaintWatch(app)
        await pilot.press("4")
        await pilot.pause()
        idle = await switch_times(app, watch, presses)
        await pilot.press("4")
        await pilot.pause()
        await pilot.press("t")  # Training only
        await asyncio.sleep(3.0)  # past graph tracing, into steady batches
        busy = await switch_times(app, watch, presses)
        running = bool(app.tasks.running())
        app.tasks.cancel_all()
        while app.tasks.running():
            await asyncio.sleep(0.05)
    ms = lambda v: [round(x * 1000, 1) for x in v]  # noqa: E731
    return {
        "idle_ms": ms(idle), "training_ms": ms(busy), "training_was_running": running,
        "idle_median_ms": statistics.median(idle) * 1000,
        "training_median_ms": statistics.median(busy) * 1000,
        "idle_p90_ms": p90(idle) * 1000,
        "training_p90_ms": p90(busy) * 1000,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description="UI responsiveness benchmark")
    parser.add_argument("--limit", type=int, default=12000)
    parser.add_argument("--presses", type=int, default=40)
    args = parser.parse_args()
    res = asyncio.run(run(args.limit, args.presses))
    print(f"key press -> screen painted: idle median {res['idle_median_ms']:.1f} ms, p90 "
          f"{res['idle_p90_ms']:.1f} ms; while "
          f"training median {res['training_median_ms']:.1f} ms, p90 "
          f"{res['training_p90_ms']:.1f} ms (target median < 100 ms); training ran "
          f"throughout: {res['training_was_running']}")
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / "ui.json"
    out.write_text(json.dumps({"date": time.strftime("%Y-%m-%d"), **res}, indent=2))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
