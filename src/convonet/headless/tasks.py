"""Running the task layer's specs from a command: loading a set, and the skipped files.

Each command builds a spec (``convonet.tasks``), runs it with ``run_spec`` in the runner's
worker (Ctrl+C sets its cancel token) and presents the outcome; the run folder, its
records and the resume checks belong to the task, as they do for the app.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from convonet.headless.common import (
    dataset_line,
    load_params,
    load_trained_model,
    results_dir_of,
    start_keras,
)

if TYPE_CHECKING:
    import keras

    from convonet.core.data import Dataset
    from convonet.core.params import DataParams
    from convonet.headless.output import Output
    from convonet.headless.runner import Runner


def run_spec(runner: Runner, spec: Any, title: str, *, stoppable: bool = False) -> Any:
    """``execute(spec)`` in the runner's worker, its events drawn as they come."""
    from convonet.tasks import execute

    return runner.call(lambda report, cancel: execute(spec, report, cancel), title,
                       stoppable=stoppable)


def load_set(runner: Runner, data_params: DataParams, which: str, *, seed: int = 42,
             train_classes: Sequence[str] | None = None, classes_of: str = "training"
             ) -> Dataset:
    """One dataset through the load task."""
    from convonet.tasks.load import LoadSpec

    spec = LoadSpec(data_params, which, seed=seed, classes_of=classes_of,
                    train_classes=tuple(train_classes) if train_classes is not None
                    else None)
    dataset: Dataset = run_spec(runner, spec, "load").dataset
    return dataset


def testing_inputs(args: argparse.Namespace, output: Output, runner: Runner
                   ) -> tuple[Path, DataParams, keras.Model, list[str] | None, Path, Dataset]:
    """The results folder, data params, trained model (its class names and file) and the
    test set matched to the model's classes, for evaluate and predict."""
    folder = results_dir_of(args)
    data_params, _ = load_params(args, output, need_hyper=False)
    start_keras(output)
    model, names, model_path = load_trained_model(args, folder, data_params)
    # The names are the model's (saved beside it), so a mismatch names the model's classes.
    test_set = load_set(runner, data_params, "test", train_classes=names, classes_of="model")
    output.line(dataset_line(test_set, "test set"))
    return folder, data_params, model, names, model_path, test_set


def skipped_note(output: Output, outcome: Any) -> None:
    """Name the run folder's list of the files the dataset left out (stderr)."""
    path = getattr(outcome, "skipped_csv", None)
    if path is not None:
        output.notice(f"the list of skipped files (path, reason) is in {path}", level="note")


def skipped_json(outcome: Any, dataset: Any) -> dict[str, Any]:
    """``skipped`` (path and reason of each file left out) and ``skipped_csv`` for --json."""
    from convonet.tasks.common import skipped_rows

    csv_path = getattr(outcome, "skipped_csv", None)
    return {"skipped": skipped_rows(getattr(dataset, "skipped", None) or []),
            "skipped_csv": str(csv_path) if csv_path is not None else None}


__all__ = ["load_set", "run_spec", "skipped_json", "skipped_note",
           "testing_inputs"]
