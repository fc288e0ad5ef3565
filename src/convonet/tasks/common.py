"""What several tasks share: the results folder and the list of skipped files."""

from __future__ import annotations

import csv
import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from convonet.core.storage import resolve_results_dir, writing

if TYPE_CHECKING:
    from convonet.core.data import SkippedFile
    from convonet.core.runs import RunFolder

#: In a run folder: the files its dataset left out, one row each (path, reason).
SKIPPED_CSV = "skipped.csv"


def results_folder(given: str | os.PathLike[str] | None) -> Path:
    """The results folder a spec names, else the one ``resolve_results_dir`` decides."""
    return resolve_results_dir(given)


def model_label(path: str | os.PathLike[str] | None) -> str | None:
    """A model file as run.json records it."""
    return str(path) if path else None


def write_skipped_csv(run: RunFolder | None, skipped: Sequence[SkippedFile]) -> Path | None:
    """The files a dataset left out, written as ``skipped.csv`` (path, reason) in the run
    folder; None when nothing was skipped or there is no run folder."""
    if run is None or not skipped:
        return None
    path = run.file(SKIPPED_CSV)
    with writing(path), path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(["path", "reason"])
        for item in skipped:
            writer.writerow([str(item.path), item.reason])
    return path


def skipped_rows(skipped: Sequence[SkippedFile]) -> list[dict[str, Any]]:
    """The skipped files as ``--json`` lists them."""
    return [{"path": str(item.path), "reason": item.reason} for item in skipped]


__all__ = ["SKIPPED_CSV", "model_label", "results_folder", "skipped_rows",
           "write_skipped_csv"]
