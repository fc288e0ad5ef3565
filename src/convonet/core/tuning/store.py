"""Where a search keeps what it did: its ledger (folds.jsonl), the tracebacks of failed
combinations and its table. The search only calls a store; who creates the run folder and
records how it ended is the caller's business (the task layer's ``tasks.tune``, or
``tune`` for a script), through the helpers below.
"""

from __future__ import annotations

import contextlib
import os
from typing import Any

from convonet.core.files import atomic_write_text
from convonet.core.runs import FOLDS_JSONL, RunFolder, now_iso
from convonet.core.storage import storage_cause
from convonet.core.tuning.errors import FatalTuningError, TooManyFailures, _short
from convonet.core.tuning.estimator import _jsonish
from convonet.core.tuning.results import TuneResult, result_metrics, write_table

#: The folder of a run that holds one full traceback per failed combination.
FAILURES_DIR = "failures"


class SearchStore:
    """A store that keeps nothing: a search without a run folder (a script, a benchmark)."""

    run: RunFolder | None = None

    def records(self) -> list[dict[str, Any]]:
        """What an earlier run of this search recorded (a resume replays it)."""
        return []

    def record(self, rec: dict[str, Any]) -> None:
        """Keep one fold, failure or invalid mark as soon as it is known."""

    def keep_traceback(self, ci: int, text: str) -> str:
        """Keep a failed combination's full traceback; returns where ("" if nowhere)."""
        return ""


class RunStore(SearchStore):
    """The ledger of a run folder: folds.jsonl (fsynced per line, survives kill -9) and
    ``failures/combination-<n>.txt``."""

    def __init__(self, run: RunFolder) -> None:
        self.run = run

    def records(self) -> list[dict[str, Any]]:
        assert self.run is not None
        return self.run.read_jsonl(FOLDS_JSONL)

    def record(self, rec: dict[str, Any]) -> None:
        assert self.run is not None
        self.run.append_jsonl(FOLDS_JSONL, rec)

    def keep_traceback(self, ci: int, text: str) -> str:
        assert self.run is not None
        name = f"{FAILURES_DIR}/combination-{ci}.txt"
        path = self.run.file(name)
        path.parent.mkdir(exist_ok=True)
        atomic_write_text(path, text)
        return name


def store_for(run: RunFolder | None) -> SearchStore:
    return RunStore(run) if run is not None else SearchStore()


# ---- a run's life, for whoever owns the run folder -------------------------------------
def check_same_search(run: RunFolder, signature: dict[str, Any]) -> None:
    """Refuse to resume ``run`` with another search (grid, folds, share, seed, data)."""
    recorded = run.info.get("tuning", {})
    diff = sorted(k for k in signature if _jsonish(recorded.get(k)) != _jsonish(
        signature[k]))
    if diff:
        raise FatalTuningError(f"cannot resume {run.path}: {', '.join(diff)} differ from "
                               f"the recorded search")


def mark_resumed(run: RunFolder) -> None:
    """The run is running again, in this process; its earlier starts stay listed."""
    resumes = list(run.info.get("resumed", [])) + [now_iso()]
    run.update(status="running", ended=None, pid=os.getpid(), resumed=resumes)


def finish_run(run: RunFolder, result: TuneResult, status: str) -> None:
    """The table and how the search ended."""
    write_table(run, result)
    run.finish(str(status), metrics=result_metrics(result))


def record_cut_short(run: RunFolder, partial: TuneResult, exc: BaseException
                     ) -> BaseException | None:
    """Record a search that ``exc`` ended early: the partial table, and the run marked
    failed (an error) or interrupted (Ctrl+C, a full disk). Returns the error to raise
    instead of ``exc`` (a full disk's one plain message), or None to raise ``exc``. Too
    many failures in a row mark it interrupted: the combinations not run yet may run once
    the cause is fixed (``--resume``)."""
    if isinstance(exc, Exception) and storage_cause(exc) is not None:
        # The disk is full or the folder read-only: folds.jsonl keeps the finished
        # folds and a resume rewrites the table, so say that once, plainly.
        from convonet.core.records import storage_failure

        with contextlib.suppress(OSError):
            write_table(run, partial)
        return storage_failure(run, exc, metrics=result_metrics(partial))
    write_table(run, partial)
    fields: dict[str, Any] = {"error": f"{type(exc).__name__}: {_short(exc)}"}
    status = "failed" if isinstance(exc, Exception) else "interrupted"
    if isinstance(exc, TooManyFailures):  # what is left may run once the cause is fixed
        status, fields["interrupted_by"] = "interrupted", "too many failed combinations"
    run.finish(status, metrics=result_metrics(partial), **fields)
    return None
