"""The tuning screen: grid search (or successive halving) over the hyper params, stoppable.

Keys: ``t`` Tuning, ``s`` Stop Tuning (in the footer only while a search runs), ``a`` apply
the best combination to the hyper params, ``g`` switch the strategy of the next search
between the full grid and successive halving, ``r`` (and the palette's "Tuning Executor")
switch where its folds run, in this process or on Ray workers (the cluster ``convonet
--ray`` or ``RAY_ADDRESS`` named, else a local one over this machine's GPUs); in a table
``o`` sorts by the next column, ``O`` flips the order, a header click sorts by that column.
On Ray a "Workers" panel shows which fold each worker (node, device) fits and its epochs.

Before a search the info lines say how many fits it will run and which fields it searches;
once it starts, the core's ``TuneStart`` gives the exact count (halving: its schedule). The
"Partial Grid Search Results" table gets one row per finished fold as it arrives, and a
failed combination once, with its reason; a combination whose layers cannot fit the images
(the check training makes) is marked invalid with its reason before any fit, and is never
run, ranked or applied. A stop ends the fit in progress at its next batch
(that fit is discarded); the finished folds stay on screen and on disk in the run folder
(``folds.jsonl`` as they finish, ``results.csv`` at the end). After the search, "Grid Search
Results" holds one row per combination, best first.

The last result lives in ``session.tuning`` (a ``TuneResult``), so the tables come back
after screen switches and the result can be applied later. The core is imported only when
a search starts (it pulls in Keras).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from textual import on
from textual.binding import BindingType
from textual.widgets import Static

from convonet.core.events import CancelToken, Reporter
from convonet.executors import choice_text, ray_missing
from convonet.keytable import bindings
from convonet.tui.screens.tuning_view import TuningView
from convonet.tui.session import Aspect
from convonet.tui.tasks import CoreEvent, TaskEnded, TaskHandle, format_error, run_task
from convonet.tui.tuning_text import (
    SearchProgress,
    apply_problem,
    ended_text,
    params_text,
    search_problem,
)

if TYPE_CHECKING:
    from convonet.core.data import Dataset
    from convonet.core.params import DataParams, HyperParams
    from convonet.core.tuning import TuneResult

TASK_NAME = "tuning"


def tune_task(train_set: Dataset, hyper_params: HyperParams, results_dir: Path | None,
              data_params: DataParams | None, *, report: Reporter, cancel: CancelToken,
              ray: str | None = None, gpus_per_fold: float = 1.0) -> TuneResult:
    """The seed's TuneTask: one search on the training set, recorded in a run folder; its
    folds in this process, or on the Ray cluster ``ray`` names."""
    from convonet.tasks import execute
    from convonet.tasks.tune import TuneSpec

    spec = TuneSpec(hyper_params=hyper_params, data_params=data_params, train_set=train_set,
                    results_dir=results_dir, ray=ray, gpus_per_fold=gpus_per_fold)
    return execute(spec, report, cancel).result


def resume_tuning_task(run: Any, *, report: Reporter, cancel: CancelToken,
                       ray: str | None = None, gpus_per_fold: float = 1.0) -> TuneResult:
    """Continue an interrupted tuning on its own training set (loaded from its data params
    copy) after the checks ``convonet tune --resume`` makes; only the folds its
    folds.jsonl lacks run (where the session says now)."""
    from convonet.tasks import execute
    from convonet.tasks.tune import TuneSpec

    return execute(TuneSpec(resume=run, ray=ray, gpus_per_fold=gpus_per_fold), report,
                   cancel).result


class TuningScreen(TuningView):
    """Runs the search in a worker and fills its results tables as folds finish."""

    SCREEN_NAME = "tuning"
    SCREEN_TITLE = "Tuning"
    # Below 34 rows the tables give their horizontal scrollbars' rows to more results
    # (left/right still scroll a wide table).
    VERTICAL_BREAKPOINTS = [(0, "-short"), (34, "-tall")]

    DEFAULT_CSS = """
    TuningScreen #tune-body { padding: 0 1; height: 1fr; }
    TuningScreen #tune-info { height: auto; color: $text-muted; }
    TuningScreen #tune-status { height: auto; }
    TuningScreen #tune-status.-blocked { color: $warning; }
    TuningScreen #tune-line { height: 1; text-wrap: nowrap; text-overflow: ellipsis; }
    TuningScreen #tune-bar { height: 1; }
    TuningScreen #tune-bar Bar { width: 1fr; }
    TuningScreen SortableTable {
        height: 1fr; min-height: 4;
        border: none; border-top: solid $primary-darken-2;
        border-title-color: $text; border-title-style: bold;
    }
    TuningScreen SortableTable:focus { border-top: solid $accent; }
    TuningScreen.-short SortableTable { scrollbar-size-horizontal: 0; }
    TuningScreen #tune-results { display: none; }
    TuningScreen #tune-workers {
        display: none; height: auto; max-height: 10; overflow-y: auto;
        border: none; border-top: solid $primary-darken-2;
        border-title-color: $text; border-title-style: bold;
    }
    TuningScreen.-remote #tune-workers { display: block; }
    TuningScreen.-has-result #tune-results { display: block; }
    """

    BINDINGS: ClassVar[list[BindingType]] = [*bindings("tuning")]

    def __init__(self) -> None:
        super().__init__()
        self._job: TaskHandle | None = None
        self._shown: tuple[Any, ...] | None = None

    def on_mount(self) -> None:
        self.bar.display = False
        self._set_partial_columns(list(self.session.hyper_params.searched()),
                                  str(self.session.hyper_params.search))
        self._sync(force=True)

    def session_changed(self, what: frozenset[Aspect]) -> None:
        """Data, params or a task changed (maybe on another screen)."""
        self._sync()

    # ---- state ---------------------------------------------------------------------
    @property
    def running(self) -> bool:
        return self._job is not None

    @property
    def result(self) -> TuneResult | None:
        """The last search's result, if the session holds one."""
        found = self.session.tuning
        return found if found is not None and hasattr(found, "best_params") else None

    def _other_task_running(self) -> bool:
        return self.tasks_running() and not self.running

    def blocked_reason(self, action: str) -> str | None:
        """Why ``action`` cannot run now, or None when it can (shown on the status line)."""
        c = self.session
        if action == "tune":
            if self.running:
                return "tuning is running: s stops it"
            if self._other_task_running():
                return "wait: another task is running"
            return search_problem(c.hyper_params, c.train_set)
        if action == "apply_best":
            if self.running:
                return "wait for the search to end (or stop it with s)"
            return apply_problem(self.result)
        if action in ("toggle_strategy", "toggle_executor"):
            return "the search is running" if self.running else None
        if action == "stop_tuning":
            return None if self.running and not self._stopping else "not tuning"
        return None

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "stop_tuning":  # in the footer only while a search runs
            return self.running and not self._stopping
        if action in ("tune", "apply_best", "toggle_strategy", "toggle_executor"):
            return None if self.blocked_reason(action) else True
        return True

    # ---- drawing ---------------------------------------------------------------------
    def _sync(self, force: bool = False) -> None:
        """Redraw keys, plan, status and (between searches) the last result if they changed."""
        c = self.session
        hp = c.hyper_params
        key = (id(c.train_set), id(hp), id(c.tuning), self.running, self._stopping,
               self._other_task_running(), self._run_dir)
        if key == self._shown and not force:
            return
        self._shown = key
        self.refresh_bindings()
        if not self.running:
            if self.result is not None and self.result is not self._drawn_result:
                self.show_result(self.result)
            self._draw_plan()
        self._draw_status()

    # ---- actions ---------------------------------------------------------------------
    def action_tune(self) -> None:
        """Tuning (the seed's menu item): search the grid in a worker, folds as they come."""
        if self.blocked_reason("tune") or self.results_refused("Tuning"):
            return
        c = self.session
        hp = c.hyper_params
        self._start_fresh(hp)
        # The task saves copies of the params in the run folder (the loaded files keep
        # their paths); no results folder given: the one ``resolve_results_dir`` decides.
        self._job = run_task(self, tune_task, c.train_set, hp,
                             self.app.results_dir, c.data_params,
                             name=TASK_NAME, description="Tuning", ray=c.ray,
                             gpus_per_fold=c.gpus_per_fold)
        self.partial.focus()
        self._sync(force=True)

    def resume_run(self, run: Any) -> bool:
        """Continue an interrupted or stopped search here, live: the folds it finished come
        back into the table first (marked as resumed), then only the others run.

        False, with a notification saying why, when it cannot start.
        """
        from convonet.core.params import HyperParams
        from convonet.core.records import resume_problem
        from convonet.core.runs import HYPER_PARAMS_JSON

        why = ("tuning is running: s stops it" if self.running else
               "wait: another task is running" if self._other_task_running() else
               resume_problem(run))
        if why is None:
            try:
                hp = HyperParams.load(run.file(HYPER_PARAMS_JSON), check=False)
            except (OSError, ValueError) as exc:
                why = f"its hyper params cannot be read: {exc}"
        if why is not None:
            self.notify(f"Cannot resume: {why}", title="Resume", severity="warning",
                        markup=False)
            return False
        if self.results_refused("Resuming tuning", run.path):
            return False
        self._start_fresh(hp)
        self.query_one("#tune-line", Static).update(
            f"Resuming {run.path.name}: loading its training set…")
        self._job = run_task(self, resume_tuning_task, run, name=TASK_NAME,
                             description="Resuming tuning", ray=self.session.ray,
                             gpus_per_fold=self.session.gpus_per_fold)
        self.partial.focus()
        self._sync(force=True)
        return True

    def _start_fresh(self, hyper_params: HyperParams) -> None:
        """Clear the last search's numbers, tables and result before a new one."""
        c = self.session
        self._search_params = hyper_params
        self._stopping = False
        self._progress = SearchProgress()
        self._run_dir = ""
        self.forget_workers()
        c.tuning = None
        self._drawn_result = None
        self.set_class(False, "-has-result")
        self.results.set_rows([])
        self._set_partial_columns(list(hyper_params.searched()), str(hyper_params.search))
        self.bar.display = True
        self.bar.update(total=None, progress=0)
        self.query_one("#tune-line", Static).update("Preparing the folds…")

    def action_stop_tuning(self) -> None:
        """Stop Tuning: the fit in progress ends at its next batch and is discarded."""
        if self._job is None or self._stopping:
            return
        self._stopping = True
        self._job.cancel()
        self.query_one("#tune-line", Static).update(
            f"Stopping: {self._progress.done} fits kept; the fit in progress ends at its "
            "next batch…")
        self._sync(force=True)

    def action_apply_best(self) -> None:
        """Apply the best combination: its values go first in the hyper params."""
        result = self.result
        if self.blocked_reason("apply_best") or result is None or not result.best_params:
            return
        c = self.session
        c.hyper_params = c.hyper_params.apply(result.best_params)
        c.mark_params("hyper", True)
        self.app.session_changed("params")
        applied = params_text(result.best_params, result.searched) or "the one combination"
        self.notify(f"applied: {applied} — initialize a new model (3, i) and train (4, v)",
                    title="Best params applied")
        self._sync(force=True)

    def action_toggle_strategy(self) -> None:
        """The next search's strategy: the full grid or successive halving."""
        if self.blocked_reason("toggle_strategy"):
            return
        c = self.session
        new = "halving" if str(c.hyper_params.search) == "grid" else "grid"
        c.hyper_params = c.hyper_params.edit(search=new)
        c.mark_params("hyper", True)
        self.app.session_changed("params")
        self.notify(f"next search: {'successive halving' if new == 'halving' else 'grid'}",
                    title="Tuning strategy")
        self._sync(force=True)

    def action_toggle_executor(self) -> None:
        """Where the next search fits its folds: in this process, or on Ray workers."""
        if self.blocked_reason("toggle_executor"):
            return
        c = self.session
        if c.ray is None:
            missing = ray_missing()
            if missing is not None:
                self.notify(f"{missing}, then start convonet again. Until then the folds "
                            "run in this process.", title="Tuning executor",
                            severity="warning", markup=False)
                return
            c.ray = c.ray_address
        else:
            c.ray = None
        self.notify(f"next search: the folds run {choice_text(c.ray, c.gpus_per_fold)}",
                    title="Tuning executor", markup=False)
        self._sync(force=True)

    # ---- events from the search ------------------------------------------------------
    @on(CoreEvent)
    def _core_event(self, message: CoreEvent) -> None:
        if message.task != TASK_NAME or self._job is None:
            return
        if self.show_event(message.event):
            message.stop()  # anything else (a Notice) goes on to the app

    @on(TaskEnded)
    def _task_ended(self, message: TaskEnded) -> None:
        if message.task != TASK_NAME:
            return
        message.stop()
        if self._job is None:
            return  # an end already handled
        self._job = None
        self._stopping = False
        self.search_ended()
        result = message.result
        if message.ok and result is not None:
            self.session.tuning = result
            self.app.session_changed("tuning")
            self.show_result(result)
            self.results.focus()
            if result.stopped:
                self.notify(ended_text(result), title="Tuning stopped")
        else:
            done = self._progress.done
            text = f"Tuning was cancelled after {done} fits"
            if message.failed and message.error is not None:
                text = f"Tuning failed after {done} fits: {format_error(message.error)[0]}"
            if self._run_dir and done:
                text += " · the finished folds are on disk"
            self.query_one("#tune-line", Static).update(text)
        self._sync(force=True)

