"""Headless commands: ``convonet train | tune | evaluate | predict | classify | demo``.

The same core tasks as the app, for scripts, batch jobs and SSH sessions without a screen
to keep. Each command loads params, data and model, runs one core task, keeps the same run
record as the app (``<results>/runs/<stamp>-<task>/`` with run.json and the result files)
and prints rich progress bars (stderr) and tables (stdout), or with ``--json`` one JSON
object on stdout and nothing else there.

Why a worker thread: Ctrl+C raises KeyboardInterrupt in the main thread only. The core runs
in a worker and the main thread just draws its events, so an interrupt never lands inside
Keras: it sets the cancel token, training stops at its next batch keeping the finished
epochs, tuning keeps its finished folds, and the run is recorded as stopped (exit 130).
A second Ctrl+C leaves at once. SIGTERM and SIGHUP (a shutdown, a dropped SSH connection)
do the same, but the run is recorded as interrupted and the exit status is 128 + the
signal's number; ``convonet train --resume RUN_DIR`` (or ``tune --resume``) continues it.
When the terminal itself went away (SIGHUP, then EIO or EPIPE on every write), the output
is dropped from then on (see ``convonet.hangup``) and the closing lines go to the log.

Exit statuses: 0 done, 1 an unexpected failure (details in the log file), 2 a problem the
user can fix (params, data, model, missing files; one line on stderr), 130 stopped.
This module imports rich but never textual.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import queue
import re
import sys
import textwrap
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

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
from rich.table import Table
from rich.text import Text

from convonet.hangup import check_hangup, guarded_output, terminal_gone
from convonet.noise import LOG_NAME, route_noise_to_log, stderr_to_log

if TYPE_CHECKING:
    import keras

    from convonet.core.data import Dataset
    from convonet.core.events import CancelToken, Event, Reporter
    from convonet.core.params import DataParams, HyperParams
    from convonet.core.runs import RunFolder

PROG = "convonet"
EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_STOPPED = 0, 1, 2, 130
DEFAULT_RESULTS_DIR = "app_results"
HISTORY_CSV = "history.csv"
CONFUSION_CSV = "confusion.csv"
REPORT_CSV = "report.csv"
CLASSIFICATIONS_CSV = "classifications.csv"
RUN_MODEL = "model.keras"
#: Rows of a classification table drawn in the terminal; the CSV holds them all.
SHOWN_CLASSIFICATIONS = 40

log = logging.getLogger("convonet.headless")
T = TypeVar("T")


class UsageError(Exception):
    """A problem the user can fix (a missing option or file): one line, exit status 2."""


class Stopped(Exception):
    """Ctrl+C stopped the command; what finished is already recorded."""


def results_dir_of(args: argparse.Namespace) -> Path:
    """--results-dir, else $CONVONET_RESULTS_DIR, else ./app_results (as the app)."""
    given: Path | None = getattr(args, "results_dir", None)
    if given is not None:
        return given
    return Path(os.environ.get("CONVONET_RESULTS_DIR") or DEFAULT_RESULTS_DIR)


# ---- output ---------------------------------------------------------------------------
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
        if self.progress is None:
            return
        p = self.progress
        if isinstance(event, ev.LoadProgress):
            self._task("load", f"loading {event.label or 'images'}", event.total, event.done)
        elif isinstance(event, ev.TrainStart):
            self._task("epochs", "epochs", event.epochs, event.initial_epoch)
            self._task("batches", f"epoch {event.initial_epoch + 1}", event.batches)
        elif isinstance(event, ev.BatchProgress):
            task = self._task("batches", f"epoch {event.epoch}/{event.epochs}",
                              event.batches, event.batch)
            logs = event.logs
            if "loss" in logs:
                p.update(task, info=f"loss {logs['loss']:.4f}  "
                                    f"accuracy {logs.get('accuracy', float('nan')):.4f}")
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
                          + ("  (resumed)" if event.resumed else "")))
        elif isinstance(event, CombinationFailed):
            self._task("fits", "fits", event.total_fits, event.fits_done)
            self.say(Text(f"failed: {params_text(event.params, self.searched)}: {event.reason}",
                          style="yellow"))
        elif isinstance(event, CombinationInvalid):
            self.say(Text(f"invalid, not run: {params_text(event.params, self.searched)}: "
                          f"{event.reason}", style="yellow"))


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


def params_text(params: dict[str, Any], only: Sequence[str] = ()) -> str:
    """``init_rate=0.02 num_filters=16``: the searched fields when given, else all."""
    names = [k for k in only if k in params] or sorted(params)
    return " ".join(f"{k}={params[k]}" for k in names)


# ---- running core work in a worker ------------------------------------------------------
#: Every worker started; one still alive at exit was left behind by a second Ctrl+C.
_workers: list[threading.Thread] = []


def worker_left_running() -> bool:
    """True when a core task is still running in a thread this module started.

    Interpreter shutdown with TensorFlow busy in a daemon thread aborts the process
    ("terminate called ..."), so the entry point leaves with ``os._exit`` instead.
    """
    return any(t.is_alive() for t in _workers)


class Runner:
    """Runs core calls in a worker thread while the main thread draws their events.

    Events that end a unit of work (an epoch, a fold) wait until the main thread has
    shown them, so a stop asked for while looking at "epoch 1 done" acts before epoch 2
    gets far (and tests can stop after exactly one epoch).
    """

    def __init__(self, output: Output) -> None:
        from convonet.core.events import CancelToken

        self.output = output
        self.cancel: CancelToken = CancelToken()
        self.interrupted = False
        #: SIGTERM or SIGHUP, when one of them (not Ctrl+C) stopped the command.
        self.signal: int | None = None
        self._abandoned = threading.Event()

    def signalled(self) -> bool:
        """True once SIGTERM or SIGHUP arrived: runs cut short are then "interrupted"."""
        return self.signal is not None

    def note_signal(self, run: RunFolder | None) -> None:
        """Name the signal in an interrupted run's run.json (``interrupted_by``), as the
        app does, so a look at the run says a hang-up or a kill ended it."""
        import signal

        if run is None or self.signal is None:
            return
        with contextlib.suppress(OSError, ValueError):
            if run.info.get("status") == "interrupted":
                run.update(interrupted_by=signal.Signals(self.signal).name)

    def call(self, fn: Callable[[Reporter, CancelToken], T], title: str, *,
             stoppable: bool = False) -> T:
        """``fn(report, cancel)`` in a worker; its result, or its exception re-raised.

        ``stoppable``: ``fn`` returns normally after a stop with what it finished (training,
        tuning); otherwise a stop during ``fn`` discards its result and raises Stopped.
        """
        from convonet.core.events import Cancelled, EpochEnd
        from convonet.core.tuning import CombinationFailed, FoldEnd

        if self.interrupted:
            raise Stopped()
        sync = (EpochEnd, FoldEnd, CombinationFailed)
        events: queue.Queue[tuple[Event, threading.Event | None] | None] = queue.Queue()
        outcome: dict[str, Any] = {}

        def report(event: Event) -> None:
            if not isinstance(event, sync):
                events.put((event, None))
                return
            seen = threading.Event()
            events.put((event, seen))
            while not seen.wait(0.05):
                if self.cancel.cancelled or self._abandoned.is_set():
                    return

        def work() -> None:
            try:
                outcome["result"] = fn(report, self.cancel)
            except BaseException as exc:  # handed to the main thread, which decides
                outcome["error"] = exc
            finally:
                events.put(None)

        worker = threading.Thread(target=work, name=f"convonet-{title}", daemon=True)
        _workers.append(worker)
        with Display(self.output, title) as display:
            worker.start()
            try:
                self._pump(events, display)
            except BaseException:
                self._abandoned.set()  # a second Ctrl+C: leave without waiting
                raise
        worker.join()
        error = outcome.get("error")
        if isinstance(error, Cancelled):
            raise Stopped()
        if error is not None:
            raise error
        if self.interrupted and not stoppable:
            raise Stopped()
        return outcome["result"]  # type: ignore[no-any-return]

    def _pump(self, events: queue.Queue[tuple[Event, threading.Event | None] | None],
              display: Display) -> None:
        while True:
            try:
                try:
                    item = events.get(timeout=0.2)
                except queue.Empty:
                    continue
                if item is None:
                    return
                event, seen = item
                try:
                    display.handle(event)
                finally:
                    if seen is not None:
                        seen.set()
            except KeyboardInterrupt:
                if self.interrupted:
                    raise
                self.interrupted = True
                self.cancel.cancel()
                display.stopping()


# ---- loading inputs ---------------------------------------------------------------------
def load_params(args: argparse.Namespace, output: Output, *, need_hyper: bool = True
                ) -> tuple[DataParams, HyperParams]:
    """The params files given, or the demo's when neither is given (as the app does)."""
    from convonet.core.params import DataParams, HyperParams

    data_path: Path | None = getattr(args, "data_params", None)
    hyper_path: Path | None = getattr(args, "hyper_params", None)
    # The files given are read first, so their errors come before any about what is missing.
    hyper = HyperParams.load(hyper_path) if need_hyper and hyper_path is not None else None
    if data_path is None and (hyper_path is None or not need_hyper):
        from convonet.core.demo import demo_params_paths, ensure_demo

        folder = ensure_demo()
        demo_data, demo_hyper = demo_params_paths(folder)
        data_path = demo_data
        if need_hyper and hyper_path is None:
            hyper_path = demo_hyper
        output.notice(f"no --data-params given: using the demo set in {folder}",
                      level="information")
    if data_path is None:
        raise UsageError("no data params: give --data-params FILE (or neither params option "
                         "to use the demo set)")
    data = DataParams.load(data_path)
    if hyper is None:
        hyper = HyperParams.load(hyper_path) if hyper_path is not None else HyperParams()
    epochs = getattr(args, "epochs", None)
    if epochs is not None:
        hyper = hyper.edit(epochs=epochs)
    return data, hyper


