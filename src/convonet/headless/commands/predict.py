"""``convonet predict``: the confusion matrix and per-class report on the test set (a
``PredictSpec`` for the task layer, which writes both CSVs into the run folder)."""

from __future__ import annotations

import argparse
import time

from convonet.headless.common import run_path
from convonet.headless.output import EXIT_OK, Output
from convonet.headless.runner import Runner
from convonet.headless.tasks import run_spec, skipped_json, skipped_note, testing_inputs
from convonet.rendering import confusion_table, report_table


def cmd_predict(args: argparse.Namespace, output: Output, runner: Runner) -> int:
    """The confusion matrix and per-class precision, recall and F1 on the test set."""
    results_dir, data_params, model, names, model_path, test_set = testing_inputs(
        args, output, runner)
    from convonet.tasks.testing import PredictSpec

    started = time.monotonic()
    # The model's own class names, matched by index.
    spec = PredictSpec(model=model, dataset=test_set,
                       class_names=tuple(names) if names is not None else None,
                       data_params=data_params, model_path=model_path,
                       results_dir=results_dir)
    outcome = run_spec(runner, spec, "predict")
    seconds = time.monotonic() - started
    prediction, run = outcome.prediction, outcome.run
    metrics = {"accuracy": prediction.accuracy, "count": prediction.count,
               "macro_f1": prediction.macro.f1, "weighted_f1": prediction.weighted.f1,
               "seconds": round(seconds, 3)}
    names = prediction.class_names
    output.print(confusion_table(prediction.confusion, names, width=output.out.width))
    output.print(report_table(prediction))
    output.line(f"accuracy {prediction.accuracy:.4f} on {prediction.count} test images "
                f"in {seconds:.1f} s", style="bold")
    output.line(f"model: {model_path}   run folder: {run_path(run)}")
    skipped_note(output, outcome)
    output.emit_json({
        "command": "predict", "status": str(outcome.status), "run_dir": run_path(run),
        "model": str(model_path), **metrics, "class_names": prediction.class_names,
        "confusion": prediction.confusion,
        # The same counts named: {true class: {predicted class: count}}.
        "confusion_by_name": {true: {pred: int(count) for pred, count in zip(names, row,
                                                                             strict=True)}
                              for true, row in zip(names, prediction.confusion, strict=True)},
        "report": [{"index": r.index if r.index >= 0 else None, "class": r.name,
                    "precision": r.precision, "recall": r.recall, "f1": r.f1,
                    "support": r.support} for r in prediction.report_rows()],
        "files": {"confusion": str(outcome.files[0]) if outcome.files else None,
                  "report": str(outcome.files[1]) if outcome.files else None},
        "seconds": seconds, **skipped_json(outcome, test_set)})
    return EXIT_OK


