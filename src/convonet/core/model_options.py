"""The model options of the hyper params: batch norm, convolution blocks (and the
convolutions in each), augmentation, the optimizer and its weight decay, label smoothing,
and a pretrained backbone.

Every option is off (or at the seed's value) by default, so ``build_model`` still builds
the seed's CNN. The pieces here are plain Keras objects a saved ``.keras`` file can hold
with ``safe_mode`` on: preprocessing layers, a ``Concatenate`` that repeats a grayscale
channel, a Keras application as a nested model, and one registered loss (sparse labels
with label smoothing, which Keras's own sparse loss does not offer).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import keras

from convonet.core.model_choices import AUGMENTATIONS, BACKBONES, OPTION_FIELDS
from convonet.core.params import HyperParams

#: The seed's value of each option, for configurations written before the options existed.
OPTION_DEFAULTS: dict[str, Any] = {name: HyperParams.spec(name).default[0]
                                   for name in OPTION_FIELDS}

#: How the backbone's nested model is named (``backbone_mobilenetv3small``), so the model
#: summary says which it is and the unfreeze callback finds it.
BACKBONE_LAYER = "backbone"


def option(config: Mapping[str, Any], name: str) -> Any:
    """One option's value in ``config``, or its default when the config predates it."""
    return config.get(name, OPTION_DEFAULTS[name])


# ---- layers ------------------------------------------------------------------------------
def augment_layers(spec: str) -> list[keras.layers.Layer]:
    """The preprocessing layers of ``flip+shift+...`` (``none``: no layers).

    They transform images only when called with ``training=True`` (inside ``fit``) and
    pass them through unchanged in ``predict`` and ``evaluate``.
    """
    words = [] if spec in ("", "none") else spec.split("+")
    layers: list[keras.layers.Layer] = []
    for word in words:
        if word == "flip":
            layers.append(keras.layers.RandomFlip("horizontal"))
        elif word == "shift":
            layers.append(keras.layers.RandomTranslation(0.1, 0.1, fill_mode="constant"))
        elif word == "zoom":
            layers.append(keras.layers.RandomZoom(0.1, fill_mode="constant"))
        elif word == "rotate":
            layers.append(keras.layers.RandomRotation(0.05, fill_mode="constant"))
        elif word == "contrast":
            layers.append(keras.layers.RandomContrast(0.2, value_range=(0.0, 1.0)))
        else:
            raise ValueError(f"unknown augmentation '{word}': use "
                             f"{' / '.join(AUGMENTATIONS)} joined by +")
    return layers


def conv_layers(config: Mapping[str, Any]) -> list[keras.layers.Layer]:
    """``conv_blocks`` blocks of ``convs_per_block`` Conv2D (+ BatchNorm + ReLU) and a 2x2
    MaxPool.

    Without batch norm a block is the seed's ``Conv2D(relu) -> MaxPool`` (with more
    convolutions per block, ``Conv2D(relu) -> Conv2D(relu) -> MaxPool``, as in VGG). With
    it, every convolution has no bias (the BatchNormalization's offset takes its place) and
    the ReLU follows its normalisation. A block's convolutions all have its filters:
    ``num_filters`` (``fixed``), or doubled with each block (``double``).
    """
    filters = int(config["num_filters"])
    kernel = int(config["kernel_size"])
    batch_norm = option(config, "batch_norm") == "on"
    double = option(config, "filter_growth") == "double"
    convs = int(option(config, "convs_per_block"))
    layers: list[keras.layers.Layer] = []
    for block in range(int(option(config, "conv_blocks"))):
        n = filters * (2 ** block if double else 1)
        for _ in range(convs):
            if batch_norm:
                layers += [keras.layers.Conv2D(n, (kernel, kernel), padding="same",
                                               use_bias=False),
                           keras.layers.BatchNormalization(),
                           keras.layers.Activation("relu")]
            else:
                layers.append(keras.layers.Conv2D(n, (kernel, kernel), padding="same",
                                                  activation="relu"))
        layers.append(keras.layers.MaxPooling2D((2, 2)))
    return layers


def weights_source(value: str) -> str | None:
    """``imagenet``, None (random weights) or the weights file's path, checked to exist."""
    text = str(value).strip()
    if text.lower() == "imagenet":
        return "imagenet"
    if text.lower() in ("none", ""):
        return None
    path = Path(text).expanduser()
    if not path.is_file():
        raise ValueError(f"backbone_weights '{text}': no such file; give imagenet, none, or "
                         "the path of a weights file saved from the same Keras application "
                         "(include_top=False)")
    return str(path.resolve())


