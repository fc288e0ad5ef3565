"""Run folders: every task's record on disk, so a dropped connection loses nothing finished.

Layout (one folder per run, never reused except to resume that same run)::

    <results_dir>/runs/<YYYYmmdd-HHMMSS>-<task>[-N]/
        run.json           what ran and how it ended (rewritten atomically on each change):
                             task, status (running / finished / stopped / failed /
                             diverged; a
                             "running" record whose process is gone reads as
                             "interrupted"), started, ended, pid, host, keras backend,
                             versions, seed, dataset fingerprint, metrics (final numbers),
                             error (for failed runs), diverged (a training's epoch
                             and why), plus task-specific keys.
        hyper_params.json  the hyper params the run used (HyperParams.save format)
        data_params.json   the data params, when given
        folds.jsonl        tuning: one JSON object per finished fold or failed
                             combination, appended, flushed and fsynced as it happens,
                             so kill -9 loses at most the fit in progress
        results.csv        tuning: the cv_results_ table, written at the end, at a stop
                             (partial) and after a fatal error (partial)
        history.csv        training: one row per epoch (TrainHistory columns), appended,
                             flushed and fsynced as each epoch ends; a stop-cut epoch
                             has partial=True
        model.keras        training: the trained model (also after a stop), with
                             model.classes.json beside it
        start.keras        training: the model the run started from; with backup/ it
                             lets a stopped or interrupted run resume; both are removed
                             once the run has finished
        backup/            training: keras.callbacks.BackupAndRestore's checkpoint
                             (weights, optimizer and epoch) of the last finished epoch
        confusion.csv      prediction: the confusion matrix (rows true, columns
                             predicted)
        report.csv         prediction: per-class precision, recall, F1 and support
        classifications.csv  classification: one row per image
        skipped.csv        the files the run's dataset left out (path, reason), if any

``-N`` is added when two runs of the same task start within one second. A run stopped by
SIGHUP/SIGTERM (a dropped SSH connection, a shutdown) is recorded as "interrupted";
run.json may then also hold "resumed" (times it was resumed) and "resume_offered".
The writing side: ``convonet.core.records`` (generic) and the task layer
(``convonet.tasks``), which runs each task inside its run folder.
"""

from __future__ import annotations

import contextlib
import csv
import hashlib
import io
import json
import os
import platform
import socket
import sys
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np

from convonet.core.errors import ConvonetError
from convonet.core.files import atomic_write_text
from convonet.core.storage import writing

RUNS = "runs"
RUN_JSON = "run.json"
HYPER_PARAMS_JSON = "hyper_params.json"
DATA_PARAMS_JSON = "data_params.json"
FOLDS_JSONL = "folds.jsonl"
RESULTS_CSV = "results.csv"
HISTORY_CSV = "history.csv"
MODEL_KERAS = "model.keras"
START_KERAS = "start.keras"
BACKUP_DIR = "backup"
CONFUSION_CSV = "confusion.csv"
REPORT_CSV = "report.csv"
CLASSIFICATIONS_CSV = "classifications.csv"

STATUSES = ("running", "finished", "stopped", "failed", "interrupted", "diverged")


class NotARunFolder(ConvonetError, FileNotFoundError):
    """A folder given as a run folder holds no run.json (a typo, or the wrong folder)."""

    title = "Not a run folder"
    advice = "Give a folder under <results>/runs/ that holds a run.json."


def now_iso() -> str:
    """Local time with its UTC offset, to the second: sortable and unambiguous."""
    return datetime.now().astimezone().isoformat(timespec="seconds")


def _jsonable(value: Any) -> Any:
    """numpy scalars and arrays, tuples and paths as plain JSON values."""
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.generic):
        return _jsonable(value.item())
    if isinstance(value, np.ndarray):
        return _jsonable(value.tolist())
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, float) and not np.isfinite(value):
        return None  # JSON has no NaN; readers treat null as "no value"
    return value


