"""A training run's history: one ``EpochRow`` per epoch, ``TrainHistory`` (the rows and
how the run ended), and the history CSV the run folder keeps.

Plain Python: reading a run's history does not import Keras.
"""

from __future__ import annotations

import csv
import io
import math
import os
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class EpochRow:
    """One epoch of the history. ``val_*`` are None without validation or when partial."""

    epoch: int  # 1-based
    loss: float
    accuracy: float
    val_loss: float | None
    val_accuracy: float | None
    learning_rate: float
    seconds: float
    batches: int  # batches run in this epoch
    partial: bool = False


HISTORY_COLUMNS = ("epoch", "loss", "accuracy", "val_loss", "val_accuracy", "learning_rate",
                   "seconds", "batches", "partial")


@dataclass
class TrainHistory:
    """What a training run produced, epoch by epoch, and how it ended."""

    rows: list[EpochRow] = field(default_factory=list)
    validation: bool = False
    stopped: bool = False  # the user stopped it (cancel token)
    early_stopped: bool = False  # patience ran out before the last epoch
    restored_epoch: int | None = None  # 1-based epoch whose weights the model holds now
    monitor: str = "loss"
    epochs: int = 0  # epochs asked for
    #: 1-based epoch at whose end training diverged and stopped (NaN/inf loss, or
    #: training accuracy back at chance); None when it did not.
    diverged_epoch: int | None = None
    diverged_reason: str | None = None  # why, in words ("the training loss became nan")

    @property
    def diverged(self) -> bool:
        return self.diverged_epoch is not None

    @property
    def partial(self) -> bool:
        """True when the last epoch was cut short by a stop."""
        return bool(self.rows) and self.rows[-1].partial

    @property
    def best_epoch(self) -> int | None:
        """The 1-based complete epoch with the lowest monitored loss."""
        best: tuple[float, int] | None = None
        for row in self.rows:
            if row.partial:
                continue
            value = getattr(row, self.monitor)
            if value is None or not math.isfinite(value):
                continue
            if best is None or value < best[0]:
                best = (value, row.epoch)
        return best[1] if best else None

    @property
    def result_row(self) -> EpochRow | None:
        """The epoch the run's result is: the one whose weights early stopping restored,
        else the last complete epoch (the history keeps every epoch)."""
        complete = [row for row in self.rows if not row.partial]
        if self.restored_epoch is not None:
            for row in complete:
                if row.epoch == self.restored_epoch:
                    return row
        return complete[-1] if complete else None

    def as_rows(self) -> list[dict[str, Any]]:
        return [asdict(row) for row in self.rows]

    def to_csv(self, path: str | os.PathLike[str]) -> Path:
        """Write the history as CSV (one row per epoch, empty cells for missing values)."""
        p = Path(path)
        p.parent.mkdir(parents=True, exist_ok=True)
        with p.open("w", newline="", encoding="utf-8") as fh:
            writer = csv.writer(fh)
            writer.writerow(HISTORY_COLUMNS)
            for row in self.as_rows():
                writer.writerow(["" if row[c] is None else row[c] for c in HISTORY_COLUMNS])
        return p

    def series(self, name: str) -> list[float | None]:
        """One column (e.g. ``val_loss``) in epoch order, for charts."""
        return [getattr(row, name) for row in self.rows]


# ---- divergence ------------------------------------------------------------------------
#: Training accuracy this far above chance (absolute), and ``ABOVE_CHANCE_ERRORS``
#: standard errors of a chance-level model's accuracy on the training images, counts as
#: "above chance" (so a lucky first epoch on a few dozen images does not).
ABOVE_CHANCE_MARGIN = 0.05
ABOVE_CHANCE_ERRORS = 2.0
#: Training accuracy at most this far above chance counts as "at chance".
AT_CHANCE_MARGIN = 0.02
#: Epochs in a row at chance, after having been above it, that count as divergence.
CHANCE_EPOCHS = 2


def chance_accuracy(y: Any) -> float:
    """The largest class's share of the training labels (integer labels, a NumPy array or
    a sequence): what a model that always answers one class scores at best (with
    balanced classes, 1 / the number of classes)."""
    labels = list(y.reshape(-1).tolist() if hasattr(y, "reshape") else y)
    if not labels:
        return 0.0
    return max(Counter(labels).values()) / len(labels)


