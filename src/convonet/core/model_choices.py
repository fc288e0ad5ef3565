"""The words of the model options, without Keras: the params table, the architecture check
and the params screen read them before Keras is imported (``core.model_options`` builds
the layers they name)."""

from __future__ import annotations

#: The model options' fields, in the params table's order.
OPTION_FIELDS = ("batch_norm", "conv_blocks", "filter_growth", "augment", "optimizer",
                 "weight_decay", "label_smoothing", "backbone", "backbone_weights",
                 "frozen_epochs")

#: The augmentations ``augment`` combines with + (``flip+shift``).
AUGMENTATIONS = ("flip", "shift", "zoom", "rotate", "contrast")

#: Backbone choice -> (Keras application, least image height and width it accepts).
BACKBONES: dict[str, tuple[str, int]] = {
    "mobilenetv3small": ("MobileNetV3Small", 32),
    "mobilenetv3large": ("MobileNetV3Large", 32),
    "efficientnetb0": ("EfficientNetB0", 32),
}
