"""The testing screen's result sections: evaluation, prediction, worst mistakes, classified.

Each section is a bordered box that stays hidden (class ``-empty``) until it has something
to show; ``show(...)`` fills it from a core result. The screen decides when.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from rich.console import RenderableType
from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.widgets import DataTable, Static

from convonet.tui.widgets.confusion_grid import ConfusionGrid
from convonet.tui.widgets.confusion_grid import class_axis_label as class_label
from convonet.tui.widgets.heatmap import legend, shorten
from convonet.tui.widgets.images import fit_image, image_grid

if TYPE_CHECKING:
    from convonet.core.testing import Classification, Evaluation, Prediction

#: How many of the most confidently wrong test images the strip shows.
WRONG_SHOWN = 8
#: Largest size of one image in the strip, in character cells (two pixel rows per cell).
WRONG_CELL = (28, 7)
#: Longest label under an image before it is cut with an ellipsis, and longest class
#: label in it (the legend under the heatmap has the full names).
WRONG_LABEL_MAX = 40
WRONG_NAME_MAX = 14


def set_note(note: Static, text: RenderableType) -> None:
    """Update a note, hiding it while empty so it takes no line."""
    note.update(text)
    note.display = not (isinstance(text, Text) and not text.plain)


def scores(row: Any, bold: bool = False) -> list[Text]:
    """A per-class report row's precision, recall, F1 and support, right-aligned."""
    style = "bold" if bold else ""
    return [Text(f"{row.precision:.3f}", style=style, justify="right"),
            Text(f"{row.recall:.3f}", style=style, justify="right"),
            Text(f"{row.f1:.3f}", style=style, justify="right"),
            Text(str(row.support), style=style, justify="right")]


def class_legend(names: Sequence[str]) -> RenderableType:
    """Columns show only the index; name them when the names say more than that."""
    if all(name == str(i) for i, name in enumerate(names)):
        return Text("")
    return legend(names)


def matching_note(prediction: Prediction, folders: Sequence[str]) -> Text:
    """Say so when the test folders' names are not the model's classes (shown instead)."""
    names = list(prediction.class_names)  # the model's classes, matched by index
    folders = list(folders)
    if len(folders) != len(names) or folders == names:
        return Text("")
    shown = ", ".join(f"{class_label(i, a)} ← {b}"
                      for i, (a, b) in enumerate(zip(names, folders, strict=True)) if a != b)
    return Text("Test folders are named differently from the model's classes; matched "
                f"by index and shown with the model's class names: {shown}")


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

    def show_wrong(self, prediction: Prediction, x: np.ndarray | None) -> None:
        """The wrong predictions the model was surest of, from the test images ``x``."""
        names = prediction.class_names
        wrong = prediction.most_confident_wrong(WRONG_SHOWN)
        if not wrong:
            self.show([], [], "No wrong predictions: every test image was classified "
                              "correctly.")
            return
        if x is None or len(x) != prediction.count:
            self.show([], [], "The test images of this prediction are not loaded.")
            return
        confidence = prediction.confidence
        labels = []
        for i in wrong:
            t, p = int(prediction.y_true[i]), int(prediction.y_pred[i])
            true = shorten(class_label(t, names[t]), WRONG_NAME_MAX)
            predicted = shorten(class_label(p, names[p]), WRONG_NAME_MAX)
            labels.append(f"{true} → {predicted} ({confidence[i] * 100:.0f}%)")
        self.show([x[i] for i in wrong], labels, "")

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


class EvaluationSection(Vertical):
    """Test accuracy, loss and image count."""

    def compose(self) -> ComposeResult:
        table: DataTable[Any] = DataTable(id="evaluation-table", cursor_type="none",
                                          show_header=False)
        table.can_focus = False
        yield table

    def on_mount(self) -> None:
        table = self.query_one("#evaluation-table", DataTable)
        table.add_column("", key="what")
        table.add_column("value", key="value")

    def show(self, evaluation: Evaluation | None) -> None:
        """Fill the table, or hide the section when there is no evaluation."""
        self.set_class(evaluation is None, "-empty")
        table = self.query_one("#evaluation-table", DataTable)
        table.clear()
        if evaluation is None:
            return
        table.add_row("Test accuracy", Text(f"{evaluation.accuracy * 100:.2f} %",
                                            style="bold"), key="accuracy")
        table.add_row("Test loss", f"{evaluation.loss:.4f}", key="loss")
        table.add_row("Images", str(evaluation.count), key="count")