def load_trained_model(args: argparse.Namespace, results_dir: Path,
                       data_params: DataParams | None
                       ) -> tuple[keras.Model, list[str] | None, Path]:
    """--model, or the model ``convonet train`` saved for these data params."""
    from convonet.core.model import ModelError, load_model, read_class_names
    from convonet.core.model_files import default_model_path, similar_models

    given: Path | None = args.model
    path = given if given is not None else default_model_path(results_dir, data_params)
    if given is None and not path.exists():
        others = similar_models(results_dir, data_params)
        hint = (f" ({others[0]} is there, saved for a same-named params file in another "
                f"folder or by an older version: --model {others[0]} uses it)"
                if others else "")
        raise ModelError(f"{path}: no model there yet; train one with 'convonet train' or "
                         f"name a model file with --model{hint}")
    model = load_model(path)
    return model, read_class_names(path), path


def prep(data_params: DataParams, which: str, *, seed: int = 42,
         train_classes: Sequence[str] | None = None, classes_of: str = "training"
         ) -> Callable[[Reporter, CancelToken], Dataset]:
    from convonet.core.data import DataPrep

    def load(report: Reporter, cancel: CancelToken) -> Dataset:
        return DataPrep(data_params).prep_data(which, report, cancel, seed=seed,
                                               train_classes=train_classes,
                                               classes_of=classes_of)

    return load


def run_path(run: RunFolder | None) -> str | None:
    """The run folder as text for the output (None when it could not be written)."""
    return str(run.path) if run is not None else None


