"""The network model (the seed's NetModel): build, summarise, save and load.

``build_model`` is shared by training and tuning, so a tuning combination and the model
trained afterwards are the same network.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import keras


def build_model(config: Mapping[str, Any], input_shape: tuple[int, int, int],
                num_classes: int) -> keras.Model:
    """The seed's CNN, compiled with SGD and momentum.

    Conv2D -> MaxPool -> Conv2D -> MaxPool -> Flatten -> Dense -> Dropout -> Dense(softmax).
    ``config`` holds single values (``HyperParams.first()`` or one tuning combination). The
    time-based decay (lr = init_rate / (1 + decay * epoch)) is applied per epoch by the
    training callbacks, so the optimizer starts at ``init_rate``.
    """
    filters = int(config["num_filters"])
    kernel = int(config["kernel_size"])
    model = keras.Sequential(
        [
            keras.Input(shape=tuple(input_shape)),
            keras.layers.Conv2D(filters, (kernel, kernel), padding="same", activation="relu"),
            keras.layers.MaxPooling2D((2, 2)),
            keras.layers.Conv2D(filters, (kernel, kernel), padding="same", activation="relu"),
            keras.layers.MaxPooling2D((2, 2)),
            keras.layers.Flatten(),
            keras.layers.Dense(int(config["num_units"]), activation="relu"),
            keras.layers.Dropout(float(config["dropout"])),
            keras.layers.Dense(int(num_classes), activation="softmax"),
        ]
    )
    model.compile(
        optimizer=keras.optimizers.SGD(learning_rate=float(config["init_rate"]),
                                       momentum=float(config["momentum"])),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    return model


def learning_rate_at(config: Mapping[str, Any], epoch: int) -> float:
    """Time-based decay: lr = init_rate / (1 + decay * epoch), epoch counted from 0."""
    return float(config["init_rate"]) / (1.0 + float(config["decay"]) * epoch)
