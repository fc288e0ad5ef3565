"""Headless commands: ``convonet train | tune | evaluate | predict | classify | demo``.

The same core tasks as the app, for scripts, batch jobs and SSH sessions without a screen
to keep. Each command loads params, data and model, runs one core task, keeps the same run
record as the app (``<results>/runs/<stamp>-<task>/`` with run.json and the result files)
and prints rich progress bars (stderr) and tables (stdout), or with ``--json`` one JSON
object on stdout and nothing else there.

Why a worker thread: Ctrl+C raises KeyboardInterrupt in the main thread only. The core runs
in a worker and the main thread just draws its events, so an interrupt never lands inside
Keras: it sets the cancel token, training stops at its next batch keeping the finished
epochs, tuning keeps its finished folds, and the run is recorded as stopped (exit 130).
A second Ctrl+C leaves at once. SIGTERM and SIGHUP (a shutdown, a dropped SSH connection)
do the same, but the run is recorded as interrupted and the exit status is 128 + the
signal's number; ``convonet train --resume RUN_DIR`` (or ``tune --resume``) continues it.
When the terminal itself went away (SIGHUP, then EIO or EPIPE on every write), the output
is dropped from then on (see ``convonet.hangup``) and the closing lines go to the log.

Exit statuses: 0 done, 1 an internal error in convonet (its traceback in the log file),
2 a problem the user can fix (a ``ConvonetError``: params, data, model; a file error; one
line on stderr) or the status its class names, 130 stopped.
This module imports rich but never textual.
"""

from __future__ import annotations

from convonet.core.storage import DEFAULT_RESULTS_DIR
from convonet.headless.commands import COMMANDS
from convonet.headless.common import (
    CLASSIFICATIONS_CSV,
    CONFUSION_CSV,
    HISTORY_CSV,
    REPORT_CSV,
    RUN_MODEL,
    SHOWN_CLASSIFICATIONS,
    UsageError,
    dataset_line,
    load_params,
    load_trained_model,
    prep,
    refuse_overwrite,
    results_dir_of,
    run_path,
    start_keras,
)
from convonet.headless.output import (
    EXIT_FAILED,
    EXIT_OK,
    EXIT_STOPPED,
    EXIT_USAGE,
    PROG,
    Display,
    Output,
    epoch_line,
    one_line,
)
from convonet.headless.parser import add_commands, add_executor_options
from convonet.headless.runner import (
    Runner,
    Stopped,
    run_command,
    signals_as_interrupt,
    worker_left_running,
)

__all__ = [
    "CLASSIFICATIONS_CSV", "COMMANDS", "CONFUSION_CSV", "DEFAULT_RESULTS_DIR", "EXIT_FAILED",
    "EXIT_OK", "EXIT_STOPPED", "EXIT_USAGE", "HISTORY_CSV", "PROG", "REPORT_CSV", "RUN_MODEL",
    "SHOWN_CLASSIFICATIONS", "Display", "Output", "Runner", "Stopped", "UsageError",
    "add_commands", "add_executor_options", "dataset_line", "epoch_line", "load_params",
    "load_trained_model", "one_line", "prep", "refuse_overwrite", "results_dir_of",
    "run_command", "run_path", "signals_as_interrupt", "start_keras", "worker_left_running",
]
