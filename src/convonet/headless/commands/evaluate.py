"""``convonet evaluate``: loss and accuracy of a saved model on the test set (an
``EvaluateSpec`` for the task layer, and its outcome printed)."""

from __future__ import annotations

import argparse
import time

from rich.table import Table

from convonet.headless.common import run_path
from convonet.headless.output import EXIT_OK, Output
from convonet.headless.runner import Runner
from convonet.headless.tasks import run_spec, skipped_json, skipped_note, testing_inputs


def cmd_evaluate(args: argparse.Namespace, output: Output, runner: Runner) -> int:
    """Loss and accuracy of a saved model on the test set."""
    results_dir, data_params, model, _, model_path, test_set = testing_inputs(
        args, output, runner)
    from convonet.tasks.testing import EvaluateSpec

    started = time.monotonic()
    outcome = run_spec(runner, EvaluateSpec(model=model, dataset=test_set,
                                            data_params=data_params, model_path=model_path,
                                            results_dir=results_dir), "evaluate")
    seconds = time.monotonic() - started
    evaluation, run = outcome.evaluation, outcome.run
    metrics = {"accuracy": evaluation.accuracy, "loss": evaluation.loss,
               "count": evaluation.count, "seconds": round(seconds, 3)}
    table = Table(title="Evaluation", title_justify="left")
    table.add_column("test images", justify="right")
    table.add_column("accuracy", justify="right")
    table.add_column("loss", justify="right")
    table.add_row(str(evaluation.count), f"{evaluation.accuracy:.4f}", f"{evaluation.loss:.4f}")
    output.print(table)
    output.line(f"model: {model_path}   run folder: {run_path(run)}   {seconds:.1f} s")
    skipped_note(output, outcome)
    output.emit_json({"command": "evaluate", "status": str(outcome.status),
                      "run_dir": run_path(run), "model": str(model_path), **metrics,
                      "seconds": seconds, **skipped_json(outcome, test_set)})
    return EXIT_OK


