"""Datasets: class-per-folder image trees loaded into float32 arrays (the seed's DataPrep).

A dataset root holds one sub-folder per class. Class index = Python's ``sorted()`` order of the
folder names (as ``keras.utils.image_dataset_from_directory`` does); numbered folders whose
text order is not their number order (0, 1, 10, 2 ...) keep it, with a warning that lists
the index -> folder table (``text_order_warning``). Every image is decoded
with Pillow, converted to the configured colour mode, resized to the configured size and
scaled to 0..1. Files that cannot be used are skipped with a reason, never fatal.

CONTRACT (other modules rely on it):

    @dataclass
    class SkippedFile:
        path: Path
        reason: str

    @dataclass
    class Dataset:
        x: np.ndarray            # float32, shape (n, height, width, channels), values 0..1
        y: np.ndarray            # int64, shape (n,), class index = sorted() folder order
        class_names: list[str]   # index -> folder name
        root: Path | None
        skipped: list[SkippedFile]
        warnings: list[str]
        fingerprint: str         # hash of file names, sizes, mtimes and image settings
        @property image_shape -> tuple[int, int, int]
        @property num_classes -> int
        @property counts -> list[int]   # images per class index
        def __len__ -> int

    class DataPrep:
        def __init__(self, data_params: DataParams, *, cache_dir: Path | None = None): ...
        def prep_data(self, which: str = "train", report=no_report, cancel=None) -> Dataset
            # which = "train" | "test"; raises DataError (a ValueError naming the folder)

Image conversion rules (one place, so the UI's help can quote them):

- 8-bit modes (1, L, P, RGB, CMYK, YCbCr, HSV ...) convert with Pillow; colour to grayscale
  uses Pillow's ITU-R 601-2 luma, grayscale to RGB repeats the channel.
- Transparency (RGBA, LA, PA, a palette or tRNS transparent colour) is composited on black,
  so a transparent pixel reads 0 whatever colour it happens to store (MNIST-style strokes on
  black stay as they are).
- 16-bit modes (I;16, I;16B ...) scale 0..65535 to 0..1. Mode I (32-bit integer, what some
  readers give for 16-bit data) is taken as 16-bit and clipped to 0..65535. Mode F (float)
  is taken as 0..1 data and clipped.
- Every image is resized (bilinear, antialiased when shrinking) to ``image_size``; a warning
  says how many differed from it.
- Images over ``MAX_PIXELS`` are skipped before decoding (Pillow alone only warns up to
  178 Mpx); animated files use their first frame.

Test sets are matched to training classes by index: ``match_classes`` (called by
``prep_data("test", train_classes=...)``) warns and lists the pairs when names differ, and
raises ``DataError`` naming both lists when the counts differ.

The decoded, unshuffled arrays of a folder are cached on disk (one folder of ``.npy`` files
per key, written atomically) keyed by the relative names, sizes and mtimes of its files and
the image settings, so a reload skips decoding; any changed file changes the key.
"""

from __future__ import annotations

import concurrent.futures as cf
import hashlib
import json
import multiprocessing as mp
import os
import re
import shutil
import sys
import tempfile
import threading
import time
import warnings
from collections import Counter
from collections.abc import Sequence
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, UnidentifiedImageError

from convonet.core.errors import ConvonetError
from convonet.core.events import (
    Cancelled,
    CancelToken,
    LoadProgress,
    Notice,
    Reporter,
    no_report,
)
from convonet.core.params import DataParams

#: Our own decode limit, far below Pillow's 178 Mpx bomb error: a 40 Mpx RGB image is
#: already 480 MB as float32 before resizing.
MAX_PIXELS = 40_000_000

#: Bump when the cached arrays' meaning changes (conversion rules, layout).
CACHE_VERSION = 1

_HIGH_DEPTH_16 = ("I;16", "I;16L", "I;16B", "I;16N")
_ALPHA_MODES = ("RGBA", "LA", "PA", "RGBa", "La")
_PROGRESS_EVERY_S = 0.25


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


def estimate_bytes(n_images: int, image_size: Sequence[int], channels: int) -> int:
    """Memory the float32 array of ``n_images`` will take, to warn before loading."""
    h, w = int(image_size[0]), int(image_size[1])
    return int(n_images) * h * w * int(channels) * 4


