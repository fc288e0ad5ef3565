"""The callbacks the real training path installs keep Keras's asynchronous batch dispatch.

One callback with a batch-end hook and no ``async_safe`` flag makes Keras convert every
batch's logs on the training thread for the whole fit (on jax and torch; measured on an
H200: 1.8 s per epoch instead of 1.2 s). Keras decides in ``CallbackList``; TensorFlow
never dispatches asynchronously, so here the decision is taken by Keras's own code with
the backend's thread-safety flag turned on (a jax child process checks it for real in
test_compile_cache.py).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import keras
import keras.src.backend
import pytest
from conftest import make_tiny_set
from task_helpers import train

from convonet.core.model import NetModel
from convonet.core.params import HyperParams
from convonet.core.tuning.folds import fit_params


def _blocking(callbacks: list[Any]) -> list[str]:
    """The callbacks that make Keras dispatch batches synchronously (by Keras's rule)."""
    hooks = ("on_batch_end", "on_train_batch_end", "on_test_batch_end")
    return [type(c).__name__ for c in callbacks if not getattr(c, "async_safe", False)
            and any(not keras.src.utils.is_default(getattr(c, h)) for h in hooks)]


def _keras_decision(callbacks: list[Any], monkeypatch: pytest.MonkeyPatch
                    ) -> tuple[bool, bool]:
    """(async train batches, async test batches) as Keras decides on a thread-safe backend."""
    with monkeypatch.context() as patch:
        patch.setattr(keras.src.backend, "IS_THREAD_SAFE", True)
        listed = keras.callbacks.CallbackList(callbacks)
    return listed._async_train, listed._async_test


def _record_fit_callbacks(monkeypatch: pytest.MonkeyPatch) -> list[list[Any]]:
    """Every callback list a fit builds from now on."""
    seen: list[list[Any]] = []
    original = keras.callbacks.CallbackList.__init__

    def init(self: Any, callbacks: Any = None, *args: Any, **kwargs: Any) -> None:
        if callbacks:
            seen.append(list(callbacks))
        original(self, callbacks, *args, **kwargs)

    monkeypatch.setattr(keras.callbacks.CallbackList, "__init__", init)
    return seen


def test_the_real_training_path_keeps_async_dispatch(tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    # Checkpoints and the history CSV come with every recorded run; early stopping with
    # patience, the time-based decay with decay > 0, validation on.
    data = make_tiny_set(per_class=12, size=8)
    hp = HyperParams().edit(num_filters=2, num_units=8, epochs=1, batch_size=8,
                            validation_split=0.25, patience=2, decay=0.1)
    model = NetModel(hp).build(data.image_shape, data.num_classes)
    seen = _record_fit_callbacks(monkeypatch)
    train(model, hp, data, True, tmp_path / "results")
    fit_lists = [cbs for cbs in seen
                 if any(type(c).__name__ == "_Backup" for c in cbs)]
    assert fit_lists, "the recorded training installed no checkpoint callback"
    callbacks = fit_lists[0]
    names = {type(c).__name__ for c in callbacks}
    assert {"_Backup", "_HistoryAppend", "_EarlyStopping", "_TimeDecay"} <= names
    assert _blocking(callbacks) == []
    assert _keras_decision(callbacks, monkeypatch) == (True, True)


def test_the_tuning_fold_callbacks_keep_async_dispatch(monkeypatch: pytest.MonkeyPatch
                                                       ) -> None:
    import numpy as np

    from convonet.core.events import CancelToken

    config = {"epochs": 1, "batch_size": 8, "init_rate": 0.01, "decay": 0.1,
              "class_weight": "balanced"}
    callbacks = fit_params(config, np.array([0, 1, 1]), CancelToken())["callbacks"]
    assert _blocking(callbacks) == []
    assert _keras_decision(callbacks, monkeypatch) == (True, True)
