"""A training progress line and bar: epoch k/n, batch k/n, ETA, running loss/accuracy, lr.

Fed from the core's events (TrainStart, Compiling, BatchProgress, Validating, EpochEnd) on the UI
thread. The ETA counts batches over the whole run, so it is right from the first epoch on;
validation time is folded into the batch rate as it happens, compiling time is left out.
"""

from __future__ import annotations

import time
from collections.abc import Mapping

from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import ProgressBar, Static

from convonet.rendering import format_duration


def format_metrics(logs: Mapping[str, float | None], digits: int = 4) -> str:
    """``loss 0.1234 · acc 0.9700 · val loss ...`` for the keys present (short: 80 columns)."""
    parts = []
    for key, label in (("loss", "loss"), ("accuracy", "acc"), ("val_loss", "val loss"),
                       ("val_accuracy", "val acc")):
        value = logs.get(key)
        if value is not None:
            parts.append(f"{label} {value:.{digits}f}")
    return " · ".join(parts)


def progress_text(epoch: int, epochs: int, batch: int, batches: int, eta: float | None,
                  logs: Mapping[str, float | None], lr: float | None) -> str:
    """The one line shown while training: where it is, what is left, current numbers."""
    parts = [f"Epoch {epoch}/{epochs}", f"batch {batch}/{batches}"]
    parts.append(f"ETA {format_duration(eta)}" if eta is not None else "ETA –")
    metrics = format_metrics(logs)
    if metrics:
        parts.append(metrics)
    if lr is not None:
        parts.append(f"lr {lr:.4g}")
    return " · ".join(parts)


class TrainProgress(Vertical):
    """The progress line over a bar; between runs the line tells how the last run ended."""

    DEFAULT_CSS = """
    TrainProgress { height: auto; }
    TrainProgress #progress-line { height: 1; text-wrap: nowrap; text-overflow: ellipsis; }
    TrainProgress ProgressBar { height: 1; }
    TrainProgress ProgressBar Bar { width: 1fr; }
    """

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.epochs = 0
        self.batches = 0
        self._started = 0.0
        self._done_before = 0  # batches done before this run's first epoch (a resumed run)
        self._begun = False  # begin() ran for the run going on
        self._phase: str | None = None  # "compiling…" / "compiled in 1.4s"
        self._phase_epoch = 0  # the epoch whose lines carry "compiled in …"
        self._current = 0  # the epoch running now (or next)

    def compose(self) -> ComposeResult:
        yield Static("", id="progress-line", markup=False)
        yield ProgressBar(total=None, show_eta=False, id="progress-bar")

    @property
    def line(self) -> Static:
        return self.query_one("#progress-line", Static)

    @property
    def bar(self) -> ProgressBar:
        return self.query_one("#progress-bar", ProgressBar)

    def begin(self, epochs: int, batches: int, initial_epoch: int = 0,
              now: float | None = None) -> None:
        """A run started: reset the clock and the bar."""
        self.epochs = max(1, epochs)
        self.batches = max(1, batches)
        self._started = time.monotonic() if now is None else now
        self._done_before = initial_epoch * self.batches
        self.bar.display = True
        self.bar.update(total=self.epochs * self.batches, progress=self._done_before)
        self._begun = True
        self._current = self._phase_epoch = initial_epoch + 1
        self.line.update(f"Epoch {initial_epoch + 1}/{self.epochs} · "
                         f"{self._phase or 'starting…'}")

    def show_compiling(self, seconds: float | None) -> None:
        """The training step is compiling (``None``), or compiled in ``seconds``.

        The compile time is left out of the ETA's batch rate; "compiled in …" stays on the
        lines of the epoch it delayed.
        """
        self._phase = "compiling…" if seconds is None else f"compiled in {seconds:.1f}s"
        if not self._begun:
            self.line.update(self._phase[0].upper() + self._phase[1:])
            return
        if seconds is not None:
            self._started += seconds
        self._phase_epoch = self._current
        self.line.update(f"Epoch {self._phase_epoch}/{self.epochs} · {self._phase}")

    def eta(self, done: int, now: float | None = None) -> float | None:
        """Seconds left, from the batch rate so far (None before the first batch)."""
        ran = done - self._done_before
        if ran <= 0:
            return None
        elapsed = (time.monotonic() if now is None else now) - self._started
        return elapsed / ran * (self.epochs * self.batches - done)

    def show_batch(self, epoch: int, batch: int, logs: Mapping[str, float | None],
                   lr: float | None) -> None:
        done = (epoch - 1) * self.batches + batch
        self._current = epoch
        self.bar.update(progress=done)
        self.line.update(self._noted(epoch, progress_text(
            epoch, self.epochs, batch, self.batches, self.eta(done), logs, lr)))

    def show_validating(self, epoch: int, batch: int, batches: int) -> None:
        """The epoch's batches are done and the validation split is being evaluated.

        Without this the line would sit at the last batch until the epoch's numbers come.
        """
        done = epoch * self.batches
        self._current = epoch
        self.bar.update(progress=done)
        eta = self.eta(done)
        self.line.update(self._noted(epoch, " · ".join([
            f"Epoch {epoch}/{self.epochs}", f"validating: batch {batch}/{batches}",
            f"ETA {format_duration(eta)}" if eta is not None else "ETA –"])))

    def show_epoch(self, epoch: int, logs: Mapping[str, float | None],
                   lr: float | None) -> None:
        done = epoch * self.batches
        self._current = min(epoch + 1, self.epochs)
        self.bar.update(progress=done)
        self.line.update(self._noted(epoch, progress_text(
            epoch, self.epochs, self.batches, self.batches, self.eta(done), logs, lr)))

    def _noted(self, epoch: int, text: str) -> str:
        if self._phase is None or epoch != self._phase_epoch:
            return text
        return f"{text} · {self._phase}"

    def show_text(self, text: str, *, bar: bool | None = None) -> None:
        """A line of its own (how the last run ended, what to do); ``bar`` shows/hides it.

        Also where a new run's first line goes, so the last run's compile phase is gone.
        """
        self._begun = False
        self._phase = None
        self.line.update(text)
        if bar is not None:
            self.bar.display = bar

    def show_final(self, text: str, done_batches: int, total_batches: int) -> None:
        """The run ended: the bar shows how far it got, the line how it ended."""
        self._begun = False
        self._phase = None
        self.bar.display = True
        self.bar.update(total=max(1, total_batches), progress=done_batches)
        self.line.update(text)