# ---- the memory guard ------------------------------------------------------------------
#: Refuse a load whose float32 arrays would take more than this share of the memory
#: available: decoding holds the 8-bit pixels and the float32 copy at once, and training
#: needs room of its own besides.
MEMORY_SHARE = 0.5

#: cgroup v1 writes "no limit" as a huge number rather than "max".
_NO_CGROUP_LIMIT = 1 << 60


def human_bytes(n: float) -> str:
    """1024-based, one decimal: "89.9 GB" (the figure the memory guard names)."""
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} GB"


def _meminfo_available(path: Path) -> int | None:
    try:
        with open(path, encoding="ascii") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


def _cgroup_room(root: Path) -> int | None:
    """What a container's memory limit still allows, or None when there is no limit.

    Usage counts page cache the kernel would reclaim first, so the inactive file pages are
    taken off it (as ``docker stats`` does).
    """
    for limit_name, usage_name, stat_name, inactive_key in (
            ("memory.max", "memory.current", "memory.stat", "inactive_file"),
            ("memory/memory.limit_in_bytes", "memory/memory.usage_in_bytes",
             "memory/memory.stat", "total_inactive_file")):
        try:
            limit_text = (root / limit_name).read_text().strip()
            usage = int((root / usage_name).read_text())
        except (OSError, ValueError):
            continue
        if limit_text == "max" or not limit_text.isdigit() \
                or int(limit_text) >= _NO_CGROUP_LIMIT:
            return None
        inactive = 0
        try:
            for line in (root / stat_name).read_text().splitlines():
                key, _, value = line.partition(" ")
                if key == inactive_key:
                    inactive = int(value)
                    break
        except (OSError, ValueError):
            pass
        return max(0, int(limit_text) - max(0, usage - inactive))
    return None


def available_memory(meminfo: str | os.PathLike[str] = "/proc/meminfo",
                     cgroup: str | os.PathLike[str] = "/sys/fs/cgroup") -> int | None:
    """Bytes a load can still take, or None where the system does not say.

    Linux's MemAvailable counts the page cache the kernel hands back (free pages alone
    would refuse loads on a machine that has just read many files); a container's memory
    limit caps it. Elsewhere, the free pages ``sysconf`` reports.
    """
    found = _meminfo_available(Path(meminfo))
    if found is None:
        try:
            found = int(os.sysconf("SC_AVPHYS_PAGES")) * int(os.sysconf("SC_PAGE_SIZE"))
        except (ValueError, OSError, AttributeError):
            found = None
    room = _cgroup_room(Path(cgroup))
    if room is not None:
        found = room if found is None else min(found, room)
    return found


