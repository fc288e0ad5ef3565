"""Past runs read back from their folders: list, summarise, load, compare, delete.

The writing side is ``convonet.core.runs`` (``RunFolder``); this module only reads what the
run folders hold, so the runs screen and scripts can look at finished (or broken) work
without Keras. Every reader tolerates what a killed process leaves behind: a missing file
is "nothing recorded", a torn last CSV line is skipped, an unreadable run.json still lists
the folder (status ``unreadable``) so it can be looked at or deleted.

Summaries, listing and deleting are here; reading a run's tables is ``run_tables`` and
comparing two runs' settings ``run_compare``, both re-exported here.
"""

from __future__ import annotations

import math
import os
import shutil
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from convonet.core.run_compare import ParamDiff, diff_params, diff_runs, load_params, value_text
from convonet.core.run_tables import (
    CLASSIFICATIONS_CSV,
    CONFUSION_CSV,
    HISTORY_CSV,
    REPORT_CSV,
    PredictionRecord,
    RunHistoryError,
    TuningTable,
    _num,
    load_classifications,
    load_history,
    load_prediction,
    load_tuning,
)
from convonet.core.runs import FOLDS_JSONL, RUN_JSON, RUNS, RunFolder

#: A run.json that cannot be read still lists its folder, with this status.
UNREADABLE = "unreadable"
#: The short names the CLI uses for each task (``convonet train`` ...), for narrow tables.
TASK_LABELS = {"training": "train", "tuning": "tune", "evaluation": "evaluate",
               "prediction": "predict", "classification": "classify"}


# ---- summaries --------------------------------------------------------------------------
@dataclass(frozen=True)
class RunSummary:
    """One line of the runs list: what ran, how it ended, its headline numbers."""

    path: Path
    task: str
    status: str
    started: str | None  # ISO text as recorded
    ended: str | None
    seconds: float | None  # duration; None when unknown (e.g. interrupted)
    metrics: Mapping[str, Any] = field(default_factory=dict)
    error: str | None = None
    info: Mapping[str, Any] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def task_label(self) -> str:
        return TASK_LABELS.get(self.task, self.task or "?")

    @property
    def started_at(self) -> datetime | None:
        return parse_time(self.started)

    @property
    def started_text(self) -> str:
        """``YYYY-mm-dd HH:MM`` in the time zone it was recorded in (what the user saw)."""
        when = self.started_at
        return when.strftime("%Y-%m-%d %H:%M") if when else "?"

    @property
    def duration_text(self) -> str:
        return format_duration(self.seconds)

    @property
    def result_text(self) -> str:
        return result_text(self.task, self.metrics, self.info.get("epochs"))

    @property
    def resumable(self) -> bool:
        """Whether it can be resumed: the same verdict as ``convonet train --resume``."""
        return self.resume_problem is None

    @property
    def resume_problem(self) -> str | None:
        """Why it cannot be resumed, or None (``core.records.resume_verdict``)."""
        from convonet.core.records import resume_verdict

        return resume_verdict(self.path, self.task, self.status, self.info)

    @property
    def has_history(self) -> bool:
        return (self.path / HISTORY_CSV).is_file()


def parse_time(text: Any) -> datetime | None:
    if not isinstance(text, str) or not text:
        return None
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        return None


def format_duration(seconds: float | None) -> str:
    """``42s``, ``3m05s``, ``2h07m``: short enough for a narrow column."""
    if seconds is None or not math.isfinite(seconds) or seconds < 0:
        return "–"
    s = int(round(seconds))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    return f"{s // 3600}h{(s % 3600) // 60:02d}m"


def key_metrics(task: str, metrics: Mapping[str, Any], epochs: Any = None
                ) -> list[tuple[str, str]]:
    """The numbers that say how a run went, by task, as (label, text) pairs.

    ``epochs`` (asked for) adds ``3/10 ep`` to a training run that did not run them all.
    """
    out: list[tuple[str, str]] = []

    def add(label: str, key: str, digits: int = 3) -> None:
        value = _num(metrics.get(key))
        if value is not None:
            out.append((label, f"{value:.{digits}f}"))

    if task == "training":
        add("acc", "accuracy")
        add("val", "val_accuracy")
        done, asked = _num(metrics.get("epochs_done")), _num(epochs)
        if done is not None and asked is not None and done < asked:
            out.append(("ep", f"{int(done)}/{int(asked)}"))
    elif task == "tuning":
        add("best", "best_score")
        done, total = metrics.get("fits_done"), metrics.get("total_fits")
        if done is not None and total is not None:
            out.append(("fits", f"{done}/{total}"))
    elif task == "evaluation":
        add("acc", "accuracy")
        add("loss", "loss")
    elif task == "prediction":
        add("acc", "accuracy")
        add("F1", "macro_f1", 2)
    elif task == "classification":
        if metrics.get("count") is not None:
            out.append(("images", str(metrics["count"])))
    else:
        add("acc", "accuracy")
    return out


def result_text(task: str, metrics: Mapping[str, Any], epochs: Any = None) -> str:
    """``acc 0.912 val 0.880``, ``acc 0.830 3/5 ep``; empty when nothing was recorded."""
    return " ".join(f"{value} {label}" if label in ("images", "ep") else f"{label} {value}"
                    for label, value in key_metrics(task, metrics, epochs))


