"""``convonet tune``: grid search or successive halving, recorded as a tuning run."""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from convonet.headless.common import dataset_line, load_params, prep, results_dir_of, start_keras
from convonet.headless.output import EXIT_OK, EXIT_STOPPED, Output
from convonet.headless.runner import Runner
from convonet.rendering import params_text, tuning_table

if TYPE_CHECKING:
    from convonet.core.events import CancelToken, Reporter
    from convonet.core.runs import RunFolder


def cmd_tune(args: argparse.Namespace, output: Output, runner: Runner) -> int:
    """Grid search or successive halving over the hyper params' comma-separated values."""
    from convonet.core.runs import DATA_PARAMS_JSON, HYPER_PARAMS_JSON, RunFolder

    results_dir = results_dir_of(args)
    resume: RunFolder | None = None
    if args.resume is not None:
        resume = RunFolder.open(args.resume)
        if args.data_params is None and resume.file(DATA_PARAMS_JSON).is_file():
            args.data_params = resume.file(DATA_PARAMS_JSON)
        if args.hyper_params is None:
            args.hyper_params = resume.file(HYPER_PARAMS_JSON)
    data_params, hyper_params = load_params(args, output)
    if args.search is not None:
        hyper_params = hyper_params.edit(search=args.search)
    start_keras(output)
    from convonet.core.tuning import tune

    train_set = runner.call(prep(data_params, "train", seed=int(hyper_params.seed)), "load")
    output.line(dataset_line(train_set, "training set"))
    started = time.monotonic()

    def search(report: Reporter, cancel: CancelToken) -> Any:
        return tune(train_set.x, train_set.y, hyper_params, report=report, cancel=cancel,
                    results_dir=None if resume else results_dir, resume_from=resume,
                    data_params=data_params, class_names=train_set.class_names)

    result = runner.call(search, "tune", stoppable=True)
    seconds = time.monotonic() - started
    stopped = result.stopped or runner.interrupted
    ending = "interrupted" if runner.signalled() else "stopped"
    if stopped and result.run is not None and result.run.info.get("status") != ending:
        result.run.finish(ending)
    output.print(tuning_table(result))
    best_file: Path | None = None
    if result.best_params is not None:
        output.line(f"best: {params_text(result.best_params, result.searched)}  mean accuracy "
                    f"{result.best_score:.4f}", style="bold")
        if args.save_best is not None:
            best_file = hyper_params.apply(result.best_params).save(args.save_best)
            output.line(f"best params written to {best_file}")
    output.line(f"{ending if stopped else 'finished'}: {result.fits_done} of "
                f"{result.total_fits} fits in {seconds:.1f} s, "
                f"{len(result.failures)} combination(s) failed"
                + (f", {len(result.invalid)} invalid (not run)" if result.invalid else ""))
    run_dir = str(result.run.path) if result.run is not None else None
    if run_dir:
        output.line(f"run folder: {run_dir}")
        if stopped:
            output.line(f"resume with: convonet tune --resume {run_dir}")
    output.emit_json({"command": "tune", "status": ending if stopped else "finished",
                      "run_dir": run_dir, "strategy": result.strategy,
                      "searched": result.searched, "best_params": result.best_params,
                      "best_score": result.best_score, "fits_done": result.fits_done,
                      "total_fits": result.total_fits, "failures": result.failures,
                      "invalid": result.invalid,
                      "best_params_file": str(best_file) if best_file else None,
                      "rows": [{k: r[k] for k in ("params", "mean_test_score",
                                                  "std_test_score", "mean_test_loss",
                                                  "rank_test_score", "status", "reason",
                                                  "iter", "n_resources")}
                               for r in result.ranked()],
                      "seconds": seconds})
    if stopped and runner.signal is not None:
        runner.note_signal(result.run)
        return 128 + runner.signal
    return EXIT_STOPPED if stopped else EXIT_OK


