"""Pieces the benchmark scripts share. Imports nothing heavy at import (no Keras, no
TensorFlow), so the GPU script, which runs where TensorFlow is absent, can use it too."""

from __future__ import annotations

import os
import queue
import threading
from typing import Any

PAGE_MB = os.sysconf("SC_PAGE_SIZE") / 2**20


def rss_mb() -> float:
    """This process's resident memory now, in MB (/proc/self/statm)."""
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * PAGE_MB


class QueueForwarder:
    """Stands in for the app: events cross to a consumer thread through a queue, as the
    app's worker hands them to the UI with ``post_message``."""

    def __init__(self) -> None:
        self.queue: queue.Queue[Any] = queue.Queue()
        self.seen = 0
        self.thread = threading.Thread(target=self._drain, daemon=True)
        self.thread.start()

    def __call__(self, event: Any) -> None:
        self.queue.put(event)

    def _drain(self) -> None:
        while self.queue.get() is not None:
            self.seen += 1

    def close(self) -> None:
        self.queue.put(None)
        self.thread.join()


def interleave(sides: dict[str, Any], rounds: int, label: str = "") -> dict[str, list[float]]:
    """Runs ``sides`` (name -> a function returning seconds) in turn, ``rounds`` + 1 times;
    the first round warms up (tracing, compiling) and is dropped."""
    times: dict[str, list[float]] = {name: [] for name in sides}
    for r in range(rounds + 1):
        got = {name: fn() for name, fn in sides.items()}
        print(f"{label}{'warm-up' if r == 0 else f'round {r}'}: "
              + ", ".join(f"{name} {s:.3f} s" for name, s in got.items()), flush=True)
        if r:
            for name, seconds in got.items():
                times[name].append(seconds)
    return times


def pair_stats(times: dict[str, list[float]], num: str, den: str) -> dict[str, Any]:
    """The ratios num/den of the interleaved pairs: median, spread (min-max) and quartiles."""
    import statistics

    ratios = [a / b for a, b in zip(times[num], times[den], strict=True)]
    q1, _, q3 = statistics.quantiles(ratios, n=4) if len(ratios) > 1 else ratios * 3
    return {"median": statistics.median(ratios), "min": min(ratios), "max": max(ratios),
            "q1": q1, "q3": q3, "ratios": ratios}


def ratio_text(stats: dict[str, Any]) -> str:
    return (f"{stats['median']:.3f} (spread {stats['min']:.3f}-{stats['max']:.3f}, "
            f"quartiles {stats['q1']:.3f}-{stats['q3']:.3f}, {len(stats['ratios'])} pairs)")


def decay_callback(config: Any) -> Any:
    """The time-based learning-rate decay the core applies, for a plain ``fit``."""
    import keras

    from convonet.core.model import learning_rate_at

    class Decay(keras.callbacks.Callback):
        async_safe = True  # an epoch hook only

        def on_epoch_begin(self, epoch: int, logs: Any = None) -> None:
            self.model.optimizer.learning_rate = learning_rate_at(config, epoch)

    return Decay()


def block_tensorflow() -> None:
    """Make ``import tensorflow`` fail, as on a GPU machine that has none: a check here
    then proves a script needs no TensorFlow (Keras's optional uses of it see it absent)."""
    import importlib.abc
    import sys

    class _NoTensorFlow(importlib.abc.MetaPathFinder):
        def find_spec(self, name: str, path: Any = None, target: Any = None) -> None:
            if name == "tensorflow" or name.startswith("tensorflow."):
                raise ModuleNotFoundError(f"No module named {name!r}", name=name)

    sys.meta_path.insert(0, _NoTensorFlow())
