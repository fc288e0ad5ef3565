"""Listing a dataset root: its class folders (sorted order) and their files, without
opening any image; hidden files, empty files and symbolic-link loops are skipped with a
reason."""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from convonet.core.data.dataset import DataError, SkippedFile


@dataclass
class _Listing:
    """The files of one dataset root, before decoding."""

    root: Path
    class_names: list[str]
    files: list[str]  # paths relative to root, sorted per class
    labels: np.ndarray
    sizes: list[int]
    mtimes: list[int]
    skipped: list[SkippedFile]
    warnings: list[str]


def _hidden(name: str) -> bool:
    return name.startswith(".") or name == "__MACOSX"


def _walk(dir_path: str, rel: str, found: list[tuple[str, int, int]],
          skipped: list[SkippedFile], real_dir: str = "", real_root: str = "") -> None:
    """Depth-first in sorted name order, on plain strings: 60,000 files list in ~0.1 s.

    ``real_dir`` is the folder's resolved path and ``real_root`` the dataset root's: a
    symbolic link back to a folder above (a loop) or to a folder inside the dataset (listed
    already) is skipped, so the walk ends and no image counts twice.
    """
    real_dir = real_dir or os.path.realpath(dir_path)
    try:
        with os.scandir(dir_path) as it:
            entries = sorted(it, key=lambda e: e.name)
    except OSError as exc:
        skipped.append(SkippedFile(Path(dir_path), f"folder cannot be read: "
                                   f"{exc.strerror or exc}"))
        return
    for e in entries:
        try:
            is_dir = e.is_dir()
            if is_dir:
                if _hidden(e.name):
                    skipped.append(SkippedFile(Path(e.path), "hidden folder"))
                    continue
                real = real_dir + os.sep + e.name
                if e.is_symlink():
                    real = os.path.realpath(e.path)
                    if real == real_dir or real_dir.startswith(real + os.sep):
                        skipped.append(SkippedFile(Path(e.path), "symbolic link loop: it "
                                                   f"points back to '{real}'; remove the link"))
                        continue
                    if real_root and (real == real_root or real.startswith(real_root + os.sep)):
                        skipped.append(SkippedFile(Path(e.path), "symbolic link to "
                                                   f"'{real}', a folder of this dataset listed "
                                                   "already (no image counts twice)"))
                        continue
                _walk(e.path, rel + e.name + os.sep, found, skipped, real, real_root)
                continue
            if _hidden(e.name):
                skipped.append(SkippedFile(Path(e.path), "hidden file"))
                continue
            st = e.stat()
        except OSError as exc:
            skipped.append(SkippedFile(Path(e.path), f"cannot be read: {exc.strerror or exc}"))
            continue
        if st.st_size == 0:
            skipped.append(SkippedFile(Path(e.path), "empty file (0 bytes)"))
            continue
        found.append((rel + e.name, st.st_size, st.st_mtime_ns))


def _number_order_key(name: str) -> tuple[str | int, ...]:
    """``img10`` -> ("img", 10, ""): digit runs compared as numbers (text at even places,
    numbers at odd ones, so two keys always compare like with like)."""
    parts = re.split(r"(\d+)", name)
    return tuple(int(p) if i % 2 else p for i, p in enumerate(parts))


def text_order_warning(class_names: Sequence[str], root: Path | None = None) -> str | None:
    """The warning for numbered class folders whose text order is not their number order.

    Class indices follow Python's ``sorted()`` (as Keras's ``image_dataset_from_directory``),
    so folders 0..12 become 0, 1, 10, 11, 12, 2, ...: index 2 is folder "10". The order
    stays (models trained elsewhere rely on it); the warning shows the whole index -> folder
    table so nobody reads index 2 as class 2. None when the two orders agree.
    """
    names = list(class_names)
    if sorted(names, key=_number_order_key) == names:
        return None
    where = f" in '{root}'" if root is not None else ""
    table = ", ".join(f"{i} -> {name}" for i, name in enumerate(names))
    return (f"the class folders{where} are numbered but ordered as text (Python's sorted(), "
            "as Keras orders them), so a class index is not the folder's number; index -> "
            f"folder: {table}. To make both orders agree, rename the folders with leading "
            "zeros (01, 02, ..., 10)")


def list_folder(root: Path) -> _Listing:
    """Find the class folders and their files, without opening any image."""
    if not root.exists():
        raise DataError(f"dataset folder '{root}' does not exist; fix the path in the data "
                        "params (relative paths are read from the params file's folder)")
    if not root.is_dir():
        raise DataError(f"'{root}' is a file, not a folder of class sub-folders; point the "
                        "data params at the folder that holds one sub-folder per class")
    try:
        with os.scandir(root) as it:
            entries = sorted(it, key=lambda e: e.name)
    except OSError as exc:
        raise DataError(f"dataset folder '{root}' cannot be read: {exc}") from None
    class_names = [e.name for e in entries if e.is_dir() and not _hidden(e.name)]
    loose = [e.name for e in entries if not e.is_dir() and not _hidden(e.name)]
    warnings: list[str] = []
    if loose:
        shown = ", ".join(loose[:5]) + (f" and {len(loose) - 5} more" if len(loose) > 5 else "")
        warnings.append(f"ignored {len(loose)} file(s) at the top of '{root}' beside the "
                        f"class folders ({shown}); images belong in the class sub-folders")
    if not class_names:
        hint = " (it holds only loose files)" if loose else ""
        raise DataError(f"dataset folder '{root}' has no class sub-folders{hint}; put each "
                        "class's images in a sub-folder named after the class")
    if len(class_names) == 1:
        warnings.append(f"'{root}' has only one class folder ('{class_names[0]}'); a "
                        "classifier needs at least 2 classes: add a folder per class")
    text_order = text_order_warning(class_names, root)
    if text_order is not None:
        warnings.append(text_order)
    files: list[str] = []
    labels: list[int] = []
    sizes: list[int] = []
    mtimes: list[int] = []
    skipped: list[SkippedFile] = []
    # Serial on purpose: stat() dominates, and threads measured slower here (GIL hand-offs
    # between very short calls).
    per_class: list[tuple[list[tuple[str, int, int]], list[SkippedFile]]] = []
    real_root = os.path.realpath(root)
    for name in class_names:
        found: list[tuple[str, int, int]] = []
        class_skipped: list[SkippedFile] = []
        _walk(str(root / name), name + os.sep, found, class_skipped, "", real_root)
        per_class.append((found, class_skipped))
    for index, (found, class_skipped) in enumerate(per_class):
        skipped.extend(class_skipped)
        if not found:
            raise DataError(f"class folder '{root / class_names[index]}' has no files; put "
                            "its images in it or remove the folder")
        files.extend(rel for rel, _, _ in found)
        sizes.extend(size for _, size, _ in found)
        mtimes.extend(mtime for _, _, mtime in found)
        labels.extend([index] * len(found))
    return _Listing(root, class_names, files, np.asarray(labels, dtype=np.int64), sizes,
                    mtimes, skipped, warnings)
