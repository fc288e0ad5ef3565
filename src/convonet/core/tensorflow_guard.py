"""Keep TensorFlow unloaded on the jax and torch backends.

Keras asks a lazy module whether TensorFlow is installed in several places
(``keras.utils.set_random_seed``, serializing a model on save, ...), and finding out means
importing it: on jax that costs seconds and about 500 MB, and TensorFlow's C++ start-up
lines go straight to the terminal's stderr, over the app's screen. On another backend,
with TensorFlow not yet imported, the lazy module is told it is not available, as on a
machine without TensorFlow (the GPU boxes we benchmark on have none, and Keras runs there).
Code that really uses TensorFlow (the TensorBoard callback) still imports it on first use.
"""

from __future__ import annotations

import sys


def leave_tensorflow_alone() -> None:
    """On jax or torch, keep Keras from importing TensorFlow just to ask if it is there."""
    import keras

    if keras.backend.backend() == "tensorflow" or "tensorflow" in sys.modules:
        return
    from keras.src.utils import module_utils

    lazy = module_utils.tensorflow
    # Should a later Keras rename the attribute, this sets an unused one and Keras
    # imports TensorFlow as before: noisier, not wrong.
    if getattr(lazy, "module", None) is None and getattr(lazy, "_available", None) is None:
        lazy._available = False


def set_random_seed(seed: int) -> None:
    """``keras.utils.set_random_seed(seed)``, without importing TensorFlow on jax or torch."""
    import keras

    leave_tensorflow_alone()
    keras.utils.set_random_seed(int(seed))
