"""One past run again (``RunScreen``), two side by side (``CompareScreen``), and what the
runs list shares with them: status colours, the resume verdict, resuming and deleting.

Opened from the runs screen (``convonet.tui.screens.runs``); everything shown comes from
the run folders.
"""

from __future__ import annotations

from typing import Any, ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import BindingType
from textual.containers import Horizontal, Vertical
from textual.widgets import DataTable, Static, TabbedContent, TabPane

from convonet.core.run_history import (
    UNREADABLE,
    RunHistoryError,
    RunSummary,
    delete_run,
    diff_params,
    load_classifications,
    load_history,
    load_params,
    load_prediction,
    load_tuning,
    value_text,
)
from convonet.keytable import bindings
from convonet.tui.dialogs import ConfirmDialog
from convonet.tui.screens.base import ConvonetScreen
from convonet.tui.widgets.charts import MetricChart
from convonet.tui.widgets.confusion_grid import ConfusionGrid
from convonet.tui.widgets.params_diff import ParamsDiffTable

#: The marks of the two runs compared.
MARKS = ("A", "B")
#: Status -> colour in the list; "interrupted" stands out, it is the one to act on.
STATUS_STYLES = {"finished": "green", "stopped": "yellow", "failed": "bold red",
                 "interrupted": "bold magenta", "running": "bold cyan", "diverged": "red",
                 UNREADABLE: "red"}


def status_text(status: str) -> Text:
    return Text(status, style=STATUS_STYLES.get(status, ""))


def run_line(run: RunSummary) -> Text:
    """``2025-03-14 09:15 · train · finished · 2m42s · acc 0.912 val 0.884``."""
    line = Text(f"{run.started_text} · {run.task_label} · ")
    line.append_text(status_text(run.status))
    line.append(f" · {run.duration_text}")
    if run.result_text:
        line.append(f" · {run.result_text}")
    return line


def resume_reason(run: RunSummary | None) -> str | None:
    """Why ``run`` cannot be resumed now, or None when it can."""
    if run is None:
        return "no run selected"
    return run.resume_problem


async def call_resume(screen: ConvonetScreen, run: RunSummary) -> None:
    """Hand the run to the app's resume; a refusal is shown, the app goes on."""
    try:
        await screen.app.resume_run(run.path)
    except Exception as exc:  # the refusal (fingerprint changed ...) is shown
        screen.app.show_error(f"Resuming {run.name} failed", exc)


def confirm_delete(screen: ConvonetScreen, run: RunSummary, done: Any) -> None:
    """Ask, then delete ``run``'s folder; ``done(deleted: bool)`` is called after."""
    results_dir = screen.app.results_dir

    def answered(yes: bool | None) -> None:
        if not yes:
            done(False)
            return
        try:
            delete_run(results_dir, run.path)
        except RunHistoryError as exc:
            screen.notify(str(exc), title="Not deleted", severity="error", markup=False)
            done(False)
            return
        screen.notify(f"Deleted {run.name}", markup=False)
        done(True)

    what = f"{run.task_label} run {run.name}"
    if run.result_text:
        what += f" ({run.result_text})"
    screen.app.push_screen(
        ConfirmDialog(f"Delete the {what} and every file in its folder: params, history, "
                      "tables, model? This cannot be undone.", title="Delete run",
                      yes="Delete", no="Keep"), answered)


