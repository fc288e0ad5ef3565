"""The host side of the device loop's passes over a data set (``core.device_loop``):
chunks dispatched one after another, each one's logs read while the next one runs."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

import numpy as np


class Pace(Protocol):
    """How many batches the next chunk runs (``device_loop._Pace``)."""

    size: int

    def done(self, batches: int) -> None: ...

    def restart(self) -> None: ...


def floats(logs: Mapping[str, Any]) -> dict[str, float]:
    """Logs as numbers (waits for the values the device still computes)."""
    return {k: float(np.asarray(v)) for k, v in logs.items()}


class Chunks:
    """The host side of one pass over a data set: dispatch a chunk, then hand the one
    before it to the batch-end hook (one chunk late), until the batches are done or
    ``stopped()`` says to stop (checked before each dispatch and after each hook)."""

    def __init__(self, batch_size: int, count: int, pace: Pace) -> None:
        self.count = count
        self.full = count // batch_size
        self.tail = count % batch_size > 0
        self.total = self.full + int(self.tail)
        self.pace = pace

    def run(self, chunk: Any, tail: Any, begin: Any, end: Any, stopped: Any) -> None:
        """``chunk(first, count)`` and ``tail()`` dispatch and return the logs."""
        pending: tuple[int, int, Any] | None = None
        first = 0
        self.pace.restart()
        while first < self.total:
            begin(first)
            if stopped():
                break
            if first < self.full:
                count = min(self.pace.size, self.full - first)
                logs = chunk(first, count)
            else:
                count, logs = 1, tail()
            if pending is not None:
                self._end(end, pending)
            pending = (first + count - 1, count, logs)
            first += count
            if stopped():
                break
        if pending is not None:
            self._end(end, pending)

    def _end(self, hook: Any, pending: tuple[int, int, Any]) -> None:
        last, count, logs = pending
        values = floats(logs)  # waits for that chunk only
        self.pace.done(count)
        hook(last, values)