def backbone_model(config: Mapping[str, Any], input_shape: tuple[int, int, int],
                   num_classes: int) -> keras.Model:
    """A Keras application under the seed's Dense head, as one functional model.

    Images come in as 0..1 floats with 1 or 3 channels; the applications want 0..255 RGB
    (they normalise inside), so a Rescaling multiplies by 255 and a grayscale channel is
    repeated three times. The backbone is frozen when ``frozen_epochs`` > 0, and
    ``BackboneUnfreeze`` makes it trainable when that phase ends.
    """
    name = str(option(config, "backbone"))
    app_name, _ = BACKBONES[name]
    inputs = keras.Input(shape=tuple(input_shape))
    x = inputs
    for layer in augment_layers(str(option(config, "augment"))):
        x = layer(x)
    x = keras.layers.Rescaling(255.0)(x)
    if input_shape[2] == 1:
        x = keras.layers.Concatenate(name="gray_to_rgb")([x, x, x])
    elif input_shape[2] != 3:
        raise ValueError(f"a backbone takes 1 or 3 channels, not {input_shape[2]}")
    weights = weights_source(str(option(config, "backbone_weights")))
    try:
        backbone = getattr(keras.applications, app_name)(
            input_shape=(int(input_shape[0]), int(input_shape[1]), 3), include_top=False,
            weights=weights, pooling="avg", name=f"{BACKBONE_LAYER}_{name}")
    except Exception as exc:  # a download or a weights file that does not fit: say which
        where = ("Keras downloads the imagenet weights once, which needs the internet; "
                 "or set backbone_weights to none or to a weights file"
                 if weights == "imagenet" else
                 "the weights file must be saved from the same application "
                 "(include_top=False)")
        raise ValueError(f"backbone {name} with weights {weights or 'none'} cannot be "
                         f"built: {type(exc).__name__}: {str(exc)[:300]}; {where}") from exc
    backbone.trainable = int(option(config, "frozen_epochs")) == 0
    # Pretrained weights: its BatchNorm layers keep their learnt statistics (inference
    # mode) during fine-tuning too, as Keras's transfer-learning guide does.
    x = backbone(x, training=False) if weights is not None else backbone(x)
    x = keras.layers.Dense(int(config["num_units"]), activation="relu")(x)
    x = keras.layers.Dropout(float(config["dropout"]))(x)
    outputs = keras.layers.Dense(int(num_classes), activation="softmax")(x)
    return keras.Model(inputs, outputs, name=f"{name}_classifier")


# ---- optimizer and loss ------------------------------------------------------------------
def make_optimizer(config: Mapping[str, Any]) -> keras.optimizers.Optimizer:
    """SGD with momentum (the seed's), Adam or AdamW, at ``init_rate``.

    ``weight_decay`` is Keras 3's decoupled decay (each step a weight shrinks by
    ``lr * weight_decay * weight``) for all three; 0 leaves it off (None), as the seed had.
    """
    rate = float(config["init_rate"])
    decay = float(option(config, "weight_decay")) or None
    name = option(config, "optimizer")
    if name == "adam":
        return keras.optimizers.Adam(learning_rate=rate, weight_decay=decay)
    if name == "adamw":
        return keras.optimizers.AdamW(learning_rate=rate, weight_decay=decay or 0.0)
    return keras.optimizers.SGD(learning_rate=rate, momentum=float(config["momentum"]),
                                weight_decay=decay)


@keras.saving.register_keras_serializable(package="convonet")
class SparseSmoothedCrossentropy(keras.losses.Loss):
    """Categorical crossentropy with label smoothing, for integer labels.

    Keras's ``SparseCategoricalCrossentropy`` has no ``label_smoothing``; this one-hot
    encodes the labels and calls the categorical crossentropy with it, so its values are
    those of ``CategoricalCrossentropy(label_smoothing=...)`` (the loss tuning uses).
    Registered, so a saved model loads with ``safe_mode`` once convonet is imported.
    """

    def __init__(self, label_smoothing: float = 0.0,
                 name: str = "sparse_smoothed_crossentropy",
                 reduction: str = "sum_over_batch_size", dtype: Any = None) -> None:
        super().__init__(name=name, reduction=reduction, dtype=dtype)
        self.label_smoothing = float(label_smoothing)

    def call(self, y_true: Any, y_pred: Any) -> Any:
        classes = keras.ops.shape(y_pred)[-1]
        labels = keras.ops.reshape(keras.ops.cast(y_true, "int32"), (-1,))
        one_hot = keras.ops.one_hot(labels, classes, dtype=y_pred.dtype)
        return keras.losses.categorical_crossentropy(
            one_hot, y_pred, label_smoothing=self.label_smoothing)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "label_smoothing": self.label_smoothing}


def make_loss(config: Mapping[str, Any], *, one_hot: bool = False) -> Any:
    """The training loss: the seed's sparse crossentropy, smoothed when asked.

    ``one_hot``: for one-hot labels (tuning's wrapper gives those), Keras's own
    categorical crossentropy with the same smoothing.
    """
    smoothing = float(option(config, "label_smoothing"))
    if one_hot:
        if smoothing > 0:
            return keras.losses.CategoricalCrossentropy(label_smoothing=smoothing)
        return "categorical_crossentropy"
    if smoothing > 0:
        return SparseSmoothedCrossentropy(smoothing)
    return "sparse_categorical_crossentropy"