def dataset_line(ds: Dataset, what: str) -> str:
    h, w, c = ds.image_shape
    skipped = f", {len(ds.skipped)} skipped" if ds.skipped else ""
    return (f"{what}: {len(ds)} images in {ds.num_classes} classes, {h}x{w}x{c}"
            f"{skipped}{' (from cache)' if ds.from_cache else ''}")


# ---- tables -----------------------------------------------------------------------------
def summary_table(summary: Any) -> Table:
    table = Table(title=f"Model {summary.name}", title_justify="left")
    table.add_column("Layer (type)")
    table.add_column("Output shape")
    table.add_column("Params", justify="right")
    for row in summary.rows:
        table.add_row(f"{row.name} ({row.type})", row.output_shape, f"{row.params:,}")
    table.caption = "\n".join(f"{label}: {count:,} ({size})"
                               for label, count, size in summary.totals())
    table.caption_justify = "left"
    return table


def _num(value: float | None, digits: int = 4) -> str:
    return "" if value is None else f"{value:.{digits}f}"


def history_table(history: Any) -> Table:
    table = Table(title="Training history", title_justify="left")
    for name in ("epoch", "loss", "accuracy"):
        table.add_column(name, justify="right")
    if history.validation:
        table.add_column("val_loss", justify="right")
        table.add_column("val_accuracy", justify="right")
    table.add_column("lr", justify="right")
    table.add_column("seconds", justify="right")
    best = history.best_epoch
    for r in history.rows:
        cells = [f"{r.epoch}{' (partial)' if r.partial else ''}", _num(r.loss),
                 _num(r.accuracy)]
        if history.validation:
            cells += [_num(r.val_loss), _num(r.val_accuracy)]
        cells += [f"{r.learning_rate:.4g}", f"{r.seconds:.1f}"]
        table.add_row(*cells, style="bold" if r.epoch == best else None)
    return table


def report_table(prediction: Any) -> Table:
    table = Table(title="Per-class report", title_justify="left")
    # Index and name apart: "4 2" would hide that folder "2" has index 4.
    for name, justify in (("index", "right"), ("class", "left"), ("precision", "right"),
                          ("recall", "right"), ("F1", "right"), ("support", "right")):
        table.add_column(name, justify=justify)  # type: ignore[arg-type]
    for r in prediction.report_rows():
        table.add_row("" if r.index < 0 else str(r.index), r.name, f"{r.precision:.3f}",
                      f"{r.recall:.3f}", f"{r.f1:.3f}", str(r.support),
                      style="dim" if r.index < 0 else None)
    return table


def tuning_table(result: Any, limit: int = 30) -> Table:
    searched = list(result.searched)
    table = Table(title=f"Tuning results ({result.strategy}, best first)",
                  title_justify="left")
    table.add_column("rank", justify="right")
    if result.strategy == "halving":
        table.add_column("rung", justify="right")
        table.add_column("images", justify="right")
    for name in searched or ["params"]:
        table.add_column(name, justify="right", no_wrap=True)
    for name in ("accuracy", "std", "loss", "fit s", "status"):
        table.add_column(name, justify="right")
    table.caption = "accuracy, std, loss and fit time: over the held-out folds"
    table.caption_justify = "left"
    for row in result.ranked()[:limit]:
        cells = [str(row["rank_test_score"])]
        if result.strategy == "halving":
            cells += [str(row["iter"] + 1), str(row["n_resources"])]
        if searched:
            cells += [str(row["params"].get(name, "")) for name in searched]
        else:
            cells.append(params_text(row["params"]))
        ok = row["status"] == "ok"
        cells += [_num(row["mean_test_score"]) if ok else "", _num(row["std_test_score"])
                  if ok else "", _num(row["mean_test_loss"]) if ok else "",
                  _num(row["mean_fit_time"], 1) if ok else "",
                  "ok" if ok else status_text(row)]
        table.add_row(*cells, style="bold" if ok and row["rank_test_score"] == 1 else None)
    return table


def status_text(row: Mapping[str, Any]) -> str:
    """A row's status cell when it has no score: why (an invalid one says so first)."""
    if row["status"] == "invalid":
        return f"invalid: {row['reason']}"
    return str(row["reason"] or row["status"])


# ---- commands ---------------------------------------------------------------------------
def refuse_overwrite(model_path: Path, args: argparse.Namespace) -> None:
    """A model already at ``model_path`` is kept unless --force: said before training."""
    if getattr(args, "force", False) or not model_path.exists():
        return
    raise UsageError(f"{model_path} already exists; give --model PATH to save this model "
                     "elsewhere, or --force to replace it")