def summarize(path: str | os.PathLike[str]) -> RunSummary:
    """One run folder as a ``RunSummary``; an unreadable run.json gives status unreadable."""
    run = RunFolder(path)
    try:
        info = run.info
        status = run.status  # "interrupted" when a running record's process is gone
    except (OSError, ValueError) as exc:
        return RunSummary(path=run.path, task=_task_from_name(run.path.name),
                          status=UNREADABLE, started=None, ended=None, seconds=None,
                          error=f"{RUN_JSON}: {exc}")
    if not isinstance(info, dict):
        return RunSummary(path=run.path, task=_task_from_name(run.path.name),
                          status=UNREADABLE, started=None, ended=None, seconds=None,
                          error=f"{RUN_JSON} holds no JSON object")
    metrics = dict(info["metrics"]) if isinstance(info.get("metrics"), dict) else {}
    if info.get("task") == "training" and metrics.get("accuracy") is None:
        metrics = {**_history_metrics(run.path), **metrics}
    started, ended = info.get("started"), info.get("ended")
    seconds: float | None = None
    t0, t1 = parse_time(started), parse_time(ended)
    if t0 is not None and t1 is not None:
        seconds = (t1 - t0).total_seconds()
    elif status == "running" and t0 is not None:
        seconds = (datetime.now(t0.tzinfo) - t0).total_seconds()
    else:
        seconds = _num((metrics or {}).get("seconds"))
    error = info.get("error") or info.get("diverged")  # a diverged run says why
    return RunSummary(path=run.path, task=str(info.get("task") or
                                              _task_from_name(run.path.name)),
                      status=status or "?", started=started if isinstance(started, str)
                      else None, ended=ended if isinstance(ended, str) else None,
                      seconds=seconds, metrics=metrics or {},
                      error=str(error) if error else None, info=info)


def _history_metrics(folder: Path) -> dict[str, Any]:
    """What an unfinished training run's history.csv says: its last complete epoch."""
    try:
        rows = [r for r in load_history(folder) if not r.get("partial")]
    except RunHistoryError:
        return {}
    if not rows:
        return {}
    last = rows[-1]
    return {"accuracy": last.get("accuracy"), "val_accuracy": last.get("val_accuracy"),
            "loss": last.get("loss"), "val_loss": last.get("val_loss"),
            "epochs_done": len(rows),
            "seconds": sum(r.get("seconds") or 0.0 for r in rows)}


def _task_from_name(name: str) -> str:
    """``20250101-120000-training-2`` -> ``training`` (for folders without a record)."""
    parts = name.split("-")
    rest = parts[2:] if len(parts) > 2 else parts
    if len(rest) > 1 and rest[-1].isdigit():
        rest = rest[:-1]
    return "-".join(rest)


def runs_root(results_dir: str | os.PathLike[str]) -> Path:
    return Path(results_dir) / RUNS


def list_runs(results_dir: str | os.PathLike[str]) -> list[RunSummary]:
    """Every run under ``results_dir/runs``, newest first (folder names start with the time).

    Folders being deleted (a leading dot) and folders without run.json are left out.
    """
    root = runs_root(results_dir)
    if not root.is_dir():
        return []
    found = [p for p in root.iterdir()
             if not p.name.startswith(".") and p.is_dir() and (p / RUN_JSON).exists()]
    return [summarize(p) for p in sorted(found, key=lambda p: p.name, reverse=True)]


# ---- deleting ---------------------------------------------------------------------------
def delete_run(results_dir: str | os.PathLike[str], path: str | os.PathLike[str]) -> Path:
    """Delete one run folder, only if it is a run folder right inside ``results_dir/runs``.

    Refuses a symlink, anything outside that folder, a folder without run.json and a run
    whose process is still going. The folder is first renamed to a hidden name, so a
    listing never shows a half-deleted run, then removed.
    """
    root = runs_root(results_dir).resolve()
    target = Path(path)
    if target.is_symlink():
        raise RunHistoryError(f"{target}: a link, not a run folder; not deleted")
    resolved = target.resolve()
    if resolved.parent != root or resolved.name.startswith("."):
        raise RunHistoryError(f"{target}: not a run folder inside {root}; not deleted")
    if not (resolved / RUN_JSON).is_file():
        raise RunHistoryError(f"{target}: has no {RUN_JSON}, so it is not a run folder; "
                              "not deleted")
    if summarize(resolved).status == "running":
        raise RunHistoryError(f"{resolved.name} is still running; stop it first")
    hidden = root / f".deleting-{resolved.name}"
    try:
        os.replace(resolved, hidden)
        shutil.rmtree(hidden)
    except OSError as exc:
        raise RunHistoryError(f"{resolved.name}: could not be deleted ({exc})") from exc
    return resolved


def newest(runs: Iterable[RunSummary], task: str | None = None) -> RunSummary | None:
    """The newest run (of ``task``), e.g. to open right after a run ends."""
    for run in runs:
        if task is None or run.task == task:
            return run
    return None


__all__ = [
    "CLASSIFICATIONS_CSV", "CONFUSION_CSV", "FOLDS_JSONL", "HISTORY_CSV", "REPORT_CSV",
    "TASK_LABELS", "UNREADABLE", "ParamDiff", "PredictionRecord", "RunHistoryError",
    "RunSummary", "TuningTable", "delete_run", "diff_params", "diff_runs",
    "format_duration", "key_metrics", "list_runs", "load_classifications", "load_history",
    "load_params", "load_prediction", "load_tuning", "newest", "parse_time", "result_text",
    "runs_root", "summarize", "value_text",
]
