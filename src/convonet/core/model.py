"""The network model (the seed's NetModel): build, summarise, save and load.

Saved models are plain Keras 3 ``.keras`` files, loaded with ``safe_mode`` on. The class
names the model was trained on are kept beside it in ``<stem>.classes.json`` (optional: a
model without one still loads; its classes are then shown by index).

``build_model`` is shared by training and tuning, so a tuning combination and the model
trained afterwards are the same network; so is ``architecture_problem``, the check that
refuses a configuration whose layers cannot fit the images.
"""

from __future__ import annotations

import json
import os
import tempfile
import zipfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import keras
import numpy as np

from convonet.core.architecture import architecture_problem
from convonet.core.errors import ConvonetError
from convonet.core.files import atomic_write_text
from convonet.core.model_options import (
    OPTION_DEFAULTS,
    augment_layers,
    backbone_model,
    conv_layers,
    make_loss,
    make_optimizer,
    option,
)
from convonet.core.params import HyperParams
from convonet.core.tensorflow_guard import set_random_seed


def build_model(config: Mapping[str, Any], input_shape: tuple[int, int, int],
                num_classes: int) -> keras.Model:
    """The seed's CNN (or a backbone under its head), compiled with the chosen optimizer.

    By default: Conv2D -> MaxPool -> Conv2D -> MaxPool -> Flatten -> Dense -> Dropout ->
    Dense(softmax), SGD with momentum. The model options (``core.model_options``) add
    augmentation layers in front, batch norm, more or fewer convolution blocks, another
    optimizer, label smoothing, or swap the convolutions for a Keras application.
    ``config`` holds single values (``HyperParams.first()`` or one tuning combination). The
    time-based decay (lr = init_rate / (1 + decay * epoch)) is applied per epoch by the
    training callbacks, so the optimizer starts at ``init_rate``.
    """
    shape = tuple(int(d) for d in input_shape)
    model: keras.Model
    if option(config, "backbone") != "none":
        model = backbone_model(config, shape, int(num_classes))  # type: ignore[arg-type]
    else:
        model = keras.Sequential(
            [
                keras.Input(shape=shape),
                *augment_layers(str(option(config, "augment"))),
                *conv_layers(config),
                keras.layers.Flatten(),
                keras.layers.Dense(int(config["num_units"]), activation="relu"),
                keras.layers.Dropout(float(config["dropout"])),
                keras.layers.Dense(int(num_classes), activation="softmax"),
            ]
        )
    model.compile(optimizer=make_optimizer(config), loss=make_loss(config),
                  metrics=["accuracy"])
    return model


#: The fields of a configuration that shape ``build_model``'s traced graph, its optimizer
#: or its loss (the model options included). The others
#: reach a fit only through variables (the learning rate, which the decay callback sets
#: per epoch) or fit arguments (epochs, batch size, class weights), so tuning can re-use
#: one traced model for every combination that agrees on these (see ``ModelReuse``).
ARCHITECTURE_FIELDS = ("num_filters", "kernel_size", "num_units", "dropout", "momentum",
                       *OPTION_DEFAULTS)


def learning_rate_at(config: Mapping[str, Any], epoch: int) -> float:
    """Time-based decay: lr = init_rate / (1 + decay * epoch), epoch counted from 0."""
    return float(config["init_rate"]) / (1.0 + float(config["decay"]) * epoch)


# --------------------------------------------------------------------------------------
# Errors, the NetModel wrapper, summaries, checks, save and load


class ModelError(ConvonetError, ValueError):
    """A model cannot be built, loaded, saved or used with the loaded data.

    ``str()`` names the file (when there is one) and what is wrong, for a message box.
    """

    title = "Model error"
    advice = ("Load a model file that fits the data, or build a new model on the model "
              "screen.")