def cmd_train(args: argparse.Namespace, output: Output, runner: Runner) -> int:
    """Load the training set, build the model, train, save the model and the history.

    With --resume RUN_DIR: continue that stopped or interrupted training at the epoch
    after its checkpoint, on its own params and training set.
    """
    results_dir = results_dir_of(args)
    resume: RunFolder | None = None
    if getattr(args, "resume", None) is not None:
        from convonet.core.records import resume_problem
        from convonet.core.runs import DATA_PARAMS_JSON, HYPER_PARAMS_JSON, RunFolder

        try:
            resume = RunFolder.open(args.resume)
        except FileNotFoundError as exc:
            raise UsageError(str(exc)) from None
        problem = resume_problem(resume)
        if problem is not None:
            raise UsageError(f"cannot resume: {problem}")
        args.data_params = resume.file(DATA_PARAMS_JSON)
        args.hyper_params = resume.file(HYPER_PARAMS_JSON)
        args.epochs = None
        args.validation = bool(resume.info.get("validation"))
    data_params, hyper_params = load_params(args, output)
    from convonet.core.model_files import default_model_path
    from convonet.core.records import resume_save_to

    # A resumed run saves where its first start would have (recorded in its run.json).
    model_path: Path = args.model or (resume_save_to(resume) if resume is not None
                                      else default_model_path(results_dir, data_params))
    refuse_overwrite(model_path, args)  # before any loading or training
    start_keras(output)
    from convonet.core import records
    from convonet.core.model import NetModel, save_model
    from convonet.core.storage import storage_error

    config = hyper_params.first()
    seed = int(config["seed"])
    if resume is not None and resume.info.get("seed") is not None:
        seed = int(resume.info["seed"])
    train_set = runner.call(prep(data_params, "train", seed=seed), "load")
    output.line(dataset_line(train_set, "training set"))
    validation = bool(args.validation)
    signalled = runner.signalled

    if resume is not None:
        records.check_fingerprint(resume, train_set)
        folder = resume

        def train(report: Reporter, cancel: CancelToken) -> Any:
            return records.resume_training(folder, dataset=train_set, report=report,
                                           cancel=cancel, interrupted=signalled)
    else:
        net = NetModel(hyper_params)
        model = net.build(train_set.image_shape, train_set.num_classes,
                          train_set.class_names)
        output.print(summary_table(net.summary()))

        def train(report: Reporter, cancel: CancelToken) -> Any:
            return records.train_run(model, hyper_params, train_set, validation, results_dir,
                                     data_params, report=report, cancel=cancel,
                                     interrupted=signalled, save_to=model_path,
                                     tensorboard=True if getattr(args, "tensorboard", False)
                                     else None)

    outcome = runner.call(train, "train", stoppable=True)
    history, run, metrics = outcome.history, outcome.run, outcome.metrics
    seconds = float(metrics["seconds"])
    stopped = history.stopped or runner.interrupted
    status = outcome.status
    if stopped and status == "finished":  # Ctrl+C after the last epoch's end
        status = "stopped"
    saved = [outcome.model_file] if outcome.model_file is not None else []
    if not stopped:  # a stopped model stays in the run folder, never over a good one
        try:
            saved.append(save_model(outcome.model, model_path,
                                    class_names=train_set.class_names))
        except Exception as exc:  # a full disk: the run's own copy is whole
            error = storage_error(exc, model_path, outcome=f"the trained model is kept "
                                  f"in {outcome.model_file}", then="copy it from there",
                                  results_dir=results_dir)
            if error is None:
                raise
            raise error from exc
        if run is not None:
            run.update(model=str(saved[-1]))
    complete = [r for r in history.rows if not r.partial]
    last = complete[-1] if complete else None

    output.print(history_table(history))
    words = f"{status} after {len(complete)} of {history.epochs} epoch(s) in {seconds:.1f} s"
    if last is not None:
        words += f": accuracy {last.accuracy:.4f}"
        if last.val_accuracy is not None:
            words += f", val_accuracy {last.val_accuracy:.4f}"
    if history.restored_epoch is not None:
        words += f" (weights of epoch {history.restored_epoch}, early stopping)"
    output.line(words, style="bold")
    if saved:
        output.line(f"model: {saved[-1]}")
    run_dir = str(run.path) if run is not None else None
    if run_dir:
        output.line(f"run folder: {run_dir}")
        if stopped:
            output.line(f"resume with: convonet train --resume {run_dir}")
    output.emit_json({"command": "train", "status": status, "run_dir": run_dir,
                      "model": str(saved[-1]) if saved else None, "validation": validation,
                      "class_names": train_set.class_names, "metrics": metrics,
                      "history": history.as_rows(), "seconds": seconds})
    if status == "interrupted" and runner.signal is not None:
        runner.note_signal(run)
        return 128 + runner.signal
    return EXIT_STOPPED if stopped else EXIT_OK


def cmd_tune(args: argparse.Namespace, output: Output, runner: Runner) -> int:
    """Grid search or successive halving over the hyper params' comma-separated values.

    With --resume RUN_DIR: continue that stopped or interrupted search, after the checks
    ``train --resume`` makes, on its own params and training set.
    """
    from convonet.core.runs import DATA_PARAMS_JSON, HYPER_PARAMS_JSON

    results_dir = results_dir_of(args)
    resume: RunFolder | None = None
    if args.resume is not None:
        from convonet.core.records import ResumeError
        from convonet.tasks.resume import check_resumable

        try:  # before any params or data are read, as train --resume
            resume = check_resumable(args.resume, "tuning")
        except ResumeError as exc:
            raise UsageError(str(exc)) from None
        if args.data_params is None and resume.file(DATA_PARAMS_JSON).is_file():
            args.data_params = resume.file(DATA_PARAMS_JSON)
        if args.hyper_params is None:
            args.hyper_params = resume.file(HYPER_PARAMS_JSON)
    data_params, hyper_params = load_params(args, output)
    start_keras(output)
    from convonet.tasks import Status, execute
    from convonet.tasks.tune import TuneSpec

    train_set = runner.call(prep(data_params, "train", seed=int(hyper_params.seed)), "load")
    output.line(dataset_line(train_set, "training set"))
    spec = TuneSpec(hyper_params=hyper_params, data_params=data_params, train_set=train_set,
                    search=args.search, resume=resume, results_dir=results_dir,
                    interrupted=runner.signalled)
    started = time.monotonic()
    outcome = runner.call(lambda report, cancel: execute(spec, report, cancel), "tune",
                          stoppable=True)
    seconds = time.monotonic() - started
    status = outcome.status
    if runner.interrupted and status is Status.FINISHED:  # Ctrl+C after the last fold
        status = Status.INTERRUPTED if runner.signalled() else Status.STOPPED
    searched = hyper_params.edit(search=args.search) if args.search else hyper_params
    return present_tuning(args, output, runner, outcome.result, status, seconds, searched)


