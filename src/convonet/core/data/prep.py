"""DataPrep: loads the training and test sets the data params point at (the seed's
DataPrep): list, guard memory, decode or read the cache, split and shuffle."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path

import numpy as np

from convonet.core.data.arrays import gather_float32, permute_rows, stratified_split
from convonet.core.data.cache import (
    _Loaded,
    content_key,
    default_cache_dir,
    read_cache,
    write_cache,
)
from convonet.core.data.dataset import DataError, Dataset, SkippedFile, match_classes
from convonet.core.data.decoding import MAX_PIXELS, _decode_warnings, _Info
from convonet.core.data.listing import _Listing, list_folder
from convonet.core.data.memory import available_memory, check_memory
from convonet.core.data.parallel import decode_files
from convonet.core.events import CancelToken, LoadProgress, Notice, Reporter, no_report
from convonet.core.params import DataParams


class DataPrep:
    """Loads the training and test sets the data params point at (the seed's DataPrep).

    ``workers`` picks how images are decoded: "auto" (serial for small sets, a process pool
    for many small files, where Python overhead dominates, and threads for large images,
    where Pillow releases the GIL), or "serial" / "threads" / "processes".
    """

    def __init__(self, data_params: DataParams, *, cache_dir: Path | None = None,
                 use_cache: bool = True, workers: str = "auto",
                 max_pixels: int = MAX_PIXELS) -> None:
        if workers not in ("auto", "serial", "threads", "processes"):
            raise ValueError(f"workers must be auto/serial/threads/processes, got {workers!r}")
        self.params = data_params
        self.cache_dir = Path(cache_dir) if cache_dir is not None else default_cache_dir()
        self.use_cache = use_cache
        self.workers = workers
        self.max_pixels = int(max_pixels)
        #: Images decoded by the last load (0 after a cache hit); tests and timings read it.
        self.decoded = 0
        #: How the last load decoded: "cache", "serial", "threads" or "processes".
        self.last_strategy = ""

    # ---- the seed's prepData -----------------------------------------------------------
    def prep_data(self, which: str = "train", report: Reporter = no_report,
                  cancel: CancelToken | None = None, *, seed: int = 42,
                  train_classes: Sequence[str] | None = None,
                  classes_of: str = "training") -> Dataset:
        """Load, convert, split if asked, and shuffle one set.

        ``which`` is "train" or "test". With no test folder and ``test_split`` > 0, both
        come from the training folder by a stratified split seeded with ``seed``, so
        loading "train" then "test" gives disjoint sets. ``train_classes`` (the training
        set's class names, or a saved model's when ``classes_of`` is "model") makes a test
        load match classes by index (see match_classes).
        """
        if which not in ("train", "test"):
            raise ValueError(f"which must be 'train' or 'test', got {which!r}")
        p = self.params
        label = "training" if which == "train" else "test"
        split = p.test_path is None and p.test_split > 0
        if which == "train" or split:
            root = p.train_path
            if root is None:
                raise DataError("no training folder is set: set train_dir in the data params "
                                "to a folder with one sub-folder per class")
        else:
            root = p.test_path
            if root is None:
                raise DataError("no test folder is set: set test_dir in the data params, or "
                                "set test_split to hold out a share of the training folder")
        listing = list_folder(root)
        # Before anything is allocated (a cache hit needs the same float32 arrays).
        check_memory(len(listing.files), p, root, available_memory())
        loaded = self.load_images(listing, report, cancel, label=label)
        ds = self.transform(loaded, listing, which=which, split=split, seed=seed)
        if which == "test" and train_classes is not None:
            pairs = match_classes(list(train_classes), ds.class_names,
                                  test_root=ds.root, classes_of=classes_of)
            if pairs:
                ds.class_matching = pairs
                whose = "the model's classes" if classes_of == "model" else "the training ones"
                ds.warnings.append(
                    f"test class names differ from {whose}; matched by sorted "
                    "order: " + ", ".join(f"{i}: {a} <- {b}" for i, (a, b) in enumerate(
                        zip(train_classes, ds.class_names, strict=True)) if a != b))
        for text in ds.warnings:
            report(Notice(text))
        if ds.skipped:
            report(Notice(f"skipped {len(ds.skipped)} file(s) in '{root}' (see the list of "
                          "skipped files)"))
        return ds

    # ---- the seed's loadImages ---------------------------------------------------------
    def load_images(self, listing: _Listing, report: Reporter = no_report,
                    cancel: CancelToken | None = None, *, label: str = "") -> _Loaded:
        """Decode every listed file, or read the ready arrays from the cache."""
        p = self.params
        size = tuple(p.image_size)
        key = content_key(listing, size, p.color_mode, self.max_pixels)
        total = len(listing.files)
        if self.use_cache:
            hit = self._read_cache(key, listing)
            if hit is not None:
                self.decoded = 0
                self.last_strategy = "cache"
                report(LoadProgress(total, total, label))
                return hit
        if cancel is not None:
            cancel.raise_if_cancelled()
        base = str(listing.root) + os.sep
        paths = [base + rel for rel in listing.files]
        strategy = self._strategy(listing)
        report(LoadProgress(0, total, label))
        try:
            x, reasons, infos = self._decode_all(paths, strategy, report, cancel, label)
        except BrokenProcessPool:
            # A process pool cannot start everywhere (e.g. a script without a main guard):
            # threads always work, only slower for tiny images.
            report(Notice("parallel decoding in processes failed; decoding with threads",
                          level="information"))
            strategy = "threads"
            x, reasons, infos = self._decode_all(paths, strategy, report, cancel, label)
        self.decoded = total
        self.last_strategy = strategy
        report(LoadProgress(total, total, label))
        keep = np.array([r is None for r in reasons], dtype=bool)
        skipped = [SkippedFile(listing.root / rel, r)
                   for rel, r in zip(listing.files, reasons, strict=True) if r is not None]
        y = listing.labels
        if not keep.all():
            x, y = x[keep], y[keep]
        counts = np.bincount(y, minlength=len(listing.class_names))
        for index in np.flatnonzero(counts == 0):
            class_dir = listing.root / listing.class_names[index]
            bad = [s for s in skipped if Path(s.path).is_relative_to(class_dir)]
            example = f", e.g. {bad[0].reason}" if bad else ""
            raise DataError(f"class folder '{class_dir}' has no readable images ({len(bad)} "
                            f"file(s) skipped{example}); add images Pillow can read or "
                            "remove the folder")
        warnings = _decode_warnings([i for i in infos if i is not None], size)
        loaded = _Loaded(x, y, list(listing.class_names), skipped, warnings, key, False)
        if self.use_cache:
            err = self._write_cache(loaded, listing)
            if err:
                report(Notice(err, level="information"))
        return loaded

    # ---- the seed's transform ----------------------------------------------------------
    def transform(self, loaded: _Loaded, listing: _Listing, *, which: str, split: bool,
                  seed: int) -> Dataset:
        """Split (when one folder serves both sets) and shuffle with the seed."""
        x, y = loaded.x, loaded.y
        fingerprint = loaded.key
        warnings = list(listing.warnings) + list(loaded.warnings)
        rows: np.ndarray | None = None  # the rows of x this set keeps, before the shuffle
        if split:
            share = float(self.params.test_split)
            train_idx, test_idx = stratified_split(y, share, seed)
            rows = train_idx if which == "train" else test_idx
            y = y[rows]
            fingerprint = hashlib.sha256(
                f"{loaded.key}:{which}:{share}:{seed}".encode()).hexdigest()[:24]
            counts = np.bincount(loaded.y, minlength=len(loaded.class_names))
            small = [n for n, c in zip(loaded.class_names, counts, strict=True)
                     if c < 2]
            if small:
                warnings.append("classes with a single image stay in the training set only: "
                                + ", ".join(small))
        perm = np.random.default_rng(seed).permutation(len(y))  # as shuffle_arrays
        y = y[perm]
        if rows is None and x.dtype == np.float32 and not loaded.from_cache \
                and x.flags.writeable:
            permute_rows(x, perm)  # freshly decoded floats: reordered, never held twice
        else:  # one pass: the rows kept, in shuffled order, converted to float32
            x = gather_float32(x, perm if rows is None else rows[perm])
        return Dataset(x=np.ascontiguousarray(x), y=y.astype(np.int64, copy=False),
                       class_names=list(loaded.class_names), root=listing.root,
                       skipped=list(listing.skipped) + list(loaded.skipped), warnings=warnings,
                       fingerprint=fingerprint, from_cache=loaded.from_cache)

    # ---- decoding strategies -----------------------------------------------------------
    def _strategy(self, listing: _Listing) -> str:
        if self.workers != "auto":
            return self.workers
        n = len(listing.files)
        cores = os.cpu_count() or 1
        if n < 256 or cores < 2:
            return "serial"
        mean_bytes = sum(listing.sizes) / n
        # Measured on 2 cores: 28x28 PNGs decode in ~50 us each, so threads lose to the GIL
        # and a process pool wins once its start-up (~0.3 s) is paid back; large images
        # spend their time in C code that releases the GIL, where threads win.
        if n >= 8000 and mean_bytes < 64 * 1024:
            return "processes"
        return "threads"

    def _decode_all(self, paths: list[str], strategy: str, report: Reporter,
                    cancel: CancelToken | None, label: str
                    ) -> tuple[np.ndarray, list[str | None], list[_Info | None]]:
        p = self.params
        return decode_files(paths, strategy, p.image_size, p.color_mode, p.channels,
                            self.max_pixels, report, cancel, label)

    # ---- the on-disk cache -------------------------------------------------------------
    def _read_cache(self, key: str, listing: _Listing) -> _Loaded | None:
        return read_cache(self.cache_dir, key, listing)

    def _write_cache(self, loaded: _Loaded, listing: _Listing) -> str | None:
        settings = [list(self.params.image_size), self.params.color_mode]
        return write_cache(self.cache_dir, loaded, listing, settings)
