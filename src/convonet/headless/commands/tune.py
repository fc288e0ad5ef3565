"""``convonet tune``: grid search or successive halving, recorded as a tuning run.

A spec builder and a presenter over the task layer: ``TuneSpec`` runs (or resumes) the
search inside its run folder and records how it ended; this module reads the command line
into it and prints the outcome. ``--resume`` is checked as ``train --resume`` is, before
anything is loaded.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from convonet.headless.common import dataset_line, load_params, results_dir_of, start_keras
from convonet.headless.output import EXIT_OK, EXIT_STOPPED, Output
from convonet.headless.runner import Runner
from convonet.headless.tasks import load_set, run_spec, skipped_json, skipped_note
from convonet.rendering import params_text, tuning_table

if TYPE_CHECKING:
    from convonet.core.params import HyperParams
    from convonet.core.runs import RunFolder
    from convonet.tasks.tune import TuneOutcome


def cmd_tune(args: argparse.Namespace, output: Output, runner: Runner) -> int:
    """Grid search or successive halving over the hyper params' comma-separated values.

    With --resume RUN_DIR: continue that stopped or interrupted search, running only the
    folds it has not finished, on its own params and training set.
    """
    folder = results_dir_of(args)
    ray, gpus_per_fold = executor_of(args)
    resume = resumable_search(args) if args.resume is not None else None
    data_params, hyper_params = load_params(args, output)
    start_keras(output)
    from convonet.tasks.tune import TuneSpec

    train_set = load_set(runner, data_params, "train", seed=int(hyper_params.seed))
    output.line(dataset_line(train_set, "training set"))
    spec = TuneSpec(hyper_params=hyper_params, data_params=data_params, train_set=train_set,
                    search=args.search, resume=resume, results_dir=folder,
                    interrupted=runner.signalled, ray=ray, gpus_per_fold=gpus_per_fold)
    started = time.monotonic()
    outcome = run_spec(runner, spec, "tune", stoppable=True)
    seconds = time.monotonic() - started
    best_base = hyper_params.edit(search=args.search) if args.search else hyper_params
    return present_tuning(args, outcome, best_base, seconds, output, runner)


def executor_of(args: argparse.Namespace) -> tuple[str | None, float]:
    """``--ray`` and ``--gpus-per-fold`` as ``TuneSpec`` takes them, checked before anything
    is loaded: Ray installed, a GPU share only for folds on Ray."""
    from convonet.core.errors import UsageError
    from convonet.executors import ray_missing

    ray: str | None = getattr(args, "ray", None)
    share: float | None = getattr(args, "gpus_per_fold", None)
    if ray is None:
        if share is not None:
            raise UsageError("--gpus-per-fold applies to folds on Ray workers: add --ray "
                             "(or --ray HOST:PORT), or leave --gpus-per-fold out")
        return None, 1.0
    missing = ray_missing()
    if missing is not None:
        raise UsageError(f"--ray: {missing}, or leave --ray out to fit the folds in this "
                         "process")
    return ray, 1.0 if share is None else share


def resumable_search(args: argparse.Namespace) -> RunFolder:
    """The run --resume names, checked as ``train --resume`` checks it; its params and
    training set are used unless the command line names others (then they must match)."""
    from convonet.core.runs import DATA_PARAMS_JSON, HYPER_PARAMS_JSON
    from convonet.tasks.resume import check_resumable

    resume = check_resumable(args.resume, "tuning")
    if args.data_params is None and resume.file(DATA_PARAMS_JSON).is_file():
        args.data_params = resume.file(DATA_PARAMS_JSON)
    if args.hyper_params is None:
        args.hyper_params = resume.file(HYPER_PARAMS_JSON)
    return resume


def present_tuning(args: argparse.Namespace, outcome: TuneOutcome, hyper_params: HyperParams,
                   seconds: float, output: Output, runner: Runner) -> int:
    """The table, the best combination (``--save-best``: ``hyper_params`` with it applied),
    how the search ended and where its run is; the exit status."""
    result = outcome.result
    status = str(outcome.status)
    if runner.interrupted and status == "finished":  # Ctrl+C after the last fold
        status = "interrupted" if runner.signalled() else "stopped"
    stopped = status != "finished"
    output.print(tuning_table(result))
    best_file: Path | None = None
    if result.best_params is not None:
        output.line(f"best: {params_text(result.best_params, result.searched)}  mean accuracy "
                    f"{result.best_score:.4f}", style="bold")
        if args.save_best is not None:
            best_file = hyper_params.apply(result.best_params).save(args.save_best)
            output.line(f"best params written to {best_file}")
    output.line(f"{status}: {result.fits_done} of {result.total_fits} fits in "
                f"{seconds:.1f} s, {len(result.failures) - len(result.diverged)} "
                "combination(s) failed"
                + (f", {len(result.diverged)} diverged" if result.diverged else "")
                + (f", {len(result.invalid)} invalid (not run)" if result.invalid else ""))
    run_dir = str(result.run.path) if result.run is not None else None
    if run_dir:
        output.line(f"run folder: {run_dir}")
        if stopped:
            output.line(f"resume with: convonet tune --resume {run_dir}")
    skipped_note(output, outcome)
    output.emit_json({"command": "tune", "status": status, "run_dir": run_dir,
                      "strategy": result.strategy, "searched": result.searched,
                      "best_params": result.best_params, "best_score": result.best_score,
                      "fits_done": result.fits_done, "total_fits": result.total_fits,
                      "failures": result.failures, "invalid": result.invalid,
                      "best_params_file": str(best_file) if best_file else None,
                      "rows": json_rows(result), "seconds": seconds,
                      **skipped_json(outcome, outcome.train_set)})
    if stopped and runner.signal is not None:
        runner.note_signal(result.run)
        return 128 + runner.signal
    return EXIT_STOPPED if stopped else EXIT_OK


def json_rows(result: Any) -> list[dict[str, Any]]:
    """The table best first, as ``--json`` lists it."""
    return [{k: r[k] for k in ("params", "mean_test_score", "std_test_score",
                               "mean_test_loss", "rank_test_score", "status", "reason",
                               "iter", "n_resources")}
            for r in result.ranked()]
