"""``convonet train``: train a model, save it and its run record.

A spec builder and a presenter over the task layer: ``TrainSpec`` trains (or resumes)
inside the run folder and copies the finished model where it belongs; this module reads
the command line into it and prints the outcome. The result is the restored epoch's
numbers when early stopping restored an earlier epoch (the last epoch's are history).
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING, Any

from convonet.headless.common import (
    dataset_line,
    load_params,
    refuse_overwrite,
    results_dir_of,
    start_keras,
)
from convonet.headless.output import EXIT_FAILED, EXIT_OK, EXIT_STOPPED, Output
from convonet.headless.runner import Runner
from convonet.headless.tasks import (
    load_set,
    run_spec,
    skipped_json,
    skipped_note,
)
from convonet.rendering import history_table, summary_table

if TYPE_CHECKING:
    from convonet.core.runs import RunFolder
    from convonet.tasks.train import TrainOutcome


def cmd_train(args: argparse.Namespace, output: Output, runner: Runner) -> int:
    """Load the training set, build the model, train, save the model and the history.

    With --resume RUN_DIR: continue that stopped or interrupted training at the epoch
    after its checkpoint, on its own params and training set.
    """
    folder = results_dir_of(args)
    resume = resumable_training(args) if getattr(args, "resume", None) is not None else None
    data_params, hyper_params = load_params(args, output)
    from convonet.core.model_files import default_model_path
    from convonet.tasks.resume import resume_save_to

    # A resumed run saves where its first start would have (recorded in its run.json).
    model_path: Path = args.model or (resume_save_to(resume) if resume is not None
                                      else default_model_path(folder, data_params))
    refuse_overwrite(model_path, args)  # before any loading or training
    start_keras(output)
    from convonet.tasks import execute
    from convonet.tasks.build import BuildSpec
    from convonet.tasks.train import TrainSpec

    devices = getattr(args, "devices", None)
    check_devices(devices, hyper_params)  # before the training set loads
    seed = int(hyper_params.first()["seed"])
    if resume is not None and resume.info.get("seed") is not None:
        seed = int(resume.info["seed"])
    train_set = load_set(runner, data_params, "train", seed=seed)
    output.line(dataset_line(train_set, "training set"))
    if resume is not None:
        spec = TrainSpec(resume=resume, dataset=train_set, save_to=model_path, save=True,
                         interrupted=runner.signalled, devices=devices)
    else:
        built = execute(BuildSpec(hyper_params, train_set.image_shape,
                                  tuple(train_set.class_names)))
        output.print(summary_table(built.summary))
        spec = TrainSpec(model=built.model, hyper_params=hyper_params, dataset=train_set,
                         validation=bool(args.validation), results_dir=folder,
                         data_params=data_params, save_to=model_path, save=True,
                         interrupted=runner.signalled,
                         tensorboard=True if getattr(args, "tensorboard", False) else None,
                         devices=devices)
    outcome = run_spec(runner, spec, "train", stoppable=True)
    return present_training(outcome, output, runner)


def check_devices(devices: str | None, hyper_params: Any) -> None:
    """Refuse --devices (or $CONVONET_DEVICES) this machine or the batch size cannot
    honour, and say which devices there are."""
    from convonet.core.distribution import data_parallelism

    data_parallelism(devices, int(hyper_params.first()["batch_size"]))


def resumable_training(args: argparse.Namespace) -> RunFolder:
    """The run --resume names, checked as the runs screen checks it; its params and
    validation replace the command line's."""
    from convonet.core.runs import DATA_PARAMS_JSON, HYPER_PARAMS_JSON
    from convonet.tasks.resume import check_resumable

    resume = check_resumable(args.resume, "training")
    args.data_params = resume.file(DATA_PARAMS_JSON)
    args.hyper_params = resume.file(HYPER_PARAMS_JSON)
    args.epochs = None
    args.validation = bool(resume.info.get("validation"))
    return resume


def present_training(outcome: TrainOutcome, output: Output, runner: Runner) -> int:
    """The history, the result, where the model and the run went; the exit status."""
    history, run, metrics = outcome.history, outcome.run, outcome.metrics
    seconds = float(metrics["seconds"])
    stopped = history.stopped or runner.interrupted
    status = str(outcome.status)
    if stopped and status == "finished":  # Ctrl+C after the last epoch's end
        status = "stopped"
    saved = [p for p in (outcome.model_file, outcome.saved) if p is not None]
    output.print(history_table(history))
    output.line(result_line(outcome, status, seconds), style="bold")
    if outcome.diverged_notice is not None:  # also a notice while it trained
        output.line(outcome.diverged_notice, style="bold red")
    if saved:
        output.line(f"model: {saved[-1]}")
    run_dir = str(run.path) if run is not None else None
    if run_dir:
        output.line(f"run folder: {run_dir}")
        if stopped:
            output.line(f"resume with: convonet train --resume {run_dir}")
    skipped_note(output, outcome)
    dataset: Any = outcome.dataset
    output.emit_json({"command": "train", "status": status, "run_dir": run_dir,
                      "diverged": ({"epoch": history.diverged_epoch,
                                    "reason": history.diverged_reason}
                                   if history.diverged else None),
                      "model": str(saved[-1]) if saved else None,
                      "validation": history.validation,
                      "class_names": list(dataset.class_names) if dataset else None,
                      "metrics": metrics, "history": history.as_rows(), "seconds": seconds,
                      "devices": run.info.get("devices") if run is not None else None,
                      **skipped_json(outcome, dataset)})
    if status == "interrupted" and runner.signal is not None:
        runner.note_signal(run)
        return 128 + runner.signal
    if stopped:
        return EXIT_STOPPED
    return EXIT_FAILED if history.diverged else EXIT_OK




def result_line(outcome: TrainOutcome, status: str, seconds: float) -> str:
    """``finished after 5 of 20 epoch(s) in 9.1 s: accuracy 0.91, val_accuracy 0.89``."""
    history = outcome.history
    complete = [r for r in history.rows if not r.partial]
    words = f"{status} after {len(complete)} of {history.epochs} epoch(s) in {seconds:.1f} s"
    result = outcome.result
    if result is not None:
        words += f": accuracy {result.accuracy:.4f}"
        if result.val_accuracy is not None:
            words += f", val_accuracy {result.val_accuracy:.4f}"
    if history.restored_epoch is not None:
        why = "the best before it diverged" if history.diverged else "early stopping"
        words += f" (weights of epoch {history.restored_epoch}, {why})"
    return words
