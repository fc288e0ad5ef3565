"""Evaluating, predicting and classifying with a trained model, each in its own run folder.

Each records the data params, the model file and the dataset's fingerprint in run.json;
a prediction writes its confusion matrix and per-class report as CSV into the run folder
(the only copy), a classification its rows as classifications.csv. A test set's skipped
files go to skipped.csv beside them.
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from convonet.core.events import CancelToken, Reporter, no_report
from convonet.core.records import recorded, start_run
from convonet.core.runs import CLASSIFICATIONS_CSV, CONFUSION_CSV, REPORT_CSV, RunFolder
from convonet.core.storage import writing
from convonet.tasks import Status, executes
from convonet.tasks.common import model_label, results_folder, write_skipped_csv

if TYPE_CHECKING:
    import keras

    from convonet.core.data import Dataset
    from convonet.core.params import DataParams
    from convonet.core.testing import Classification, Evaluation, Prediction

__all__ = ["ClassifyOutcome", "ClassifySpec", "EvaluateOutcome", "EvaluateSpec",
           "PredictOutcome", "PredictSpec", "relabel_prediction"]


@dataclass(frozen=True)
class EvaluateSpec:
    """Loss and accuracy of ``model`` (from ``model_path``) on ``dataset``."""

    model: keras.Model
    dataset: Dataset
    data_params: DataParams | None = None
    model_path: str | os.PathLike[str] | None = None
    results_dir: str | os.PathLike[str] | None = None


@dataclass
class EvaluateOutcome:
    evaluation: Evaluation
    run: RunFolder | None
    status: Status = Status.FINISHED
    metrics: dict[str, Any] | None = None
    skipped_csv: Path | None = None


@dataclass(frozen=True)
class PredictSpec:
    """The confusion matrix and per-class report of ``model`` on ``dataset``, named with
    ``class_names`` (the model's) when the test folders are named differently."""

    model: keras.Model
    dataset: Dataset
    class_names: tuple[str, ...] | None = None
    data_params: DataParams | None = None
    model_path: str | os.PathLike[str] | None = None
    results_dir: str | os.PathLike[str] | None = None


@dataclass
class PredictOutcome:
    prediction: Prediction
    run: RunFolder | None
    files: tuple[Path, Path] | None = None  # confusion.csv, report.csv in the run folder
    status: Status = Status.FINISHED
    metrics: dict[str, Any] | None = None
    skipped_csv: Path | None = None


@dataclass(frozen=True)
class ClassifySpec:
    """The class of each image in ``paths`` (files and folders)."""

    model: keras.Model
    paths: tuple[str | os.PathLike[str], ...]
    data_params: DataParams
    class_names: tuple[str, ...] | None = None
    model_path: str | os.PathLike[str] | None = None
    results_dir: str | os.PathLike[str] | None = None


@dataclass
class ClassifyOutcome:
    rows: list[Classification]
    run: RunFolder | None
    csv: Path | None = None
    skipped: int = 0
    status: Status = Status.FINISHED
    files: int = 0  # image files found


def relabel_prediction(prediction: Prediction, names: Sequence[str] | None) -> Prediction:
    """The prediction named with the model's classes (the training names) when the test
    folders are named differently but match by index."""
    if names is None or len(names) != len(prediction.class_names) \
            or list(names) == prediction.class_names:
        return prediction
    per_class = [replace(row, name=names[row.index]) for row in prediction.per_class]
    return replace(prediction, class_names=list(names), per_class=per_class)


def _test_run(spec: EvaluateSpec | PredictSpec, task: str) -> RunFolder:
    """The run folder of a test-set task: its data params, data and model recorded."""
    return start_run(results_folder(spec.results_dir), task, data_params=spec.data_params,
                     fingerprint=spec.dataset.fingerprint or None,
                     model=model_label(spec.model_path))


@executes(EvaluateSpec)
def run_evaluation(spec: EvaluateSpec, *, report: Reporter = no_report,
                   cancel: CancelToken | None = None) -> EvaluateOutcome:
    """Loss and accuracy on a test set, recorded in run.json."""
    from convonet.core.testing import NetTesting

    run = _test_run(spec, "evaluation")
    with recorded(run):
        skipped_csv = write_skipped_csv(run, spec.dataset.skipped)
        started = time.monotonic()
        evaluation = NetTesting(spec.model).evaluate(spec.dataset)
        metrics = {"accuracy": evaluation.accuracy, "loss": evaluation.loss,
                   "count": evaluation.count,
                   "seconds": round(time.monotonic() - started, 3)}
        run.finish("finished", metrics=metrics)
    return EvaluateOutcome(evaluation, run, metrics=metrics, skipped_csv=skipped_csv)


@executes(PredictSpec)
def run_prediction(spec: PredictSpec, *, report: Reporter = no_report,
                   cancel: CancelToken | None = None) -> PredictOutcome:
    """Confusion matrix and per-class report, written as CSV into the run folder."""
    from convonet.core.testing import NetTesting

    run = _test_run(spec, "prediction")
    with recorded(run):
        skipped_csv = write_skipped_csv(run, spec.dataset.skipped)
        started = time.monotonic()
        prediction = relabel_prediction(NetTesting(spec.model).predict(spec.dataset),
                                        spec.class_names)
        with writing(run.file(CONFUSION_CSV)):
            confusion = prediction.write_confusion_csv(run.file(CONFUSION_CSV))
        with writing(run.file(REPORT_CSV)):
            files = (confusion, prediction.write_report_csv(run.file(REPORT_CSV)))
        metrics = {"accuracy": prediction.accuracy, "count": prediction.count,
                   "macro_f1": prediction.macro.f1, "weighted_f1": prediction.weighted.f1,
                   "seconds": round(time.monotonic() - started, 3)}
        run.finish("finished", metrics=metrics)
    return PredictOutcome(prediction, run, files, metrics=metrics, skipped_csv=skipped_csv)


@executes(ClassifySpec)
def run_classification(spec: ClassifySpec, *, report: Reporter = no_report,
                       cancel: CancelToken | None = None) -> ClassifyOutcome:
    """Classify image files and folders; the rows go to classifications.csv."""
    from convonet.core.testing import NetTesting, list_images, write_classifications_csv

    files = list_images([Path(p) for p in spec.paths])
    run = start_run(results_folder(spec.results_dir), "classification",
                    data_params=spec.data_params, model=model_label(spec.model_path),
                    inputs=[str(p) for p in spec.paths])
    with recorded(run):
        started = time.monotonic()
        names = list(spec.class_names) if spec.class_names is not None else None
        rows = NetTesting(spec.model).classify(files, spec.data_params, class_names=names,
                                               report=report) if files else []
        with writing(run.file(CLASSIFICATIONS_CSV)):
            csv_path = write_classifications_csv(rows, run.file(CLASSIFICATIONS_CSV))
        counts: dict[str, int] = {}
        for r in rows:
            counts[r.name] = counts.get(r.name, 0) + 1
        run.finish("finished", metrics={
            "count": len(rows), "skipped": len(files) - len(rows), "per_class": counts,
            "seconds": round(time.monotonic() - started, 3)})
    return ClassifyOutcome(rows, run, csv_path, skipped=len(files) - len(rows),
                           files=len(files))
