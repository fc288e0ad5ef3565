"""A short label of the Keras backend and the device it computes on, for the app's header
and the headless commands' first line.

Importing Keras (and TensorFlow under it) prints start-up noise on stderr; the command line
calls ``describe_backend`` before the app draws its screen so that noise lands first, and
on jax that is also where the compile cache is turned on.
"""

from __future__ import annotations

import logging

log = logging.getLogger(__name__)


def describe_backend() -> str:
    """``"tensorflow · GPU"``, ``"jax · CPU"``: the backend name and its default device.

    Only cheap queries: device listing, no tensor is allocated and no kernel compiled.
    Listing devices also makes TensorFlow print its CUDA start-up lines (a cuInit error on a
    machine without a GPU) now, before the app draws, rather than at the first training step.
    """
    import keras

    from convonet.core.compile_cache import ensure_compile_cache
    from convonet.core.tensorflow_guard import leave_tensorflow_alone

    backend = keras.backend.backend()
    # Both front ends start here, before a model is built or loaded: on jax the compile
    # cache must be on before the first compile (the task layer's execute also does it).
    ensure_compile_cache()
    leave_tensorflow_alone()
    try:
        device = _device(backend)
    except Exception as exc:  # a broken driver must not stop the app from starting
        log.warning("cannot tell the %s device: %s", backend, exc)
        device = "device unknown"
    return f"{backend} · {device}"


def _device(backend: str) -> str:
    if backend == "tensorflow":
        import tensorflow as tf

        gpus = tf.config.list_physical_devices("GPU")
        return _gpu_label(len(gpus))
    if backend == "jax":
        import jax

        kind = jax.default_backend()
        return _gpu_label(jax.device_count()) if kind == "gpu" else kind.upper()
    if backend == "torch":
        import torch

        if torch.cuda.is_available():
            return _gpu_label(torch.cuda.device_count())
        mps = getattr(torch.backends, "mps", None)
        if mps is not None and mps.is_available():
            return "MPS"
        return "CPU"
    return "CPU"


def _gpu_label(count: int) -> str:
    if count <= 0:
        return "CPU"
    return "GPU" if count == 1 else f"{count} GPUs"