class RunScreen(ConvonetScreen):
    """One run again: its curves, tables, heatmap and params, each in a tab."""

    SCREEN_NAME = "runs"  # the nav bar keeps "Runs" lit
    SCREEN_TITLE = "Run"
    HORIZONTAL_BREAKPOINTS = [(0, "-narrow"), (72, "-wide")]

    DEFAULT_CSS = """
    RunScreen #run-body { padding: 0 1; height: 1fr; }
    RunScreen #run-title { height: auto; }
    RunScreen #run-error { height: auto; color: $text-error; }
    RunScreen TabbedContent { height: 1fr; }
    RunScreen TabPane { padding: 0; height: 1fr; }
    RunScreen .charts { height: 1fr; }
    RunScreen .charts MetricChart { width: 1fr; height: 1fr; min-height: 8; }
    RunScreen.-narrow .charts { layout: vertical; }
    RunScreen DataTable { height: 1fr; }
    RunScreen #run-confusion { height: 1fr; }
    RunScreen #run-confusion ConfusionGrid { margin-right: 2; }
    RunScreen #run-report { width: 1fr; }
    RunScreen.-narrow #run-confusion { layout: vertical; }
    RunScreen .note { color: $text-muted; height: auto; }
    """

    BINDINGS: ClassVar[list[BindingType]] = [*bindings("run")]

    def __init__(self, run: RunSummary) -> None:
        super().__init__()
        self.summary = run
        self.problems: list[str] = []
        self._data: tuple[Any, Any, Any, Any] = ([], None, None, [])

    def compose_body(self) -> ComposeResult:
        run = self.summary
        with Vertical(id="run-body"):
            yield Static(run_line(run), id="run-title")
            if run.error:
                yield Static(f"{run.status}: {run.error}", id="run-error", markup=False)
            if run.resumable:
                reason = resume_reason(run)
                yield Static("r resumes this run" if reason is None
                             else f"cannot resume: {reason}", classes="note")
            with TabbedContent(id="run-tabs"):
                yield from self._panes()

    def _load(self, what: str, loader: Any) -> Any:
        try:
            return loader(self.summary.path)
        except RunHistoryError as exc:
            self.problems.append(f"{what}: {exc}")
            return None

    def _panes(self) -> ComposeResult:
        history = self._load("history", load_history) or []
        if history:
            with TabPane("Curves", id="tab-curves"), Horizontal(classes="charts"):
                yield MetricChart("accuracy", "Accuracy", id="run-accuracy")
                yield MetricChart("loss", "Loss", id="run-loss")
            with TabPane("Epochs", id="tab-epochs"):
                yield DataTable(id="run-epochs", cursor_type="row", zebra_stripes=True)
        tuning = self._load("tuning", load_tuning) if self.summary.task == "tuning" else None
        if tuning is not None:
            with TabPane("Results", id="tab-results"):
                if tuning.source != "results.csv":
                    yield Static(f"No results table was written; the {len(tuning)} "
                                 "finished folds:", classes="note")
                yield DataTable(id="run-results", cursor_type="row", zebra_stripes=True)
        prediction = self._load("prediction", load_prediction)
        if prediction is not None:
            with TabPane("Confusion", id="tab-confusion"), Horizontal(id="run-confusion"):
                yield ConfusionGrid(id="run-heatmap")
                yield DataTable(id="run-report", cursor_type="none", zebra_stripes=True)
        classified = self._load("classifications", load_classifications) or []
        if classified:
            with TabPane("Images", id="tab-images"):
                yield DataTable(id="run-images", cursor_type="row", zebra_stripes=True)
        with TabPane("Params", id="tab-params"):
            yield DataTable(id="run-params", cursor_type="row", zebra_stripes=True)
        self._data = (history, tuning, prediction, classified)

    def on_mount(self) -> None:
        history, tuning, prediction, classified = self._data
        if history:
            self.query_one("#run-accuracy", MetricChart).set_history(history)
            self.query_one("#run-loss", MetricChart).set_history(history)
            table = self.query_one("#run-epochs", DataTable)
            columns = [c for c in ("epoch", "loss", "accuracy", "val_loss", "val_accuracy",
                                   "learning_rate", "seconds")
                       if any(row.get(c) is not None for row in history)]
            table.add_columns(*(c.replace("learning_rate", "lr") for c in columns))
            for row in history:
                cells = []
                for c in columns:
                    value = row.get(c)
                    if c == "epoch":
                        cells.append(Text(f"{value}{'*' if row.get('partial') else ''}"))
                    elif c == "learning_rate":
                        cells.append(Text("–" if value is None else f"{value:.4g}",
                                          justify="right"))
                    else:
                        digits = 1 if c == "seconds" else 4
                        cells.append(Text("–" if value is None else f"{value:.{digits}f}",
                                          justify="right"))
                table.add_row(*cells)
        if tuning is not None:
            table = self.query_one("#run-results", DataTable)
            table.add_columns(*tuning.columns)
            for i, cells in enumerate(tuning.rows):
                style = "bold" if i == 0 and tuning.source == "results.csv" else ""
                table.add_row(*(Text(c, style=style) for c in cells))
        if prediction is not None:
            self.query_one("#run-heatmap", ConfusionGrid).show(prediction.confusion,
                                                               prediction.class_names)
            report = self.query_one("#run-report", DataTable)
            report.add_columns("class", "prec", "recall", "F1", "n")
            for r in prediction.report:
                name = r.get("class", "")
                index = r.get("index", "")
                label = f"{index} {name}" if index not in ("", None) and name != index \
                    else name
                report.add_row(Text(label, style="" if index else "dim"),
                               *(Text(_short(r.get(k)), justify="right")
                                 for k in ("precision", "recall", "f1")),
                               Text(r.get("support", ""), justify="right"))
        if classified:
            table = self.query_one("#run-images", DataTable)
            columns = [c for c in ("file", "class", "confidence", "top2_class")
                       if c in classified[0]]
            table.add_columns(*columns)
            for row in classified:
                table.add_row(*(Text(_short(row.get(c)) if c == "confidence"
                                     else str(row.get(c, ""))) for c in columns))
        params = self.query_one("#run-params", DataTable)
        params.add_columns("field", "value")
        params.add_row(Text("folder"), Text(str(self.summary.path)))
        for key, value in load_params(self.summary.path).items():
            params.add_row(Text(key), Text(value_text(value)))
        for problem in self.problems:
            self.notify(problem, severity="error", markup=False)

    def on_screen_resume(self) -> None:
        self.refresh_bindings()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """Resume shows only on a run that could resume, greyed while the app cannot."""
        if action == "resume_run":
            if not self.summary.resumable:
                return False
            return True if resume_reason(self.summary) is None else None
        if action == "delete_run":
            return True if self.summary.status != "running" else None
        return True

    def action_back(self) -> None:
        self.app.pop_screen()

    async def action_resume_run(self) -> None:
        await call_resume(self, self.summary)

    def action_delete_run(self) -> None:
        def done(deleted: bool) -> None:
            if deleted:
                self.app.pop_screen()

        confirm_delete(self, self.summary, done)


