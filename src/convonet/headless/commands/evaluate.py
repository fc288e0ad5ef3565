"""``convonet evaluate``: loss and accuracy of a saved model on the test set."""

from __future__ import annotations

import argparse
import time

from rich.table import Table

from convonet.headless.common import run_path, testing_inputs
from convonet.headless.output import EXIT_OK, Output
from convonet.headless.runner import Runner


def cmd_evaluate(args: argparse.Namespace, output: Output, runner: Runner) -> int:
    """Loss and accuracy of a saved model on the test set."""
    results_dir, data_params, model, _, model_path, test_set = testing_inputs(
        args, output, runner)
    from convonet.core.records import evaluate_run

    started = time.monotonic()
    outcome = runner.call(lambda report, cancel: evaluate_run(
        model, test_set, results_dir, data_params=data_params, model_path=model_path,
        report=report), "evaluate")
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
    output.emit_json({"command": "evaluate", "status": "finished", "run_dir": run_path(run),
                      "model": str(model_path), **metrics, "seconds": seconds})
    return EXIT_OK


