"""The testing screen: evaluation, prediction and classifying new images.

Keys: ``e`` evaluates the model on the test set (accuracy, loss, count), ``p`` predicts it
(the confusion heatmap, per-class precision/recall/F1, the most confidently wrong images;
the matrix and the report are written as CSV into its run folder), ``c`` classifies a
file or a folder of new images, and ``x`` exports those results as CSV. Each key is greyed
out while it cannot run, and the line at the top says why.

Keras work runs in thread workers (``run_task``); results arrive as ``TaskEnded`` on the UI
thread and are also kept on the session, so they survive screen switches.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from textual import on
from textual.binding import BindingType
from textual.widgets import DataTable

from convonet.core.storage import resolve_results_dir
from convonet.keytable import bindings
from convonet.tui.screens.testing_view import TestingView
from convonet.tui.session import Aspect
from convonet.tui.tasks import TaskEnded, run_task
from convonet.tui.testing_text import (
    classify_params,
    model_class_names,
    model_io,
    model_of,
)
from convonet.tui.widgets.test_results import (
    ClassifiedSection,
)

if TYPE_CHECKING:
    from convonet.core.events import CancelToken, Reporter
    from convonet.core.params import DataParams
    from convonet.core.testing import Classification, Evaluation
    from convonet.tasks.testing import ClassifyOutcome, EvaluateOutcome, PredictOutcome

_TASKS = ("evaluate", "predict", "classify_images")


def _names(names: Sequence[str] | None) -> tuple[str, ...] | None:
    return tuple(names) if names is not None else None


# ---- the work that runs in thread workers: specs for the task layer ---------------------
def evaluate_task(model: Any, test_set: Any, *, report: Reporter, cancel: CancelToken,
                  results_dir: Path | None = None, model_path: Path | None = None,
                  data_params: DataParams | None = None) -> Evaluation:
    """Loss and accuracy on the test set (seconds on a big set, hence a worker), recorded
    in a run folder under the results folder with the data params and the model file."""
    from convonet.tasks import execute
    from convonet.tasks.testing import EvaluateSpec

    spec = EvaluateSpec(model=model, dataset=test_set, data_params=data_params,
                        model_path=model_path, results_dir=resolve_results_dir(results_dir))
    outcome: EvaluateOutcome = execute(spec, report, cancel)
    return outcome.evaluation


def predict_task(model: Any, test_set: Any, class_names: Sequence[str] | None,
                 out_dir: Path | None, *, report: Reporter, cancel: CancelToken,
                 model_path: Path | None = None,
                 data_params: DataParams | None = None) -> PredictOutcome:
    """Predict the test set in a run folder under ``out_dir`` (the results folder), which
    holds the one copy of the confusion matrix and report CSVs (``outcome.files``)."""
    from convonet.tasks import execute
    from convonet.tasks.testing import PredictSpec

    spec = PredictSpec(model=model, dataset=test_set, class_names=_names(class_names),
                       data_params=data_params, model_path=model_path,
                       results_dir=resolve_results_dir(out_dir))
    outcome: PredictOutcome = execute(spec, report, cancel)
    return outcome


def classify_task(model: Any, target: Path, data_params: DataParams,
                  class_names: Sequence[str] | None, *, report: Reporter,
                  cancel: CancelToken, results_dir: Path | None = None,
                  model_path: Path | None = None) -> list[Classification]:
    """Classify one image or a folder of images; unreadable files are reported, skipped.
    The rows are recorded in a run folder under the results folder."""
    from convonet.tasks import execute
    from convonet.tasks.testing import ClassifySpec

    spec = ClassifySpec(model=model, paths=(target,), data_params=data_params,
                        class_names=_names(class_names), model_path=model_path,
                        results_dir=resolve_results_dir(results_dir))
    outcome: ClassifyOutcome = execute(spec, report, cancel)
    return outcome.rows


class TestingScreen(TestingView):
    """Evaluates and predicts with the model on the test set and classifies new images."""

    __test__ = False  # not a pytest test class, despite its name

    SCREEN_NAME = "testing"
    SCREEN_TITLE = "Testing"

    # Below this width the per-class table goes under the heatmap instead of beside it.
    HORIZONTAL_BREAKPOINTS = [(0, "-narrow"), (120, "-wide")]

    BINDINGS: ClassVar[list[BindingType]] = [*bindings("testing")]

    DEFAULT_CSS = """
    TestingScreen #testing-status { height: auto; padding: 0 1; background: $boost; }
    TestingScreen #testing-body { height: 1fr; scrollbar-size-vertical: 1; }
    TestingScreen .section {
        height: auto; border: round $primary 60%; border-title-color: $accent;
        border-subtitle-color: $text-muted; padding: 0 1; margin: 0 1;
    }
    TestingScreen .section.-empty { display: none; }
    TestingScreen #testing-intro { height: auto; padding: 1 2; color: $text-muted; }
    TestingScreen #evaluation-table { height: auto; width: auto; }
    TestingScreen #prediction-row { height: auto; }
    /* The report table pads its own right edge: one column more for the heatmap at 120. */
    TestingScreen.-wide #prediction { padding: 0 0 0 1; }
    TestingScreen #heatmap-box { height: auto; width: 1fr; }
    TestingScreen #heatmap-title { text-style: bold; height: auto; }
    TestingScreen #heatmap-legend { height: auto; margin-top: 1; }
    TestingScreen #report-box { height: auto; width: auto; }
    TestingScreen #report-table { height: auto; max-height: 30; width: auto; }
    TestingScreen.-narrow #prediction-row { layout: vertical; }
    TestingScreen.-narrow #report-box { margin-top: 1; }
    TestingScreen .note { height: auto; color: $text-warning; }
    TestingScreen .muted { height: auto; color: $text-muted; }
    TestingScreen #classified-table { height: auto; max-height: 20; }
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._classified_from: Path | None = None
        self._pick_start: Path | None = None

    def on_mount(self) -> None:
        self.sync_from_session()
        self.query_one("#testing-body").focus()

    def session_changed(self, what: frozenset[Aspect]) -> None:
        """Other screens change the model and the test set, tasks start and end."""
        self.sync_from_session()

    # ---- state -------------------------------------------------------------------------
    def _model(self) -> Any:
        """The keras.Model the session holds (unwrapping a NetModel if given one)."""
        return model_of(self.session)

    def _model_classes(self) -> int | None:
        io = self._model_io()
        return None if io is None else io[1]

    def model_class_names(self) -> list[str] | None:
        """The model's classes by name, when known (see ``testing_text``)."""
        return model_class_names(self.session, self._model_classes())

    def why_not(self, action: str) -> str | None:
        """Why ``action`` cannot run now, or None when it can."""
        if action == "export_classifications":
            return None if self._classified else "classify images first (c)"
        if action not in _TASKS:
            return None
        if self._busy or self.tasks_running():
            return "wait for the running task to finish"
        if self._model() is None:
            return "no model: initialize one or load one on the Model screen (3)"
        if action != "classify_images" and self.session.test_set is None:
            return "no test set: load it on the Data screen (2)"
        return None

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """Grey out (None) what cannot run yet; the status line says why."""
        return True if self.why_not(action) is None else None

    def _model_io(self) -> tuple[tuple[int, ...], int] | None:
        """The model's image shape and class count, or None without a usable model."""
        return model_io(self._model())

    # ---- actions -----------------------------------------------------------------------
    def _refuse(self, action: str) -> bool:
        why = self.why_not(action)
        if why is not None:
            self.notify(why, title=self.SCREEN_TITLE, severity="warning")
            return True
        return False

    def _fits_test_set(self) -> bool:
        """Check the model against the test set before any work starts; show why not."""
        from convonet.core.model import ModelError, check_fits

        test = self.session.test_set
        if test is None:
            return False
        try:
            check_fits(self._model(), test.image_shape, test.num_classes)
        except ModelError as exc:
            self._error("The model does not fit the test set", exc)
            return False
        return True

    def _error(self, title: str, error: BaseException | str) -> None:
        """The app's error dialog with our own message: it names the files and shapes
        already, and a traceback would only hide it."""
        self.app.show_error(title, str(error))

    def _results_dir(self) -> Path:
        return self.app.results_dir

    def _start(self, busy: str) -> None:
        self._busy = busy
        self.update_status()
        self.refresh_bindings()

    def action_evaluate(self) -> None:
        """Evaluation: the test accuracy and loss (the seed's Tasks › Evaluation)."""
        if self._refuse("evaluate") or not self._fits_test_set() \
                or self.results_refused("Evaluation"):
            return
        test = self.session.test_set
        if test is None:
            return
        self._start(f"Evaluating {len(test.y)} test images")
        self._made_with["evaluation"] = self._current_key()
        run_task(self, evaluate_task, self._model(), test, name="evaluation",
                 description="Evaluation", results_dir=self._results_dir(),
                 model_path=self.session.model_path,
                 data_params=self.session.data_params)

    def action_predict(self) -> None:
        """Prediction: the confusion heatmap and per-class scores (Tasks › Prediction)."""
        if self._refuse("predict") or not self._fits_test_set() \
                or self.results_refused("Prediction"):
            return
        test = self.session.test_set
        if test is None:
            return
        self._start(f"Predicting {len(test.y)} test images")
        self._made_with["prediction"] = self._current_key()
        run_task(self, predict_task, self._model(), test, self.model_class_names(),
                 self.app.results_dir, name="prediction", description="Prediction",
                 model_path=self.session.model_path,
                 data_params=self.session.data_params)

    def action_classify_images(self) -> None:
        """Pick an image or a folder of images and classify them (beyond the seed)."""
        if self._refuse("classify_images") or self.results_refused("Classification"):
            return
        params = self._classify_params()
        if params is None:
            return
        from convonet.core.testing import IMAGE_SUFFIXES
        from convonet.tui.widgets.file_picker import FilePicker

        start = self._pick_start or self.session.data_params.test_path or Path.cwd()

        def picked(path: Path | None) -> None:
            if path is None:
                return
            self._pick_start = path.parent if path.is_file() else path
            self._start(f"Classifying {path.name or path}")
            run_task(self, classify_task, self._model(), path, params,
                     self._classify_names(), name="classification",
                     description="Classifying images", results_dir=self._results_dir(),
                     model_path=self.session.model_path)
            self._classified_from = path

        self.app.push_screen(FilePicker("Classify images: pick an image or a folder",
                                        Path(start), suffixes=tuple(sorted(IMAGE_SUFFIXES)),
                                        pick_folders=True), picked)

    def _classify_params(self) -> DataParams | None:
        """Data params whose image size and colour mode are the model's input."""
        from convonet.core.model import ModelError, model_io_shape

        try:
            shape, _ = model_io_shape(self._model())
            params, note = classify_params(self.session.data_params, shape)
        except (ModelError, ValueError) as exc:
            self._error("Cannot classify with this model", exc)
            return None
        if note is not None:
            self.notify(note, title="Classify")
        return params

    def _classify_names(self) -> list[str] | None:
        names = self.model_class_names()
        test = self.session.test_set
        if names is None and test is not None and test.num_classes == self._model_classes():
            names = list(test.class_names)
        return names

    def action_export_classifications(self) -> None:
        """Write the classified images as CSV, by default into the results folder."""
        if self._refuse("export_classifications"):
            return
        section = self.query_one(ClassifiedSection)
        section.export(self._classified, self.app.results_dir,
                       lambda exc: self._error("The CSV file could not be written", exc))

    # ---- results -----------------------------------------------------------------------
    @on(TaskEnded)
    def _task_ended(self, message: TaskEnded) -> None:
        self._busy = ""
        if message.ok:
            if message.task == "evaluation":
                self.session.evaluation = message.result
                self.show_evaluation(message.result)
                self._reveal("#evaluation")
            elif message.task == "prediction":
                outcome: PredictOutcome = message.result
                self.session.prediction = outcome.prediction
                self.show_prediction(outcome.prediction, saved=outcome.files)
                self._reveal("#prediction")
            elif message.task == "classification":
                self.show_classifications(message.result, self._classified_from)
                self._reveal("#classified")
                if message.result:
                    self.query_one("#classified-table", DataTable).focus()
            if message.task in ("evaluation", "prediction"):
                self.app.session_changed("results")
        self._mark_stale()
        self.update_status()
        self.refresh_bindings()