def present_tuning(args: argparse.Namespace, output: Output, runner: Runner, result: Any,
                   status: Any, seconds: float, hyper_params: HyperParams) -> int:
    """The table, the best combination (saved with --save-best, ``hyper_params`` with it
    applied), the run folder and how it ended, --json."""
    stopped = str(status) != "finished"
    output.print(tuning_table(result))
    best_file: Path | None = None
    if result.best_params is not None:
        output.line(f"best: {params_text(result.best_params, result.searched)}  mean accuracy "
                    f"{result.best_score:.4f}", style="bold")
        if args.save_best is not None:
            best_file = hyper_params.apply(result.best_params).save(args.save_best)
            output.line(f"best params written to {best_file}")
    output.line(f"{status}: {result.fits_done} of {result.total_fits} fits in "
                f"{seconds:.1f} s, {len(result.failures)} combination(s) failed"
                + (f", {len(result.invalid)} invalid (not run)" if result.invalid else ""))
    run_dir = str(result.run.path) if result.run is not None else None
    if run_dir:
        output.line(f"run folder: {run_dir}")
        if stopped:
            output.line(f"resume with: convonet tune --resume {run_dir}")
    output.emit_json({"command": "tune", "status": str(status),
                      "run_dir": run_dir, "strategy": result.strategy,
                      "searched": result.searched, "best_params": result.best_params,
                      "best_score": result.best_score, "fits_done": result.fits_done,
                      "total_fits": result.total_fits, "failures": result.failures,
                      "invalid": result.invalid,
                      "best_params_file": str(best_file) if best_file else None,
                      "rows": [{k: r[k] for k in ("params", "mean_test_score",
                                                  "std_test_score", "mean_test_loss",
                                                  "rank_test_score", "status", "reason",
                                                  "iter", "n_resources")}
                               for r in result.ranked()],
                      "seconds": seconds})
    if stopped and runner.signal is not None:
        runner.note_signal(result.run)
        return 128 + runner.signal
    return EXIT_STOPPED if stopped else EXIT_OK


def _testing_inputs(args: argparse.Namespace, output: Output, runner: Runner
                    ) -> tuple[Path, DataParams, keras.Model, list[str] | None, Path, Dataset]:
    results_dir = results_dir_of(args)
    data_params, _ = load_params(args, output, need_hyper=False)
    start_keras(output)
    model, names, model_path = load_trained_model(args, results_dir, data_params)
    # The names are the model's (saved beside it), so a mismatch names the model's classes.
    test_set = runner.call(prep(data_params, "test", train_classes=names, classes_of="model"),
                           "load")
    output.line(dataset_line(test_set, "test set"))
    return results_dir, data_params, model, names, model_path, test_set


def cmd_evaluate(args: argparse.Namespace, output: Output, runner: Runner) -> int:
    """Loss and accuracy of a saved model on the test set."""
    results_dir, data_params, model, _, model_path, test_set = _testing_inputs(
        args, output, runner)
    from convonet.core.records import evaluate_run

    started = time.monotonic()
    outcome = runner.call(lambda report, cancel: evaluate_run(
        model, test_set, results_dir, data_params=data_params, model_path=model_path,
        report=report), "evaluate")
    seconds = time.monotonic() - started
    evaluation, run = outcome.evaluation, outcome.run
    metrics = {"accuracy": evaluation.accuracy, "loss": evaluation.loss,
               "count": evaluation.count, "seconds": round(seconds, 3)}
    table = Table(title="Evaluation", title_justify="left")
    table.add_column("test images", justify="right")
    table.add_column("accuracy", justify="right")
    table.add_column("loss", justify="right")
    table.add_row(str(evaluation.count), f"{evaluation.accuracy:.4f}", f"{evaluation.loss:.4f}")
    output.print(table)
    output.line(f"model: {model_path}   run folder: {run_path(run)}   {seconds:.1f} s")
    output.emit_json({"command": "evaluate", "status": "finished", "run_dir": run_path(run),
                      "model": str(model_path), **metrics, "seconds": seconds})
    return EXIT_OK


def cmd_predict(args: argparse.Namespace, output: Output, runner: Runner) -> int:
    """The confusion matrix and per-class precision, recall and F1 on the test set."""
    results_dir, data_params, model, names, model_path, test_set = _testing_inputs(
        args, output, runner)
    from convonet.core.records import predict_run
    from convonet.tui.widgets.heatmap import confusion_table  # rich only

    started = time.monotonic()
    # The model's own class names, matched by index.
    outcome = runner.call(lambda report, cancel: predict_run(
        model, test_set, results_dir, class_names=names, data_params=data_params,
        model_path=model_path, report=report), "predict")
    seconds = time.monotonic() - started
    prediction, run = outcome.prediction, outcome.run
    metrics = {"accuracy": prediction.accuracy, "count": prediction.count,
               "macro_f1": prediction.macro.f1, "weighted_f1": prediction.weighted.f1,
               "seconds": round(seconds, 3)}
    names = prediction.class_names
    output.print(confusion_table(prediction.confusion, names, width=output.out.width))
    output.print(report_table(prediction))
    output.line(f"accuracy {prediction.accuracy:.4f} on {prediction.count} test images "
                f"in {seconds:.1f} s", style="bold")
    output.line(f"model: {model_path}   run folder: {run_path(run)}")
    output.emit_json({
        "command": "predict", "status": "finished", "run_dir": run_path(run),
        "model": str(model_path), **metrics, "class_names": prediction.class_names,
        "confusion": prediction.confusion,
        # The same counts named: {true class: {predicted class: count}}.
        "confusion_by_name": {true: {pred: int(count) for pred, count in zip(names, row,
                                                                             strict=True)}
                              for true, row in zip(names, prediction.confusion, strict=True)},
        "report": [{"index": r.index if r.index >= 0 else None, "class": r.name,
                    "precision": r.precision, "recall": r.recall, "f1": r.f1,
                    "support": r.support} for r in prediction.report_rows()],
        "files": {"confusion": str(outcome.files[0]) if outcome.files else None,
                  "report": str(outcome.files[1]) if outcome.files else None},
        "seconds": seconds})
    return EXIT_OK


