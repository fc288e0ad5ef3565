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
    worker: str = ""  # the WorkerInfo.name that ran it ("" when it ran in this process)


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



# ---- where folds run (the executor under the search loop) -------------------------------
@dataclass(frozen=True)
class WorkerInfo:
    """One place folds run: a Ray actor, or this process."""

    name: str  # short and unique within a search: "w0", "w1"... ("local" in process)
    node: str  # the machine: its host name or IP
    device: str  # what it computes on: "GPU 0", "GPU 1 (1/4)", "CPU x2"
    node_id: str = ""  # Ray's id of the node (two nodes may share a host name)
    pid: int = 0  # the worker's process (0 when unknown)


@dataclass(frozen=True)
class ExecutorReady(Event):
    """Before the first fold: which executor runs the folds, on which workers."""

    executor: str  # "in-process" | "ray"
    workers: tuple[WorkerInfo, ...]
    address: str = ""  # the Ray cluster's address ("" in process)


@dataclass(frozen=True)
class FoldStart(Event):
    """A fold was handed to a worker (in flight until its FoldEnd, failure or requeue)."""

    combination_index: int
    params: dict[str, Any]
    fold: int  # 0-based
    rung: int = 0
    worker: str = ""


@dataclass(frozen=True)
class FoldProgress(Event):
    """A fold in flight finished a training epoch (streamed back while it runs)."""

    combination_index: int
    fold: int
    epoch: int  # 1-based
    epochs: int
    loss: float
    accuracy: float
    rung: int = 0
    worker: str = ""


@dataclass(frozen=True)
class FoldRequeued(Event):
    """A worker died (its process killed, its node lost) while fitting this fold; the
    fold is queued again once (a second loss fails the combination)."""

    combination_index: int
    fold: int
    rung: int
    worker: str
    reason: str
