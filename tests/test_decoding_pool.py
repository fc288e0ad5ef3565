"""The process-pool decoder starts where the app runs it: with ``sys.stderr`` replaced by an
object without a file descriptor, as Textual does while an app is running.

Each check runs in a fresh interpreter: once multiprocessing's helper processes (the
resource tracker, the fork server) run in a process, later pools never start them again,
and the failure this guards against ("bad value(s) in fds_to_keep") could not show.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
from PIL import Image

SCRIPT = textwrap.dedent("""
    import sys
    import numpy as np
    from convonet.core.data import DataPrep
    from convonet.core.params import DataParams

    class NoDescriptor:
        # What Textual puts in sys.stderr while an app runs: fileno() is -1.
        def write(self, text): return len(text)
        def flush(self): pass
        def isatty(self): return False
        def fileno(self): return -1

    params = DataParams({"train_dir": sys.argv[1], "image_size": [8, 8]})
    real = sys.stderr
    sys.stderr = NoDescriptor()
    try:
        prep = DataPrep(params, use_cache=False, workers="processes")
        ds = prep.prep_data("train")
        strategy = prep.last_strategy
    finally:
        sys.stderr = real
    serial = DataPrep(params, use_cache=False, workers="serial").prep_data("train")
    assert strategy == "processes", strategy
    assert np.array_equal(ds.x, serial.x) and np.array_equal(ds.y, serial.y)
    print("decoded", len(ds), strategy)
""")


def write_folder(root: Path, classes: int = 3, per_class: int = 100) -> None:
    rng = np.random.default_rng(0)
    for c in range(classes):
        folder = root / f"class_{c}"
        folder.mkdir(parents=True)
        for i in range(per_class):
            pixels = rng.integers(0, 256, (8, 8), dtype=np.uint8)
            Image.fromarray(pixels, mode="L").save(folder / f"{i:03d}.png")


def test_the_process_pool_decodes_with_stderr_replaced_as_textual_does(
        tmp_path: Path) -> None:
    write_folder(tmp_path / "train")
    done = subprocess.run([sys.executable, "-c", SCRIPT, str(tmp_path / "train")],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "decoded 300 processes"
    # nothing of the failure reached the terminal either
    assert "fds_to_keep" not in done.stderr