# ---- the frozen phase --------------------------------------------------------------------
def find_backbone(model: keras.Model) -> keras.layers.Layer | None:
    """The nested backbone model of a model (or of tuning's wrapper around it), if any."""
    for layer in model._flatten_layers(include_self=False, recursive=True):
        if layer.name.startswith(BACKBONE_LAYER) and isinstance(layer, keras.Model):
            return layer
    return None


class BackboneUnfreeze(keras.callbacks.Callback):
    """Ends the frozen phase: at the start of epoch ``frozen_epochs`` (0-based), the
    backbone becomes trainable.

    Keras fixes what a fit trains when it makes the training step, so this does what a
    recompile would do, inside the running fit: set ``trainable``, give the model a fresh
    optimizer of the same kind and settings (a built optimizer refuses variables it was
    not built with) at the current learning rate, build it on the new trainable
    variables, and make the training step again (``make_train_function(force=True)``).
    Keras's ``fit`` calls ``model.train_function`` anew for every step (and on jax reads
    the variables again after ``on_epoch_begin``), so the next batch trains the whole
    network. A model whose backbone is already trainable (a file saved after the phase)
    is left alone.

    ``start_epoch``: the epochs a resumed run's checkpoint has finished. Past the phase
    (more than ``frozen_epochs``), that checkpoint holds the fine-tuning optimizer's state
    (momentum, Adam's moments, its step count) for every variable, so the backbone is
    unfrozen when the fit begins, before ``BackupAndRestore`` loads the checkpoint: a
    frozen model's optimizer has slots for the head only, and Keras would skip loading
    the saved state (with a warning) and the unfreeze would start from a blank one.
    """

    async_safe = True

    def __init__(self, frozen_epochs: int, start_epoch: int = 0) -> None:
        super().__init__()
        self.frozen_epochs = int(frozen_epochs)
        self.start_epoch = int(start_epoch)
        self.unfrozen_at: int | None = None

    def on_train_begin(self, logs: Mapping[str, Any] | None = None) -> None:
        if self.start_epoch > self.frozen_epochs:
            self.on_epoch_begin(self.start_epoch)

    def on_epoch_begin(self, epoch: int, logs: Mapping[str, Any] | None = None) -> None:
        if epoch < self.frozen_epochs:
            return
        backbone = find_backbone(self.model)
        if backbone is None or backbone.trainable:
            return
        unfreeze(self.model, backbone)
        self.unfrozen_at = epoch


def unfreeze(model: keras.Model, backbone: keras.layers.Layer) -> None:
    """Make ``backbone`` trainable inside ``model`` and renew the optimizer and step."""
    old = model.optimizer
    backbone.trainable = True
    optimizer = old.__class__.from_config(old.get_config())
    optimizer.learning_rate = float(keras.ops.convert_to_numpy(old.learning_rate))
    optimizer.build(model.trainable_variables)
    model.optimizer = optimizer
    model.make_train_function(force=True)


def backbone_phases(config: Mapping[str, Any],
                    start_epoch: int = 0) -> list[keras.callbacks.Callback]:
    """The callbacks a fit of ``config`` needs for its phases (none without a backbone);
    ``start_epoch``: the epochs a checkpoint it resumes from has finished."""
    if option(config, "backbone") == "none" or int(option(config, "frozen_epochs")) <= 0:
        return []
    return [BackboneUnfreeze(int(option(config, "frozen_epochs")), start_epoch)]


def has_phases(config: Mapping[str, Any]) -> bool:
    """Whether a fit of ``config`` changes what it trains part-way (so a model built for
    it cannot be reset and re-used for another fit)."""
    return bool(backbone_phases(config))


# ---- words -------------------------------------------------------------------------------
def options_text(config: Mapping[str, Any]) -> str:
    """The options not at the seed's value, as ``batch norm · 3 blocks ...`` (or '')."""
    parts: list[str] = []
    backbone = option(config, "backbone")
    if backbone != "none":
        frozen = int(option(config, "frozen_epochs"))
        parts.append(f"backbone {backbone} (weights {option(config, 'backbone_weights')}"
                     + (f", frozen {frozen} epochs)" if frozen else ")"))
    else:
        if option(config, "batch_norm") == "on":
            parts.append("batch norm")
        blocks = int(option(config, "conv_blocks"))
        convs = int(option(config, "convs_per_block"))
        if blocks != 2 or convs != 1 or option(config, "filter_growth") != "fixed":
            of = f" of {convs} convs" if convs != 1 else ""
            parts.append(f"{blocks} conv blocks{of} "
                         f"({option(config, 'filter_growth')} filters)")
    if option(config, "augment") != "none":
        parts.append(f"augment {option(config, 'augment')}")
    opt = option(config, "optimizer")
    decay = float(option(config, "weight_decay"))
    if opt != "sgd" or decay:
        parts.append(opt + (f" weight decay {decay:g}" if decay else ""))
    smoothing = float(option(config, "label_smoothing"))
    if smoothing:
        parts.append(f"label smoothing {smoothing:g}")
    return " · ".join(parts)