class NetModel:
    """The seed's NetModel: builds the CNN from the hyper params' first values.

    Holds the compiled ``keras.Model`` and the class names it was built for, so the
    model screen, training and testing share one object.
    """

    def __init__(self, hyper_params: HyperParams | Mapping[str, Any]) -> None:
        if isinstance(hyper_params, HyperParams):
            self.config: dict[str, Any] = hyper_params.first()
        else:
            self.config = dict(hyper_params)
        self.model: keras.Model | None = None
        self.class_names: list[str] | None = None

    def build(self, input_shape: Sequence[int], num_classes: int,
              class_names: Sequence[str] | None = None) -> keras.Model:
        """Build and compile a fresh model, seeded so the same params give the same weights."""
        shape = tuple(int(d) for d in input_shape)
        if len(shape) != 3 or min(shape) < 1:
            raise ModelError(f"input shape must be (height, width, channels), got {shape}")
        if int(num_classes) < 2:
            raise ModelError(f"a classifier needs at least 2 classes, got {num_classes}: "
                             "the training set needs one class folder per class")
        problem = architecture_problem(self.config, shape)
        if problem is not None:
            raise ModelError(problem.message)
        if "seed" in self.config:
            set_random_seed(int(self.config["seed"]))
        try:
            self.model = build_model(self.config, shape, int(num_classes))
        except (ValueError, OSError) as exc:  # a backbone's weights, named in the text
            raise ModelError(str(exc)) from exc
        self.class_names = list(class_names) if class_names is not None else None
        return self.model

    def summary(self) -> ModelSummary:
        return model_summary(self._require())

    def save(self, path: str | os.PathLike[str]) -> Path:
        return save_model(self._require(), path, class_names=self.class_names)

    @classmethod
    def load(cls, path: str | os.PathLike[str],
             hyper_params: HyperParams | Mapping[str, Any] | None = None) -> NetModel:
        """A NetModel around a saved ``.keras`` file (and its class names, when saved)."""
        net = cls(hyper_params if hyper_params is not None else {})
        net.model = load_model(path)
        net.class_names = read_class_names(path)
        return net

    def _require(self) -> keras.Model:
        if self.model is None:
            raise ModelError("no model yet: initialize a new network model or load one")
        return self.model


@dataclass(frozen=True)
class LayerRow:
    """One row of the summary table."""

    name: str
    type: str
    output_shape: str
    params: int


@dataclass(frozen=True)
class ModelSummary:
    """The summary table as data (not captured print output), with totals and sizes."""

    name: str
    rows: list[LayerRow]
    total_params: int
    trainable_params: int
    non_trainable_params: int
    total_bytes: int
    trainable_bytes: int
    non_trainable_bytes: int
    input_shape: tuple[int, ...]
    num_classes: int

    def totals(self) -> list[tuple[str, int, str]]:
        """(label, count, size text) lines shown under the table, as Keras words them."""
        return [
            ("Total params", self.total_params, format_bytes(self.total_bytes)),
            ("Trainable params", self.trainable_params, format_bytes(self.trainable_bytes)),
            ("Non-trainable params", self.non_trainable_params,
             format_bytes(self.non_trainable_bytes)),
        ]


def format_bytes(n: int) -> str:
    """Sizes as Keras's summary writes them (1 KB = 1024 B)."""
    size = float(n)
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{int(size)} {unit}" if unit == "B" else f"{size:.2f} {unit}"
        size /= 1024
    return f"{size:.2f} GB"  # unreachable; keeps type checkers calm


def _shape_text(shape: Any) -> str:
    if isinstance(shape, list):  # several outputs
        return ", ".join(_shape_text(s) for s in shape)
    return "(" + ", ".join("None" if d is None else str(d) for d in tuple(shape)) + ")"


def _output_shape(layer: keras.layers.Layer) -> str:
    try:
        out = layer.output
    except (AttributeError, ValueError):
        return "?"
    if isinstance(out, (list, tuple)):
        return _shape_text([tuple(o.shape) for o in out])
    return _shape_text(tuple(out.shape))