def to_json(value: Any, **kwargs: Any) -> str:
    return json.dumps(_jsonable(value), allow_nan=False, **kwargs)


def versions() -> dict[str, str]:
    """Versions that change numbers: recorded so a run can be explained later."""
    from importlib import metadata

    out = {"python": platform.python_version()}
    for dist in ("convonet", "keras", "tensorflow", "jax", "torch", "scikit-learn", "numpy"):
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            continue
    return out


def keras_backend() -> str:
    """The backend Keras will use, without importing keras (it may be slow to import)."""
    if "keras" in sys.modules:
        return str(sys.modules["keras"].backend.backend())
    return os.environ.get("KERAS_BACKEND", "tensorflow")


def dataset_fingerprint(x: np.ndarray, y: np.ndarray) -> str:
    """A short hash of the images and labels: resume must see the same data in the same order."""
    h = hashlib.sha256()
    for arr in (x, y):
        a = np.ascontiguousarray(arr)
        h.update(f"{a.dtype.str}{a.shape}".encode())
        h.update(memoryview(a).cast("B"))  # type: ignore[arg-type]
    return h.hexdigest()[:16]


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class RunFolder:
    """One run's folder: create it, update run.json, append fold records, write tables."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)

    def __repr__(self) -> str:
        return f"RunFolder({str(self.path)!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, RunFolder) and other.path == self.path

    def __hash__(self) -> int:
        return hash(self.path)

    # ---- create / open ---------------------------------------------------------------
    @classmethod
    def create(cls, results_dir: str | os.PathLike[str], task: str, *,
               hyper_params: Any = None, data_params: Any = None, seed: int | None = None,
               fingerprint: str | None = None, **info: Any) -> RunFolder:
        """Make ``results_dir/runs/<stamp>-<task>/`` with run.json (status running).

        ``hyper_params`` / ``data_params`` are params objects with ``save(path)``; copies
        go next to run.json so the run can be repeated or resumed without the originals.
        """
        safe_task = "".join(c if c.isalnum() or c in "-_" else "-" for c in task) or "run"
        root = Path(results_dir) / RUNS
        root.mkdir(parents=True, exist_ok=True)
        stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
        n = 1
        while True:
            name = f"{stamp}-{safe_task}" + (f"-{n}" if n > 1 else "")
            try:
                (root / name).mkdir()  # atomic: two runs never share a folder
                break
            except FileExistsError:
                n += 1
        run = cls(root / name)
        if hyper_params is not None:
            hyper_params.save_copy(run.path / HYPER_PARAMS_JSON)
        if data_params is not None:
            data_params.save_copy(run.path / DATA_PARAMS_JSON)
        record: dict[str, Any] = {
            "task": task,
            "status": "running",
            "started": now_iso(),
            "ended": None,
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "keras_backend": keras_backend(),
            "versions": versions(),
            "seed": seed,
            "dataset_fingerprint": fingerprint,
            "metrics": {},
        }
        record.update(info)
        run._write_info(record)
        return run

    @classmethod
    def open(cls, path: str | os.PathLike[str]) -> RunFolder:
        """An existing run folder (checked: it must hold run.json)."""
        run = cls(path)
        if not run.path.exists():
            raise NotARunFolder(f"{run.path} does not exist; give a run folder under "
                                "<results>/runs/ (the runs screen and run.json name them)")
        if not (run.path / RUN_JSON).is_file():
            raise NotARunFolder(f"{run.path} is not a run folder: it has no {RUN_JSON}")
        return run

    @classmethod
    def find(cls, results_dir: str | os.PathLike[str], task: str | None = None
             ) -> list[RunFolder]:
        """Every run under ``results_dir``, oldest first (folder names sort by start time)."""
        root = Path(results_dir) / RUNS
        if not root.is_dir():
            return []
        runs = [cls(p) for p in sorted(root.iterdir()) if (p / RUN_JSON).is_file()]
        if task is not None:
            runs = [r for r in runs if r.info.get("task") == task]
        return runs

    # ---- run.json --------------------------------------------------------------------
    @property
    def info(self) -> dict[str, Any]:
        data: dict[str, Any] = json.loads((self.path / RUN_JSON).read_text(encoding="utf-8"))
        return data

    @property
    def task(self) -> str:
        return str(self.info.get("task", ""))

    @property
    def status(self) -> str:
        """The recorded status; "interrupted" for a running record whose process is gone."""
        info = self.info
        status = str(info.get("status", ""))
        if status == "running" and info.get("host") == socket.gethostname():
            pid = info.get("pid")
            if isinstance(pid, int) and not _pid_alive(pid):
                return "interrupted"
        return status

    def update(self, **fields: Any) -> dict[str, Any]:
        """Merge fields into run.json atomically; returns the new record."""
        record = self.info
        record.update(fields)
        self._write_info(record)
        return record

    def finish(self, status: str, metrics: Mapping[str, Any] | None = None,
               **fields: Any) -> dict[str, Any]:
        """Record how the run ended: status, end time and final metrics."""
        if status not in STATUSES:
            raise ValueError(f"unknown run status {status!r}; expected one of {STATUSES}")
        extra: dict[str, Any] = {"status": status, "ended": now_iso()}
        if metrics is not None:
            extra["metrics"] = dict(metrics)
        extra.update(fields)
        return self.update(**extra)

    def _write_info(self, record: Mapping[str, Any]) -> None:
        atomic_write_text(self.path / RUN_JSON, to_json(record, indent=2) + "\n")

    # ---- files -----------------------------------------------------------------------
    def file(self, name: str) -> Path:
        return self.path / name

    def append_jsonl(self, name: str, record: Mapping[str, Any]) -> None:
        """Append one JSON line, flushed and fsynced: it survives kill -9 once this returns.

        A write that fails (a full disk) is cut back off, so the file never holds a torn
        line that a later append would bury in the middle.
        """
        line = (to_json(record) + "\n").encode("utf-8")
        path = self.path / name
        with writing(path), open(path, "ab", buffering=0) as fh:  # unbuffered: no
            start = fh.seek(0, os.SEEK_END)  # bytes left in a buffer to write on close
            try:
                done = 0
                while done < len(line):  # a nearly full disk may take only part of it
                    done += fh.write(line[done:]) or len(line)
                os.fsync(fh.fileno())
            except OSError:
                with contextlib.suppress(OSError):
                    fh.truncate(start)
                raise

    def read_jsonl(self, name: str) -> list[dict[str, Any]]:
        """Every complete line; a torn last line (killed mid-write) is ignored."""
        path = self.path / name
        if not path.exists():
            return []
        out: list[dict[str, Any]] = []
        lines = path.read_text(encoding="utf-8").split("\n")
        for i, line in enumerate(lines):
            if not line.strip():
                continue
            try:
                out.append(json.loads(line))
            except json.JSONDecodeError:
                if i >= len(lines) - 2:  # only the last line may be torn
                    continue
                raise
        return out

    def write_json(self, name: str, obj: Any) -> Path:
        path = self.path / name
        atomic_write_text(path, to_json(obj, indent=2) + "\n")
        return path

    def write_csv(self, name: str, rows: Iterable[Mapping[str, Any]],
                  columns: Sequence[str]) -> Path:
        """A table written atomically; dicts and lists in cells become JSON text."""
        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=list(columns), extrasaction="ignore")
        writer.writeheader()
        for row in rows:
            writer.writerow({k: _cell(row.get(k)) for k in columns})
        path = self.path / name
        atomic_write_text(path, buf.getvalue())
        return path

    def read_csv(self, name: str) -> list[dict[str, str]]:
        with open(self.path / name, encoding="utf-8", newline="") as fh:
            return list(csv.DictReader(fh))


def _cell(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, (dict, list, tuple)):
        return to_json(value, sort_keys=True)
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not np.isfinite(value):
        return ""  # a fold not run (or a failed one) has no score, not a number "nan"
    return value
