"""Shorthands over ``convonet.tasks.execute`` for tests that train or test a model."""

from __future__ import annotations

import os
from typing import Any

from convonet.core.events import CancelToken, Reporter, no_report
from convonet.tasks import execute
from convonet.tasks.testing import (
    ClassifyOutcome,
    ClassifySpec,
    EvaluateOutcome,
    EvaluateSpec,
    PredictOutcome,
    PredictSpec,
)
from convonet.tasks.train import TrainOutcome, TrainSpec


def train(model: Any, hyper_params: Any, dataset: Any, validation: bool,
          results_dir: str | os.PathLike[str], data_params: Any = None, *,
          report: Reporter = no_report, cancel: CancelToken | None = None,
          callbacks: Any = (), class_names: Any = None, **fields: Any) -> TrainOutcome:
    """A new recorded training, as the app and ``convonet train`` run it."""
    spec = TrainSpec(model=model, hyper_params=hyper_params, dataset=dataset,
                     validation=validation, results_dir=results_dir,
                     data_params=data_params, callbacks=tuple(callbacks),
                     class_names=tuple(class_names) if class_names is not None else None,
                     **fields)
    outcome: TrainOutcome = execute(spec, report, cancel)
    return outcome


def resume(run: Any, *, dataset: Any = None, report: Reporter = no_report,
           cancel: CancelToken | None = None, **fields: Any) -> TrainOutcome:
    """Resume a stopped or interrupted training."""
    outcome: TrainOutcome = execute(TrainSpec(resume=run, dataset=dataset, **fields),
                                    report, cancel)
    return outcome


def evaluate(model: Any, dataset: Any, results_dir: Any, **fields: Any) -> EvaluateOutcome:
    outcome: EvaluateOutcome = execute(EvaluateSpec(model=model, dataset=dataset,
                                                    results_dir=results_dir, **fields))
    return outcome


def predict(model: Any, dataset: Any, results_dir: Any, *, class_names: Any = None,
            **fields: Any) -> PredictOutcome:
    names = tuple(class_names) if class_names is not None else None
    outcome: PredictOutcome = execute(PredictSpec(model=model, dataset=dataset,
                                                  results_dir=results_dir,
                                                  class_names=names, **fields))
    return outcome


def classify(model: Any, paths: Any, data_params: Any, results_dir: Any, *,
             class_names: Any = None, **fields: Any) -> ClassifyOutcome:
    names = tuple(class_names) if class_names is not None else None
    outcome: ClassifyOutcome = execute(ClassifySpec(model=model, paths=tuple(paths),
                                                    data_params=data_params,
                                                    results_dir=results_dir,
                                                    class_names=names, **fields))
    return outcome
