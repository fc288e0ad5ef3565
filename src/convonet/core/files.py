"""Atomic file writes, shared by params, models' sidecars and run records."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from convonet.core.storage import writing


def atomic_write_text(path: str | os.PathLike[str], text: str) -> None:
    """Write via a temp file in the same folder and rename it over ``path``.

    A crash or a full disk leaves the old file or the new one, never half of either, and
    no temp file behind. An ``OSError`` names ``path`` ("No space left on device: '<file>'").
    """
    path = Path(path)
    with writing(path):  # a full disk names this file, never the temp one
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        try:
            with os.fdopen(fd, "w", encoding="utf-8", newline="") as fh:
                fh.write(text)
                fh.flush()
                os.fsync(fh.fileno())
            os.chmod(tmp, 0o644)  # mkstemp makes 0600; these files are meant to be shared
            os.replace(tmp, path)
        except BaseException as exc:
            Path(tmp).unlink(missing_ok=True)
            if isinstance(exc, OSError) and exc.filename is None:
                exc.filename = str(path)
            raise
