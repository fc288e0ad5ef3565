"""The on-disk cache of decoded folders: one folder of ``.npy`` files per key, written
atomically, keyed by the relative names, sizes and mtimes of the files and the image
settings, so a reload skips decoding and any changed file changes the key."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from convonet.core.data.dataset import SkippedFile
from convonet.core.data.listing import _Listing

#: Bump when the cached arrays' meaning changes (conversion rules, layout).
CACHE_VERSION = 1


def default_cache_dir() -> Path:
    """CONVONET_CACHE_DIR, else the user's cache folder: datasets are big, not config."""
    env = os.environ.get("CONVONET_CACHE_DIR")
    if env:
        return Path(env).expanduser()
    import platformdirs

    return Path(platformdirs.user_cache_dir("convonet")) / "datasets"


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


def read_cache(cache_dir: Path, key: str, listing: _Listing) -> _Loaded | None:
    """The cached arrays for this key, or None (a damaged entry is removed)."""
    entry = cache_dir / key
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


def write_cache(cache_dir: Path, loaded: _Loaded, listing: _Listing,
                settings: list[Any]) -> str | None:
    """Store the arrays atomically; return a message instead of failing the load.

    ``settings`` is ``[image_size, color_mode]``: entries of the same root and settings
    are older versions of this one, dropped once it is written.
    """
    entry = cache_dir / loaded.key
    if entry.exists():
        return None
    meta = {
        "key": loaded.key,
        "version": CACHE_VERSION,
        "root": str(listing.root),
        "settings": settings,
        "class_names": loaded.class_names,
        "skipped": [[os.path.relpath(s.path, listing.root), s.reason]
                    for s in loaded.skipped],
        "warnings": loaded.warnings,
        "created": time.time(),
    }
    tmp: Path | None = None
    try:
        cache_dir.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{loaded.key}.", dir=cache_dir))
        np.save(tmp / "x.npy", loaded.x)  # uint8 for 8-bit images
        np.save(tmp / "y.npy", loaded.y)
        # meta.json last: a reader treats an entry without it as absent.
        (tmp / "meta.json").write_text(json.dumps(meta), encoding="utf-8")
        os.replace(tmp, entry)
        tmp = None
    except OSError as exc:
        return f"dataset cache not written to '{cache_dir}' ({exc}); the next load " \
               "decodes again"
    finally:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)
    _prune(cache_dir, loaded.key, meta)
    return None


def _prune(cache_dir: Path, key: str, meta: dict[str, Any]) -> None:
    """Drop older entries of the same folder and settings: they can never hit again
    unless the files are changed back."""
    try:
        entries = list(cache_dir.iterdir())
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
