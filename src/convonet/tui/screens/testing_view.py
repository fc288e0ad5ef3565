"""What the testing screen shows: the status line, the intro, and the result sections
(evaluation, prediction, worst mistakes, classified images). ``TestingScreen``
(``convonet.tui.screens.testing``) adds the work: its keys, its tasks and their ends.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical, VerticalScroll
from textual.widgets import Static

from convonet.tui.screens.base import ConvonetScreen
from convonet.tui.testing_text import INTRO, model_of, status_line
from convonet.tui.widgets.test_results import (
    ClassifiedSection,
    EvaluationSection,
    MistakeStrip,
    PredictionSection,
)

if TYPE_CHECKING:
    from convonet.core.testing import Classification, Evaluation, Prediction


class TestingView(ConvonetScreen):
    """The testing screen's drawing; the subclass runs the tasks."""

    __test__ = False  # not a pytest test class, despite its name

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._busy = ""  # what is running, for the status line
        self._evaluation: Evaluation | None = None
        self._prediction: Prediction | None = None
        self._made_with: dict[str, tuple[int, int]] = {}  # result -> (model, test set) ids
        self._classified: list[Classification] = []

    def why_not(self, action: str) -> str | None:
        """Why ``action`` cannot run now, or None when it can (the subclass says)."""
        raise NotImplementedError

    def compose_body(self) -> ComposeResult:
        yield Static("", id="testing-status")
        with VerticalScroll(id="testing-body"):
            yield Static("", id="testing-intro")
            evaluation = EvaluationSection(id="evaluation", classes="section -empty")
            evaluation.border_title = "Evaluation"
            yield evaluation
            prediction = PredictionSection(id="prediction", classes="section -empty")
            prediction.border_title = "Prediction"
            yield prediction
            with Vertical(id="wrong", classes="section -empty") as box:
                box.border_title = "Most confidently wrong"
                yield MistakeStrip(id="wrong-strip")
            classified = ClassifiedSection(id="classified", classes="section -empty")
            classified.border_title = "Classified images"
            yield classified

    def _current_key(self) -> tuple[int, int]:
        return (id(model_of(self.session)), id(self.session.test_set))

    def sync_from_session(self) -> None:
        """Show what the session holds and refresh the keys and the status line."""
        c = self.session
        if c.evaluation is not self._evaluation:
            self.show_evaluation(c.evaluation)
        if c.prediction is not self._prediction:
            self.show_prediction(c.prediction)
        self._mark_stale()
        self.update_status()
        self.refresh_bindings()

    def update_status(self) -> None:
        """The model and test set in use, what is running, and why keys are greyed out."""
        self.query_one("#testing-status", Static).update(
            status_line(self.session, self._busy, self.why_not("classify_images")))
        intro = self.query_one("#testing-intro", Static)
        anything = any(r is not None for r in (self._evaluation, self._prediction)) \
            or bool(self._classified)
        intro.display = not anything
        intro.update(Text(INTRO))

    def _mark_stale(self) -> None:
        """Say so when a result shown came from another model or test set than now."""
        key = self._current_key()
        for section, result in (("evaluation", self._evaluation),
                                ("prediction", self._prediction)):
            made = self._made_with.get(section)
            stale = result is not None and made is not None and made != key
            box = self.query_one(f"#{section}")
            box.border_subtitle = ("from an earlier model or test set: run it again"
                                   if stale else "")

    def _reveal(self, selector: str) -> None:
        """Bring a result into view once the section it just un-hid has a layout."""
        target = self.query_one(selector)
        # Twice deferred: the first refresh lays the section out, then it can be scrolled to.
        self.call_after_refresh(target.scroll_visible, top=True, animate=False)

    def show_evaluation(self, evaluation: Evaluation | None) -> None:
        """Fill the evaluation table (or hide it when there is no evaluation)."""
        self._evaluation = evaluation
        self.query_one(EvaluationSection).show(evaluation)
        if evaluation is not None:
            self.update_status()

    def show_prediction(self, prediction: Prediction | None, *,
                        saved: tuple[Path, Path] | None = None) -> None:
        """Draw the heatmap, the per-class table and the strip of worst mistakes."""
        self._prediction = prediction
        self.query_one("#wrong").set_class(prediction is None, "-empty")
        test = self.session.test_set
        folders = list(test.class_names) if test is not None else []
        self.query_one(PredictionSection).show(prediction, folders, saved=saved)
        if prediction is None:
            return
        x = test.x if test is not None else None
        self.query_one("#wrong-strip", MistakeStrip).show_wrong(prediction, x)
        self.update_status()

    def show_classifications(self, rows: list[Classification], source: Path | None) -> None:
        """One table row per classified image: file, predicted class, confidence, top 3."""
        self._classified = list(rows)
        problem = self.query_one(ClassifiedSection).show(rows, source)
        if problem is not None:
            self.notify(problem, severity="warning", title="Classify")
