"""What a headless command writes: tables and lines to stdout, progress bars and notices
to stderr (``Output``), and the core's events drawn as rich progress bars (``Display``).

Imports rich but never textual.
"""

from __future__ import annotations

import logging
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.text import Text

from convonet.core.errors import EXIT_FAILED, EXIT_OK, EXIT_STOPPED, EXIT_USAGE
from convonet.executors import (
    FoldsInFlight,
    executor_text,
    fold_text,
    requeued_text,
    where_text,
)
from convonet.hangup import terminal_gone
from convonet.rendering import params_text

if TYPE_CHECKING:
    from convonet.core.events import Event

PROG = "convonet"

log = logging.getLogger("convonet.headless")

__all__ = ["EXIT_FAILED", "EXIT_OK", "EXIT_STOPPED", "EXIT_USAGE", "PROG", "Display", "Output",
           "epoch_line", "one_line", "params_text"]


@dataclass
class Output:
    """Where a command writes: tables to stdout, progress and notices to stderr.

    With ``json_mode`` stdout carries one JSON object and nothing else.
    """

    json_mode: bool = False
    verbose: bool = False
    log_path: Path | None = None
    backend: str = ""
    notices: list[str] = field(default_factory=list)
    #: Events a ``--json`` reader may want besides the result (``{"event": "compiled",
    #: "seconds": 1.4}``); the object gets an ``events`` list only when there are some.
    events: list[dict[str, Any]] = field(default_factory=list)

    def __post_init__(self) -> None:
        # Built now (not at import) so they write to whatever sys.stdout/err are now.
        self.out = Console(highlight=False)
        self.err = Console(stderr=True, highlight=False)

    def print(self, *renderables: Any) -> None:
        if not self.json_mode:
            self.out.print(*renderables)

    def line(self, text: str, style: str = "") -> None:
        """Plain text to stdout (never parsed as rich markup: paths may hold brackets),
        never wrapped, so a path stays one piece to copy."""
        if not self.json_mode:
            self.out.print(Text(text, style=style), soft_wrap=True)
        if terminal_gone():  # nobody reads the terminal now: the log keeps how it ended
            log.warning("%s", text)

    def notice(self, text: str, level: str = "warning", console: Console | None = None
               ) -> None:
        self.notices.append(text)
        style = {"error": "red", "warning": "yellow"}.get(level, "dim")
        (console or self.err).print(Text(f"{level}: {text}", style=style))

    def emit_json(self, obj: dict[str, Any]) -> None:
        from convonet.core.runs import to_json

        if self.json_mode:
            obj.setdefault("backend", self.backend or None)
            obj.setdefault("notices", list(self.notices))
            if self.events:
                obj.setdefault("events", list(self.events))
            sys.stdout.write(to_json(obj, indent=2) + "\n")
            sys.stdout.flush()

    def error(self, message: str) -> None:
        """The one line a failed command leaves on stderr (plain print: never wrapped)."""
        self.last_line(f"{PROG}: error: {message}")

    def last_line(self, text: str) -> None:
        """A command's closing line on stderr, and in the log when the terminal is gone."""
        print(text, file=sys.stderr, flush=True)
        if terminal_gone():
            log.warning("%s", text)


def one_line(exc: BaseException) -> str:
    """The first meaningful line of an error (Keras wraps errors in call context)."""
    text = re.sub(r"\x1b\[[0-9;]*m", "", str(exc))
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    return lines[0] if lines else type(exc).__name__


