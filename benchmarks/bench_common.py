"""Pieces the benchmark scripts share. Imports nothing heavy (no Keras, no TensorFlow), so
the GPU script, which runs where TensorFlow is absent, can use it too."""

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
