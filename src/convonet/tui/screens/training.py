"""The training screen: training only / with validation in a worker, live charts, stop.

Keys: ``t`` Training Only, ``v`` Training With Validation, ``s`` Stop (shown only while a run
is going). Each run trains ``session.model`` from its current weights, so pressing ``t``
again continues; a fresh start is ``i`` on the Model screen. A stop ends the run at the next
batch, keeps the weights and the history so far (the last epoch marked partial).

The history of the latest run lives in ``session.history``; the charts and the epoch
table are redrawn from it whenever the screen comes back, so they survive screen switches
and follow a model replaced on the Model screen. While a run is going, epochs are collected
as they come and drawn at most four times a second, however fast the epochs are.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import TYPE_CHECKING, Any, ClassVar

from textual import on
from textual.app import ComposeResult
from textual.binding import BindingType
from textual.containers import Horizontal, Vertical
from textual.timer import Timer
from textual.widgets import Static

from convonet.core.events import (
    BatchProgress,
    CancelToken,
    Compiling,
    EpochEnd,
    LoadProgress,
    Reporter,
    TrainStart,
    Validating,
)
from convonet.keytable import bindings
from convonet.tui.screens.base import ConvonetScreen
from convonet.tui.session import Aspect
from convonet.tui.tasks import CoreEvent, TaskEnded, TaskHandle, run_task
from convonet.tui.training_text import ended_text, info_line
from convonet.tui.widgets.charts import MetricChart
from convonet.tui.widgets.epoch_table import EpochTable
from convonet.tui.widgets.train_progress import TrainProgress

if TYPE_CHECKING:
    from pathlib import Path

    from convonet.core.runs import RunFolder
    from convonet.core.training import TrainHistory
    from convonet.tasks.train import TrainOutcome

TASK_NAME = "training"
#: Least time between two redraws of the charts and the table while a run is going.
DRAW_INTERVAL = 0.25


def train_network(model: Any, hyper_params: Any, train_set: Any, validation: bool, *,
                  report: Reporter, cancel: CancelToken, results_dir: Path | None = None,
                  data_params: Any = None, devices: str | None = None) -> TrainOutcome:
    """The seed's TrainTask: one recorded training run, from the model's current weights
    (a run folder with checkpoints under ``results_dir``, so it can be resumed), over
    ``devices`` (the app's ``--devices``) when given."""
    from convonet.tasks import execute
    from convonet.tasks.train import TrainSpec

    spec = TrainSpec(model=model, hyper_params=hyper_params, dataset=train_set,
                     validation=validation, results_dir=results_dir,
                     data_params=data_params, devices=devices)
    outcome: TrainOutcome = execute(spec, report, cancel)
    return outcome


def resume_network(run: RunFolder, train_set: Any, *, report: Reporter,
                   cancel: CancelToken, devices: str | None = None) -> TrainOutcome:
    """Continue an interrupted training; its training set is loaded from the run's data
    params copy when ``train_set`` is None."""
    from convonet.tasks import execute
    from convonet.tasks.train import TrainSpec

    outcome: TrainOutcome = execute(TrainSpec(resume=run, dataset=train_set, devices=devices),
                                    report, cancel)
    return outcome


def run_info(run: RunFolder | None) -> dict[str, Any]:
    """A run's run.json, or {} when there is none or it cannot be read now."""
    if run is None:
        return {}
    try:
        return run.info
    except (OSError, ValueError):
        return {}


class TrainingScreen(ConvonetScreen):
    """Runs training in a worker and shows its progress and history."""

    SCREEN_NAME = "training"
    SCREEN_TITLE = "Training"
    # Below 34 rows the epoch table gives its room to the charts; below 72 columns the
    # charts stack instead of sitting side by side.
    VERTICAL_BREAKPOINTS = [(0, "-short"), (34, "-tall")]
    HORIZONTAL_BREAKPOINTS = [(0, "-narrow"), (72, "-wide")]

    DEFAULT_CSS = """
    TrainingScreen #train-body { padding: 0 1; height: 1fr; }
    TrainingScreen #train-info { height: auto; color: $text-muted; }
    TrainingScreen #train-reason { height: auto; color: $warning; }
    TrainingScreen #train-progress { margin-top: 1; }
    TrainingScreen #train-charts { height: 1fr; min-height: 8; }
    TrainingScreen #train-charts MetricChart { width: 1fr; height: 1fr; min-height: 8; }
    TrainingScreen #train-epochs { height: 11; margin-top: 1; }
    TrainingScreen.-short #train-progress { margin-top: 0; }
    TrainingScreen.-short #train-epochs { display: none; }
    TrainingScreen.-narrow #train-charts { layout: vertical; }
    """

    BINDINGS: ClassVar[list[BindingType]] = [*bindings("training")]

    def __init__(self) -> None:
        super().__init__()
        self._job: TaskHandle | None = None
        self._stopping = False
        self._config: dict[str, Any] = {}
        self._validation = False
        self._rows: list[dict[str, Any]] = []  # epochs of the run going on
        self._pending = False
        self._timer: Timer | None = None
        self._drawn_history: Any = None  # the session.history the charts show
        self._drawn_model: Any = None
        self._epochs_trained: dict[int, int] = {}  # id(model) -> epochs run on it here
        self._shown: tuple[Any, ...] | None = None

    def compose_body(self) -> ComposeResult:
        with Vertical(id="train-body"):
            yield Static("", id="train-info", markup=False)
            yield Static("", id="train-reason", markup=False)
            yield TrainProgress(id="train-progress")
            with Horizontal(id="train-charts"):
                yield MetricChart("accuracy", "Accuracy", id="chart-accuracy")
                yield MetricChart("loss", "Loss", id="chart-loss")
            yield EpochTable(id="train-epochs")

    def on_mount(self) -> None:
        self._draw_history(self.session.history)
        self._sync(force=True)

    def session_changed(self, what: frozenset[Aspect]) -> None:
        """Data, a model, params or a task changed (maybe on another screen)."""
        self._sync()

    # ---- state ---------------------------------------------------------------------
    @property
    def progress(self) -> TrainProgress:
        return self.query_one("#train-progress", TrainProgress)

    @property
    def running(self) -> bool:
        return self._job is not None

    def _other_task_running(self) -> bool:
        return self.tasks_running() and not self.running

    def blocked_reason(self, validation: bool) -> str | None:
        """Why training cannot start now, or None when it can.

        ``validation`` needs nothing more: the hyper params keep validation_split above 0.
        """
        c = self.session
        if self.running:
            return "training is running: s stops it"
        if self._other_task_running():
            return "wait: another task is running"
        if c.train_set is None:
            return "no training set: load it on the Data screen (2)"
        if c.model is None:
            return "no model: initialize or load one on the Model screen (3)"
        from convonet.core.model import ModelError, check_fits

        try:
            check_fits(c.model, c.train_set.image_shape, c.train_set.num_classes)
        except ModelError as exc:
            return str(exc)
        return None

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "train":
            return None if self.blocked_reason(False) else True
        if action == "train_with_validation":
            return None if self.blocked_reason(True) else True
        if action == "stop_training":
            return self.running and not self._stopping
        return True

    # ---- drawing what the session holds ----------------------------------------------
    def _sync(self, force: bool = False) -> None:
        """Redraw keys, the info lines and (between runs) the history, if they changed."""
        c = self.session
        key = (id(c.model), id(c.train_set), id(c.history), c.model_dirty, self.running,
               self._stopping, self._other_task_running(), id(c.hyper_params))
        if key == self._shown and not force:
            return
        self._shown = key
        self.refresh_bindings()
        self._draw_info()
        if not self.running and (c.history is not self._drawn_history
                                 or c.model is not self._drawn_model):
            self._draw_history(c.history)

    def _draw_info(self) -> None:
        c = self.session
        info = self.query_one("#train-info", Static)
        reason_box = self.query_one("#train-reason", Static)
        trained = self._epochs_trained.get(id(c.model), 0) if c.model is not None else 0
        line = info_line(c, trained, running=self.running, validation=self._validation,
                         config=self._config if self.running else None)
        info.update(line)
        reason = self.blocked_reason(False) if not self.running else None
        reason_box.update(f"Cannot train: {reason}" if reason else "")
        reason_box.display = bool(reason)

    def _draw_history(self, history: TrainHistory | None) -> None:
        """Charts, table and the ended line from a finished (or stopped) run's history."""
        self._drawn_history = history
        self._drawn_model = self.session.model
        rows = history.as_rows() if history is not None else []
        self._set_rows(rows)
        if history is None:
            self.progress.show_text("No training yet for this model" if
                                    self.session.model is not None else "", bar=False)
            return
        batches = max((r.batches for r in history.rows if not r.partial), default=0) or \
            max((r.batches for r in history.rows), default=1)
        total = max(1, (history.epochs or len(rows)) * batches)
        done = sum(r.batches for r in history.rows)
        self.progress.show_final(ended_text(history), min(done, total), total)

    def _set_rows(self, rows: list[dict[str, Any]]) -> None:
        for chart in self.query(MetricChart):
            chart.set_history(rows)
        self.query_one(EpochTable).set_rows(rows)

    # ---- actions ---------------------------------------------------------------------
    def action_train(self) -> None:
        """Training only (the seed's menu item), on the whole training set."""
        self._start(validation=False)

    def action_train_with_validation(self) -> None:
        """Training with validation on the hyper params' held-out share."""
        self._start(validation=True)

    def action_stop_training(self) -> None:
        """Stop at the next batch; the core keeps the weights and the history so far."""
        if self._job is None or self._stopping:
            return
        self._stopping = True
        self._job.cancel()
        self.progress.show_text("Stopping at the next batch…")
        self._sync(force=False)

    def _start(self, validation: bool) -> None:
        if self.blocked_reason(validation) or self.results_refused("Training"):
            return
        c = self.session
        self._config = c.hyper_params.first()
        self._validation = validation
        self._stopping = False
        self._rows = []
        self._pending = False
        self._set_rows([])
        c.model_dirty = True  # the weights change from the first batch on
        what = "Training with validation" if validation else "Training only"
        self.progress.show_text(f"{what}: starting…", bar=False)
        self._job = run_task(self, train_network, c.model, c.hyper_params, c.train_set,
                              validation, name=TASK_NAME, description=what,
                              results_dir=self.app.results_dir,
                              data_params=c.data_params, devices=c.devices)
        self._timer = self.set_interval(DRAW_INTERVAL, self._tick)
        self.app.session_changed("model")
        self._sync(force=True)

    def resume_run(self, run: RunFolder) -> bool:
        """Continue an interrupted (or stopped) training run to its last epoch.

        The run's model, hyper params and training set come back from its folder (the
        loaded training set is reused when it is the same data); the epochs it finished
        are shown at once. False, with a notification saying why, when it cannot start.
        """
        from convonet.core.params import HyperParams
        from convonet.core.records import resume_problem
        from convonet.core.runs import BACKUP_DIR, HISTORY_CSV, HYPER_PARAMS_JSON
        from convonet.core.training import checkpoint_epoch, read_history_csv

        why = ("training is running: s stops it" if self.running else
               "wait: another task is running" if self._other_task_running() else
               resume_problem(run))
        if why is not None:
            self.notify(f"Cannot resume: {why}", title="Resume", severity="warning",
                        markup=False)
            return False
        if self.results_refused("Resuming training", run.path):
            return False
        info = run.info
        c = self.session
        try:
            self._config = HyperParams.load(run.file(HYPER_PARAMS_JSON)).first()
        except (OSError, ValueError) as exc:
            self.notify(f"Cannot resume {run.path.name}: {exc}", title="Resume",
                        severity="error", markup=False)
            return False
        self._validation = bool(info.get("validation"))
        self._stopping = False
        done = checkpoint_epoch(run.file(BACKUP_DIR))
        self._rows = [asdict(r) for r in read_history_csv(run.file(HISTORY_CSV))
                      if r.epoch <= done and not r.partial]
        self._set_rows(self._rows)
        same = c.train_set is not None and getattr(c.train_set, "fingerprint", None) \
            and c.train_set.fingerprint == info.get("dataset_fingerprint")
        self.progress.show_text(f"Resuming {run.path.name} after epoch {done}"
                                + ("…" if same else ": loading its training set…"), bar=False)
        self._job = run_task(self, resume_network, run, c.train_set if same else None,
                              name=TASK_NAME, description="Resuming training",
                              devices=c.devices)
        self._timer = self.set_interval(DRAW_INTERVAL, self._tick)
        self._sync(force=True)
        return True

    def _tick(self) -> None:
        self._flush()

    # ---- events from the run ---------------------------------------------------------
    def _lr(self, epoch: int) -> float | None:
        if not self._config:
            return None
        from convonet.core.model import learning_rate_at

        return learning_rate_at(self._config, epoch - 1)

    @on(CoreEvent)
    def _core_event(self, message: CoreEvent) -> None:
        if message.task != TASK_NAME or self._job is None:
            return
        event = message.event
        if isinstance(event, LoadProgress):
            message.stop()
            self.progress.show_text(f"Loading the training set: {event.done:,} of "
                                    f"{event.total:,} images", bar=False)
        elif isinstance(event, TrainStart):
            message.stop()
            self.progress.begin(event.epochs, event.batches, event.initial_epoch)
        elif isinstance(event, Compiling):
            message.stop()
            if not self._stopping:
                self.progress.show_compiling(event.seconds)
        elif isinstance(event, BatchProgress):
            message.stop()
            if not self._stopping:
                self.progress.show_batch(event.epoch, event.batch, event.logs,
                                         self._lr(event.epoch))
        elif isinstance(event, Validating):
            message.stop()
            if not self._stopping:
                self.progress.show_validating(event.epoch, event.batch, event.batches)
        elif isinstance(event, EpochEnd):
            message.stop()
            row: dict[str, Any] = {"epoch": event.epoch, "seconds": event.seconds,
                                   "partial": event.partial, **event.logs}
            if not event.partial:  # a cut-short epoch's count comes with the history
                row["batches"] = self.progress.batches
            self._rows.append(row)
            self._pending = True
            if not self._stopping:  # validation numbers: in the charts and the table
                train_logs = {k: event.logs.get(k) for k in ("loss", "accuracy")}
                self.progress.show_epoch(event.epoch, train_logs,
                                         event.logs.get("learning_rate"))

    def _flush(self) -> None:
        """Draw the epochs that arrived since the last draw (at most every DRAW_INTERVAL)."""
        if not self._pending:
            return
        self._pending = False
        for chart in self.query(MetricChart):
            chart.set_history(self._rows)
        self.query_one(EpochTable).add_rows_since(self._rows)

    @on(TaskEnded)
    def _task_ended(self, message: TaskEnded) -> None:
        if message.task != TASK_NAME:
            return
        message.stop()
        if self._job is None:
            return  # an end already handled
        if self._timer is not None:
            self._timer.stop()
            self._timer = None
        self._flush()
        c = self.session
        model = c.model
        self._job = None
        self._stopping = False
        if message.ok and message.result is not None:
            outcome = message.result
            history = getattr(outcome, "history", outcome)
            resumed = getattr(outcome, "model", model)
            run = getattr(outcome, "run", None)
            info = run_info(run)
            if resumed is not model:  # a resumed run: its own model and training set
                model = c.model = resumed
                c.train_set = getattr(outcome, "dataset", None) or c.train_set
                c.model_path = None
                c.model_dirty = True
                names = info.get("class_names") or getattr(c.train_set, "class_names", None)
                c.class_names = list(names) if names else None
                c.model_config = None
            if run is not None:  # Save proposes the file this run's training belongs in
                from convonet.core.model_files import run_save_to

                c.save_to = run_save_to(info, run.path)
            c.history = history
            if model is not None:
                self._epochs_trained[id(model)] = \
                    self._epochs_trained.get(id(model), 0) + len(history.rows)
            self._draw_history(history)
            if history.stopped:
                self.notify(ended_text(history)
                            + (f" · resumable from {run.path.name}" if run is not None else ""),
                            title="Training stopped", markup=False)
        else:
            ran = len(self._rows)
            if model is not None:
                self._epochs_trained[id(model)] = self._epochs_trained.get(id(model), 0) + ran
            what = "failed" if message.failed else "was cancelled"
            self.progress.show_text(f"Training {what} after {ran} epoch"
                                    f"{'s' if ran != 1 else ''} · the model keeps the "
                                    "weights it reached")
        self.app.session_changed("model", "history")
        self._sync(force=True)