def _weights_size(weights: Sequence[Any]) -> tuple[int, int]:
    count = 0
    nbytes = 0
    for w in weights:
        n = int(np.prod(w.shape)) if len(w.shape) else 1
        count += n
        nbytes += n * np.dtype(keras.backend.standardize_dtype(w.dtype)).itemsize
    return count, nbytes


def model_summary(model: keras.Model) -> ModelSummary:
    """Compute the summary from the model's layers and weights."""
    rows = []
    for layer in model.layers:
        params = int(layer.count_params()) if layer.built else 0
        rows.append(LayerRow(layer.name, type(layer).__name__, _output_shape(layer), params))
    trainable, trainable_bytes = _weights_size(model.trainable_weights)
    frozen, frozen_bytes = _weights_size(model.non_trainable_weights)
    image_shape, classes = model_io_shape(model)
    return ModelSummary(
        name=model.name, rows=rows, total_params=trainable + frozen,
        trainable_params=trainable, non_trainable_params=frozen,
        total_bytes=trainable_bytes + frozen_bytes, trainable_bytes=trainable_bytes,
        non_trainable_bytes=frozen_bytes, input_shape=image_shape, num_classes=classes,
    )


def model_io_shape(model: keras.Model) -> tuple[tuple[int, ...], int]:
    """The image shape a model takes (without the batch axis) and how many classes it gives."""
    try:
        in_shape = tuple(model.input_shape)
        out_shape = tuple(model.output_shape)
    except (AttributeError, ValueError) as exc:
        raise ModelError(f"the model has no fixed input or output shape: {exc}") from None
    if in_shape and isinstance(in_shape[0], (tuple, list)):
        raise ModelError("the model has several inputs; convonet needs one image input")
    return (tuple(int(d) if d is not None else -1 for d in in_shape[1:]),
            int(out_shape[-1]) if out_shape[-1] is not None else -1)


def _shape_words(shape: Sequence[int]) -> str:
    return "x".join(str(d) for d in shape)


def check_fits(model: keras.Model, image_shape: Sequence[int], num_classes: int) -> None:
    """Raise a ModelError naming both sides when a model cannot take this data.

    Called before training, evaluation or prediction starts, so a mismatch is a clear
    message rather than a shape error from inside Keras.
    """
    want_shape, want_classes = model_io_shape(model)
    have_shape = tuple(int(d) for d in image_shape)
    problems = []
    if len(want_shape) != len(have_shape) or any(
            w not in (-1, h) for w, h in zip(want_shape, have_shape, strict=False)):
        problems.append(f"the model takes {_shape_words(want_shape)} images "
                        f"but the data has {_shape_words(have_shape)} images")
    if want_classes != int(num_classes):
        problems.append(f"the model predicts {want_classes} classes "
                        f"but the data has {int(num_classes)} classes")
    if problems:
        raise ModelError("model does not fit the data: " + "; ".join(problems)
                         + ". Initialize a new model for this data, or load data that "
                         "matches the model (image size and colour mode in the data params)")


# ---- save and load -------------------------------------------------------------------
CLASSES_SUFFIX = ".classes.json"


def classes_path(path: str | os.PathLike[str]) -> Path:
    """The class-names sidecar of a model file: ``model.keras`` -> ``model.classes.json``."""
    p = Path(path)
    return p.with_name(p.stem + CLASSES_SUFFIX)


def _model_path(path: str | os.PathLike[str]) -> Path:
    p = Path(path).expanduser()
    if p.suffix == "":
        p = p.with_name(p.name + ".keras")
    if p.suffix != ".keras":
        raise ModelError(f"{p}: model files must end in .keras (the Keras 3 format), "
                         f"not {p.suffix}")
    return p


