"""Accuracy figures chosen without the test set, for the accuracy benchmarks.

``ValidationChoice`` keeps the weights of the epoch with the best validation accuracy
(Keras's ``val_accuracy`` of the held-out ``validation_split``) while training runs to its
last epoch; ``final_and_chosen`` then evaluates the test set twice: with the final epoch's
weights and with the validation-chosen epoch's. The test set is read only after training
ends and never picks anything.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import keras

from convonet.core.data import Dataset
from convonet.core.testing import NetTesting


class ValidationChoice(keras.callbacks.Callback):
    """Remembers the per-epoch validation metrics and the best-validation epoch's weights."""

    def __init__(self) -> None:
        super().__init__()
        self.rows: list[dict[str, float]] = []
        self.best_epoch = 0
        self.best_val_accuracy = -1.0
        self.best_weights: list[Any] | None = None

    def on_epoch_end(self, epoch: int, logs=None) -> None:  # type: ignore[no-untyped-def]
        logs = logs or {}
        row = {"epoch": epoch + 1, "train_accuracy": float(logs["accuracy"]),
               "val_accuracy": float(logs["val_accuracy"]),
               "val_loss": float(logs["val_loss"])}
        self.rows.append(row)
        print(f"  epoch {epoch + 1:2d}: train acc {row['train_accuracy']:.4f}  "
              f"val acc {row['val_accuracy']:.4f}  val loss {row['val_loss']:.4f}",
              flush=True)
        if row["val_accuracy"] > self.best_val_accuracy:
            self.best_epoch = epoch + 1
            self.best_val_accuracy = row["val_accuracy"]
            self.best_weights = self.model.get_weights()


@dataclass
class Honest:
    final_epoch: int
    final_val_accuracy: float
    final_test_accuracy: float
    chosen_epoch: int
    chosen_val_accuracy: float
    chosen_test_accuracy: float


def final_and_chosen(model: keras.Model, choice: ValidationChoice, test: Dataset) -> Honest:
    """Test accuracy of the final epoch and of the validation-chosen epoch."""
    final = NetTesting(model).evaluate(test).accuracy
    last = choice.rows[-1]
    if choice.best_weights is not None:
        model.set_weights(choice.best_weights)
    chosen = NetTesting(model).evaluate(test).accuracy
    return Honest(final_epoch=int(last["epoch"]), final_val_accuracy=last["val_accuracy"],
                  final_test_accuracy=float(final), chosen_epoch=choice.best_epoch,
                  chosen_val_accuracy=choice.best_val_accuracy,
                  chosen_test_accuracy=float(chosen))
