"""What the tuning screen shows: its widgets, the plan and status lines, and the two
tables as a search runs and after it. ``TuningScreen`` (``convonet.tui.screens.tuning``)
adds the search itself: its keys, its task and its end.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import ProgressBar, Static

from convonet.executors import FoldsInFlight, choice_text, requeued_text, workers_table
from convonet.tui.screens.base import ConvonetScreen
from convonet.tui.tuning_text import (
    SearchProgress,
    ended_text,
    failed_row,
    fold_row,
    info_text,
    partial_columns,
    partial_rows,
    result_columns,
    result_rows,
    searched_text,
    start_plan,
    status_text,
)
from convonet.tui.widgets.sortable_table import SortableTable

if TYPE_CHECKING:
    from convonet.core.params import HyperParams
    from convonet.core.tuning import TuneResult


class TuningView(ConvonetScreen):
    """The tuning screen's drawing; the subclass runs the search."""

    def __init__(self) -> None:
        super().__init__()
        self._stopping = False
        self._searched: list[str] = []
        self._strategy = "grid"
        self._progress = SearchProgress()
        self._run_dir: str = ""
        self._drawn_result: Any = None
        self._search_params: HyperParams | None = None  # the running search's (a resume's)
        self._flight = FoldsInFlight()  # which fold each worker fits (on Ray)

    # ---- what the subclass says ---------------------------------------------------------
    @property
    def running(self) -> bool:
        """Whether a search is running now."""
        raise NotImplementedError

    def blocked_reason(self, action: str) -> str | None:
        """Why ``action`` cannot run now, or None when it can."""
        raise NotImplementedError

    def _sync(self, force: bool = False) -> None:
        """Redraw keys, plan, status and the last result if they changed."""
        raise NotImplementedError

    # ---- widgets and drawing ------------------------------------------------------------
    def compose_body(self) -> ComposeResult:
        with Vertical(id="tune-body"):
            yield Static("", id="tune-info", markup=False)
            yield Static("", id="tune-status", markup=False)
            yield Static("", id="tune-line", markup=False)
            yield ProgressBar(total=None, show_eta=False, id="tune-bar")
            workers = Static("", id="tune-workers", markup=False)
            workers.border_title = "Workers"
            yield workers  # shown only while folds run outside this process (on Ray)
            partial = SortableTable(id="tune-partial")
            partial.border_title = "Partial Grid Search Results"
            yield partial
            results = SortableTable(id="tune-results")
            results.border_title = "Grid Search Results"
            yield results

    @property
    def partial(self) -> SortableTable:
        return self.query_one("#tune-partial", SortableTable)

    @property
    def results(self) -> SortableTable:
        return self.query_one("#tune-results", SortableTable)

    @property
    def bar(self) -> ProgressBar:
        return self.query_one("#tune-bar", ProgressBar)

    def _draw_plan(self) -> None:
        """The info lines between searches: what ``t`` would run now."""
        c = self.session
        text = info_text(c.hyper_params, c.train_set)
        if c.ray is not None:  # in this process (the default) goes unsaid
            text += f"\nFolds run {choice_text(c.ray, c.gpus_per_fold)} · r: in this process"
        self.query_one("#tune-info", Static).update(text)

    def _draw_status(self) -> None:
        """One line: why tuning cannot start, or where the results are on disk."""
        status = self.query_one("#tune-status", Static)
        reason = None if self.running else self.blocked_reason("tune")
        status.update(status_text(reason, self._run_dir, self.running))
        status.set_class(bool(reason), "-blocked")

    def _set_partial_columns(self, searched: Sequence[str], strategy: str) -> None:
        self._searched = sorted(searched)
        self._strategy = strategy
        self.partial.set_columns(partial_columns(self._searched, strategy))

    def show_result(self, result: TuneResult) -> None:
        """Both tables, the bar and the lines from a finished or stopped search."""
        self._drawn_result = result
        self._set_partial_columns(result.searched, result.strategy)
        self.partial.set_rows(partial_rows(result, self._searched))
        self.results.set_columns(result_columns(result.searched, result.strategy),
                                 sort_key="rank")
        self.results.set_rows(result_rows(result))
        self.set_class(True, "-has-result")
        self._run_dir = str(result.run.path) if result.run is not None else self._run_dir
        self._progress.total = result.total_fits
        self._progress.done = result.fits_done
        self.bar.display = True
        self.bar.update(total=max(1, result.total_fits), progress=result.fits_done)
        self.query_one("#tune-line", Static).update(ended_text(result))

    def show_event(self, event: Any) -> bool:
        """Draw one core event of the running search (also fed recorded, in tests).

        Returns whether the event was one of the search's own.
        """
        from convonet.core.tuning import (
            CombinationFailed,
            CombinationInvalid,
            FoldEnd,
            RungStart,
            TuneStart,
        )

        if self._show_where(event):
            return True
        if isinstance(event, TuneStart):
            self._progress.total = event.total_fits
            self._progress.done = event.fits_done
            self._run_dir = event.run_dir
            self._set_partial_columns(event.searched, event.strategy)
            self.bar.display = True
            plan = start_plan(event)
            shown = self._search_params or self.session.hyper_params
            self.query_one("#tune-info", Static).update(f"{plan}\n{searched_text(shown)}")
            self.bar.update(total=max(1, event.total_fits), progress=event.fits_done)
            self._draw_line()
            self._sync(force=True)
        elif isinstance(event, RungStart):
            self._progress.total = event.total_fits
            self._progress.rung = (f"rung {event.rung + 1}/{event.rungs}: {event.candidates} on "
                          f"{event.n_resources} imgs")
            self.bar.update(total=max(1, event.total_fits))
            self._draw_line()
        elif isinstance(event, FoldEnd):
            self._progress.done = event.fits_done
            self._progress.total = event.total_fits
            if not event.resumed:
                self._progress.fit_seconds.append(event.seconds)
            self._progress.last = (f"#{event.combination_index + 1} fold {event.fold + 1}: "
                          f"{event.accuracy * 100:.1f}%")
            self.partial.add_data_row(fold_row(
                self._searched, ci=event.combination_index, params=event.params, fold=event.fold,
                accuracy=event.accuracy, loss=event.loss, seconds=event.seconds,
                rung=event.rung, n_resources=event.n_resources, resumed=event.resumed))
            self.bar.update(total=max(1, event.total_fits), progress=event.fits_done)
            self._draw_line()
        elif isinstance(event, CombinationFailed):
            progress = self._progress
            progress.total = event.total_fits or progress.total
            progress.done = event.fits_done or progress.done
            self.partial.add_data_row(failed_row(
                self._searched, ci=event.combination_index, params=event.params,
                reason=event.reason, rung=event.rung,
                status="diverged" if event.diverged else "failed"))
            self.bar.update(total=max(1, progress.total), progress=progress.done)
            self._draw_line()
        elif isinstance(event, CombinationInvalid):
            self.partial.add_data_row(failed_row(
                self._searched, ci=event.combination_index, params=event.params,
                reason=event.reason, rung=0, status="invalid"))
        else:
            return False
        return True

    # ---- where folds run (executor events) ---------------------------------------------
    def _show_where(self, event: Any) -> bool:
        """The Workers panel from the executor's events; True when ``event`` needs
        nothing more. In this process the panel stays hidden (nothing to show)."""
        from convonet.core.tuning import ExecutorReady, FoldProgress, FoldRequeued, FoldStart

        changed = self._flight.update(event)
        if isinstance(event, ExecutorReady):
            self.set_class(self._flight.remote, "-remote")
        if not self._flight.remote:
            return isinstance(event, (ExecutorReady, FoldStart, FoldProgress, FoldRequeued))
        if isinstance(event, FoldRequeued):
            self.notify(requeued_text(event, self._flight), title="Worker lost",
                        severity="warning", timeout=10, markup=False)
        if changed:
            self._draw_workers()
        return isinstance(event, (ExecutorReady, FoldStart, FoldProgress, FoldRequeued))

    def _draw_workers(self) -> None:
        flight = self._flight
        panel = self.query_one("#tune-workers", Static)
        busy = len(flight.in_flight())
        at = f" at {flight.address}" if flight.address else ""
        panel.border_title = (f"Workers · Ray{at} · {busy} of {len(flight.slots)} "
                              "fitting a fold")
        panel.update(workers_table(flight))

    def search_ended(self) -> None:
        """Nothing runs any more: every worker idle (the panel keeps their counts)."""
        self._flight.clear()
        if self._flight.remote:
            self._draw_workers()

    def forget_workers(self) -> None:
        """A new search: the panel hides until its executor says where folds run."""
        self._flight = FoldsInFlight()
        self.set_class(False, "-remote")

    def eta(self) -> float | None:
        """Seconds left: the mean time of the fits run so far times the fits to go."""
        return self._progress.eta()

    def _draw_line(self) -> None:
        if not self._stopping:
            self.query_one("#tune-line", Static).update(self._progress.line())
