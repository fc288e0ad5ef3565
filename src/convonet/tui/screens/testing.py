"""The testing screen: evaluation, prediction and classifying new images.

Keys: ``e`` evaluates the model on the test set (accuracy, loss, count), ``p`` predicts it
(the confusion heatmap, per-class precision/recall/F1, the most confidently wrong images;
the matrix and the report are written as CSV into the results folder), ``c`` classifies a
file or a folder of new images, and ``x`` exports those results as CSV. Each key is greyed
out while it cannot run, and the line at the top says why.

Keras work runs in thread workers (``run_task``); results arrive as ``TaskEnded`` on the UI
thread and are also kept on the session, so they survive screen switches.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
from rich.console import RenderableType
from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import BindingType
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.widgets import DataTable, Static

from convonet.keytable import bindings
from convonet.tui.screens.base import ConvonetScreen
from convonet.tui.session import Aspect
from convonet.tui.tasks import TaskEnded, run_task
from convonet.tui.widgets.confusion_grid import ConfusionGrid
from convonet.tui.widgets.confusion_grid import class_axis_label as class_label
from convonet.tui.widgets.heatmap import legend
from convonet.tui.widgets.images import fit_image, image_grid

if TYPE_CHECKING:
    from convonet.core.events import CancelToken, Reporter
    from convonet.core.params import DataParams
    from convonet.core.testing import Classification, Evaluation, Prediction

#: How many of the most confidently wrong test images the strip shows.
WRONG_SHOWN = 8
#: Largest size of one image in the strip, in character cells (two pixel rows per cell).
WRONG_CELL = (28, 7)
#: Longest label under an image before it is cut with an ellipsis, and longest class
#: label in it (the legend under the heatmap has the full names).
WRONG_LABEL_MAX = 40
WRONG_NAME_MAX = 14

_TASKS = ("evaluate", "predict", "classify_images")


def shorten(text: str, width: int) -> str:
    """``text`` cut to ``width`` characters with an ellipsis."""
    return text if len(text) <= width else text[:width - 1] + "…"


def relabel(prediction: Prediction, names: Sequence[str] | None) -> Prediction:
    """The prediction with the model's class names (the training names) instead of the
    test folders' names, which may differ while classes are matched by index."""
    from convonet.core.records import relabel_prediction

    return relabel_prediction(prediction, names)


# ---- the work that runs in thread workers ----------------------------------------------
@dataclass
class PredictOutcome:
    """A prediction and where its CSV files went (or why they could not be written)."""

    prediction: Prediction
    saved: tuple[Path, Path] | None = None
    save_error: str | None = None


def evaluate_task(model: Any, test_set: Any, *, report: Reporter,
                  cancel: CancelToken, results_dir: Path | None = None,
                  model_path: Path | None = None) -> Evaluation:
    """Loss and accuracy on the test set (seconds on a big set, hence a worker), recorded
    in a run folder under ``results_dir`` when given."""
    if results_dir is None:
        from convonet.core.testing import NetTesting

        return NetTesting(model).evaluate(test_set)
    from convonet.core.records import evaluate_run

    return evaluate_run(model, test_set, results_dir, model_path=model_path,
                        report=report).evaluation


def predict_task(model: Any, test_set: Any, class_names: Sequence[str] | None,
                 out_dir: Path, *, report: Reporter, cancel: CancelToken,
                 model_path: Path | None = None) -> PredictOutcome:
    """Predict the test set (recorded in a run folder) and write the confusion matrix and
    report CSVs beside the other results.

    A folder that cannot be written does not lose the prediction: the outcome carries the
    reason and the screen shows both.
    """
    from convonet.core.records import predict_run

    prediction = predict_run(model, test_set, out_dir, class_names=class_names,
                             model_path=model_path, report=report).prediction
    stamp = time.strftime("%Y%m%d-%H%M%S")
    try:
        saved = prediction.to_csv(out_dir / f"prediction-{stamp}-confusion.csv",
                                  out_dir / f"prediction-{stamp}-report.csv")
    except OSError as exc:
        from convonet.core.storage import storage_error

        error = storage_error(exc, out_dir)  # a full disk: the same words as everywhere
        return PredictOutcome(prediction, save_error=str(error) if error is not None else
                              f"{exc.strerror or exc}: {exc.filename or out_dir}")
    return PredictOutcome(prediction, saved=saved)


