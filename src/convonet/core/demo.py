"""The bundled demo set: scikit-learn's 8x8 digits written as a class-per-folder PNG tree.

A new user gets data -> model -> train -> test in about a minute with no download:
scikit-learn ships the 1,797 digits inside the package. They are upscaled to 28x28 (the
MNIST size the default model expects), split 80/20 per class into ``train/`` and ``test/``,
and written once with a data params and a small hyper params file beside them.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
from PIL import Image

from convonet.core.data import stratified_split
from convonet.core.params import DataParams, HyperParams

#: Bump to rewrite existing demo folders (changed size, split or params).
DEMO_VERSION = 1
DEMO_SIZE = (28, 28)
DEMO_TEST_SHARE = 0.2
DEMO_SEED = 42
_MARKER = ".convonet-demo-complete"

#: Small enough to train in seconds on a laptop CPU; two values on two fields give a
#: four-combination tuning grid.
DEMO_HYPER = {
    "batch_size": 32,
    "epochs": 5,
    "init_rate": "0.02,0.05",
    "decay": 0.0,
    "momentum": 0.9,
    "num_filters": "16,32",
    "kernel_size": 3,
    "num_units": 128,
    "dropout": 0.3,
    "validation_split": 0.2,
    "cv_folds": 3,
    "tuning_share": 0.5,
    "patience": 0,
    "class_weight": "none",
    "seed": DEMO_SEED,
}


def default_demo_dir() -> Path:
    """CONVONET_DATA_DIR/demo, else the user's data folder/demo (data, not cache: keep it)."""
    env = os.environ.get("CONVONET_DATA_DIR")
    if env:
        return Path(env).expanduser() / "demo"
    import platformdirs

    return Path(platformdirs.user_data_dir("convonet")) / "demo"


def demo_params_paths(folder: str | os.PathLike[str]) -> tuple[Path, Path]:
    """The demo's (data params, hyper params) JSON files inside ``folder``."""
    f = Path(folder)
    return f / "demo_data_params.json", f / "demo_hyper_params.json"


def is_complete(folder: str | os.PathLike[str]) -> bool:
    """True when a finished demo of the current version is in ``folder``."""
    marker = Path(folder) / _MARKER
    try:
        info = json.loads(marker.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    data_json, hyper_json = demo_params_paths(folder)
    return (isinstance(info, dict) and info.get("version") == DEMO_VERSION
            and data_json.is_file() and hyper_json.is_file())


def ensure_demo(data_dir: str | os.PathLike[str] | None = None) -> Path:
    """Write the demo set once and return its folder.

    The marker file is written last, so a folder left half-written (a crash, a full disk)
    is written again on the next call. Only ``train/``, ``test/`` and the demo's own files
    are replaced; anything else in the folder is left alone.
    """
    folder = Path(data_dir).expanduser() if data_dir is not None else default_demo_dir()
    if is_complete(folder):
        return folder
    folder.mkdir(parents=True, exist_ok=True)
    (folder / _MARKER).unlink(missing_ok=True)
    for part in ("train", "test"):
        shutil.rmtree(folder / part, ignore_errors=True)

    from sklearn.datasets import load_digits

    digits = load_digits()
    images = np.asarray(digits.images, dtype=np.float64)  # (1797, 8, 8), values 0..16
    labels = np.asarray(digits.target, dtype=np.int64)
    train_idx, test_idx = stratified_split(labels, DEMO_TEST_SHARE, DEMO_SEED)
    pixels = np.clip(np.rint(images / 16.0 * 255.0), 0, 255).astype(np.uint8)
    h, w = DEMO_SIZE
    for part, idx in (("train", train_idx), ("test", test_idx)):
        for c in range(10):
            (folder / part / str(c)).mkdir(parents=True, exist_ok=True)
        for i in idx:
            im = Image.fromarray(pixels[i], "L").resize((w, h), Image.Resampling.BICUBIC)
            im.save(folder / part / str(int(labels[i])) / f"{int(i):04d}.png")

    data_json, hyper_json = demo_params_paths(folder)
    data = DataParams({"train_dir": "train", "test_dir": "test", "image_size": list(DEMO_SIZE),
                       "color_mode": "grayscale", "test_split": 0.0}, path=data_json)
    data.save(data_json)
    HyperParams(DEMO_HYPER, path=hyper_json).save(hyper_json)
    (folder / _MARKER).write_text(json.dumps({"version": DEMO_VERSION,
                                              "train": int(len(train_idx)),
                                              "test": int(len(test_idx))}) + "\n",
                                  encoding="utf-8")
    return folder