def check_memory(n_images: int, params: DataParams, root: Path,
                 available: int | None) -> None:
    """Refuse a load whose float32 arrays would not fit comfortably in ``available`` bytes.

    Called after listing and before anything is allocated, so an image_size of 4096x4096
    ends with the figure and what to change instead of the kernel killing the process.
    ``available`` None (the system does not say) lets every load through.
    """
    if available is None:
        return
    need = estimate_bytes(n_images, params.image_size, params.channels)
    room = MEMORY_SHARE * available
    if need <= room:
        return
    h, w = (int(v) for v in params.image_size)
    c = int(params.channels)
    ways: list[str] = []
    scale = (room / need) ** 0.5  # the same shape, scaled down until it fits
    fit_h, fit_w = int(h * scale), int(w * scale)
    if fit_h >= 1 and fit_w >= 1:
        ways.append(f"a smaller image_size in the data params (at most {fit_h}x{fit_w} fits)")
    if c == 3:
        ways.append("color_mode grayscale (a third of the memory)")
    fit_n = int(room // estimate_bytes(1, (h, w), c))
    if fit_n >= 1:
        ways.append(f"fewer images (at most {fit_n:,} at this size)")
    if len(ways) > 2:
        advice = "use " + ", ".join(ways[:-1]) + ", or " + ways[-1]
    elif ways:
        advice = "use " + " or ".join(ways)
    else:
        advice = "close other programs to free memory, or use a machine with more"
    raise DataError(
        f"loading {n_images:,} images of '{root}' at {h}x{w}x{c} needs about "
        f"{human_bytes(need)} of memory, more than half of the {human_bytes(available)} "
        f"available; {advice}")


def default_cache_dir() -> Path:
    """CONVONET_CACHE_DIR, else the user's cache folder: datasets are big, not config."""
    env = os.environ.get("CONVONET_CACHE_DIR")
    if env:
        return Path(env).expanduser()
    import platformdirs

    return Path(platformdirs.user_cache_dir("convonet")) / "datasets"


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


def shuffle_arrays(x: np.ndarray, y: np.ndarray, seed: int = 42, *,
                   in_place: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """The same seeded permutation applied to images and labels.

    New arrays, unless ``in_place``: then the rows of ``x`` are moved within it (when it
    is writeable), so a freshly decoded set is never held twice in memory (3,000 RGB
    128x128 images are 590 MB of float32). Both give the same order.
    """
    perm = np.random.default_rng(seed).permutation(len(y))
    if in_place and x.flags.writeable and len(x) == len(perm):
        permute_rows(x, perm)
        return x, y[perm]
    return x[perm], y[perm]


def gather_float32(x: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """``x[rows]`` as float32 in 0..1; uint8 rows (the cache's 8-bit form) are divided by
    255 on the way, chunk by chunk, so no second full-size array is made."""
    if x.dtype != np.uint8:
        return np.asarray(x[rows], dtype=np.float32)
    out = np.empty((len(rows), *x.shape[1:]), dtype=np.float32)
    chunk = _rows_per_chunk(out)
    for start in range(0, len(rows), chunk):
        to_float32(x[rows[start:start + chunk]], out=out[start:start + chunk])
    return out


def _with_wide_rows(x: np.ndarray, wide: dict[int, np.ndarray]) -> np.ndarray:
    """The decoded uint8 rows, or, when some images were 16-bit or float, all rows as
    float32 with those images' own values put in."""
    if not wide:
        return x
    out = gather_float32(x, np.arange(len(x)))
    for i, arr in wide.items():
        out[i] = arr
    return out


def permute_rows(x: np.ndarray, perm: np.ndarray) -> None:
    """``x[:] = x[perm]`` without a second copy of ``x``: follows each cycle of the
    permutation with one row held aside (about a microsecond of Python per row)."""
    placed = np.zeros(len(perm), dtype=bool)
    for start in range(len(perm)):
        if placed[start] or perm[start] == start:
            continue
        held = x[start].copy()
        i = start
        while True:
            placed[i] = True
            j = int(perm[i])
            if j == start:
                x[i] = held
                break
            x[i] = x[j]
            i = j


def stratified_split(y: np.ndarray, share: float, seed: int = 42) -> tuple[np.ndarray,
                                                                            np.ndarray]:
    """Indices (train, test) holding ``share`` of each class out, seeded.

    Each class with at least two images keeps at least one on each side, so a small class
    never vanishes from either set.
    """
    rng = np.random.default_rng(seed)
    train_idx: list[np.ndarray] = []
    test_idx: list[np.ndarray] = []
    for c in np.unique(y):
        idx = np.flatnonzero(y == c)
        idx = idx[rng.permutation(len(idx))]
        k = int(round(len(idx) * share))
        if len(idx) >= 2 and share > 0:
            k = min(max(k, 1), len(idx) - 1)
        else:
            k = 0
        test_idx.append(idx[:k])
        train_idx.append(idx[k:])
    return np.sort(np.concatenate(train_idx)), np.sort(np.concatenate(test_idx))


# ---- decoding (module level so a process pool can pickle it) ---------------------------
class _Skip(Exception):
    """One file cannot be used; the message is the reason shown to the user."""


@dataclass(frozen=True)
class _Info:
    """What decoding learned about one file, for the warnings."""

    size: tuple[int, int]  # (height, width) as stored
    alpha: bool


def extract_image(path: str | os.PathLike[str], image_size: Sequence[int], color_mode: str,
                  max_pixels: int = MAX_PIXELS, *, keep_8_bit: bool = False
                  ) -> tuple[np.ndarray, _Info]:
    """Decode one file to float32 (h, w, c) in 0..1 (the seed's extractImage).

    With ``keep_8_bit`` an 8-bit image comes back as its uint8 values 0..255 instead (the
    loader's compact form: a quarter of the bytes to move, cache and send between
    processes); 16-bit and float images are float32 either way. Raises ``_Skip`` with a
    readable reason when the file cannot be used.
    """
    try:
        with Image.open(path) as im:
            w0, h0 = im.size
            if w0 * h0 > max_pixels:
                raise _Skip(f"image is {w0}x{h0} = {w0 * h0 / 1e6:.1f} Mpx, over the "
                            f"{max_pixels / 1e6:g} Mpx limit; downscale it")
            if im.format == "JPEG" and im.mode in ("L", "RGB", "CMYK", "YCbCr"):
                # Let the JPEG decoder scale down by 1/2, 1/4 or 1/8 (never below the
                # target size) and convert to the wanted mode while decoding: a large photo
                # resized to 128x128 then decodes several times faster.
                im.draft("L" if color_mode == "grayscale" else "RGB",
                         (int(image_size[1]), int(image_size[0])))
            im.load()
            arr, alpha = _convert(im, (int(image_size[0]), int(image_size[1])), color_mode,
                                  keep_8_bit)
    except _Skip:
        raise
    except UnidentifiedImageError:
        raise _Skip("not an image Pillow can read (unknown format or corrupt header)") \
            from None
    except Image.DecompressionBombError as exc:
        raise _Skip(f"too large to decode safely: {exc}") from None
    except OSError as exc:
        text = str(exc)
        if "truncated" in text or "broken data stream" in text:
            raise _Skip(f"truncated or damaged image ({text})") from None
        raise _Skip(f"cannot be read: {text}") from None
    except Exception as exc:  # noqa: BLE001 - a decoder failure in one file must not stop the load
        raise _Skip(f"cannot be decoded: {type(exc).__name__}: {exc}") from None
    return arr, _Info((h0, w0), alpha)


def _convert(im: Image.Image, size: tuple[int, int], color_mode: str,
             keep_8_bit: bool = False) -> tuple[np.ndarray, bool]:
    """Pillow image -> float32 (h, w, c) in 0..1 (uint8 0..255 for 8-bit data when
    ``keep_8_bit``); also whether it had transparency."""
    h, w = size
    channels = 1 if color_mode == "grayscale" else 3
    mode = im.mode
    if mode in _HIGH_DEPTH_16 or mode in ("I", "F"):
        raw = np.asarray(im)
        if mode == "F":
            f = np.clip(raw.astype(np.float32), 0.0, 1.0)
        else:
            f = np.clip(raw.astype(np.float32), 0.0, 65535.0) * np.float32(1.0 / 65535.0)
        if f.ndim == 3:  # multi-band high-depth data: average the bands
            f = f.mean(axis=2, dtype=np.float32)
        if f.shape != (h, w):
            fim = Image.fromarray(np.ascontiguousarray(f, dtype=np.float32))
            f = np.asarray(fim.resize((w, h), Image.Resampling.BILINEAR), dtype=np.float32)
            f = np.clip(f, 0.0, 1.0)
        out = f.reshape(h, w, 1)
        if channels == 3:
            out = np.repeat(out, 3, axis=2)
        return out, False
    target = "L" if channels == 1 else "RGB"
    alpha = mode in _ALPHA_MODES or ("transparency" in im.info and mode in ("P", "L", "RGB"))
    if alpha:
        rgba = im.convert("RGBA")
        black = Image.new("RGBA", rgba.size, (0, 0, 0, 255))
        im = Image.alpha_composite(black, rgba).convert(target)
    elif mode != target:
        im = im.convert(target)
    if im.size != (w, h):
        im = im.resize((w, h), Image.Resampling.BILINEAR)
    values = np.asarray(im).reshape(h, w, channels)
    if keep_8_bit:
        return values, alpha
    return to_float32(values), alpha


def to_float32(values: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """uint8 0..255 -> float32 0..1. Always this one product, so a set decoded, cached or
    converted later holds the very same numbers."""
    return np.multiply(values, np.float32(1.0 / 255.0), out=out, dtype=np.float32)


#: What decoding a run of files gives besides the pixels: per file the skip reason (or
#: None) and the info, and the rows that are not 8-bit (16-bit, float) as float32.
_Decoded = tuple[list[str | None], list[_Info | None], dict[int, np.ndarray]]


def _decode_chunk(paths: Sequence[str], image_size: Sequence[int], color_mode: str,
                  max_pixels: int) -> tuple[np.ndarray, list[str | None], list[_Info | None],
                                            dict[int, np.ndarray]]:
    """Decode a run of files into one new uint8 array (for a process pool, which must send
    the rows back); see ``_decode_into``."""
    h, w = int(image_size[0]), int(image_size[1])
    channels = 1 if color_mode == "grayscale" else 3
    x = np.empty((len(paths), h, w, channels), dtype=np.uint8)
    reasons, infos, wide = _decode_into(x, paths, image_size, color_mode, max_pixels)
    return x, reasons, infos, wide


def _decode_into(out: np.ndarray, paths: Sequence[str], image_size: Sequence[int],
                 color_mode: str, max_pixels: int) -> _Decoded:
    """Decode a run of files straight into the uint8 rows of ``out`` (threads share the
    result array, so nothing is copied twice). Rows of skipped files are zero; images
    that are not 8-bit leave a zero row and come back as float32 rows, by index."""
    reasons: list[str | None] = []
    infos: list[_Info | None] = []
    wide: dict[int, np.ndarray] = {}
    for i, p in enumerate(paths):
        try:
            arr, info = extract_image(p, image_size, color_mode, max_pixels, keep_8_bit=True)
        except _Skip as exc:
            out[i] = 0
            reasons.append(str(exc))
            infos.append(None)
            continue
        if arr.dtype == np.uint8:
            out[i] = arr
        else:
            out[i] = 0
            wide[i] = arr
        reasons.append(None)
        infos.append(info)
    return reasons, infos, wide


def _stderr_has_descriptor() -> bool:
    try:
        return sys.stderr is not None and sys.stderr.fileno() >= 0
    except (AttributeError, OSError, ValueError):
        return False


def _quiet_decoder(silence_stderr: bool) -> None:
    """Pool initializer: a decoding process never writes to the terminal when the parent
    draws on it (the app); skip reasons come back as values, not as printed warnings."""
    warnings.simplefilter("ignore")
    if silence_stderr:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, 2)
        os.close(devnull)


_pool_start_lock = threading.Lock()


def decoding_process_pool(workers: int) -> cf.ProcessPoolExecutor:
    """A process pool for decoding that also starts inside a running Textual app.

    multiprocessing hands ``sys.stderr``'s file descriptor to the helper processes it
    starts (the resource tracker, the fork server). Textual replaces ``sys.stderr`` with an
    object whose ``fileno()`` is -1, and the start then fails with "bad value(s) in
    fds_to_keep". So the helpers are started here, with ``sys.stderr`` pointing at the
    null device for that moment (a print from another thread during those milliseconds
    is dropped rather than drawn over the app), and the decoding processes themselves
    write nothing to the terminal. Not fork: the app has Keras's threads running, and
    forking them can deadlock.
    """
    ctx_name = "forkserver" if "forkserver" in mp.get_all_start_methods() else "spawn"
    ctx = mp.get_context(ctx_name)
    in_app = not _stderr_has_descriptor()
    if in_app:
        from multiprocessing import resource_tracker

        with _pool_start_lock, open(os.devnull, "w") as devnull:
            saved = sys.stderr
            sys.stderr = devnull
            try:
                resource_tracker.ensure_running()
                if ctx_name == "forkserver":
                    from multiprocessing import forkserver

                    forkserver.ensure_running()
            finally:
                sys.stderr = saved
    return cf.ProcessPoolExecutor(max_workers=workers, mp_context=ctx,
                                  initializer=_quiet_decoder, initargs=(in_app,))


# ---- listing -------------------------------------------------------------------------
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


def content_key(listing: _Listing, image_size: Sequence[int], color_mode: str,
                max_pixels: int) -> str:
    """Hash of relative names, sizes, mtimes and image settings: the cache key."""
    h = hashlib.sha256()
    h.update(json.dumps({"v": CACHE_VERSION, "size": [int(v) for v in image_size],
                         "mode": color_mode, "max_pixels": int(max_pixels),
                         "classes": listing.class_names}).encode())
    for rel, size, mtime in zip(listing.files, listing.sizes, listing.mtimes, strict=True):
        h.update(f"\n{rel}\0{size}\0{mtime}".encode("utf-8", "surrogateescape"))
    return h.hexdigest()[:24]


# ---- the folder's decoded arrays -------------------------------------------------------
@dataclass
class _Loaded:
    """A folder decoded in sorted order, before any split or shuffle. ``x`` is uint8
    0..255 when every image was 8-bit (the cache stores it so), else float32 0..1."""

    x: np.ndarray
    y: np.ndarray
    class_names: list[str]
    skipped: list[SkippedFile]  # decode skips only (listing skips are added by the caller)
    warnings: list[str]
    key: str
    from_cache: bool


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
        """Every file's pixels in listing order: uint8 when all images are 8-bit (the
        usual case), else float32 in 0..1 (see ``extract_image``)."""
        p = self.params
        size = tuple(p.image_size)
        h, w = size
        total = len(paths)
        x = np.empty((total, h, w, p.channels), dtype=np.uint8)
        reasons: list[str | None] = [None] * total
        infos: list[_Info | None] = [None] * total
        wide: dict[int, np.ndarray] = {}
        last = time.monotonic()
        if strategy == "serial":
            for i, path in enumerate(paths):
                if cancel is not None and cancel.cancelled:
                    raise Cancelled()
                rs, fs, ws = _decode_into(x[i:i + 1], [path], size, p.color_mode,
                                          self.max_pixels)
                reasons[i], infos[i] = rs[0], fs[0]
                if ws:
                    wide[i] = ws[0]
                now = time.monotonic()
                if now - last >= _PROGRESS_EVERY_S:
                    last = now
                    report(LoadProgress(i + 1, total, label))
            return _with_wide_rows(x, wide), reasons, infos
        cores = os.cpu_count() or 1
        if strategy == "processes":
            chunk = 512
            executor: cf.Executor = decoding_process_pool(cores)
        else:
            chunk = 32
            executor = cf.ThreadPoolExecutor(max_workers=cores,
                                             thread_name_prefix="convonet-decode")
        done = 0
        try:
            pending: dict[cf.Future[Any], int] = {}
            for start in range(0, total, chunk):
                part = paths[start:start + chunk]
                fut: cf.Future[Any]
                if strategy == "processes":
                    fut = executor.submit(_decode_chunk, part, size, p.color_mode,
                                          self.max_pixels)
                else:  # threads write their rows in place
                    fut = executor.submit(_decode_into, x[start:start + len(part)], part,
                                          size, p.color_mode, self.max_pixels)
                pending[fut] = start
            while pending:
                if cancel is not None and cancel.cancelled:
                    raise Cancelled()
                finished, _ = cf.wait(pending, timeout=0.1, return_when=cf.FIRST_COMPLETED)
                for fut in finished:
                    start = pending.pop(fut)
                    if strategy == "processes":
                        xs, rs, fs, ws = fut.result()
                        x[start:start + len(rs)] = xs
                    else:
                        rs, fs, ws = fut.result()
                    end = start + len(rs)
                    reasons[start:end] = rs
                    infos[start:end] = fs
                    wide.update({start + i: arr for i, arr in ws.items()})
                    done += len(rs)
                now = time.monotonic()
                if now - last >= _PROGRESS_EVERY_S:
                    last = now
                    report(LoadProgress(done, total, label))
        finally:
            executor.shutdown(wait=False, cancel_futures=True)
        return _with_wide_rows(x, wide), reasons, infos

    # ---- the on-disk cache -------------------------------------------------------------
    def _entry(self, key: str) -> Path:
        return self.cache_dir / key

    def _read_cache(self, key: str, listing: _Listing) -> _Loaded | None:
        """The cached arrays for this key, or None (a damaged entry is removed)."""
        entry = self._entry(key)
        meta_path = entry / "meta.json"
        if not meta_path.is_file():
            return None
        try:
            meta = json.loads(meta_path.read_text(encoding="utf-8"))
            # mmap: no copy here; split and shuffle copy the rows they keep.
            x = np.load(entry / "x.npy", mmap_mode="r")
            y = np.load(entry / "y.npy")
            if meta.get("key") != key or len(x) != len(y) \
                    or x.dtype not in (np.float32, np.uint8):
                raise ValueError("cache entry does not match its key")
        except (OSError, ValueError, KeyError):
            # A damaged entry (disk full while another process wrote it, a manual edit):
            # drop it and decode again.
            shutil.rmtree(entry, ignore_errors=True)
            return None
        skipped = [SkippedFile(listing.root / rel, reason) for rel, reason in meta["skipped"]]
        return _Loaded(x, y, list(meta["class_names"]), skipped, list(meta["warnings"]), key,
                       True)

    def _write_cache(self, loaded: _Loaded, listing: _Listing) -> str | None:
        """Store the arrays atomically; return a message instead of failing the load."""
        entry = self._entry(loaded.key)
        if entry.exists():
            return None
        meta = {
            "key": loaded.key,
            "version": CACHE_VERSION,
            "root": str(listing.root),
            "settings": [list(self.params.image_size), self.params.color_mode],
            "class_names": loaded.class_names,
            "skipped": [[os.path.relpath(s.path, listing.root), s.reason]
                        for s in loaded.skipped],
            "warnings": loaded.warnings,
            "created": time.time(),
        }
        tmp: Path | None = None
        try:
            self.cache_dir.mkdir(parents=True, exist_ok=True)
            tmp = Path(tempfile.mkdtemp(prefix=f".{loaded.key}.", dir=self.cache_dir))
            np.save(tmp / "x.npy", loaded.x)  # uint8 for 8-bit images
            np.save(tmp / "y.npy", loaded.y)
            # meta.json last: a reader treats an entry without it as absent.
            (tmp / "meta.json").write_text(json.dumps(meta), encoding="utf-8")
            os.replace(tmp, entry)
            tmp = None
        except OSError as exc:
            return f"dataset cache not written to '{self.cache_dir}' ({exc}); the next load " \
                   "decodes again"
        finally:
            if tmp is not None:
                shutil.rmtree(tmp, ignore_errors=True)
        self._prune(loaded.key, meta)
        return None

    def _prune(self, key: str, meta: dict[str, Any]) -> None:
        """Drop older entries of the same folder and settings: they can never hit again
        unless the files are changed back."""
        try:
            entries = list(self.cache_dir.iterdir())
        except OSError:
            return
        for entry in entries:
            if entry.name == key or entry.name.startswith("."):
                continue
            try:
                other = json.loads((entry / "meta.json").read_text(encoding="utf-8"))
            except (OSError, ValueError):
                continue
            if other.get("root") == meta["root"] and other.get("settings") == meta["settings"]:
                shutil.rmtree(entry, ignore_errors=True)


def _rows_per_chunk(x: np.ndarray, chunk_bytes: int = 8 << 20) -> int:
    """Rows per step of a chunked conversion: a few MB, so temporaries stay in cache."""
    row = max(1, int(np.prod(x.shape[1:])) * 4)
    return max(1, chunk_bytes // row)


def _decode_warnings(infos: list[_Info], size: tuple[int, ...]) -> list[str]:
    """What the user should know about conversions: resizes and transparency."""
    out: list[str] = []
    target = (int(size[0]), int(size[1]))
    sizes = Counter(i.size for i in infos)
    differ = sum(n for s, n in sizes.items() if s != target)
    if differ:
        seen = ", ".join(f"{h}x{w}" for (h, w), _ in sizes.most_common(4) if (h, w) != target)
        out.append(f"{differ} of {len(infos)} images were not {target[0]}x{target[1]} "
                   f"(height x width) and were resized to it (sizes seen: {seen}"
                   f"{', ...' if len(sizes) > 4 else ''})")
    n_alpha = sum(1 for i in infos if i.alpha)
    if n_alpha:
        out.append(f"{n_alpha} image(s) with transparency were composited on black")
    return out
