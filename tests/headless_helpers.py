"""Helpers of the tests that run ``convonet`` headless in a child process."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np


def write_tiny_folder(root: Path, classes: int = 3, per_class: int = 24, size: int = 12
                      ) -> Path:
    """Class folders of small PNG bars (one band per class) and their data params file."""
    from PIL import Image

    rng = np.random.default_rng(0)
    band = size // classes
    for k in range(classes):
        folder = root / "train" / f"class_{k}"
        folder.mkdir(parents=True)
        for i in range(per_class):
            pixels = rng.integers(0, 80, (size, size), dtype=np.uint8)
            pixels[k * band:(k + 1) * band - 1, :] += 170
            Image.fromarray(pixels).save(folder / f"{i}.png")
    data = root / "tiny_data_params.json"
    data.write_text(json.dumps({"train_dir": "train", "image_size": [size, size],
                                "color_mode": "grayscale"}), encoding="utf-8")
    return data


def child_env(tmp_path: Path) -> dict[str, str]:
    """The child's own results, cache and config folders, and none of the SSH or tmux
    variables that would add the SSH notice."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("SSH_CONNECTION", "SSH_TTY", "TMUX", "STY")}
    env.update({"CONVONET_RESULTS_DIR": str(tmp_path / "results"),
                "CONVONET_CACHE_DIR": str(tmp_path / "cache"),
                "CONVONET_CONFIG_DIR": str(tmp_path / "config"),
                "TF_CPP_MIN_LOG_LEVEL": "3", "TERM": "xterm-256color", "COLUMNS": "80",
                "LINES": "24"})
    return env


def jax_test_cache() -> Path:
    """jax's compile cache for the tests' child processes, kept between runs beside the
    test data (a cold run compiles for about 30 s of its 45 s)."""
    base = Path(os.environ.get("CONVONET_TEST_DATA",
                               Path.home() / ".cache" / "convonet-tests"))
    return base / "jax-compile-cache"