def cmd_classify(args: argparse.Namespace, output: Output, runner: Runner) -> int:
    """Predicted class and confidence of new, unlabelled images; a CSV of them all."""
    from convonet.core.params import DataParams

    results_dir = results_dir_of(args)
    missing = [str(p) for p in args.paths if not p.exists()]
    if missing:
        raise UsageError(f"no such file or folder: {', '.join(missing)}")
    data_params: DataParams | None = None
    if args.data_params is not None:
        data_params = DataParams.load(args.data_params, check=False)
    elif args.model is None:  # neither: the demo's model, as evaluate and predict
        data_params, _ = load_params(args, output, need_hyper=False)
    start_keras(output)
    from convonet.core.model import model_io_shape
    from convonet.core.records import classify_run
    from convonet.core.testing import list_images, write_classifications_csv

    files = list_images(list(args.paths))
    if not files:
        raise UsageError("no image files found in " + ", ".join(str(p) for p in args.paths))
    model, names, model_path = load_trained_model(args, results_dir, data_params)
    if data_params is None:  # the model knows the image size and channels it takes
        (h, w, c), _ = model_io_shape(model)
        data_params = DataParams({"image_size": [h, w],
                                  "color_mode": "grayscale" if c == 1 else "rgb"})
    started = time.monotonic()
    outcome = runner.call(lambda report, cancel: classify_run(
        model, list(args.paths), data_params, results_dir, class_names=names,
        model_path=model_path, report=report), "classify")
    seconds = time.monotonic() - started
    rows, run = outcome.rows, outcome.run
    if not rows:
        raise UsageError(f"none of the {len(files)} file(s) is a readable image")
    csv_path = outcome.csv
    if args.csv is not None:
        csv_path = write_classifications_csv(rows, args.csv)
    table = Table(title=f"Classified {len(rows)} image(s)", title_justify="left")
    for name, justify in (("file", "left"), ("class", "left"), ("confidence", "right"),
                          ("2nd", "left"), ("3rd", "left")):
        table.add_column(name, justify=justify)  # type: ignore[arg-type]
    for r in rows[:SHOWN_CLASSIFICATIONS]:
        others = [f"{name} {p:.3f}" for _, name, p in r.top3[1:3]] + ["", ""]
        table.add_row(str(r.path), r.name, f"{r.confidence:.3f}", *others[:2])
    output.print(table)
    if len(rows) > SHOWN_CLASSIFICATIONS:
        output.line(f"... and {len(rows) - SHOWN_CLASSIFICATIONS} more in {csv_path}")
    output.line(f"csv: {csv_path}   run folder: {run_path(run)}   {seconds:.1f} s")
    output.emit_json({
        "command": "classify", "status": "finished", "run_dir": run_path(run),
        "model": str(model_path), "csv": str(csv_path), "count": len(rows),
        "skipped": len(files) - len(rows),
        "classifications": [{"file": str(r.path), "index": r.index, "class": r.name,
                             "confidence": r.confidence,
                             "top3": [{"index": i, "class": n, "probability": p}
                                      for i, n, p in r.top3]} for r in rows],
        "seconds": seconds})
    return EXIT_OK


def cmd_demo(args: argparse.Namespace, output: Output, runner: Runner) -> int:
    """Write the bundled demo set and print its params files (then train, with --train)."""
    from convonet.core.demo import demo_params_paths, ensure_demo

    folder = ensure_demo(args.data_dir)
    data_json, hyper_json = demo_params_paths(folder)
    output.line(f"demo set: {folder}")
    output.line(f"data params: {data_json}")
    output.line(f"hyper params: {hyper_json}")
    if not args.train:
        output.line(f"next: convonet train --data-params {data_json} "
                    f"--hyper-params {hyper_json}", style="dim")
        output.emit_json({"command": "demo", "status": "finished", "folder": str(folder),
                          "data_params": str(data_json), "hyper_params": str(hyper_json)})
        return EXIT_OK
    args.data_params, args.hyper_params = data_json, hyper_json
    args.validation = True
    return cmd_train(args, output, runner)


COMMANDS: dict[str, Callable[[argparse.Namespace, Output, Runner], int]] = {
    "train": cmd_train, "tune": cmd_tune, "evaluate": cmd_evaluate, "predict": cmd_predict,
    "classify": cmd_classify, "demo": cmd_demo,
}


#: (module, class) of the errors whose message is the whole story.
USER_ERRORS = (("convonet.core.params", "ParamsError"), ("convonet.core.data", "DataError"),
               ("convonet.core.model", "ModelError"), ("convonet.core.tuning", "TuningError"))


def user_errors() -> tuple[type[BaseException], ...]:
    """Errors whose message is the whole story: one line, exit 2, no traceback.

    Taken only from modules already imported (an error cannot come from one that is not),
    so a params error never waits for TensorFlow to import just to be classified.
    """
    found: list[type[BaseException]] = [UsageError, OSError, ValueError]
    for module, name in USER_ERRORS:
        if module in sys.modules:
            found.append(getattr(sys.modules[module], name))
    return tuple(found)


