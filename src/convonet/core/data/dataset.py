"""What a load gives: the Dataset, its skipped files, DataError, and test-to-training class
matching (by index, in sorted folder order)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from convonet.core.errors import ConvonetError


class DataError(ConvonetError, ValueError):
    """A dataset cannot be loaded; the message names the folder or file and the fix."""

    title = "Data error"
    advice = "Check the dataset folders in the data params, then load again."


@dataclass
class SkippedFile:
    """A file left out of a dataset, and why."""

    path: Path
    reason: str


@dataclass
class Dataset:
    """Images as float32 arrays scaled 0..1, with labels and what was left out."""

    x: np.ndarray
    y: np.ndarray
    class_names: list[str]
    root: Path | None
    skipped: list[SkippedFile] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    fingerprint: str = ""
    #: (training name, test name) per class index when a test set's names differ.
    class_matching: list[tuple[str, str]] = field(default_factory=list)
    #: True when the arrays came from the on-disk cache instead of decoding.
    from_cache: bool = False

    @property
    def image_shape(self) -> tuple[int, int, int]:
        return (int(self.x.shape[1]), int(self.x.shape[2]), int(self.x.shape[3]))

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def counts(self) -> list[int]:
        return [int(c) for c in np.bincount(self.y, minlength=self.num_classes)]

    def __len__(self) -> int:
        return int(self.y.shape[0])


def match_classes(train_names: Sequence[str], test_names: Sequence[str], *,
                  train_root: Path | None = None,
                  test_root: Path | None = None,
                  classes_of: str = "training") -> list[tuple[str, str]]:
    """Pair test classes with training classes by index (sorted folder order).

    Returns the (training, test) pairs whose names differ, empty when all names agree.
    Raises DataError naming both lists when the counts differ, since an index match would
    then be meaningless. ``classes_of`` says whose names ``train_names`` are: "training"
    (the training set's folders) or "model" (the classes a saved model was trained on),
    so the message names the right side.
    """
    if len(train_names) != len(test_names):
        where_train = f" in '{train_root}'" if train_root else ""
        where_test = f" in '{test_root}'" if test_root else ""
        listed = f"({', '.join(test_names)})"
        if classes_of == "model":
            raise DataError(
                f"the test set has {len(test_names)} class folders{where_test} {listed} but "
                f"the model's classes are {len(train_names)} ({', '.join(train_names)}); "
                "classes are matched by sorted order, so the test set needs one class "
                "folder per class of the model")
        raise DataError(
            f"the test set has {len(test_names)} class folders{where_test} {listed} "
            f"but the training set has {len(train_names)}"
            f"{where_train} ({', '.join(train_names)}); classes are matched by sorted "
            "order, so both need the same number of class folders")
    return [(a, b) for a, b in zip(train_names, test_names, strict=True) if a != b]
