"""The words of the model options, without Keras: the params table, the architecture check
and the params screen read them before Keras is imported (``core.model_options`` builds
the layers they name)."""

from __future__ import annotations

from collections.abc import Sequence

#: The model options' fields, in the params table's order.
OPTION_FIELDS = ("batch_norm", "conv_blocks", "convs_per_block", "filter_growth", "augment",
                 "optimizer", "weight_decay", "label_smoothing", "backbone",
                 "backbone_weights", "frozen_epochs")

#: The augmentations ``augment`` combines with + (``flip+shift``).
AUGMENTATIONS = ("flip", "shift", "zoom", "rotate", "contrast")

#: Backbone choice -> (Keras application, least image height and width it accepts).
BACKBONES: dict[str, tuple[str, int]] = {
    "mobilenetv3small": ("MobileNetV3Small", 32),
    "mobilenetv3large": ("MobileNetV3Large", 32),
    "efficientnetb0": ("EfficientNetB0", 32),
}

#: Optimizers that take no ``momentum`` (Adam and AdamW keep their own moving averages).
NO_MOMENTUM = ("adam", "adamw")


def momentum_unused(optimizers: Sequence[str]) -> str:
    """``adam`` (or ``adam/adamw``) when no optimizer value uses momentum, else ''."""
    kinds = list(dict.fromkeys(optimizers))
    return "/".join(kinds) if kinds and all(o in NO_MOMENTUM for o in kinds) else ""


def momentum_note(optimizers: Sequence[str], momenta: Sequence[float]) -> str:
    """Why ``momentum`` changes nothing with these optimizer values ('' when it matters).

    All optimizers without momentum: the field is unused, and several values of it only
    train the same model again. Mixed with sgd: only the adam/adamw combinations that
    differ in momentum alone repeat each other (said when momentum holds several values).
    """
    unused = [o for o in dict.fromkeys(optimizers) if o in NO_MOMENTUM]
    if not unused:
        return ""
    names, n = "/".join(unused), len(momenta)
    if len(unused) == len(set(optimizers)):
        note = f"unused with {names}: momentum applies to optimizer sgd only"
        if n > 1:
            note += (f"; its {n} values change nothing, so the grid trains each model "
                     f"{n} times alike (give momentum one value)")
        return note
    if n > 1:
        return (f"unused with {names}: the {names} combinations that differ only in "
                f"momentum train alike")
    return ""


def momentum_grid_notice(optimizers: Sequence[str], momenta: Sequence[float]) -> str:
    """What a search says before it starts when its momentum values change nothing for
    some or all of its optimizers ('' when momentum holds one value or always matters)."""
    unused = [o for o in dict.fromkeys(optimizers) if o in NO_MOMENTUM]
    n = len(momenta)
    if n < 2 or not unused:
        return ""
    names = "/".join(unused)
    values = ",".join(f"{m:g}" for m in momenta)
    head = (f"momentum {values} changes nothing with optimizer {names} (momentum applies "
            "to sgd only): ")
    if len(unused) == len(set(optimizers)):
        return head + (f"the grid trains each model {n} times alike; give momentum one "
                       f"value to search {n} times fewer combinations")
    return head + f"the {names} combinations that differ only in momentum train alike"
