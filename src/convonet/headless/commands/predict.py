"""``convonet predict``: the confusion matrix and per-class report on the test set."""

from __future__ import annotations

import argparse
import time

from convonet.headless.common import run_path, testing_inputs
from convonet.headless.output import EXIT_OK, Output
from convonet.headless.runner import Runner
from convonet.rendering import confusion_table, report_table


def cmd_predict(args: argparse.Namespace, output: Output, runner: Runner) -> int:
    """The confusion matrix and per-class precision, recall and F1 on the test set."""
    results_dir, data_params, model, names, model_path, test_set = testing_inputs(
        args, output, runner)
    from convonet.core.records import predict_run

    started = time.monotonic()
    # The model's own class names, matched by index.
    outcome = runner.call(lambda report, cancel: predict_run(
        model, test_set, results_dir, class_names=names, data_params=data_params,
        model_path=model_path, report=report), "predict")
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
    output.emit_json({
        "command": "predict", "status": "finished", "run_dir": run_path(run),
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
        "seconds": seconds})
    return EXIT_OK


