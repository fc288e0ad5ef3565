"""Where a trained model is saved by default: one rule for the app and the headless commands.

``convonet train`` saves there, ``evaluate``, ``predict`` and ``classify`` look there, a
resumed training saves where its first start would have, and the app's Save dialog proposes
the same file. The name is readable and cannot clash between data params files that share a
file name in different folders::

    app_input/mnist_data_params.json  ->  RESULTS/mnist-3fa2c1.keras

``mnist`` comes from the params file's name (``_data_params`` and the like dropped) and
``3fa2c1`` is a short hash of the folder the params file is in, so ``a/mnist_data_params.json``
and ``b/mnist_data_params.json`` keep separate models. Params with no file (new, unsaved
ones) give ``RESULTS/model.keras``. Imports neither Keras nor any user interface, so a
headless command can refuse an existing file before Keras loads and before training starts.
"""

from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path
from typing import Any

#: run.json field: where the run's model is saved when the training finishes (headless) and
#: what the app's Save dialog proposes; a resumed training saves to the same file.
SAVE_TO_FIELD = "save_to"


def params_file(data_params: Any) -> Path | None:
    """The data params' file: a ``DataParams`` (its ``path``), a path, or None."""
    if data_params is None:
        return None
    if isinstance(data_params, (str, os.PathLike)):
        return Path(data_params)
    path = getattr(data_params, "path", None)
    return Path(path) if path is not None else None


def model_stem(data_params: Any) -> str:
    """``mnist_data_params.json`` -> ``mnist``; ``data_params.json`` or no file -> ``model``."""
    path = params_file(data_params)
    if path is None:
        return "model"
    stem = re.sub(r"[-_.]?data[-_.]?params", "", path.stem, flags=re.I)
    return stem.strip("-_.") or "model"


def folder_tag(path: Path) -> str:
    """Six hex digits naming the folder ``path`` is in (resolved, so ``./x`` and the full
    path agree): stable across runs, different for another folder."""
    folder = Path(os.path.abspath(path.expanduser())).resolve().parent
    return hashlib.sha256(str(folder).encode("utf-8", "surrogateescape")).hexdigest()[:6]


def model_name(data_params: Any) -> str:
    """The default model file name for these data params: ``mnist-3fa2c1.keras``."""
    path = params_file(data_params)
    if path is None:
        return "model.keras"
    return f"{model_stem(path)}-{folder_tag(path)}.keras"


def default_model_path(results_dir: str | os.PathLike[str], data_params: Any) -> Path:
    """``RESULTS/<name>-<folder hash>.keras``: where a model trained on these params goes."""
    return Path(results_dir) / model_name(data_params)


def similar_models(results_dir: str | os.PathLike[str], data_params: Any) -> list[Path]:
    """Other models in the results folder named after the same params file name: the old
    default name ``<name>.keras`` and those of same-named params files in other folders.
    Shown when the default model is missing, so a user finds the one they meant."""
    folder = Path(results_dir)
    stem = model_stem(data_params)
    target = default_model_path(folder, data_params)
    if not folder.is_dir():
        return []
    found = [p for p in folder.glob(f"{glob_escape(stem)}*.keras")
             if p != target and p.is_file()
             and re.fullmatch(re.escape(stem) + r"(-[0-9a-f]{6})?\.keras", p.name)]
    return sorted(found, key=lambda p: p.stat().st_mtime, reverse=True)


def glob_escape(text: str) -> str:
    """``text`` with glob's special characters taken literally."""
    return re.sub(r"([*?\[])", r"[\1]", text)


def run_save_to(info: dict[str, Any], run_path: Path) -> Path:
    """Where a training run's model is saved: its recorded ``save_to``, or, for a run
    recorded before that field existed, ``model.keras`` in the run's results folder."""
    recorded = info.get(SAVE_TO_FIELD)
    if isinstance(recorded, str) and recorded:
        return Path(recorded)
    return Path(run_path).parent.parent / model_name(None)


__all__ = ["SAVE_TO_FIELD", "default_model_path", "model_name", "model_stem", "run_save_to",
           "similar_models"]
