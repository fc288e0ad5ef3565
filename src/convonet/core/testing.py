"""Testing (the seed's NetTesting): evaluation, prediction with a confusion matrix and
per-class metrics, and classifying new, unlabelled images.
"""

from __future__ import annotations

import csv
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import keras
import numpy as np

from convonet.core.data import DataError, extract_image
from convonet.core.events import Notice, Reporter, no_report
from convonet.core.model import ModelError, check_fits, model_io_shape
from convonet.core.params import DataParams
from convonet.core.training import DatasetLike

if TYPE_CHECKING:
    from convonet.core.device_loop import DeviceTrainer

PREDICT_BATCH = 256
IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff",
                            ".webp", ".ppm", ".pgm", ".pbm"})


@dataclass(frozen=True)
class Evaluation:
    loss: float
    accuracy: float
    count: int


@dataclass(frozen=True)
class ClassReport:
    """Precision, recall, F1 and support of one class, or of an average (index -1)."""

    index: int
    name: str
    precision: float
    recall: float
    f1: float
    support: int


@dataclass
class Prediction:
    """Predicted labels and what the user reads from them."""

    y_true: np.ndarray
    y_pred: np.ndarray
    probabilities: np.ndarray  # (n, classes)
    class_names: list[str]
    confusion: np.ndarray  # rows true, columns predicted
    per_class: list[ClassReport]
    macro: ClassReport
    weighted: ClassReport

    @property
    def count(self) -> int:
        return int(len(self.y_true))

    @property
    def accuracy(self) -> float:
        return float(np.mean(self.y_true == self.y_pred)) if self.count else 0.0

    @property
    def confidence(self) -> np.ndarray:
        """The probability the model gave its predicted class, per image."""
        return self.probabilities[np.arange(self.count), self.y_pred]

    def most_confident_wrong(self, k: int = 8) -> list[int]:
        """Indices of wrongly predicted images, most confident first (the worst mistakes)."""
        wrong = np.flatnonzero(self.y_true != self.y_pred)
        order = np.argsort(-self.confidence[wrong], kind="stable")
        return [int(i) for i in wrong[order][:k]]

    def report_rows(self) -> list[ClassReport]:
        """Per-class rows followed by the macro and weighted averages."""
        return [*self.per_class, self.macro, self.weighted]

    def write_confusion_csv(self, path: str | os.PathLike[str]) -> Path:
        """Confusion matrix with a header row and column of ``index name`` labels."""
        p = _prepare(path)
        labels = [f"{i} {name}" for i, name in enumerate(self.class_names)]
        with p.open("w", newline="", encoding="utf-8") as fh:
            writer = csv.writer(fh)
            writer.writerow(["true \\ predicted", *labels])
            for label, row in zip(labels, self.confusion, strict=True):
                writer.writerow([label, *(int(v) for v in row)])
        return p

    def write_report_csv(self, path: str | os.PathLike[str]) -> Path:
        p = _prepare(path)
        with p.open("w", newline="", encoding="utf-8") as fh:
            writer = csv.writer(fh)
            writer.writerow(["index", "class", "precision", "recall", "f1", "support"])
            for r in self.report_rows():
                writer.writerow(["" if r.index < 0 else r.index, r.name, f"{r.precision:.6f}",
                                 f"{r.recall:.6f}", f"{r.f1:.6f}", r.support])
        return p

    def to_csv(self, confusion_path: str | os.PathLike[str],
               report_path: str | os.PathLike[str]) -> tuple[Path, Path]:
        return self.write_confusion_csv(confusion_path), self.write_report_csv(report_path)


@dataclass(frozen=True)
class Classification:
    """One new image: the predicted class and the three most likely (index, name, prob)."""

    path: Path
    index: int
    name: str
    confidence: float
    top3: list[tuple[int, str, float]]


def _prepare(path: str | os.PathLike[str]) -> Path:
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    return p


def preprocess_image(path: str | os.PathLike[str], image_size: Sequence[int],
                     color_mode: str) -> np.ndarray:
    """One image file as float32 (height, width, channels) in 0..1.

    Delegates to the dataset loader's ``extract_image`` so new images go through exactly
    the preprocessing the model was trained on (alpha, palette, 16-bit, resizing).
    Raises DataError (a ValueError) with the loader's reason when the file cannot be used.
    """
    try:
        arr, _ = extract_image(path, image_size, color_mode)
    except Exception as exc:  # the loader's private skip error carries a readable reason
        raise DataError(f"{Path(path).name}: {exc}") from exc
    return arr


def list_images(paths_or_folder: str | os.PathLike[str] | Iterable[str | os.PathLike[str]]
                ) -> list[Path]:
    """Image files to classify: one file, a folder (sorted, not recursive), or a list."""
    if isinstance(paths_or_folder, (str, os.PathLike)):
        items: list[Path] = [Path(paths_or_folder)]
    else:
        items = [Path(p) for p in paths_or_folder]
    out: list[Path] = []
    for item in items:
        if item.is_dir():
            out.extend(sorted(p for p in item.iterdir()
                              if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES
                              and not p.name.startswith(".")))
        elif item.exists():
            out.append(item)
        else:
            raise FileNotFoundError(f"{item}: no such file or folder")
    return out


