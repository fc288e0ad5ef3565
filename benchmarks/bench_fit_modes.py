"""One epoch of the same network fed to Keras's TensorFlow trainer in different ways, with
the machine's idle CPU time over each (a diagnostic for a bimodal CPU).

    N=48000 python benchmarks/bench_fit_modes.py np tob np tob [--npz ...]

Modes: ``np`` (``fit`` on NumPy arrays, as the project trains), ``tob``
(``train_on_batch`` over the same batches), ``tfd_tensor`` (``fit`` on a tf.data set of
tensors), ``pyds`` (a ``keras.utils.PyDataset``). Each mode builds a fresh seed-sized
network with batch norm (two blocks of 32 filters, Dense 512) and trains one epoch of
``N`` images at batch 256. Prints seconds per 48,000 images and the machine's idle seconds
over the epoch (from /proc/stat): on a 2-core machine an epoch that leaves a core idle
shows idle near its own length.
"""

from __future__ import annotations

import os
import sys
import time
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from keras import layers as L  # noqa: E402

N = int(os.environ.get("N", "12800"))
BATCH = 256


def network() -> keras.Model:
    stack: list[Any] = [keras.Input((28, 28, 1))]
    for filters in (32, 32):
        stack += [L.Conv2D(filters, 3, padding="same", use_bias=False),
                  L.BatchNormalization(), L.Activation("relu"), L.MaxPooling2D(2)]
    stack += [L.Flatten(), L.Dense(512, activation="relu"), L.Dropout(0.4),
              L.Dense(10, activation="softmax")]
    model = keras.Sequential(stack)
    model.compile(keras.optimizers.Adam(0.002), "sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    return model


def idle_ticks() -> int:
    with open("/proc/stat") as fh:
        return int(fh.readline().split()[4])


def main() -> None:
    npz = sys.argv[sys.argv.index("--npz") + 1] if "--npz" in sys.argv else \
        "datasets/fashion-mnist.npz"
    modes = [m for m in sys.argv[1:] if m != "--npz" and m != npz]
    data = np.load(npz)
    x = data["x_train"][:N, :, :, None].astype("float32") / 255
    y = data["y_train"][:N]

    class Batches(keras.utils.PyDataset):
        def __len__(self) -> int:
            return N // BATCH

        def __getitem__(self, i: int) -> tuple[np.ndarray, np.ndarray]:
            return x[i * BATCH:(i + 1) * BATCH], y[i * BATCH:(i + 1) * BATCH]

    for mode in modes:
        model = network()
        model.fit(x[:BATCH * 3], y[:BATCH * 3], batch_size=BATCH, verbose=0)
        idle0, began = idle_ticks(), time.perf_counter()
        if mode == "tob":
            for i in range(N // BATCH):
                model.train_on_batch(x[i * BATCH:(i + 1) * BATCH], y[i * BATCH:(i + 1) * BATCH])
        elif mode == "np":
            model.fit(x, y, batch_size=BATCH, epochs=1, verbose=0)
        elif mode == "tfd_tensor":
            data_set = tf.data.Dataset.from_tensor_slices((tf.constant(x), tf.constant(y)))
            model.fit(data_set.batch(BATCH), epochs=1, verbose=0)
        elif mode == "pyds":
            model.fit(Batches(), epochs=1, verbose=0)
        else:
            raise SystemExit(f"unknown mode {mode}: use np, tob, tfd_tensor or pyds")
        seconds = time.perf_counter() - began
        idle = (idle_ticks() - idle0) / os.sysconf("SC_CLK_TCK")
        print(f"{mode:10s} {seconds / N * 48000:5.1f} s per 48,000 images  "
              f"machine idle {idle:.1f} s of {seconds * os.cpu_count():.1f}", flush=True)


if __name__ == "__main__":
    main()
