"""``convonet train``: train a model, save it and its run record."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING, Any

from convonet.headless.common import (
    UsageError,
    dataset_line,
    load_params,
    prep,
    refuse_overwrite,
    results_dir_of,
    start_keras,
)
from convonet.headless.output import EXIT_OK, EXIT_STOPPED, Output
from convonet.headless.runner import Runner
from convonet.rendering import history_table, summary_table

if TYPE_CHECKING:
    from convonet.core.events import CancelToken, Reporter
    from convonet.core.runs import RunFolder


def cmd_train(args: argparse.Namespace, output: Output, runner: Runner) -> int:
    """Load the training set, build the model, train, save the model and the history.

    With --resume RUN_DIR: continue that stopped or interrupted training at the epoch
    after its checkpoint, on its own params and training set.
    """
    results_dir = results_dir_of(args)
    resume: RunFolder | None = None
    if getattr(args, "resume", None) is not None:
        from convonet.core.records import resume_problem
        from convonet.core.runs import DATA_PARAMS_JSON, HYPER_PARAMS_JSON, RunFolder

        try:
            resume = RunFolder.open(args.resume)
        except FileNotFoundError as exc:
            raise UsageError(str(exc)) from None
        problem = resume_problem(resume)
        if problem is not None:
            raise UsageError(f"cannot resume: {problem}")
        args.data_params = resume.file(DATA_PARAMS_JSON)
        args.hyper_params = resume.file(HYPER_PARAMS_JSON)
        args.epochs = None
        args.validation = bool(resume.info.get("validation"))
    data_params, hyper_params = load_params(args, output)
    from convonet.core.model_files import default_model_path
    from convonet.core.records import resume_save_to

    # A resumed run saves where its first start would have (recorded in its run.json).
    model_path: Path = args.model or (resume_save_to(resume) if resume is not None
                                      else default_model_path(results_dir, data_params))
    refuse_overwrite(model_path, args)  # before any loading or training
    start_keras(output)
    from convonet.core import records
    from convonet.core.model import NetModel, save_model
    from convonet.core.storage import storage_error

    config = hyper_params.first()
    seed = int(config["seed"])
    if resume is not None and resume.info.get("seed") is not None:
        seed = int(resume.info["seed"])
    train_set = runner.call(prep(data_params, "train", seed=seed), "load")
    output.line(dataset_line(train_set, "training set"))
    validation = bool(args.validation)
    signalled = runner.signalled

    if resume is not None:
        records.check_fingerprint(resume, train_set)
        folder = resume

        def train(report: Reporter, cancel: CancelToken) -> Any:
            return records.resume_training(folder, dataset=train_set, report=report,
                                           cancel=cancel, interrupted=signalled)
    else:
        net = NetModel(hyper_params)
        model = net.build(train_set.image_shape, train_set.num_classes,
                          train_set.class_names)
        output.print(summary_table(net.summary()))

        def train(report: Reporter, cancel: CancelToken) -> Any:
            return records.train_run(model, hyper_params, train_set, validation, results_dir,
                                     data_params, report=report, cancel=cancel,
                                     interrupted=signalled, save_to=model_path,
                                     tensorboard=True if getattr(args, "tensorboard", False)
                                     else None)

    outcome = runner.call(train, "train", stoppable=True)
    history, run, metrics = outcome.history, outcome.run, outcome.metrics
    seconds = float(metrics["seconds"])
    stopped = history.stopped or runner.interrupted
    status = outcome.status
    if stopped and status == "finished":  # Ctrl+C after the last epoch's end
        status = "stopped"
    saved = [outcome.model_file] if outcome.model_file is not None else []
    if not stopped:  # a stopped model stays in the run folder, never over a good one
        try:
            saved.append(save_model(outcome.model, model_path,
                                    class_names=train_set.class_names))
        except Exception as exc:  # a full disk: the run's own copy is whole
            error = storage_error(exc, model_path, outcome=f"the trained model is kept "
                                  f"in {outcome.model_file}", then="copy it from there",
                                  results_dir=results_dir)
            if error is None:
                raise
            raise error from exc
        if run is not None:
            run.update(model=str(saved[-1]))
    complete = [r for r in history.rows if not r.partial]
    last = complete[-1] if complete else None

    output.print(history_table(history))
    words = f"{status} after {len(complete)} of {history.epochs} epoch(s) in {seconds:.1f} s"
    if last is not None:
        words += f": accuracy {last.accuracy:.4f}"
        if last.val_accuracy is not None:
            words += f", val_accuracy {last.val_accuracy:.4f}"
    if history.restored_epoch is not None:
        words += f" (weights of epoch {history.restored_epoch}, early stopping)"
    output.line(words, style="bold")
    if saved:
        output.line(f"model: {saved[-1]}")
    run_dir = str(run.path) if run is not None else None
    if run_dir:
        output.line(f"run folder: {run_dir}")
        if stopped:
            output.line(f"resume with: convonet train --resume {run_dir}")
    output.emit_json({"command": "train", "status": status, "run_dir": run_dir,
                      "model": str(saved[-1]) if saved else None, "validation": validation,
                      "class_names": train_set.class_names, "metrics": metrics,
                      "history": history.as_rows(), "seconds": seconds})
    if status == "interrupted" and runner.signal is not None:
        runner.note_signal(run)
        return 128 + runner.signal
    return EXIT_STOPPED if stopped else EXIT_OK


