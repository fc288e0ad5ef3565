"""What makes a training resumable: the per-epoch history append, the checkpoint
(``BackupAndRestore`` made safe for a stop and a full disk) and early stopping's best
weights file.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import keras

from convonet.core.storage import writing
from convonet.core.train_callbacks import _RunState
from convonet.core.train_history import (
    HISTORY_COLUMNS,
    TrainHistory,
    _csv_row,
    write_history_csv,
)

#: In the checkpoint folder: early stopping's best weights so far (see _EarlyStopping).
BEST_WEIGHTS = "best_weights.npz"


class _HistoryAppend(keras.callbacks.Callback):
    """Appends each epoch's row to a CSV as it lands, flushed and fsynced.

    Runs after _ProgressCallback (which makes the row) and before _Backup, so a kill
    between the two leaves a row newer than the checkpoint, never a missing one; on
    resume the rows past the checkpoint are dropped.
    """

    def __init__(self, history: TrainHistory, path: Path) -> None:
        super().__init__()
        self.history = history
        self.path = path

    def on_epoch_end(self, epoch: int, logs: Mapping[str, Any] | None = None) -> None:
        if not self.history.rows:
            return
        new = not self.path.exists() or self.path.stat().st_size == 0
        with writing(self.path), self.path.open("a", encoding="utf-8", newline="") as fh:
            writer = csv.writer(fh)
            if new:
                writer.writerow(HISTORY_COLUMNS)
            writer.writerow(_csv_row(self.history.rows[-1]))
            fh.flush()
            os.fsync(fh.fileno())


class _Backup(keras.callbacks.BackupAndRestore):
    """BackupAndRestore that skips an epoch cut short by a stop and keeps its files.

    A stop-cut epoch is not a finished one: resuming redoes it from the checkpoint of the
    epoch before. The checkpoint stays after fit (the run record removes it once the run
    has finished), so a stopped or interrupted run can still be resumed. On restore, the
    history rows past the checkpoint's epoch are dropped (their epochs run again).
    """

    # BackupAndRestore defines a batch-end hook, which alone turns off Keras's
    # asynchronous batch dispatch for the whole fit on jax and torch (a per-batch sync).
    # With save_freq="epoch" that hook only compares the save frequency and returns, so
    # it is safe on Keras's helper thread; every save runs in the epoch hooks, which
    # always run on the training thread.
    async_safe = True

    def __init__(self, state: _RunState, backup_dir: Path, history: TrainHistory,
                 history_csv: Path | None) -> None:
        super().__init__(backup_dir=str(backup_dir), double_checkpoint=True,
                         delete_checkpoint=False)
        self.state = state
        self.history = history
        self.history_csv = history_csv

    def on_train_begin(self, logs: Mapping[str, Any] | None = None) -> None:
        try:
            super().on_train_begin(logs)
        except json.JSONDecodeError:
            # A torn training_metadata.json (killed while writing it): the previous
            # checkpoint pair is whole, so go back to it.
            prev_w, prev_m = Path(self._prev_weights_path), Path(
                self._prev_training_metadata_path)
            if not (prev_w.is_file() and prev_m.is_file()):
                raise
            os.replace(prev_w, self._weights_path)
            os.replace(prev_m, self._training_metadata_path)
            self._load_model()
        done = int(getattr(self.model, "_initial_epoch", None) or 0)
        kept = [r for r in self.history.rows if r.epoch <= done and not r.partial]
        if kept != self.history.rows or done == 0:
            self.history.rows[:] = kept
            if self.history_csv is not None:
                write_history_csv(self.history_csv, kept)

    def on_epoch_end(self, epoch: int, logs: Mapping[str, Any] | None = None) -> None:
        # The row _ProgressCallback just made says whether this epoch ran to its end.
        rows = self.history.rows
        if not rows or rows[-1].epoch != epoch + 1 or rows[-1].partial:
            return
        super().on_epoch_end(epoch, logs)

    def _save_model(self) -> None:
        """Keras's checkpoint save, made safe for a write that fails (a full disk).

        Keras copies the last checkpoint to ``.bkp`` and then writes the new one over it;
        a failure half way left a half-written weights file that a resume loaded as if it
        were whole. Here a failed save puts the last whole checkpoint back (a rename needs
        no space), so a resume starts exactly after the last finished epoch, and the error
        names the file that could not be written.
        """
        weights, metadata = Path(self._weights_path), Path(self._training_metadata_path)
        prev_weights = Path(self._prev_weights_path)
        prev_metadata = Path(self._prev_training_metadata_path)
        weights.parent.mkdir(parents=True, exist_ok=True)
        try:
            for source, copy in ((weights, prev_weights), (metadata, prev_metadata)):
                if source.is_file():
                    with writing(copy):
                        shutil.copy(source, copy)
        except BaseException:  # the whole checkpoint is still in place; a half copy is not
            prev_weights.unlink(missing_ok=True)
            prev_metadata.unlink(missing_ok=True)
            raise
        try:
            with writing(weights):  # h5py's write errors name no file
                self.model.save_weights(filepath=str(weights), overwrite=True)
            with writing(metadata):
                metadata.write_text(json.dumps({"epoch": self._current_epoch,
                                                "batch": self._last_batch_seen}),
                                    encoding="utf-8")
        except BaseException:
            if prev_weights.is_file() and prev_metadata.is_file():
                os.replace(prev_weights, weights)
                os.replace(prev_metadata, metadata)
            else:  # the first checkpoint: none is better than half of one
                weights.unlink(missing_ok=True)
                metadata.unlink(missing_ok=True)
            raise


def checkpoint_epoch(backup_dir: str | os.PathLike[str]) -> int:
    """Epochs finished according to a checkpoint folder (0 without a readable one)."""
    for name in ("training_metadata.json", "training_metadata.json.bkp"):
        try:
            data = json.loads((Path(backup_dir) / name).read_text(encoding="utf-8"))
            return int(data["epoch"])
        except (OSError, ValueError, KeyError, TypeError):
            continue
    return 0
