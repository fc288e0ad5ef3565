"""What a search reports while it runs (core events, see ``convonet.core.events``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from convonet.core.events import Event


@dataclass(frozen=True)
class TuneStart(Event):
    """Up front: how many fits the search will run (halving: at most)."""

    total_fits: int
    combinations: int
    folds: int
    strategy: str  # "grid" | "halving"
    samples: int = 0  # images in the tuning share
    fits_done: int = 0  # already done by an earlier, resumed run
    searched: tuple[str, ...] = ()  # fields with more than one value
    run_dir: str = ""
    invalid: int = 0  # combinations marked invalid, not run (counted in combinations)


@dataclass(frozen=True)
class RungStart(Event):
    """Successive halving: a rung begins with these candidates on this many samples."""

    rung: int  # 0-based
    rungs: int
    candidates: int
    n_resources: int
    total_fits: int
    fits_done: int


@dataclass(frozen=True)
class FoldEnd(Event):
    """One fold's held-out accuracy and loss, as soon as it is known."""

    combination_index: int
    params: dict[str, Any]
    fold: int  # 0-based
    accuracy: float
    loss: float
    seconds: float  # fit + score
    fits_done: int
    total_fits: int
    rung: int = 0
    n_resources: int = 0
    resumed: bool = False  # replayed from an earlier run's folds.jsonl, not fitted now


@dataclass(frozen=True)
class CombinationFailed(Event):
    """A combination could not run; it is skipped and the search goes on."""

    combination_index: int
    params: dict[str, Any]
    reason: str
    rung: int = 0
    fits_done: int = 0
    total_fits: int = 0
    resumed: bool = False
    traceback_file: str = ""  # the full traceback, in the run folder ("" if not kept)
    diverged: bool = False  # a fold diverged (NaN loss, accuracy back at chance): no fault


@dataclass(frozen=True)
class CombinationInvalid(Event):
    """A combination whose layers cannot fit the images: marked before anything runs."""

    combination_index: int
    params: dict[str, Any]
    field: str  # the params field to change (kernel_size, image_size)
    reason: str
    resumed: bool = False  # already recorded by an earlier run of this search

