"""The runs screen: every past run, newest first; open one, compare two, resume, delete.

Keys on the list: ``enter`` opens the run under the cursor (its curves, tables, heatmap and
params again), ``space`` marks it for comparing (two marks; a third replaces the oldest),
``c`` compares the two marked runs (or the one marked and the one under the cursor),
``r`` resumes an interrupted run, ``d`` deletes a run after asking, ``f5`` reads the folder
again. The list is read again whenever the screen comes back and, while a run is going,
every few seconds.

Everything shown comes from the run folders (``convonet.core.run_history``), not from the
app's memory, so runs of the headless commands and of earlier sessions are here too.
Resuming belongs to the app: ``r`` calls ``app.resume_run(path)``, which hands the run to
the training or tuning screen.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import BindingType
from textual.containers import Vertical
from textual.widgets import DataTable, Static

from convonet.core.run_history import (
    RunSummary,
    list_runs,
    runs_root,
)
from convonet.keytable import bindings
from convonet.tui.screens.base import ConvonetScreen
from convonet.tui.screens.run_detail import (
    MARKS,
    CompareScreen,
    RunScreen,
    call_resume,
    confirm_delete,
    resume_reason,
    status_text,
)

#: How often the list is read again while one of its runs is going (seconds).
LIVE_INTERVAL = 3.0
#: Below this many columns the list leaves out the year.
NARROW = 100


def started_cell(run: RunSummary, narrow: bool) -> str:
    """Without the year below 100 columns, so the whole row fits in 80."""
    return run.started_text[5:] if narrow and run.started_at else run.started_text


class RunsScreen(ConvonetScreen):
    """Past runs, newest first, read from ``<results_dir>/runs``."""

    SCREEN_NAME = "runs"
    SCREEN_TITLE = "Runs"

    DEFAULT_CSS = """
    RunsScreen #runs-body { padding: 0 1; height: 1fr; }
    RunsScreen #runs-info { height: auto; color: $text-muted; }
    RunsScreen #runs-table { height: 1fr; }
    RunsScreen #runs-hint { height: auto; max-height: 3; color: $text-muted; }
    """

    BINDINGS: ClassVar[list[BindingType]] = [*bindings("runs")]

    def __init__(self) -> None:
        super().__init__()
        self.runs: list[RunSummary] = []
        self.marked: list[Path] = []
        self._narrow = False  # the started column drops the year below NARROW columns

    # ---- layout ----------------------------------------------------------------------
    def compose_body(self) -> ComposeResult:
        with Vertical(id="runs-body"):
            yield Static("", id="runs-info", markup=False)
            table: DataTable[Any] = DataTable(id="runs-table", cursor_type="row",
                                              zebra_stripes=True)
            yield table
            yield Static("", id="runs-hint", markup=False)

    def on_mount(self) -> None:
        table = self.query_one("#runs-table", DataTable)
        table.add_column(" ", width=1, key="mark")
        table.add_column("Started", key="started")
        table.add_column("Task", key="task")
        table.add_column("Status", key="status")
        table.add_column("Time", key="time")
        table.add_column("Result", key="result")
        self.set_interval(LIVE_INTERVAL, self._live_refresh)

    def on_screen_resume(self) -> None:
        self._narrow = self.app.size.width < NARROW
        self.refresh_runs()
        self.query_one("#runs-table", DataTable).focus()

    def on_resize(self) -> None:
        narrow = self.app.size.width < NARROW
        if narrow != self._narrow:
            self._narrow = narrow
            self.refresh_runs()

    def _live_refresh(self) -> None:
        if self.app.screen is self and any(r.status == "running" for r in self.runs):
            self.refresh_runs()

    # ---- the list --------------------------------------------------------------------
    @property
    def results_dir(self) -> Path:
        return self.app.results_dir

    @property
    def selected(self) -> RunSummary | None:
        """The run under the cursor."""
        table = self.query_one("#runs-table", DataTable)
        if not self.runs or table.cursor_row < 0 or table.cursor_row >= len(self.runs):
            return None
        return self.runs[table.cursor_row]

    def run_at(self, path: Path) -> RunSummary | None:
        return next((r for r in self.runs if r.path == path), None)

    def refresh_runs(self) -> None:
        """Read the runs folder again, keeping the cursor on the same run."""
        table = self.query_one("#runs-table", DataTable)
        current = self.selected
        try:
            self.runs = list_runs(self.results_dir)
        except OSError as exc:
            self.runs = []
            self.notify(f"{runs_root(self.results_dir)}: cannot be read ({exc})",
                        severity="error", markup=False)
        paths = {r.path for r in self.runs}
        self.marked = [p for p in self.marked if p in paths]
        table.clear()
        for run in self.runs:
            table.add_row(*self._cells(run), key=str(run.path))
        if current is not None and current.path in paths:
            table.move_cursor(row=[r.path for r in self.runs].index(current.path),
                              animate=False)
        self._show_info()
        self._show_hint()
        self.refresh_bindings()

    def _cells(self, run: RunSummary) -> list[Text]:
        mark = MARKS[self.marked.index(run.path)] if run.path in self.marked else ""
        return [Text(mark, style="bold reverse"), Text(started_cell(run, self._narrow)),
                Text(run.task_label), status_text(run.status),
                Text(run.duration_text, justify="right"), Text(run.result_text)]

    def _redraw_marks(self) -> None:
        table = self.query_one("#runs-table", DataTable)
        for run in self.runs:
            table.update_cell(str(run.path), "mark", self._cells(run)[0])

    def _show_info(self) -> None:
        root = runs_root(self.results_dir)
        if not self.runs:
            text = (f"No runs yet in {root}. Train (4), tune (5) or test (6), or run "
                    "'convonet train', and its record appears here.")
        else:
            counts: dict[str, int] = {}
            for run in self.runs:
                counts[run.status] = counts.get(run.status, 0) + 1
            detail = ", ".join(f"{n} {s}" for s, n in counts.items())
            text = f"{len(self.runs)} runs in {root} ({detail})"
        self.query_one("#runs-info", Static).update(text)

    def _show_hint(self) -> None:
        """The selected run's error or resume state, and which runs are marked."""
        lines: list[str] = []
        run = self.selected
        if run is not None:
            if run.error:
                lines.append(f"{run.status}: {run.error}")
            if run.resumable:
                reason = resume_reason(run)
                lines.append("r resumes this run" if reason is None
                             else f"cannot resume: {reason}")
        if self.marked:
            names = ", ".join(f"{MARKS[i]} {p.name}" for i, p in enumerate(self.marked))
            pair = self.compare_pair()
            lines.append(f"marked {names}" + (" · c compares" if pair
                                              else " · mark another or move to one"))
        elif self.runs:
            lines.append("space marks runs to compare · enter opens · d deletes")
        self.query_one("#runs-hint", Static).update("\n".join(lines))

    @on(DataTable.RowHighlighted, "#runs-table")
    def _moved(self) -> None:
        self._show_hint()
        self.refresh_bindings()

    @on(DataTable.RowSelected, "#runs-table")
    def _clicked(self) -> None:
        self.action_open_run()

    # ---- actions ---------------------------------------------------------------------
    def compare_pair(self) -> tuple[RunSummary, RunSummary] | None:
        """The two marked runs, or the one marked and the one under the cursor."""
        runs = [r for r in (self.run_at(p) for p in self.marked) if r is not None]
        if len(runs) == 1:
            current = self.selected
            if current is not None and current.path != runs[0].path:
                runs.append(current)
        return (runs[0], runs[1]) if len(runs) == 2 else None

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """Grey out (None) what cannot run for the run under the cursor."""
        if action in ("open_run", "mark_run"):
            return True if self.selected is not None else None
        if action == "compare_runs":
            return True if self.compare_pair() is not None else None
        if action == "delete_run":
            run = self.selected
            return True if run is not None and run.status != "running" else None
        if action == "resume_run":
            return True if resume_reason(self.selected) is None else None
        return True

    def action_refresh_runs(self) -> None:
        self.refresh_runs()
        self.notify(f"{len(self.runs)} runs", timeout=2)

    def action_open_run(self) -> None:
        run = self.selected
        if run is not None:
            self.app.push_screen(RunScreen(run))

    def action_mark_run(self) -> None:
        run = self.selected
        if run is None:
            return
        if run.path in self.marked:
            self.marked.remove(run.path)
        else:
            self.marked.append(run.path)
            self.marked = self.marked[-2:]
        self._redraw_marks()
        self._show_hint()
        self.refresh_bindings()

    def action_compare_runs(self) -> None:
        pair = self.compare_pair()
        if pair is None:
            self.notify("Mark two runs with space, then press c", severity="warning")
            return
        self.app.push_screen(CompareScreen(*pair))

    async def action_resume_run(self) -> None:
        run = self.selected
        if run is not None:
            await call_resume(self, run)

    def action_delete_run(self) -> None:
        run = self.selected
        if run is None:
            return

        def done(deleted: bool) -> None:
            if deleted:
                self.refresh_runs()

        confirm_delete(self, run, done)