def prediction_from(y_true: Sequence[int] | np.ndarray, probabilities: np.ndarray,
                    class_names: Sequence[str]) -> Prediction:
    """The prediction a model's class probabilities make on labelled images: the predicted
    class is the most probable one; the confusion matrix, per-class precision, recall, F1
    and their macro and weighted averages follow."""
    from sklearn.metrics import confusion_matrix, precision_recall_fscore_support

    probs = np.asarray(probabilities, dtype=np.float64)
    y_true = np.asarray(y_true, dtype=np.int64)
    y_pred = np.argmax(probs, axis=1).astype(np.int64)
    names = list(class_names)
    labels = list(range(len(names)))
    cm = confusion_matrix(y_true, y_pred, labels=labels)
    p, r, f, s = precision_recall_fscore_support(y_true, y_pred, labels=labels,
                                                 zero_division=0)
    per_class = [ClassReport(i, names[i], float(p[i]), float(r[i]), float(f[i]), int(s[i]))
                 for i in labels]
    averages = []
    for avg in ("macro", "weighted"):
        ap, ar, af, _ = precision_recall_fscore_support(
            y_true, y_pred, labels=labels, average=avg, zero_division=0)
        averages.append(ClassReport(-1, f"{avg} avg", float(ap), float(ar), float(af),
                                    int(len(y_true))))
    return Prediction(y_true=y_true, y_pred=y_pred, probabilities=probs, class_names=names,
                      confusion=cm, per_class=per_class, macro=averages[0],
                      weighted=averages[1])


class NetTesting:
    """Evaluate, predict and classify with a trained model (the seed's NetTesting)."""

    def __init__(self, model: keras.Model, batch_size: int = PREDICT_BATCH) -> None:
        self.model = model
        self.batch_size = batch_size

    def evaluate(self, dataset: DatasetLike) -> Evaluation:
        """Loss and accuracy on a labelled set."""
        check_fits(self.model, dataset.image_shape, dataset.num_classes)
        if len(dataset.y) == 0:
            raise DataError("the test set is empty; load a test set with images in its "
                            "class folders")
        device = self._on_device(dataset.x)
        if device is not None:
            logs = device.evaluate(dataset.x, dataset.y)
        else:
            logs = self.model.evaluate(dataset.x, dataset.y, batch_size=self.batch_size,
                                       verbose=0, return_dict=True)
        return Evaluation(loss=float(logs["loss"]), accuracy=float(logs["accuracy"]),
                          count=int(len(dataset.y)))

    def predict(self, dataset: DatasetLike) -> Prediction:
        """Predicted labels, the confusion matrix and per-class precision/recall/F1."""
        check_fits(self.model, dataset.image_shape, dataset.num_classes)
        if len(dataset.y) == 0:
            raise DataError("the test set is empty; load a test set with images in its "
                            "class folders")
        device = self._on_device(dataset.x)
        outputs = (device.predict(dataset.x) if device is not None else
                   self.model.predict(dataset.x, batch_size=self.batch_size, verbose=0))
        probs = np.asarray(outputs, dtype=np.float64)
        return prediction_from(dataset.y, probs, dataset.class_names)

    def _on_device(self, x: np.ndarray) -> DeviceTrainer | None:
        """The jax device loop for a labelled set, when it is on (``core.device_loop``)."""
        if keras.backend.backend() != "jax":
            return None
        from convonet.core.device_loop import DeviceTrainer, use_device_loop

        use, _ = use_device_loop(x.nbytes)  # too large: Keras streams it, as before
        return DeviceTrainer(self.model, self.batch_size) if use else None

    def classify(self, paths_or_folder: str | os.PathLike[str] | Iterable[str | os.PathLike[str]],
                 data_params: DataParams, class_names: Sequence[str] | None = None,
                 report: Reporter = no_report) -> list[Classification]:
        """Classify new images through the loader's preprocessing (size and colour mode
        from the data params). Unreadable files are skipped and reported, never fatal."""
        size = tuple(int(v) for v in data_params.image_size)
        channels = 1 if data_params.color_mode == "grayscale" else 3
        _, num_classes = model_io_shape(self.model)
        check_fits(self.model, (size[0], size[1], channels), num_classes)
        names = list(class_names) if class_names is not None else None
        if names is not None and len(names) != num_classes:
            raise ModelError(f"the model predicts {num_classes} classes but "
                             f"{len(names)} class names were given")
        if names is None:
            names = [str(i) for i in range(num_classes)]

        files = list_images(paths_or_folder)
        arrays: list[np.ndarray] = []
        kept: list[Path] = []
        skipped: list[str] = []
        for path in files:
            try:
                arrays.append(preprocess_image(path, size, data_params.color_mode))
                kept.append(path)
            except ValueError as exc:
                skipped.append(str(exc))
        if skipped:
            report(Notice(f"skipped {len(skipped)} file(s) that are not readable images: "
                          + "; ".join(skipped[:5]) + (" ..." if len(skipped) > 5 else "")))
        if not kept:
            return []
        probs = np.asarray(self.model.predict(np.stack(arrays), batch_size=self.batch_size,
                                              verbose=0), dtype=np.float64)
        out = []
        for path, row in zip(kept, probs, strict=True):
            top = np.argsort(-row, kind="stable")[:3]
            top3 = [(int(i), names[int(i)], float(row[i])) for i in top]
            out.append(Classification(path=path, index=top3[0][0], name=top3[0][1],
                                      confidence=top3[0][2], top3=top3))
        return out


CLASSIFY_COLUMNS = ("file", "index", "class", "confidence", "top2_class", "top2_confidence",
                    "top3_class", "top3_confidence")


def write_classifications_csv(rows: Sequence[Classification],
                              path: str | os.PathLike[str]) -> Path:
    """One CSV row per image: file, predicted index and name, confidence, runners-up."""
    p = _prepare(path)
    with p.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(CLASSIFY_COLUMNS)
        for r in rows:
            extra: list[Any] = []
            for _, name, prob in r.top3[1:3]:
                extra += [name, f"{prob:.6f}"]
            extra += [""] * (4 - len(extra))
            writer.writerow([str(r.path), r.index, r.name, f"{r.confidence:.6f}", *extra])
    return p