def _short(value: Any) -> str:
    try:
        return f"{float(value):.3f}"
    except (TypeError, ValueError):
        return "" if value is None else str(value)


class CompareScreen(ConvonetScreen):
    """Two runs: training curves overlaid (A and B), params side by side, differences marked."""

    SCREEN_NAME = "runs"
    SCREEN_TITLE = "Compare runs"
    HORIZONTAL_BREAKPOINTS = [(0, "-narrow"), (72, "-wide")]

    DEFAULT_CSS = """
    CompareScreen #compare-body { padding: 0 1; height: 1fr; }
    CompareScreen .run-line { height: 1; }
    CompareScreen TabbedContent { height: 1fr; }
    CompareScreen TabPane { padding: 0; height: 1fr; }
    CompareScreen .charts { height: 1fr; }
    CompareScreen .charts MetricChart { width: 1fr; height: 1fr; min-height: 8; }
    CompareScreen.-narrow .charts { layout: vertical; }
    CompareScreen .note { color: $text-muted; height: auto; }
    """

    BINDINGS: ClassVar[list[BindingType]] = [*bindings("compare")]

    def __init__(self, a: RunSummary, b: RunSummary) -> None:
        super().__init__()
        self.a = a
        self.b = b
        self.diffs = diff_params(load_params(a.path), load_params(b.path))

    def compose_body(self) -> ComposeResult:
        with Vertical(id="compare-body"):
            for mark, run in zip(MARKS, (self.a, self.b), strict=True):
                line = Text.assemble((f" {mark} ", "bold reverse"), " ", run_line(run))
                yield Static(line, classes="run-line")
            with TabbedContent(id="compare-tabs"):
                with TabPane("Curves", id="tab-curves"):
                    if self.a.has_history or self.b.has_history:
                        with Horizontal(classes="charts"):
                            yield MetricChart("accuracy", "Accuracy", id="compare-accuracy")
                            yield MetricChart("loss", "Loss", id="compare-loss")
                    else:
                        yield Static("Neither run recorded training curves; compare their "
                                     "params and metrics in the next tab.", classes="note")
                differ = sum(1 for d in self.diffs if d.differs)
                with TabPane(f"Params ({differ} differ)", id="tab-params"):
                    yield ParamsDiffTable(id="compare-params")

    def on_mount(self) -> None:
        if self.a.has_history or self.b.has_history:
            for chart_id in ("#compare-accuracy", "#compare-loss"):
                chart = self.query_one(chart_id, MetricChart)
                for mark, run in zip(MARKS, (self.a, self.b), strict=True):
                    try:
                        chart.overlay(mark, load_history(run.path))
                    except RunHistoryError as exc:
                        self.notify(str(exc), severity="error", markup=False)
        self.query_one(ParamsDiffTable).show(self.diffs)

    def action_back(self) -> None:
        self.app.pop_screen()

    def action_only_differences(self) -> None:
        table = self.query_one(ParamsDiffTable)
        table.show(self.diffs, only_differences=not table.only_differences)
        self.query_one(TabbedContent).active = "tab-params"
