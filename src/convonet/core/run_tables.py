"""A run folder's tables read back: the epoch history, a search's results, a prediction's
confusion matrix and report, classifications.

A missing file is "nothing recorded" and a torn last CSV line (killed mid-write) is
skipped; a file that cannot be read at all raises ``RunHistoryError`` naming it.
"""

from __future__ import annotations

import csv
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from convonet.core.errors import ConvonetError
from convonet.core.runs import FOLDS_JSONL, RESULTS_CSV, RunFolder

HISTORY_CSV = "history.csv"
CONFUSION_CSV = "confusion.csv"
REPORT_CSV = "report.csv"
CLASSIFICATIONS_CSV = "classifications.csv"


class RunHistoryError(ConvonetError):
    """A run cannot be read or deleted; the message names the folder and why."""

    title = "Run records"
    advice = "Check the run folder it names."


def _num(value: Any) -> float | None:
    if isinstance(value, bool) or value is None:
        return None
    try:
        out = float(value)
    except (TypeError, ValueError):
        return None
    return out if math.isfinite(out) else None


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