# ---- events on the main thread ----------------------------------------------------------
class Display:
    """Draws one phase's core events as rich progress bars and lines (main thread only)."""

    def __init__(self, output: Output, title: str) -> None:
        self.output = output
        self.title = title
        self.progress: Progress | None = None
        if not output.json_mode:
            self.progress = Progress(
                TextColumn("{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("[progress.percentage]{task.percentage:>3.0f}%"),
                TimeElapsedColumn(),
                TextColumn("eta"),
                TimeRemainingColumn(),
                TextColumn("{task.fields[info]}"),
                console=output.err,
                redirect_stdout=False,
                redirect_stderr=False,
            )
        self.tasks: dict[str, TaskID] = {}
        self.searched: list[str] = []  # tuning: the fields that vary, shown per fold
        self.compiling = False  # a Compiling(seconds=None) is the latest compile event
        self.flight = FoldsInFlight()  # tuning on Ray workers: which fold runs where
        self._worker_folds: dict[str, tuple[int | None, int, int]] = {}  # drawn per worker

    def __enter__(self) -> Display:
        return self

    def __exit__(self, *exc: object) -> None:
        if self.progress is not None and self.progress.live.is_started:
            self.progress.stop()

    @property
    def console(self) -> Console:
        return self.progress.console if self.progress is not None else self.output.err

    def _task(self, key: str, description: str, total: float | None,
              completed: int = 0) -> TaskID:
        if self.progress is None:
            raise RuntimeError("no progress bars in --json mode")
        if not self.progress.live.is_started:  # started on the first bar: no empty frame
            self.progress.start()
        if key not in self.tasks:
            self.tasks[key] = self.progress.add_task(description, total=total,
                                                     completed=completed, info="")
        else:
            self.progress.update(self.tasks[key], description=description, total=total,
                                 completed=completed)
        return self.tasks[key]

    def say(self, text: Text | str) -> None:
        """A line above the bars (stderr): a log of what finished."""
        if not self.output.json_mode:
            self.console.print(text if isinstance(text, Text) else Text(text), soft_wrap=True)

    def stopping(self) -> None:
        self.say(Text("stopping at the next batch; what finished is kept "
                      "(Ctrl+C again to leave at once)", style="yellow"))

    def handle(self, event: Event) -> None:
        """Show one core event; called for every event, in order."""
        from convonet.core import events as ev
        from convonet.core.tuning import (
            CombinationFailed,
            CombinationInvalid,
            FoldEnd,
            RungStart,
            TuneStart,
        )

        if isinstance(event, ev.Notice):
            self.output.notice(event.text, event.level, console=self.console)
            return
        if isinstance(event, ev.Compiling):
            self._compiling(event.seconds)
            return
        if self._where_folds_run(event):
            return
        if self.progress is None:
            return
        p = self.progress
        if isinstance(event, ev.LoadProgress):
            self._task("load", f"loading {event.label or 'images'}", event.total, event.done)
        elif isinstance(event, ev.TrainStart):
            self._task("epochs", "epochs", event.epochs, event.initial_epoch)
            self._task("batches", f"epoch {event.initial_epoch + 1}"
                       + (" · compiling…" if self.compiling else ""), event.batches)
        elif isinstance(event, ev.BatchProgress):
            task = self._task("batches", f"epoch {event.epoch}/{event.epochs}",
                              event.batches, event.batch)
            logs = event.logs
            if "loss" in logs:
                p.update(task, info=f"loss {logs['loss']:.4f}  "
                                    f"accuracy {logs.get('accuracy', float('nan')):.4f}")
        elif isinstance(event, ev.Validating):
            if "batches" in self.tasks:  # the epoch's batches are done: say what runs now
                batches = self.tasks["batches"]
                p.update(batches, description=f"epoch {event.epoch}/{event.epochs} · "
                         f"validating {event.batch}/{event.batches}",
                         completed=p.tasks[batches].total or 0)
        elif isinstance(event, ev.EpochEnd):
            self._task("epochs", "epochs", event.epochs, event.epoch)
            if "batches" in self.tasks:  # full at the end of an epoch, whatever was drawn
                batches = self.tasks["batches"]
                p.update(batches, description=f"epoch {event.epoch}/{event.epochs}",
                         completed=p.tasks[batches].total or 0)
            self.say(epoch_line(event))
        elif isinstance(event, TuneStart):
            self.searched = list(event.searched)
            self._task("fits", "fits", event.total_fits, event.fits_done)
            searched = ", ".join(event.searched) or "nothing (one combination)"
            invalid = f" ({event.invalid} invalid, not run)" if event.invalid else ""
            self.say(f"{event.strategy} search: {event.combinations} combination(s){invalid} x "
                     f"{event.folds} folds on {event.samples} images; searching {searched}")
        elif isinstance(event, RungStart):
            self.say(f"rung {event.rung + 1}/{event.rungs}: {event.candidates} candidate(s) "
                     f"on {event.n_resources} images")
        elif isinstance(event, FoldEnd):
            self._task("fits", "fits", event.total_fits, event.fits_done)
            shown = params_text(event.params, self.searched)
            self.say(Text(f"[{event.fits_done}/{event.total_fits}] {shown}"
                          f"  fold {event.fold + 1}  accuracy {event.accuracy:.4f}  "
                          f"loss {event.loss:.4f}  {event.seconds:.1f} s"
                          + ("  (resumed)" if event.resumed else "")
                          + (f"  on {event.worker}" if self.flight.remote and event.worker
                             else "")))
        elif isinstance(event, CombinationFailed):
            self._task("fits", "fits", event.total_fits, event.fits_done)
            shown = params_text(event.params, self.searched)
            self.say(Text(f"{shown}: {event.reason}" if event.diverged
                          else f"failed: {shown}: {event.reason}", style="yellow"))
        elif isinstance(event, CombinationInvalid):
            self.say(Text(f"invalid, not run: {params_text(event.params, self.searched)}: "
                          f"{event.reason}", style="yellow"))

    def _where_folds_run(self, event: Event) -> bool:
        """Executor events (folds on Ray workers): the executor once, a row per worker
        busy with a fold, a lost worker as a warning, and each in ``--json``'s events.
        Updates what runs where on any event; True when ``event`` needs nothing more.
        In process there is nothing to show: the output stays as it always was."""
        from dataclasses import asdict

        from convonet.core.tuning import ExecutorReady, FoldProgress, FoldRequeued, FoldStart

        own = isinstance(event, (ExecutorReady, FoldStart, FoldProgress, FoldRequeued))
        if not self.flight.update(event) or not self.flight.remote:
            return own
        if own:
            name = {ExecutorReady: "executor", FoldStart: "fold_start",
                    FoldProgress: "fold_progress", FoldRequeued: "fold_requeued"}[type(event)]
            self.output.events.append({"event": name, **asdict(event)})
        if isinstance(event, ExecutorReady):
            self.say(executor_text(event))
        elif isinstance(event, FoldRequeued):
            self.output.notice(requeued_text(event, self.flight), console=self.console)
        self._draw_workers()
        return own

    def _draw_workers(self) -> None:
        """One bar per worker fitting a fold (its epochs); the fits bar counts them."""
        if self.progress is None:
            return
        p = self.progress
        for name, slot in self.flight.slots.items():
            key = f"worker {name}"
            if not slot.busy:
                self._worker_folds.pop(name, None)
                if key in self.tasks:
                    p.remove_task(self.tasks.pop(key))
                continue
            description = f"  {fold_text(slot)} on {where_text(slot.info)}"
            fold = (slot.combination_index, slot.fold, slot.rung)
            task = self._task(key, description, slot.epochs or None, slot.epoch)
            if self._worker_folds.get(name) != fold:  # a new fold: its own clock
                self._worker_folds[name] = fold
                p.reset(task, total=slot.epochs or None, completed=slot.epoch,
                        description=description)
            p.update(task, info="" if slot.loss is None else
                     f"loss {slot.loss:.4f}  accuracy {slot.accuracy or 0.0:.4f}")
        if "fits" in self.tasks:
            busy = len(self.flight.in_flight())
            p.update(self.tasks["fits"],
                     info=f"{busy} fold{'s' if busy != 1 else ''} in flight" if busy else "")

    def _compiling(self, seconds: float | None) -> None:
        """The batch bar reads "compiling…" until the step is compiled, then one line."""
        self.compiling = seconds is None
        if seconds is not None:
            self.output.events.append({"event": "compiled", "seconds": round(seconds, 3)})
            self.say(f"compiled the training step in {seconds:.1f} s")
        if self.progress is None:
            return
        task = self.tasks.get("batches")
        if task is None:
            if self.compiling:
                self._task("batches", "compiling…", None)
            return
        description = str(self.progress.tasks[task].description).replace(" · compiling…", "")
        self.progress.update(task, description=description + (" · compiling…"
                                                               if self.compiling else ""))


def epoch_line(event: Any) -> Text:
    logs = event.logs
    parts = [f"epoch {event.epoch}/{event.epochs}", f"loss {logs['loss']:.4f}",
             f"accuracy {logs['accuracy']:.4f}"]
    if "val_loss" in logs:
        parts += [f"val_loss {logs['val_loss']:.4f}",
                  f"val_accuracy {logs.get('val_accuracy', float('nan')):.4f}"]
    parts.append(f"{event.seconds:.1f} s")
    if event.partial:
        parts.append("(stopped during this epoch)")
    return Text("  ".join(parts))
