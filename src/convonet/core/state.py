"""What the app holds between tasks: the seed's Controller, minus any UI.

The TUI and the headless commands keep one ``Controller``. It carries the loaded params,
the datasets, the model and the latest results, so that switching screens or running the
next task loses nothing already computed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from convonet.core.params import DataParams, HyperParams


@dataclass
class Controller:
    data_params: DataParams = field(default_factory=DataParams)
    hyper_params: HyperParams = field(default_factory=HyperParams)
    train_set: Any = None  # convonet.core.data.Dataset
    test_set: Any = None  # convonet.core.data.Dataset
    model: Any = None  # keras.Model
    model_path: Any = None  # pathlib.Path of the file the model was loaded from / saved to
    model_dirty: bool = False  # trained since last save
    history: Any = None  # convonet.core.training.TrainHistory
    evaluation: Any = None
    prediction: Any = None
    tuning: Any = None
    extras: dict[str, Any] = field(default_factory=dict)
