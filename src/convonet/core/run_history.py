"""Past runs read back from their folders: list, summarise, load, compare, delete.

The writing side is ``convonet.core.runs`` (``RunFolder``); this module only reads what the
run folders hold, so the runs screen and scripts can look at finished (or broken) work
without Keras. Every reader tolerates what a killed process leaves behind: a missing file
is "nothing recorded", a torn last CSV line is skipped, an unreadable run.json still lists
the folder (status ``unreadable``) so it can be looked at or deleted.
"""

from __future__ import annotations

import csv
import json
import math
import os
import shutil
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np

from convonet.core.errors import ConvonetError
from convonet.core.runs import (
    DATA_PARAMS_JSON,
    FOLDS_JSONL,
    HYPER_PARAMS_JSON,
    RESULTS_CSV,
    RUN_JSON,
    RUNS,
    RunFolder,
)

HISTORY_CSV = "history.csv"
CONFUSION_CSV = "confusion.csv"
REPORT_CSV = "report.csv"
CLASSIFICATIONS_CSV = "classifications.csv"

#: A run.json that cannot be read still lists its folder, with this status.
UNREADABLE = "unreadable"
#: The short names the CLI uses for each task (``convonet train`` ...), for narrow tables.
TASK_LABELS = {"training": "train", "tuning": "tune", "evaluation": "evaluate",
               "prediction": "predict", "classification": "classify"}
#: run.json fields worth comparing between two runs (besides params and metrics).
_RECORD_FIELDS = ("task", "status", "seed", "dataset_fingerprint", "keras_backend",
                  "validation", "epochs", "model", "host")


class RunHistoryError(ConvonetError):
    """A run cannot be read or deleted; the message names the folder and why."""

    title = "Run records"
    advice = "Check the run folder it names."


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


def _num(value: Any) -> float | None:
    if isinstance(value, bool) or value is None:
        return None
    try:
        out = float(value)
    except (TypeError, ValueError):
        return None
    return out if math.isfinite(out) else None


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
    error = info.get("error")
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


# ---- loading a run's tables -------------------------------------------------------------
def _read_csv(path: Path) -> list[dict[str, str]]:
    """Rows of a CSV; a torn last line (killed mid-write) is dropped, not an error."""
    if not path.is_file():
        return []
    try:
        with path.open(encoding="utf-8", newline="") as fh:
            reader = csv.DictReader(fh)
            rows = list(reader)
            width = len(reader.fieldnames or [])
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise RunHistoryError(f"{path}: cannot be read ({exc})") from exc
    if rows and (None in rows[-1] or len([v for v in rows[-1].values()
                                           if v is not None]) < width):
        rows = rows[:-1]
    return rows


