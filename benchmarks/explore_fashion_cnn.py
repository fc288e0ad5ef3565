"""Accuracy against time for small CNNs on Fashion-MNIST, in plain Keras (a search aid).

    python benchmarks/explore_fashion_cnn.py NAME '{"blocks": [[16, 1], [32, 1], [64, 1]],
        "units": 256, "bs": 256, "lr": 0.003, "decay": 0.4, "flip": 1, "drop": 0.4}'
        [--npz datasets/fashion-mnist.npz]

Trains one network outside the project's task layer, so candidate networks (for example
two convolutions per block, which the hyper params cannot yet express) can be tried
before an option is built for them. ``blocks`` lists (filters, convolutions) per block,
each convolution followed by batch norm and ReLU, each block by a 2x2 max pool; then
Dense ``units``, dropout ``drop``, softmax. Optional: ``cdrop`` (dropout after each
block), ``shift`` (random translation fraction), ``ls`` (label smoothing), ``wd`` (AdamW
weight decay), ``sched`` (``time``: lr/(1+decay*epoch), as the project; ``cos``: cosine
to 0), ``epochs`` (15), ``val`` (0.2).

The protocol is the project's: ``val`` of the 60,000 training images held out (seeded),
the epoch of best validation accuracy chosen, and only then all 10,000 test images
evaluated with its weights and with the final epoch's. Prints each epoch's seconds, loss,
accuracy and validation accuracy, then one RESULT line.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
from keras import layers as L  # noqa: E402


def network(cfg: dict[str, Any]) -> keras.Model:
    stack: list[Any] = [keras.Input((28, 28, 1))]
    if cfg.get("flip"):
        stack.append(L.RandomFlip("horizontal"))
    if cfg.get("shift"):
        stack.append(L.RandomTranslation(cfg["shift"], cfg["shift"], fill_mode="constant"))
    for filters, convs in cfg["blocks"]:
        for _ in range(convs):
            stack += [L.Conv2D(filters, cfg.get("k", 3), padding="same", use_bias=False),
                      L.BatchNormalization(), L.Activation("relu")]
        stack.append(L.MaxPooling2D(2))
        if cfg.get("cdrop"):
            stack.append(L.Dropout(cfg["cdrop"]))
    stack += [L.Flatten(), L.Dense(cfg["units"], activation="relu"), L.Dropout(cfg["drop"]),
              L.Dense(10, activation="softmax")]
    return keras.Sequential(stack)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("name")
    parser.add_argument("config", type=json.loads)
    parser.add_argument("--npz", default="datasets/fashion-mnist.npz")
    args = parser.parse_args()
    name, cfg = args.name, args.config
    data = np.load(args.npz)
    x_all = data["x_train"][..., None].astype("float32") / 255
    y_all = data["y_train"]
    x_test = data["x_test"][..., None].astype("float32") / 255
    y_test = data["y_test"]
    order = np.random.default_rng(42).permutation(len(x_all))
    held = int(len(x_all) * cfg.get("val", 0.2))
    x_val, y_val = x_all[order[:held]], y_all[order[:held]]
    x, y = x_all[order[held:]], y_all[order[held:]]

    keras.utils.set_random_seed(42)
    model = network(cfg)
    smoothing = float(cfg.get("ls", 0.0))
    loss = keras.losses.CategoricalCrossentropy(label_smoothing=smoothing)

    def onehot(labels: np.ndarray) -> np.ndarray:
        return keras.utils.to_categorical(labels, 10)

    epochs = int(cfg.get("epochs", 15))

    def lr_at(epoch: int) -> float:
        if cfg.get("sched") == "cos":
            return float(cfg["lr"] * 0.5 * (1 + np.cos(np.pi * epoch / epochs)))
        return float(cfg["lr"] / (1 + cfg["decay"] * epoch))

    optimizer = (keras.optimizers.AdamW(cfg["lr"], weight_decay=cfg["wd"]) if cfg.get("wd")
                 else keras.optimizers.Adam(cfg["lr"]))
    model.compile(optimizer, loss, metrics=["accuracy"])
    best: dict[str, Any] = {"val": -1.0, "weights": None, "epoch": 0}

    class Watch(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch: int, logs: Any = None) -> None:
            self.model.optimizer.learning_rate.assign(lr_at(epoch))
            self.began = time.perf_counter()

        def on_epoch_end(self, epoch: int, logs: Any = None) -> None:
            if logs["val_accuracy"] > best["val"]:
                best.update(val=logs["val_accuracy"], weights=self.model.get_weights(),
                            epoch=epoch + 1)
            print(f"{name} epoch {epoch + 1} {time.perf_counter() - self.began:.0f} s "
                  f"loss {logs['loss']:.4f} acc {logs['accuracy']:.4f} "
                  f"val {logs['val_accuracy']:.4f}", flush=True)

    began = time.perf_counter()
    model.fit(x, onehot(y), batch_size=cfg["bs"], epochs=epochs, verbose=0,
              validation_data=(x_val, onehot(y_val)), callbacks=[Watch()])
    seconds = time.perf_counter() - began
    final = model.evaluate(x_test, onehot(y_test), verbose=0, batch_size=512)[1]
    model.set_weights(best["weights"])
    chosen = model.evaluate(x_test, onehot(y_test), verbose=0, batch_size=512)[1]
    print(f"RESULT {name} params={model.count_params():,} train_s={seconds:.0f} "
          f"chosen_epoch={best['epoch']} val={best['val']:.4f} test_chosen={chosen:.4f} "
          f"test_final={final:.4f} config={json.dumps(cfg)}", flush=True)


if __name__ == "__main__":
    main()
