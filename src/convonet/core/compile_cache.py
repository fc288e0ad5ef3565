"""Compile once: jax's persistent compilation cache in the user's cache folder.

On the jax backend the first training step of an architecture and batch size is compiled
(seconds on a GPU: 8 s for the reference CNN on an H200 through ``fit``). With the
compiled code kept on disk, a second run, a resumed run and every tuning run after the
first load it instead. ``CONVONET_COMPILE_CACHE`` moves the folder (a path) or turns the
cache off (``off``); the default is ``<user cache folder>/convonet/jax-compile-cache``.

Set up once per process, before the first compile: jax decides on its first compile
whether the cache is used, so a compile before the set-up (a loaded model's initializers)
is undone here with jax's ``reset_cache``. Other backends are left alone.
"""

from __future__ import annotations

import logging
import os
import threading
from pathlib import Path

log = logging.getLogger(__name__)

#: The setting: a folder, or ``off``.
ENV = "CONVONET_COMPILE_CACHE"
#: Cache every compile, however quick: the tiny train step of a small model included (jax's
#: default of 1 s would skip it on a GPU, where it matters, and on any small model).
MIN_COMPILE_SECONDS = 0.0

_lock = threading.Lock()
_set_up = False
_folder: Path | None = None
_problem: str | None = None


def compile_cache_dir() -> Path | None:
    """Where the compile cache lives (``CONVONET_COMPILE_CACHE``), or None when it is off."""
    value = os.environ.get(ENV, "").strip()
    if value.lower() == "off":
        return None
    if value:
        return Path(value).expanduser()
    import platformdirs

    return Path(platformdirs.user_cache_dir("convonet")) / "jax-compile-cache"


def ensure_compile_cache() -> Path | None:
    """Turn the cache on (jax backend only, once per process); the folder used, or None.

    A folder that cannot be made or written leaves the cache off, with a notice for the
    caller to show (``take_notice``): training works the same, it only compiles anew.
    """
    global _set_up, _folder, _problem
    with _lock:
        if _set_up:
            return _folder
        _set_up = True
        import keras

        if keras.config.backend() != "jax":
            return None
        folder = compile_cache_dir()
        if folder is None:
            return None
        try:
            folder.mkdir(parents=True, exist_ok=True)
            probe = folder / f".probe-{os.getpid()}"
            probe.write_bytes(b"")
            probe.unlink()
        except OSError as exc:
            _problem = (f"The compile cache folder {folder} cannot be written "
                        f"({exc.strerror or exc}), so each run compiles its training step "
                        f"anew. Set {ENV} to a writable folder, or to off.")
            log.warning("%s", _problem)
            return None
        _turn_on(folder)
        _folder = folder
        return folder


def _turn_on(folder: Path) -> None:
    import jax
    from jax.experimental.compilation_cache import compilation_cache

    jax.config.update("jax_compilation_cache_dir", str(folder))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", MIN_COMPILE_SECONDS)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", -1)  # no size floor
    # No size cap: jax's cap needs the filelock package, and without it every cache read
    # fails. An entry is a few MB per architecture and batch size; the folder may be
    # deleted at any time.
    compilation_cache.reset_cache()  # forget a "not used" decided by an earlier compile


def take_notice() -> str | None:
    """The set-up's problem, once (the next call returns None)."""
    global _problem
    with _lock:
        text, _problem = _problem, None
        return text