def load_history(path: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """history.csv as rows of numbers (None for empty cells), for charts and tables."""
    out: list[dict[str, Any]] = []
    for row in _read_csv(Path(path) / HISTORY_CSV):
        epoch = _num(row.get("epoch"))
        if epoch is None:
            continue
        rec: dict[str, Any] = {"epoch": int(epoch)}
        for key, value in row.items():
            if key in ("epoch", None):
                continue
            if key == "partial":
                rec[key] = str(value).strip().lower() in ("true", "1", "yes")
            else:
                rec[key] = _num(value)
        out.append(rec)
    return out


@dataclass(frozen=True)
class TuningTable:
    """A tuning run's table, ready to show: column titles and rows of text."""

    columns: list[str]
    rows: list[list[str]]
    source: str  # RESULTS_CSV, or FOLDS_JSONL when the search never wrote its table

    def __len__(self) -> int:
        return len(self.rows)


def _fmt(value: Any, digits: int = 4) -> str:
    number = _num(value)
    if number is None:
        return "" if value in (None, "") else str(value)
    if float(number).is_integer() and "." not in str(value):
        return str(int(number))
    return f"{number:.{digits}f}"


def load_tuning(path: str | os.PathLike[str]) -> TuningTable:
    """results.csv (best first) as rank, params, accuracy, std, loss, fit time, status.

    A search killed before writing results.csv still has folds.jsonl: its finished folds are
    shown one per line instead.
    """
    folder = Path(path)
    rows = _read_csv(folder / RESULTS_CSV)
    if rows:
        params = sorted(k for k in rows[0] if k and k.startswith("param_"))
        halving = any(r.get("iter") not in (None, "", "0") for r in rows)
        columns = ["rank", *(["rung", "images"] if halving else []),
                   *(p.removeprefix("param_") for p in params),
                   "accuracy", "std", "loss", "fit s", "status"]
        out = []
        for r in rows:
            ok = r.get("status", "ok") == "ok"
            cells = [r.get("rank_test_score", "")]
            if halving:
                cells += [str(int(_num(r.get("iter")) or 0) + 1), r.get("n_resources", "")]
            cells += [r.get(p, "") for p in params]
            cells += [_fmt(r.get("mean_test_score")) if ok else "",
                      _fmt(r.get("std_test_score")) if ok else "",
                      _fmt(r.get("mean_test_loss")) if ok else "",
                      _fmt(r.get("mean_fit_time"), 1) if ok else "",
                      "ok" if ok else _status_text(r.get("status"), r.get("reason"))]
            out.append([c or "" for c in cells])
        return TuningTable(columns, out, RESULTS_CSV)
    records = RunFolder(folder).read_jsonl(FOLDS_JSONL) if (folder / FOLDS_JSONL).is_file() \
        else []
    names = sorted({k for rec in records for k in (rec.get("params") or {})})
    columns = ["comb", "fold", *names, "accuracy", "loss", "status"]
    out = []  # one line per finished fold or failed or invalid combination
    for rec in records:
        combo = rec.get("params") or {}
        failed = rec.get("kind") in ("failed", "invalid")
        out.append([str(rec.get("combination_index", "")),
                    "" if failed else str(int(_num(rec.get("fold")) or 0) + 1),
                    *(str(combo.get(n, "")) for n in names),
                    "" if failed else _fmt(rec.get("accuracy")),
                    "" if failed else _fmt(rec.get("loss")),
                    _status_text(rec.get("kind"), rec.get("reason")) if failed else "ok"])
    return TuningTable(columns, out, FOLDS_JSONL)


def _status_text(status: Any, reason: Any) -> str:
    """A row without a score: why; an invalid one (never run) says so first."""
    if status == "invalid":
        return f"invalid: {reason}" if reason else "invalid"
    return str(reason or status or "")


@dataclass(frozen=True)
class PredictionRecord:
    """A prediction run's confusion matrix and per-class report, read back."""

    class_names: list[str]
    confusion: np.ndarray
    report: list[dict[str, str]]

    @property
    def accuracy(self) -> float | None:
        total = int(self.confusion.sum())
        return float(np.trace(self.confusion)) / total if total else None


def load_prediction(path: str | os.PathLike[str]) -> PredictionRecord | None:
    """confusion.csv and report.csv; None when the run recorded no confusion matrix."""
    folder = Path(path)
    file = folder / CONFUSION_CSV
    if not file.is_file():
        return None
    try:
        with file.open(encoding="utf-8", newline="") as fh:
            table = list(csv.reader(fh))
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise RunHistoryError(f"{file}: cannot be read ({exc})") from exc
    if len(table) < 2:
        return None
    labels = table[0][1:]
    names = [_class_name(label, i) for i, label in enumerate(labels)]
    try:
        matrix = np.array([[int(v) for v in row[1:]] for row in table[1:len(labels) + 1]],
                          dtype=np.int64)
    except ValueError as exc:
        raise RunHistoryError(f"{file}: not a confusion matrix ({exc})") from exc
    if matrix.shape != (len(labels), len(labels)):
        raise RunHistoryError(f"{file}: {matrix.shape[0]} rows for {len(labels)} classes")
    return PredictionRecord(names, matrix, _read_csv(folder / REPORT_CSV))


def _class_name(label: str, index: int) -> str:
    """``"3 normal"`` -> ``"normal"`` (the CSV writes ``index name``)."""
    head, _, rest = label.partition(" ")
    return rest if head == str(index) and rest else label


def load_classifications(path: str | os.PathLike[str], limit: int = 500
                         ) -> list[dict[str, str]]:
    """The first ``limit`` rows of classifications.csv."""
    return _read_csv(Path(path) / CLASSIFICATIONS_CSV)[:limit]


# ---- params and comparing ---------------------------------------------------------------
def _flatten(prefix: str, value: Any, out: dict[str, Any]) -> None:
    if isinstance(value, Mapping) and value:
        for key, inner in value.items():
            _flatten(f"{prefix}.{key}" if prefix else str(key), inner, out)
    else:
        out[prefix] = value


def _read_json(path: Path) -> Any:
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError):
        return {"(unreadable)": path.name}


