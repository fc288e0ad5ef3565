"""Where tuning folds run, as the app and the headless commands offer and show it.

The search loop (``convonet.core.tuning``) hands folds to an executor: this process (the
default) or Ray workers (``TuneSpec.ray``: ``"auto"`` for a local cluster over this
machine's GPUs, ``"HOST:PORT"`` for an existing cluster). This module holds what both
front ends need around that choice and its events:

- ``parse_ray_address`` and ``parse_gpus_per_fold``: the values the ``--ray`` and
  ``--gpus-per-fold`` options (and ``RAY_ADDRESS``) take, checked, with a message that says
  what to write instead; ``ray_missing``: why Ray cannot be used here, or None;
- ``FoldsInFlight``: which fold runs on which worker, built from ``ExecutorReady``,
  ``FoldStart``, ``FoldProgress``, ``FoldEnd``, ``FoldRequeued`` and ``CombinationFailed``;
- ``executor_text``, ``requeued_text``, ``in_flight_text`` and ``workers_table``: the words
  and the rich table both front ends draw from it.

Plain Python and rich, never textual (the headless commands use it without the app).
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from rich.table import Table
from rich.text import Text

if TYPE_CHECKING:  # the core's package pulls in Keras: imported when events come
    from convonet.core.tuning.events import ExecutorReady, FoldRequeued, WorkerInfo

#: ``--ray`` without a value: a local Ray cluster over every GPU of this machine.
AUTO = "auto"
#: The executor name of folds fitted one after another in this process.
IN_PROCESS = "in-process"
INSTALL_RAY = "pip install 'convonet[ray]'"


# ---- the choice ---------------------------------------------------------------------------
def parse_ray_address(value: str, source: str = "--ray") -> str:
    """``auto`` or ``HOST:PORT``, checked; ValueError naming ``source`` and what to write."""
    text = value.strip()
    if text.lower() == AUTO:
        return AUTO
    if text.startswith("ray://"):
        raise ValueError(f"{source}: {text!r} is a Ray Client address; run convonet on a "
                         "node of the cluster instead and give the head node's HOST:PORT "
                         "(e.g. 10.0.0.1:6379)")
    host, colon, port = text.rpartition(":")
    if not colon or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"{source}: expected auto or the head node's HOST:PORT (e.g. "
                         f"10.0.0.1:6379), got {text!r}")
    return text


def ray_address_from(given: str | None, environ: Mapping[str, str] | None = None) -> str:
    """The cluster ``--ray`` means: its value, else ``RAY_ADDRESS``, else ``auto``."""
    if given is not None:
        return parse_ray_address(given)
    env = (os.environ if environ is None else environ).get("RAY_ADDRESS", "").strip()
    return parse_ray_address(env, "RAY_ADDRESS") if env else AUTO


def parse_gpus_per_fold(value: str | float, source: str = "--gpus-per-fold") -> float:
    """A GPU share above 0 and at most 1; ValueError naming ``source`` otherwise."""
    try:
        share = float(value)
    except ValueError:
        share = float("nan")
    if not 0.0 < share <= 1.0:  # also refuses NaN
        raise ValueError(f"{source}: expected a share of one GPU above 0 and at most 1 "
                         f"(1 a GPU per fold, 0.25 four folds on each GPU), got {value!r}")
    return share


def ray_missing() -> str | None:
    """Why folds cannot run on Ray here (Ray not installed), or None when they can."""
    if importlib.util.find_spec("ray") is None:
        return f"Ray is not installed: {INSTALL_RAY}"
    return None


def choice_text(ray: str | None, gpus_per_fold: float) -> str:
    """The executor the next search uses, in words."""
    if ray is None:
        return "in this process"
    where = "a local Ray cluster (this machine's GPUs, or its cores)" if ray == AUTO \
        else f"the Ray cluster at {ray}"
    share = "1 GPU" if gpus_per_fold >= 1.0 else f"{gpus_per_fold:g} of a GPU"
    return f"on {where}, {share} per fold"


# ---- what runs where ----------------------------------------------------------------------
@dataclass
class Slot:
    """One worker and the fold it fits now (``combination_index`` None: idle)."""

    info: WorkerInfo
    combination_index: int | None = None
    fold: int = 0
    rung: int = 0
    epoch: int = 0
    epochs: int = 0
    loss: float | None = None
    accuracy: float | None = None
    done: int = 0  # folds this worker finished
    lost: str = ""  # why it was lost (its fold requeued), "" while it works

    @property
    def busy(self) -> bool:
        return self.combination_index is not None

    def free(self) -> None:
        self.combination_index = None
        self.epoch = self.epochs = 0
        self.loss = self.accuracy = None


@dataclass
class FoldsInFlight:
    """Which fold runs where, from the executor's events (fed in order)."""

    executor: str = ""
    address: str = ""
    slots: dict[str, Slot] = field(default_factory=dict)

    @property
    def remote(self) -> bool:
        """Whether folds run outside this process (there is something to show)."""
        return self.executor not in ("", IN_PROCESS)

    def slot(self, name: str) -> Slot:
        from convonet.core.tuning.events import WorkerInfo

        if name not in self.slots:  # a worker the executor added later
            self.slots[name] = Slot(WorkerInfo(name, "", ""))
        return self.slots[name]

    def update(self, event: Any) -> bool:
        """Take one event; whether it changed what runs where."""
        from convonet.core.tuning.events import (
            CombinationFailed,
            ExecutorReady,
            FoldEnd,
            FoldProgress,
            FoldRequeued,
            FoldStart,
        )

        if isinstance(event, ExecutorReady):
            self.executor, self.address = event.executor, event.address
            self.slots = {w.name: Slot(w) for w in event.workers}
        elif isinstance(event, FoldStart):
            s = self.slot(event.worker)
            s.free()
            s.combination_index, s.fold, s.rung, s.lost = (
                event.combination_index, event.fold, event.rung, "")
        elif isinstance(event, FoldProgress):
            s = self.slot(event.worker)
            s.combination_index, s.fold, s.rung = event.combination_index, event.fold, event.rung
            s.epoch, s.epochs, s.loss, s.accuracy = (event.epoch, event.epochs, event.loss,
                                                     event.accuracy)
        elif isinstance(event, FoldEnd):
            if event.resumed or not event.worker:
                return False
            s = self.slot(event.worker)
            s.free()
            s.done += 1
        elif isinstance(event, FoldRequeued):
            s = self.slot(event.worker)
            s.free()
            s.lost = event.reason
        elif isinstance(event, CombinationFailed):
            freed = [s for s in self.slots.values()  # its fold in flight is over
                     if s.combination_index == event.combination_index
                     and s.rung == event.rung]
            for s in freed:
                s.free()
            return bool(freed)
        else:
            return False
        return True

    def in_flight(self) -> list[Slot]:
        return [s for s in self.slots.values() if s.busy]

    def clear(self) -> None:
        """The search ended: nothing runs any more."""
        for s in self.slots.values():
            s.free()


