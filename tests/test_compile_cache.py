"""Compile once, on the jax backend (child processes: the tests run on TensorFlow).

A recorded training fills the compile cache folder ``CONVONET_COMPILE_CACHE`` names, even
though the model was built (and its initializers compiled) before the task started;
``off`` writes no cache anywhere. The same child also checks that Keras really dispatches
the real path's batches asynchronously on jax (see test_async_dispatch.py).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"

SCRIPT = r"""
import json, sys
import keras
import numpy as np
from convonet.core.data import Dataset
from convonet.core.model import NetModel
from convonet.core.params import HyperParams
from convonet.tasks import execute
from convonet.tasks.train import TrainSpec

decisions = []
original = keras.callbacks.CallbackList.__init__

def init(self, callbacks=None, *args, **kwargs):
    original(self, callbacks, *args, **kwargs)
    if callbacks and any(type(c).__name__ == "_Backup" for c in callbacks):
        decisions.append([self._async_train, self._async_test])

keras.callbacks.CallbackList.__init__ = init
rng = np.random.default_rng(0)
x = rng.random((24, 8, 8, 1), dtype=np.float32)
y = np.repeat(np.arange(3), 8)
x[np.arange(24), y * 2, :, 0] += 1.0
data = Dataset(x=x, y=y, class_names=["a", "b", "c"], root=None)
hp = HyperParams().edit(num_filters=2, num_units=8, epochs=1, batch_size=8,
                        validation_split=0.25, patience=2)
model = NetModel(hp).build(data.image_shape, data.num_classes)  # compiles before the task
events = []
if sys.argv[2] == "train":
    execute(TrainSpec(model=model, hyper_params=hp, dataset=data, validation=True,
                      results_dir=sys.argv[1]),
            report=lambda e: events.append(type(e).__name__))
else:  # the set-up of any task, then a compile that a cache turned on would keep
    try:
        execute(object(), report=lambda e: events.append(type(e).__name__))
    except TypeError:
        pass
    model.predict(x, verbose=0)
import jax
print(json.dumps({"backend": keras.config.backend(), "decisions": decisions,
                  "cache_dir": jax.config.jax_compilation_cache_dir,
                  "notices": events.count("Notice")}))
"""


def _run(tmp_path: Path, cache: str) -> dict[str, object]:
    env = {**os.environ, "KERAS_BACKEND": "jax", "CONVONET_DEVICE_LOOP": "off",
           "CONVONET_COMPILE_CACHE": cache, "XDG_CACHE_HOME": str(tmp_path / "xdg"),
           "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONPATH": str(SRC)}
    # With the cache off, any compile after the set-up shows it writes nothing; a whole
    # training (and the async check) runs only with a folder, to save a child's time.
    what = "train" if cache != "off" else "predict"
    done = subprocess.run([sys.executable, "-c", SCRIPT, str(tmp_path / "results"), what],
                          env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    result: dict[str, object] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def _files(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.rglob("*") if p.is_file()) if folder.exists() else []


@pytest.mark.parametrize("cache", ["folder", "off"])
def test_compile_cache_on_jax(tmp_path: Path, cache: str) -> None:
    folder = tmp_path / "compiled"
    result = _run(tmp_path, str(folder) if cache == "folder" else "off")
    assert result["backend"] == "jax"
    assert result["notices"] == 0
    if cache == "folder":
        # The real path's fit keeps Keras's asynchronous dispatch on (train and validation).
        assert result["decisions"] == [[True, True]]
        assert result["cache_dir"] == str(folder)
        assert any(name.startswith("jit_train_step") for name in _files(folder)), \
            _files(folder)
    else:
        assert result["cache_dir"] is None
        assert _files(folder) == []
        assert _files(tmp_path / "xdg") == []  # not the default folder either


def test_a_cache_folder_that_cannot_be_written_leaves_the_cache_off_with_a_notice(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # In-process (TensorFlow): the jax backend is pretended, and the folder check comes
    # before anything of jax is touched.
    import keras

    from convonet.core import compile_cache
    from convonet.core.events import Notice
    from convonet.tasks import execute

    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    monkeypatch.setenv("CONVONET_COMPILE_CACHE", str(blocker / "cache"))
    monkeypatch.setattr(keras.config, "backend", lambda: "jax")
    monkeypatch.setattr(compile_cache, "_set_up", False)
    monkeypatch.setattr(compile_cache, "_turn_on", lambda folder: pytest.fail("turned on"))
    events: list[object] = []
    with pytest.raises(TypeError):
        execute(object(), report=events.append)  # the notice comes before the task
    assert len(events) == 1 and isinstance(events[0], Notice)
    text = events[0].text  # type: ignore[attr-defined]
    assert text.startswith(f"The compile cache folder {blocker / 'cache'} cannot be written")
    assert text.endswith("Set CONVONET_COMPILE_CACHE to a writable folder, or to off.")
    assert compile_cache.ensure_compile_cache() is None
    assert compile_cache.take_notice() is None  # said once