def run_command(args: argparse.Namespace) -> int:
    """Run one headless command with warnings kept in the log; returns the exit status."""
    output = Output(json_mode=bool(args.json), verbose=bool(args.verbose))
    log_path = results_dir_of(args) / LOG_NAME
    output.log_path = log_path
    noise = contextlib.nullcontext(log_path) if args.verbose else route_noise_to_log(log_path)
    with noise, guarded_output():
        return _run(args, output)


def start_keras(output: Output) -> None:
    """Import Keras now, its C++ start-up lines into the log unless --verbose.

    Called once the params are read, so a bad params file fails at once, not after the
    seconds TensorFlow takes to import. Also names the backend and device
    (``tensorflow · CPU``) for the output.
    """
    from convonet.tui.backend import describe_backend  # plain Python: no textual

    if output.backend:
        return
    if output.verbose or output.log_path is None:
        output.backend = describe_backend()
    else:
        with stderr_to_log(output.log_path):
            output.backend = describe_backend()
    if not output.json_mode:
        output.err.print(Text(f"keras: {output.backend}", style="dim"))


@contextlib.contextmanager
def signals_as_interrupt(runner: Runner) -> Iterator[None]:
    """SIGTERM and SIGHUP (a shutdown, a dropped SSH connection) act as Ctrl+C does:
    the running task stops at its next batch or fold and what finished is kept; the
    runner remembers the signal so the run is recorded as interrupted, not stopped."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    import signal

    def handler(signum: int, frame: Any) -> None:
        if signum == getattr(signal, "SIGHUP", None):
            check_hangup()  # a terminal that hung up takes no more output
            if runner.signal is not None:
                return  # the hang-up comes again (from the kernel, tmux, sshd): no hurry
        if runner.signal is None:
            runner.signal = signum
        raise KeyboardInterrupt

    wanted = [getattr(signal, name) for name in ("SIGTERM", "SIGHUP") if hasattr(signal, name)]
    previous = {sig: signal.signal(sig, handler) for sig in wanted}
    try:
        yield
    finally:
        hung_up = runner.signal == getattr(signal, "SIGHUP", None)
        for sig, old in previous.items():
            # After a hang-up more SIGHUPs come (the kernel's, then tmux's or sshd's), maybe
            # while the closing lines are written: with the default action restored, one
            # would kill the process before it says how the run ended.
            signal.signal(sig, signal.SIG_IGN if hung_up and sig == signal.SIGHUP else old)


def _run(args: argparse.Namespace, output: Output) -> int:
    command = args.command
    runner = Runner(output)
    from convonet.core.storage import check_writable, storage_error

    try:
        with signals_as_interrupt(runner):
            if command != "demo" or getattr(args, "train", False):
                check_writable(results_dir_of(args))  # refused before anything is loaded
            return COMMANDS[command](args, output, runner)
    except (Stopped, KeyboardInterrupt):
        if runner.signal is not None:
            return _interrupted(args, output, runner)
        # A stop is not an error: say so without the "error:" prefix scripts grep for.
        output.last_line(f"{PROG}: stopped; what finished is recorded")
        output.emit_json({"command": command, "status": "stopped"})
        return EXIT_STOPPED
    except Exception as error:
        # A full disk or a read-only folder: one message naming the file and what to do.
        exc = storage_error(error, results_dir=results_dir_of(args)) or error
        expected = isinstance(exc, user_errors())
        message = one_line(exc)
        if not expected:
            message = f"{type(exc).__name__}: {message}"
        if not expected or message != str(exc).strip():
            log.error("%s failed", command, exc_info=exc)
            if output.log_path is not None:
                message += f" (details in {output.log_path})"
        if output.verbose:
            import traceback

            traceback.print_exception(exc, file=sys.stderr)
        output.error(message)
        output.emit_json({"command": command, "status": "failed", "error": message})
        return EXIT_USAGE if expected else EXIT_FAILED


# ---- the argument parser ------------------------------------------------------------------
def _common(parser: argparse.ArgumentParser, *, hyper: bool = True, model: bool = False
            ) -> None:
    """Options every command takes. Shared names keep the top-level values (SUPPRESS)."""
    parser.add_argument("--data-params", metavar="PATH", type=Path, default=argparse.SUPPRESS,
                        help="data params JSON (default: the demo set when no params are "
                             "given)")
    if hyper:
        parser.add_argument("--hyper-params", metavar="PATH", type=Path,
                            default=argparse.SUPPRESS, help="hyper params JSON")
    if model:
        parser.add_argument("--model", metavar="PATH", type=Path, default=None,
                            help="the .keras model file (default: RESULTS/<name>-<hash>.keras "
                                 "as 'convonet train' saves it: <name> from the data params "
                                 "file's name, <hash> six hex digits naming its folder)")
    parser.add_argument("--results-dir", metavar="DIR", type=Path, default=argparse.SUPPRESS,
                        help="where run records and models go "
                             "(default: $CONVONET_RESULTS_DIR or ./app_results)")
    parser.add_argument("--json", action="store_true",
                        help="print one JSON object on stdout instead of bars and tables")
    parser.add_argument("--verbose", action="store_true",
                        help="show library warnings and tracebacks on the terminal instead "
                             f"of RESULTS/{LOG_NAME}")


def _parser(commands: Any, name: str, help_text: str, description: str,
            examples: str) -> argparse.ArgumentParser:
    parser: argparse.ArgumentParser = commands.add_parser(
        name, help=help_text, description=textwrap.fill(description, 79),
        epilog="examples:\n" + examples + "\n\nexit status: 0 done, 1 failed, 2 bad input "
        "(one line on stderr), 130 stopped by Ctrl+C",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.set_defaults(handler=run_command, command=name)
    return parser


def _interrupted(args: argparse.Namespace, output: Output, runner: Runner) -> int:
    """A signal ended the command: runs still open are recorded as interrupted."""
    import signal

    from convonet.core.records import active_runs, mark_interrupted

    name = signal.Signals(runner.signal or signal.SIGTERM).name
    marked = mark_interrupted(active_runs(results_dir_of(args)), name)
    with contextlib.suppress(OSError):  # the terminal may be gone with the connection
        output.last_line(f"{PROG}: interrupted by {name}; what finished is recorded")
        output.emit_json({"command": args.command, "status": "interrupted", "signal": name,
                          "run_dir": str(marked[0].path) if marked else None})
    return 128 + int(runner.signal or signal.SIGTERM)


def add_commands(commands: Any) -> None:
    """Add the headless subcommands to ``convonet``'s subparsers."""
    demo_args = ("--data-params DEMO/demo_data_params.json "
                 "--hyper-params DEMO/demo_hyper_params.json")
    p = _parser(commands, "train", "train a model without the app",
                "Load the training set, build the model from the hyper params' first "
                "values, train (with validation unless --no-validation), and save the model "
                "to --model and to the run folder. Ctrl+C stops at the next batch and keeps "
                "the finished epochs.",
                "  convonet train          (no params: the demo set, see 'convonet demo')\n"
                f"  convonet train {demo_args} --no-validation\n"
                "  convonet train --data-params app_input/mnist_data_params.json "
                "--hyper-params app_input/mnist_hyper_params.json --epochs 3 "
                "--model app_results/mnist.keras\n"
                "  convonet train --resume app_results/runs/20250101-120000-training")
    _common(p, model=True)
    p.add_argument("--validation", action=argparse.BooleanOptionalAction, default=True,
                   help="hold out validation_split for validation (default: on)")
    p.add_argument("--epochs", type=int, metavar="N", help="override the epochs to train")
    p.add_argument("--tensorboard", action="store_true",
                   help="write TensorBoard logs into the run folder (needs the 'tensorboard' "
                        "extra; CONVONET_TENSORBOARD=1 turns it on everywhere, the app too)")
    p.add_argument("--resume", metavar="RUN_DIR", type=Path,
                   help="continue a stopped or interrupted training run at the epoch after "
                        "its last checkpoint (its own params and training set)")
    p.add_argument("--force", action="store_true",
                   help="replace the model file when it already exists (without it, train "
                        "refuses before it starts)")

    p = _parser(commands, "tune", "grid search or successive halving without the app",
                "Cross-validate every combination of the hyper params' comma-separated "
                "values on the tuning share of the training set. Each fold's score is "
                "recorded as it finishes; Ctrl+C keeps the finished folds and --resume "
                "continues the search.",
                f"  convonet tune {demo_args} --save-best best_hyper_params.json\n"
                "  convonet tune --resume app_results/runs/20250101-120000-tuning")
    _common(p)
    p.add_argument("--search", choices=("grid", "halving"),
                   help="override the params' search strategy")
    p.add_argument("--epochs", type=int, metavar="N", help="override the epochs of each fit")
    p.add_argument("--save-best", metavar="PATH", type=Path,
                   help="write the hyper params with the best combination applied")
    p.add_argument("--resume", metavar="RUN_DIR", type=Path,
                   help="continue a stopped or interrupted tuning run")

    p = _parser(commands, "evaluate", "loss and accuracy of a model on the test set",
                "Load a saved model and the test set of the data params, and report loss "
                "and accuracy.",
                "  convonet evaluate --data-params app_input/mnist_data_params.json "
                "--model app_results/mnist.keras --json")
    _common(p, hyper=False, model=True)

    p = _parser(commands, "predict", "confusion matrix and per-class report on the test set",
                "Predict the test set with a saved model: the confusion matrix as a coloured "
                "heatmap and per-class precision, recall and F1, saved as confusion.csv and "
                "report.csv in the run folder.",
                "  convonet predict --data-params app_input/mnist_data_params.json "
                "--model app_results/mnist.keras")
    _common(p, hyper=False, model=True)

    p = _parser(commands, "classify", "classify new, unlabelled images",
                "Give the predicted class and confidence of image files or folders of "
                "images (not recursive). Image size and colour mode come from --data-params "
                "or, without it, from the model.",
                "  convonet classify --model app_results/mnist.keras scans/ one.png "
                "--csv predictions.csv")
    p.add_argument("paths", metavar="PATH", nargs="+", type=Path,
                   help="image files and folders of images")
    _common(p, hyper=False, model=True)
    p.add_argument("--csv", metavar="OUT", type=Path,
                   help="also write the classifications to this CSV file")

    p = _parser(commands, "demo", "write the bundled demo set and print its params files",
                "Write scikit-learn's digits as 28x28 PNG class folders (once; no "
                "download) and print the data and hyper params files to use them. With "
                "--train, also train a small model on them.",
                "  convonet demo\n  convonet demo --train --epochs 2")
    p.add_argument("--data-dir", metavar="DIR", type=Path,
                   help="where to write the demo set (default: $CONVONET_DATA_DIR/demo or "
                        "the user data folder)")
    p.add_argument("--train", action="store_true", help="then train on it")
    p.add_argument("--model", metavar="PATH", type=Path, default=None,
                   help="with --train: where to save the model (default as 'convonet train')")
    p.add_argument("--force", action="store_true",
                   help="with --train: replace the model file when it already exists")
    p.add_argument("--epochs", type=int, metavar="N", help="with --train: override epochs")
    p.add_argument("--results-dir", metavar="DIR", type=Path, default=argparse.SUPPRESS,
                   help="with --train: where run records and models go")
    p.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    p.add_argument("--verbose", action="store_true", help="show library warnings")


__all__ = ["COMMANDS", "Display", "Output", "Runner", "Stopped", "UsageError",
           "add_commands", "run_command"]