def classify_task(model: Any, target: Path, data_params: DataParams,
                  class_names: Sequence[str] | None, *, report: Reporter,
                  cancel: CancelToken, results_dir: Path | None = None,
                  model_path: Path | None = None) -> list[Classification]:
    """Classify one image or a folder of images; unreadable files are reported, skipped.
    The rows are also recorded in a run folder under ``results_dir`` when given."""
    if results_dir is None:
        from convonet.core.testing import NetTesting

        return NetTesting(model).classify(target, data_params, class_names, report=report)
    from convonet.core.records import classify_run

    return classify_run(model, [target], data_params, results_dir,
                        class_names=class_names, model_path=model_path, report=report).rows


# ---- widgets -----------------------------------------------------------------------------
class MistakeStrip(Static):
    """The most confidently wrong test images, labelled ``true → predicted (conf%)``.

    Re-flows to its width: the column count comes from the drawn image and label widths,
    so long class names get cut rather than breaking the grid.
    """

    DEFAULT_CSS = """
    MistakeStrip { height: auto; }
    """

    def __init__(self, **kwargs: Any) -> None:
        super().__init__("", **kwargs)
        self._images: list[np.ndarray] = []
        self._labels: list[str] = []
        self._empty = ""

    @property
    def labels(self) -> list[str]:
        return list(self._labels)

    def show(self, images: Sequence[np.ndarray], labels: Sequence[str], empty: str) -> None:
        self._images = [np.asarray(img) for img in images]
        self._labels = list(labels)
        self._empty = empty
        self._redraw()

    def on_resize(self) -> None:
        self._redraw()

    def _redraw(self) -> None:
        if not self._images:
            self.update(Text(self._empty, style="italic"))
            return
        width = self.size.width or 80
        first = self._images[0]
        drawn = fit_image(first if first.ndim == 3 else first[:, :, None], *WRONG_CELL)
        label_w = min(WRONG_LABEL_MAX, max(len(label) for label in self._labels))
        cell = max(int(drawn.shape[1]), label_w)
        columns = max(1, min(len(self._images), (width + 2) // (cell + 2)))
        self.update(image_grid(self._images, self._labels, columns=columns,
                               cell_width=WRONG_CELL[0], cell_height=WRONG_CELL[1]))


class TestingScreen(ConvonetScreen):
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
        self._busy = ""  # what is running, for the status line
        self._evaluation: Evaluation | None = None
        self._prediction: Prediction | None = None
        self._made_with: dict[str, tuple[int, int]] = {}  # result -> (model, test set) ids
        self._classified: list[Classification] = []
        self._classified_from: Path | None = None
        self._pick_start: Path | None = None

    # ---- layout ------------------------------------------------------------------------
    def compose_body(self) -> ComposeResult:
        yield Static("", id="testing-status")
        with VerticalScroll(id="testing-body"):
            yield Static("", id="testing-intro")
            with Vertical(id="evaluation", classes="section -empty") as box:
                box.border_title = "Evaluation"
                yield DataTable(id="evaluation-table", cursor_type="none",
                                show_header=False)
            with Vertical(id="prediction", classes="section -empty") as box:
                box.border_title = "Prediction"
                yield Static("", id="matching-note", classes="note")
                with Horizontal(id="prediction-row"):
                    with Vertical(id="heatmap-box"):
                        yield Static("Confusion matrix (rows: true, columns: predicted)",
                                     id="heatmap-title")
                        yield ConfusionGrid(id="heatmap")
                        yield Static("", id="heatmap-legend", classes="muted")
                    with Vertical(id="report-box"):
                        yield DataTable(id="report-table", cursor_type="none")
                yield Static("", id="saved-note", classes="muted")
            with Vertical(id="wrong", classes="section -empty") as box:
                box.border_title = "Most confidently wrong"
                yield MistakeStrip(id="wrong-strip")
            with Vertical(id="classified", classes="section -empty") as box:
                box.border_title = "Classified images"
                yield Static("", id="classified-note", classes="muted")
                yield DataTable(id="classified-table", cursor_type="row")

    def on_mount(self) -> None:
        table = self.query_one("#evaluation-table", DataTable)
        table.can_focus = False
        table.add_column("", key="what")
        table.add_column("value", key="value")
        report = self.query_one("#report-table", DataTable)
        report.add_column("class", key="class")
        for label in ("precision", "recall", "F1", "support"):
            report.add_column(Text(label, justify="right"), key=label)
        classified = self.query_one("#classified-table", DataTable)
        for label in ("file", "predicted", "confidence", "top 3"):
            classified.add_column(label, key=label)
        self.sync_from_session()
        self.query_one("#testing-body").focus()

    def session_changed(self, what: frozenset[Aspect]) -> None:
        """Other screens change the model and the test set, tasks start and end."""
        self.sync_from_session()

    # ---- state -------------------------------------------------------------------------
    def _model(self) -> Any:
        """The keras.Model the session holds (unwrapping a NetModel if given one)."""
        model = self.session.model
        if model is not None and not hasattr(model, "predict"):
            model = getattr(model, "model", None)
        return model

    def _current_key(self) -> tuple[int, int]:
        return (id(self._model()), id(self.session.test_set))

    def _model_classes(self) -> int | None:
        io = self._model_io()
        return None if io is None else io[1]

    def model_class_names(self) -> list[str] | None:
        """The model's classes: the names it was built or loaded with (kept by the model
        screen), else those saved beside its file, else the training set's; None when none
        is known (or none has the right count). The model's own names come first: a loaded
        model may have been trained on other folders than the training set loaded now."""
        from convonet.core.model import read_class_names

        count = self._model_classes()
        kept = self.session.class_names
        if kept is not None and len(kept) == count:
            return [str(name) for name in kept]
        path = self.session.model_path
        if path is not None:
            names = read_class_names(path)
            if names is not None and len(names) == count:
                return names
        train = self.session.train_set
        if train is not None and len(train.class_names) == count:
            return list(train.class_names)
        return None

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
        c = self.session
        line = Text()
        model = self._model()
        if model is None:
            line.append("Model: none", style="bold")
        else:
            name = Path(c.model_path).name if c.model_path is not None else "unsaved model"
            line.append(f"Model: {name}", style="bold")
            line.append(f" ({self._model_shape_text()})")
        test = c.test_set
        line.append("  ·  ")
        if test is None:
            line.append("Test set: none", style="bold")
        else:
            where = Path(test.root).name if test.root is not None else "loaded"
            line.append(f"Test set: {where}", style="bold")
            line.append(f" ({len(test.y)} images")
            io = self._model_io()
            if io is None or io != (tuple(test.image_shape), test.num_classes):
                shape = "x".join(str(d) for d in test.image_shape)
                line.append(f", {shape}, {test.num_classes} classes",
                            style="bold red" if io is not None else "")
            line.append(")")
        if self._busy:
            line.append(f"\n{self._busy}…", style="bold italic")
        else:
            reasons = []
            blocked = self.why_not("classify_images")
            if model is None:
                reasons.append("No model: initialize one or load one on the Model screen (3) "
                               "to evaluate, predict or classify.")
            elif blocked is not None:  # another screen's task is running
                reasons.append(blocked[0].upper() + blocked[1:] + ".")
            if test is None:
                reasons.append("No test set: load it on the Data screen (2) to evaluate or "
                               "predict.")
            if reasons:
                line.append("\n" + " ".join(reasons), style="italic")
        self.query_one("#testing-status", Static).update(line)
        intro = self.query_one("#testing-intro", Static)
        anything = any(r is not None for r in (self._evaluation, self._prediction)) \
            or bool(self._classified)
        intro.display = not anything
        intro.update(Text(
            "e  evaluate: accuracy and loss on the test set\n"
            "p  predict: confusion heatmap, per-class precision/recall/F1 and the most "
            "confidently wrong images; CSV files go to the results folder\n"
            "c  classify new images: pick one file or a folder\n"
            "x  export the classified images as CSV"))

    def _model_io(self) -> tuple[tuple[int, ...], int] | None:
        """The model's image shape and class count, or None without a usable model."""
        from convonet.core.model import ModelError, model_io_shape

        if self._model() is None:
            return None
        try:
            return model_io_shape(self._model())
        except ModelError:
            return None

    def _model_shape_text(self) -> str:
        io = self._model_io()
        if io is None:
            return "no fixed input shape"
        return f"{'x'.join(str(d) for d in io[0])}, {io[1]} classes"

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
                 model_path=self.session.model_path)

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
        out_dir = self.app.results_dir
        run_task(self, predict_task, self._model(), test, self.model_class_names(), out_dir,
                 name="prediction", description="Prediction",
                 model_path=self.session.model_path)

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
        """Data params whose image size and colour mode are the model's input.

        New images must be prepared as the model's training images were; the model's
        input shape says how, even when the loaded data params describe another set.
        """
        from convonet.core.model import ModelError, model_io_shape

        params = self.session.data_params
        try:
            shape, _ = model_io_shape(self._model())
        except ModelError as exc:
            self._error("Cannot classify with this model", exc)
            return None
        if len(shape) != 3 or shape[2] not in (1, 3) or min(shape) < 1:
            self._error(
                "Cannot classify with this model",
                f"The model takes {'x'.join(str(d) for d in shape)} inputs; convonet "
                "classifies images of height x width x 1 (grayscale) or 3 (RGB) channels.")
            return None
        mode = "grayscale" if shape[2] == 1 else "rgb"
        size = (shape[0], shape[1])
        if tuple(params.image_size) != size or params.color_mode != mode:
            params = params.edit(image_size=list(size), color_mode=mode)
            self.notify(f"Images are prepared as the model expects: {size[0]}x{size[1]} "
                        f"{mode} (the data params say otherwise).", title="Classify")
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
        from convonet.tui.widgets.file_picker import FilePicker

        results = self.app.results_dir
        try:
            results.mkdir(parents=True, exist_ok=True)
        except OSError as exc:  # the picker then starts at the nearest folder that exists
            self.notify(f"The results folder {results} cannot be created "
                        f"({exc.strerror or exc}): pick another folder.",
                        severity="warning", title="Export CSV")
        name = f"classified-{time.strftime('%Y%m%d-%H%M%S')}.csv"

        def picked(path: Path | None) -> None:
            if path is not None:
                self._write_classifications(path)

        self.app.push_screen(FilePicker("Export classified images as CSV", results,
                                        suffixes=(".csv",), save=True, default_name=name),
                             picked)

    def _write_classifications(self, path: Path) -> None:
        from convonet.core.testing import write_classifications_csv

        try:
            written = write_classifications_csv(self._classified, path)
        except OSError as exc:
            self._error("The CSV file could not be written", exc)
            return
        self.notify(f"{len(self._classified)} rows written to {written}", title="Export CSV")
        self.query_one("#classified", Vertical).border_subtitle = f"saved: {written}"

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
                self.show_prediction(outcome.prediction, saved=outcome.saved,
                                     save_error=outcome.save_error)
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

    def _reveal(self, selector: str) -> None:
        """Bring a result into view once the section it just un-hid has a layout."""
        target = self.query_one(selector)
        # Twice deferred: the first refresh lays the section out, then it can be scrolled to.
        self.call_after_refresh(target.scroll_visible, top=True, animate=False)

    def show_evaluation(self, evaluation: Evaluation | None) -> None:
        """Fill the evaluation table (or hide it when there is no evaluation)."""
        self._evaluation = evaluation
        box = self.query_one("#evaluation", Vertical)
        box.set_class(evaluation is None, "-empty")
        table = self.query_one("#evaluation-table", DataTable)
        table.clear()
        if evaluation is None:
            return
        table.add_row("Test accuracy", Text(f"{evaluation.accuracy * 100:.2f} %",
                                            style="bold"), key="accuracy")
        table.add_row("Test loss", f"{evaluation.loss:.4f}", key="loss")
        table.add_row("Images", str(evaluation.count), key="count")
        self.update_status()

    def show_prediction(self, prediction: Prediction | None, *,
                        saved: tuple[Path, Path] | None = None,
                        save_error: str | None = None) -> None:
        """Draw the heatmap, the per-class table and the strip of worst mistakes."""
        self._prediction = prediction
        for section in ("#prediction", "#wrong"):
            self.query_one(section).set_class(prediction is None, "-empty")
        report = self.query_one("#report-table", DataTable)
        report.clear()
        if prediction is None:
            return
        names = prediction.class_names
        box = self.query_one("#prediction", Vertical)
        box.border_title = (f"Prediction · {prediction.count} images · accuracy "
                            f"{prediction.accuracy * 100:.2f} %")
        self.query_one("#heatmap", ConfusionGrid).show(prediction.confusion, names)
        self._set_text("#heatmap-legend", self._legend(names))
        self._set_text("#matching-note", self._matching_note(prediction))
        for row in prediction.per_class:
            report.add_row(class_label(row.index, row.name), *self._scores(row),
                           key=f"class-{row.index}")
        for row in (prediction.macro, prediction.weighted):
            report.add_row(Text(row.name, style="bold"), *self._scores(row, bold=True),
                           key=row.name)
        if saved is not None:
            self._set_text("#saved-note", Text(f"Saved: {saved[0]}\n       {saved[1]}"))
        elif save_error is not None:
            self._set_text("#saved-note", Text(f"The CSV files could not be saved: "
                                               f"{save_error}", style="bold red"))
            self.notify(f"The prediction CSV files could not be saved: {save_error}",
                        severity="error", title="Prediction")
        else:
            self._set_text("#saved-note", Text(""))
        self._show_wrong(prediction)
        self.update_status()

    def _set_text(self, selector: str, text: RenderableType) -> None:
        """Update a note, hiding it while empty so it takes no line."""
        note = self.query_one(selector, Static)
        note.update(text)
        note.display = not (isinstance(text, Text) and not text.plain)

    @staticmethod
    def _scores(row: Any, bold: bool = False) -> list[Text]:
        style = "bold" if bold else ""
        return [Text(f"{row.precision:.3f}", style=style, justify="right"),
                Text(f"{row.recall:.3f}", style=style, justify="right"),
                Text(f"{row.f1:.3f}", style=style, justify="right"),
                Text(str(row.support), style=style, justify="right")]

    @staticmethod
    def _legend(names: Sequence[str]) -> RenderableType:
        """Columns show only the index; name them when the names say more than that."""
        if all(name == str(i) for i, name in enumerate(names)):
            return Text("")
        return legend(names)

    def _matching_note(self, prediction: Prediction) -> Text:
        """Say so when the test folders' names are not the model's classes (shown instead)."""
        test = self.session.test_set
        names = list(prediction.class_names)  # the model's classes, matched by index
        folders = list(getattr(test, "class_names", None) or [])
        if len(folders) != len(names) or folders == names:
            return Text("")
        shown = ", ".join(f"{class_label(i, a)} ← {b}"
                          for i, (a, b) in enumerate(zip(names, folders, strict=True)) if a != b)
        return Text("Test folders are named differently from the model's classes; matched "
                    f"by index and shown with the model's class names: {shown}")

    def _show_wrong(self, prediction: Prediction) -> None:
        """The strip of wrong predictions the model was surest of, from the test images."""
        strip = self.query_one("#wrong-strip", MistakeStrip)
        test = self.session.test_set
        x = getattr(test, "x", None)
        names = prediction.class_names
        wrong = prediction.most_confident_wrong(WRONG_SHOWN)
        if not wrong:
            strip.show([], [], "No wrong predictions: every test image was classified "
                               "correctly.")
            return
        if x is None or len(x) != prediction.count:
            strip.show([], [], "The test images of this prediction are not loaded.")
            return
        confidence = prediction.confidence
        labels = []
        for i in wrong:
            t, p = int(prediction.y_true[i]), int(prediction.y_pred[i])
            true = shorten(class_label(t, names[t]), WRONG_NAME_MAX)
            predicted = shorten(class_label(p, names[p]), WRONG_NAME_MAX)
            labels.append(f"{true} → {predicted} ({confidence[i] * 100:.0f}%)")
        strip.show([x[i] for i in wrong], labels, "")

    def show_classifications(self, rows: list[Classification], source: Path | None) -> None:
        """One table row per classified image: file, predicted class, confidence, top 3."""
        self._classified = list(rows)
        box = self.query_one("#classified", Vertical)
        box.set_class(False, "-empty")
        box.border_subtitle = ""
        table = self.query_one("#classified-table", DataTable)
        table.clear()
        where = str(source) if source is not None else "the picked files"
        note = self.query_one("#classified-note", Static)
        if not rows:
            note.update(Text(f"No readable images in {where}.", style="bold"))
            self.notify(f"No readable images in {where}.", severity="warning",
                        title="Classify")
            return
        note.update(Text(f"{len(rows)} image(s) from {where} · x exports them as CSV"))
        for n, row in enumerate(rows):
            top = ", ".join(f"{class_label(i, name)} {p * 100:.0f}%" for i, name, p in row.top3)
            table.add_row(row.path.name, class_label(row.index, row.name),
                          Text(f"{row.confidence * 100:.1f} %", justify="right"), top,
                          key=f"row-{n}")