def load_params(path: str | os.PathLike[str]) -> dict[str, Any]:
    """A run's settings as flat ``section.field`` -> value, in a stable order.

    Sections: ``run`` (what run.json says matters: seed, dataset fingerprint, backend ...),
    ``hyper`` and ``data`` (the params files copied into the run), ``metrics`` and
    ``versions``.
    """
    folder = Path(path)
    out: dict[str, Any] = {}
    info = _read_json(folder / RUN_JSON)
    info = info if isinstance(info, dict) else {}
    for key in _RECORD_FIELDS:
        if key in info:
            out[f"run.{key}"] = info[key]
    for section, name in (("hyper", HYPER_PARAMS_JSON), ("data", DATA_PARAMS_JSON)):
        data = _read_json(folder / name)
        if isinstance(data, dict):
            _flatten(section, data, out)
    _flatten("metrics", info.get("metrics") or {}, out)
    out.pop("metrics", None)
    _flatten("versions", info.get("versions") or {}, out)
    out.pop("versions", None)
    return out


@dataclass(frozen=True)
class ParamDiff:
    """One field of two runs side by side; ``differs`` marks what changed."""

    field: str
    a: Any
    b: Any
    differs: bool


def value_text(value: Any) -> str:
    """How a param value reads in a table: lists as ``28, 28``, missing as ``–``."""
    if value is None:
        return "–"
    if isinstance(value, (list, tuple)):
        return ", ".join(value_text(v) for v in value)
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)


def _same(a: Any, b: Any) -> bool:
    na, nb = _num(a), _num(b)
    if na is not None and nb is not None and not isinstance(a, str) \
            and not isinstance(b, str):
        return math.isclose(na, nb, rel_tol=1e-12, abs_tol=0.0)
    return bool(a == b)


def diff_params(a: Mapping[str, Any], b: Mapping[str, Any]) -> list[ParamDiff]:
    """Every field of either run, in a's order then b's extra ones, with what differs."""
    fields = list(a) + [k for k in b if k not in a]
    return [ParamDiff(f, a.get(f), b.get(f),
                      not (f in a and f in b and _same(a.get(f), b.get(f))))
            for f in fields]


def diff_runs(a: str | os.PathLike[str], b: str | os.PathLike[str]) -> list[ParamDiff]:
    return diff_params(load_params(a), load_params(b))


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
    "CLASSIFICATIONS_CSV", "CONFUSION_CSV", "HISTORY_CSV", "REPORT_CSV", "TASK_LABELS",
    "UNREADABLE", "ParamDiff", "PredictionRecord", "RunHistoryError", "RunSummary",
    "TuningTable", "delete_run", "diff_params", "diff_runs", "format_duration",
    "key_metrics", "list_runs", "load_classifications", "load_history", "load_params",
    "load_prediction", "load_tuning", "newest", "parse_time", "result_text", "runs_root",
    "summarize", "value_text",
]

