"""The core's progress and cancel protocol.

Core tasks know nothing of any user interface. They report what happens by calling a
``Reporter`` with small frozen dataclasses, and they poll a ``CancelToken`` so that the
caller (a Textual worker, a headless command, a test) can stop them cleanly.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


class Cancelled(Exception):
    """Raised inside a core task when its cancel token was set."""


class CancelToken:
    """A thread-safe flag a caller sets and a core task polls."""

    def __init__(self) -> None:
        self._event = threading.Event()

    def cancel(self) -> None:
        self._event.set()

    @property
    def cancelled(self) -> bool:
        return self._event.is_set()

    def raise_if_cancelled(self) -> None:
        if self._event.is_set():
            raise Cancelled()


@dataclass(frozen=True)
class Event:
    """Base class of every event a core task reports."""


Reporter = Callable[[Event], None]


def no_report(event: Event) -> None:
    """The default reporter: drops every event."""


@dataclass(frozen=True)
class Notice(Event):
    """Something the user should read (a warning, a skipped file summary)."""

    text: str
    level: str = "warning"  # "information" | "warning" | "error"


@dataclass(frozen=True)
class LoadProgress(Event):
    """Images decoded so far while loading a dataset."""

    done: int
    total: int
    label: str = ""  # "training" / "test"


@dataclass(frozen=True)
class TrainStart(Event):
    epochs: int
    batches: int  # batches per epoch
    validation: bool
    initial_epoch: int = 0


@dataclass(frozen=True)
class BatchProgress(Event):
    """Throttled: at most a few per second, however fast batches come."""

    epoch: int  # 1-based
    epochs: int
    batch: int  # 1-based
    batches: int
    logs: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class Validating(Event):
    """An epoch's training batches are done and fit is evaluating the validation split.

    Sent with ``batch=0`` when the pass starts, then throttled like BatchProgress, so the
    screen says what the seconds between an epoch's last batch and its numbers are spent
    on (on a 2-core CPU, 3-5 s for 12,000 28x28 images, more on a loaded machine).
    """

    epoch: int  # 1-based
    epochs: int
    batch: int  # validation batches done (0: starting)
    batches: int


@dataclass(frozen=True)
class EpochEnd(Event):
    epoch: int  # 1-based
    epochs: int
    logs: dict[str, float]  # loss, accuracy, val_loss, val_accuracy, learning_rate
    seconds: float
    partial: bool = False  # True when a stop cut the epoch short


@dataclass(frozen=True)
class Compiling(Event):
    """The training step is being compiled (the jax backend's device loop).

    Sent with ``seconds=None`` when compiling starts and again with the seconds it took
    when the first step has run, so the screen shows a compile phase rather than a first
    epoch that looks stuck. With a warm compile cache the second one follows at once.
    """

    seconds: float | None = None


@dataclass(frozen=True)
class TaskDone(Event):
    """A long task ended; ``status`` is finished / stopped / failed."""

    task: str
    status: str
    result: Any = None