def where_text(info: WorkerInfo) -> str:
    """``w0 (node1 GPU 0)``: a worker and the place it runs."""
    place = " ".join(p for p in (info.node, info.device) if p)
    return f"{info.name} ({place})" if place else info.name


def fold_text(slot: Slot) -> str:
    """``#3 fold 2``: the combination and fold a worker fits, 1-based as the tables count."""
    return f"#{(slot.combination_index or 0) + 1} fold {slot.fold + 1}"


def executor_text(event: ExecutorReady) -> str:
    """One line: which executor, on how many workers, nodes and devices."""
    if event.executor == IN_PROCESS:
        return "folds run in this process"
    nodes: dict[str, list[str]] = {}
    for w in event.workers:
        nodes.setdefault(w.node or "?", []).append(w.device or "?")
    at = f" at {event.address}" if event.address else ""
    places = "; ".join(f"{node}: {', '.join(devices)}" for node, devices in nodes.items())
    n = len(event.workers)
    executor = {"ray": "Ray"}.get(event.executor, event.executor)
    return (f"folds run on {executor}{at}: {n} worker{'s' if n != 1 else ''} on "
            f"{len(nodes)} node{'s' if len(nodes) != 1 else ''} ({places})")


def requeued_text(event: FoldRequeued, flight: FoldsInFlight) -> str:
    """What a lost worker means for its fold."""
    who = where_text(flight.slot(event.worker).info)
    return (f"worker {who} was lost while fitting #{event.combination_index + 1} fold "
            f"{event.fold + 1} ({event.reason}); the fold is queued again (a second loss "
            "fails its combination)")


def in_flight_text(flight: FoldsInFlight, limit: int = 3) -> str:
    """``2 folds in flight: #3 fold 1 on w0 (node1 GPU 0) epoch 2/5, ...`` (at most
    ``limit`` named, then how many more)."""
    busy = flight.in_flight()
    if not busy:
        return "no fold in flight"
    parts = [f"{fold_text(s)} on {where_text(s.info)}"
             + (f" epoch {s.epoch}/{s.epochs}" if s.epochs else "") for s in busy[:limit]]
    more = f", {len(busy) - limit} more" if len(busy) > limit else ""
    n = len(busy)
    return f"{n} fold{'s' if n != 1 else ''} in flight: {', '.join(parts)}{more}"


def workers_table(flight: FoldsInFlight) -> Table:
    """One row per worker: where it runs, its fold, epoch, loss and accuracy, folds done."""
    table = Table(box=None, padding=(0, 1), pad_edge=False, expand=False,
                  header_style="bold")
    for name in ("worker", "node", "device", "fold", "epoch", "loss", "acc %", "done"):
        table.add_column(name, justify="right" if name in ("loss", "acc %", "done") else "left",
                         no_wrap=True)
    for s in flight.slots.values():
        if s.busy:
            fold = fold_text(s)
            epoch = f"{s.epoch}/{s.epochs}" if s.epochs else "…"
            style = ""
        else:
            fold, epoch = ("lost" if s.lost else "idle"), ""
            style = "yellow" if s.lost else "dim"
        table.add_row(
            s.info.name, s.info.node, s.info.device, Text(fold, style=style), epoch,
            f"{s.loss:.4f}" if s.loss is not None else "",
            f"{s.accuracy * 100:.1f}" if s.accuracy is not None else "", str(s.done))
    return table