class PredictionSection(Vertical):
    """The confusion heatmap and the per-class table, and where the CSV files went."""

    def compose(self) -> ComposeResult:
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

    def on_mount(self) -> None:
        report = self.query_one("#report-table", DataTable)
        report.add_column("class", key="class")
        for label in ("precision", "recall", "F1", "support"):
            report.add_column(Text(label, justify="right"), key=label)

    def show(self, prediction: Prediction | None, folders: Sequence[str], *,
             saved: tuple[Path, Path] | None = None) -> None:
        """Draw ``prediction`` (``folders``: the test set's class folders), or hide."""
        self.set_class(prediction is None, "-empty")
        report = self.query_one("#report-table", DataTable)
        report.clear()
        if prediction is None:
            return
        names = prediction.class_names
        self.border_title = (f"Prediction · {prediction.count} images · accuracy "
                             f"{prediction.accuracy * 100:.2f} %")
        self.query_one("#heatmap", ConfusionGrid).show(prediction.confusion, names)
        set_note(self.query_one("#heatmap-legend", Static), class_legend(names))
        set_note(self.query_one("#matching-note", Static), matching_note(prediction, folders))
        for row in prediction.per_class:
            report.add_row(class_label(row.index, row.name), *scores(row),
                           key=f"class-{row.index}")
        for row in (prediction.macro, prediction.weighted):
            report.add_row(Text(row.name, style="bold"), *scores(row, bold=True),
                           key=row.name)
        saved_note = self.query_one("#saved-note", Static)
        if saved is not None:
            set_note(saved_note, Text(f"Saved: {saved[0]}\n       {saved[1]}"))
        else:
            set_note(saved_note, Text(""))


class ClassifiedSection(Vertical):
    """One row per classified image: file, predicted class, confidence, top 3."""

    def compose(self) -> ComposeResult:
        yield Static("", id="classified-note", classes="muted")
        yield DataTable(id="classified-table", cursor_type="row")

    def on_mount(self) -> None:
        classified = self.query_one("#classified-table", DataTable)
        for label in ("file", "predicted", "confidence", "top 3"):
            classified.add_column(label, key=label)

    def show(self, rows: Sequence[Classification], source: Path | None) -> str | None:
        """Fill the table; the problem to tell the user (no readable images), or None."""
        self.set_class(False, "-empty")
        self.border_subtitle = ""
        table = self.query_one("#classified-table", DataTable)
        table.clear()
        where = str(source) if source is not None else "the picked files"
        note = self.query_one("#classified-note", Static)
        if not rows:
            note.update(Text(f"No readable images in {where}.", style="bold"))
            return f"No readable images in {where}."
        note.update(Text(f"{len(rows)} image(s) from {where} · x exports them as CSV"))
        for n, row in enumerate(rows):
            top = ", ".join(f"{class_label(i, name)} {p * 100:.0f}%" for i, name, p in row.top3)
            table.add_row(row.path.name, class_label(row.index, row.name),
                          Text(f"{row.confidence * 100:.1f} %", justify="right"), top,
                          key=f"row-{n}")
        return None

    def export(self, rows: Sequence[Classification], results: Path,
               failed: Callable[[OSError], None]) -> None:
        """Pick a CSV file (in ``results`` by default) and write ``rows`` to it; ``failed``
        is told when it cannot be written."""
        from convonet.tui.widgets.file_picker import FilePicker

        try:
            results.mkdir(parents=True, exist_ok=True)
        except OSError as exc:  # the picker then starts at the nearest folder that exists
            self.notify(f"The results folder {results} cannot be created "
                        f"({exc.strerror or exc}): pick another folder.",
                        severity="warning", title="Export CSV")
        name = f"classified-{time.strftime('%Y%m%d-%H%M%S')}.csv"

        def picked(path: Path | None) -> None:
            if path is not None:
                self._write(rows, path, failed)

        self.app.push_screen(FilePicker("Export classified images as CSV", results,
                                        suffixes=(".csv",), save=True, default_name=name),
                             picked)

    def _write(self, rows: Sequence[Classification], path: Path,
               failed: Callable[[OSError], None]) -> None:
        from convonet.core.testing import write_classifications_csv

        try:
            written = write_classifications_csv(list(rows), path)
        except OSError as exc:
            failed(exc)
            return
        self.notify(f"{len(rows)} rows written to {written}", title="Export CSV")
        self.border_subtitle = f"saved: {written}"
