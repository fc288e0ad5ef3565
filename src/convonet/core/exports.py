"""Exports for tools users already have: TensorBoard logs of training runs.

TensorBoard is optional (the ``tensorboard`` extra: TensorFlow 2.21 no longer installs it).
When it is turned on, by the caller (a ``--tensorboard`` flag) or by
``CONVONET_TENSORBOARD=1``, a training run gets Keras's ``TensorBoard`` callback writing into
``<run folder>/tensorboard``, so ``tensorboard --logdir app_results/runs`` shows every run
side by side, named by its folder. Keras's callback writes through ``tensorflow.summary``
whatever the Keras backend, so it needs TensorFlow as well.

Training's CSVs (history, tuning results, confusion matrix, per-class report) are written
by the run records themselves; this module only adds what needs an optional package.
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

TENSORBOARD_ENV = "CONVONET_TENSORBOARD"
TENSORBOARD_DIR = "tensorboard"
INSTALL_HINT = "python -m pip install 'convonet[tensorboard]'"
_FALSE = {"", "0", "false", "no", "off"}


def tensorboard_requested(flag: bool | None = None) -> bool:
    """``flag`` when the caller has one (a CLI option), else ``$CONVONET_TENSORBOARD``."""
    if flag is not None:
        return bool(flag)
    return os.environ.get(TENSORBOARD_ENV, "").strip().lower() not in _FALSE


def tensorboard_missing() -> str | None:
    """Why TensorBoard logs cannot be written here, or None when they can.

    Checks for the packages without importing them: importing TensorFlow is slow and noisy.
    """
    for package in ("tensorboard", "tensorflow"):
        if importlib.util.find_spec(package) is None:
            return f"{package} is not installed ({INSTALL_HINT})"
    return None


def tensorboard_callbacks(run_dir: str | os.PathLike[str], *, enabled: bool | None = None,
                          on_missing: Callable[[str], None] | None = None) -> list[Any]:
    """``[keras.callbacks.TensorBoard(log_dir=run_dir/'tensorboard')]`` when turned on.

    Returns ``[]`` when TensorBoard is off, and also when it is on but not installed: then
    ``on_missing`` (if given) gets a one-line reason to show the user, and training goes on
    without it rather than failing an hours-long run over a missing log.
    """
    if not tensorboard_requested(enabled):
        return []
    why = tensorboard_missing()
    if why is not None:
        if on_missing is not None:
            on_missing(f"No TensorBoard logs: {why}")
        return []
    import keras

    log_dir = Path(run_dir) / TENSORBOARD_DIR
    return [keras.callbacks.TensorBoard(log_dir=str(log_dir), histogram_freq=0,
                                        write_graph=False, update_freq="epoch")]