class ChanceWatch:
    """The divergence rule, epoch by epoch, without Keras (so it is testable on its own).

    Diverged: a NaN or infinite training loss; or training accuracy at chance
    (<= chance + ``AT_CHANCE_MARGIN``) for ``CHANCE_EPOCHS`` epochs in a row after some
    epoch had it above chance (> chance + ``ABOVE_CHANCE_MARGIN``, and with ``images``
    training images, also > chance + ``ABOVE_CHANCE_ERRORS`` * sqrt(chance * (1 - chance)
    / images)).
    """

    def __init__(self, chance: float, images: int | None = None) -> None:
        self.chance = float(chance)
        noise = ABOVE_CHANCE_ERRORS * math.sqrt(self.chance * (1 - self.chance) / images) \
            if images else 0.0
        self.above = self.chance + max(ABOVE_CHANCE_MARGIN, noise)
        self.best = -math.inf  # the best training accuracy so far
        self.at_chance = 0  # epochs in a row at chance, once above it

    def epoch(self, loss: float, accuracy: float) -> str | None:
        """Feed one epoch's training loss and accuracy; the reason when it diverged."""
        if not math.isfinite(loss):
            return f"the training loss became {loss}"
        was_above = self.best > self.above
        self.best = max(self.best, accuracy)
        if was_above and math.isfinite(accuracy) \
                and accuracy <= self.chance + AT_CHANCE_MARGIN:
            self.at_chance += 1
        else:
            self.at_chance = 0
        if self.at_chance >= CHANCE_EPOCHS:
            return (f"training accuracy stayed at chance ({accuracy:.3f}; the largest "
                    f"class is {self.chance:.3f} of the images) for {CHANCE_EPOCHS} epochs "
                    f"after reaching {self.best:.3f}")
        return None



def divergence_advice(config: Mapping[str, Any] | None = None) -> str:
    """What to change after a divergence: a lower init_rate, or batch_norm."""
    rate = "" if not config or config.get("init_rate") is None \
        else f", now {config['init_rate']}"
    return (f"lower the learning rate (init_rate{rate}) or turn on batch_norm in the "
            "hyper params, then train again")


def divergence_notice(epoch: int, reason: str, config: Mapping[str, Any] | None = None) -> str:
    """The notice a diverged training shows: the epoch, why, and what to change."""
    return (f"Training diverged at epoch {epoch}: {reason}, so it stopped. "
            f"To fix it, {divergence_advice(config)}.")


def _csv_row(row: EpochRow) -> list[Any]:
    values = asdict(row)
    return ["" if values[c] is None else values[c] for c in HISTORY_COLUMNS]


def _opt_float(text: str | None) -> float | None:
    return None if text is None or text == "" else float(text)


def read_history_csv(path: str | os.PathLike[str]) -> list[EpochRow]:
    """The rows of a history CSV (``TrainHistory.to_csv`` or appended per epoch).

    A torn last line (the process was killed while writing it) is skipped.
    """
    p = Path(path)
    if not p.is_file():
        return []
    rows: list[EpochRow] = []
    with p.open(encoding="utf-8", newline="") as fh:
        for record in csv.DictReader(fh):
            try:
                rows.append(EpochRow(
                    epoch=int(record["epoch"]), loss=float(record["loss"]),
                    accuracy=float(record["accuracy"]),
                    val_loss=_opt_float(record.get("val_loss")),
                    val_accuracy=_opt_float(record.get("val_accuracy")),
                    learning_rate=float(record["learning_rate"]),
                    seconds=float(record["seconds"]), batches=int(record["batches"]),
                    partial=record.get("partial") == "True"))
            except (KeyError, TypeError, ValueError):
                continue  # a torn line: only the last one can be, and it is not an epoch
    return rows


def write_history_csv(path: str | os.PathLike[str], rows: Sequence[EpochRow]) -> Path:
    """Replace a history CSV atomically (a crash leaves the old file or the new one)."""
    from convonet.core.runs import atomic_write_text

    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(HISTORY_COLUMNS)
    for row in rows:
        writer.writerow(_csv_row(row))
    p = Path(path)
    atomic_write_text(p, buf.getvalue())
    return p