def save_model(model: keras.Model, path: str | os.PathLike[str],
               class_names: Sequence[str] | None = None) -> Path:
    """Save atomically: write ``.<name>.<random>.tmp.keras`` beside it, then rename.

    Keras only writes files whose name ends in ``.keras``, hence the temp name's suffix.
    A failure leaves any previous file intact. When ``class_names`` is given, they go to
    a small JSON sidecar (``<stem>.classes.json``) so a reloaded model can name its
    predictions; the ``.keras`` file itself stays a plain Keras model any tool can read.
    Returns the final path (``.keras`` appended when the name had no suffix).
    """
    target = _model_path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.stem}.", suffix=".tmp.keras",
                                    dir=target.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        model.save(tmp)
        os.replace(tmp, target)
    except BaseException as exc:
        tmp.unlink(missing_ok=True)
        if isinstance(exc, (OSError, ValueError)):
            raise ModelError(f"{target}: cannot be saved: {exc}") from exc
        raise
    sidecar = classes_path(target)
    if class_names is not None:
        atomic_write_text(sidecar, json.dumps({"class_names": list(class_names)},
                                               indent=2) + "\n")
    else:
        # A sidecar left from an earlier model of the same name would mislabel this one.
        sidecar.unlink(missing_ok=True)
    return target


def read_class_names(path: str | os.PathLike[str]) -> list[str] | None:
    """The class names saved beside a model, or None when there are none (or unreadable)."""
    sidecar = classes_path(path)
    if not sidecar.is_file():
        return None
    try:
        data = json.loads(sidecar.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return None
    names = data.get("class_names") if isinstance(data, dict) else None
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        return None
    return names


_ZIP_MAGIC = b"PK\x03\x04"


def load_model(path: str | os.PathLike[str]) -> keras.Model:
    """Load a ``.keras`` file with ``safe_mode`` on; every failure is a ModelError naming it.

    Checks the archive before Keras sees it, so "not a Keras file" and "truncated" read as
    such rather than as a zip or JSON error from inside Keras.
    """
    p = Path(path).expanduser()
    if not p.exists():
        raise ModelError(f"{p}: file not found")
    if p.is_dir():
        raise ModelError(f"{p}: is a folder, not a .keras model file")
    try:
        with p.open("rb") as fh:
            head = fh.read(4)
    except OSError as exc:
        raise ModelError(f"{p}: cannot be read: {exc}") from None
    if not zipfile.is_zipfile(p):
        if head == _ZIP_MAGIC:
            raise ModelError(f"{p}: the .keras file is truncated or damaged (its zip "
                             "archive is incomplete); save the model again")
        raise ModelError(f"{p}: is not a Keras model file (a .keras file is a zip archive "
                         "written by model.save)")
    try:
        with zipfile.ZipFile(p) as zf:
            names = set(zf.namelist())
            bad = zf.testzip()
    except (zipfile.BadZipFile, OSError, EOFError) as exc:
        raise ModelError(f"{p}: the .keras file is truncated or damaged: {exc}") from None
    if "config.json" not in names:
        raise ModelError(f"{p}: is a zip archive but not a Keras model file "
                         "(no config.json inside)")
    if bad is not None:
        raise ModelError(f"{p}: the .keras file is damaged ({bad} fails its checksum)")
    try:
        model = keras.saving.load_model(p, safe_mode=True)
    except Exception as exc:  # Keras raises many types here; each becomes one clear message
        text = str(exc)
        if "Lambda" in text or "safe_mode" in text:
            raise ModelError(f"{p}: refused: the model contains a Lambda layer (Python "
                             "code), and loading it could run arbitrary code. convonet keeps "
                             "Keras safe_mode on; rebuild the model without Lambda "
                             "layers") from exc
        raise ModelError(f"{p}: cannot be loaded as a Keras model: "
                         f"{type(exc).__name__}: {text}") from exc
    if not isinstance(model, keras.Model):
        raise ModelError(f"{p}: holds a {type(model).__name__}, not a Keras model")
    if not getattr(model, "compiled", False):
        # Saved without compile: give it the loss and metric evaluation needs.
        model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy",
                      metrics=["accuracy"])
    return model
