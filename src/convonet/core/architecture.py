"""Which configurations of the seed's CNN fit which images: the one check, without Keras.

Training (``NetModel.build``) refuses a configuration this check finds a problem in;
tuning marks such a combination invalid before it runs, and the tuning screen counts them
in its plan. Kept free of Keras so the screen can ask before the core is imported.

Keras itself builds a kernel larger than the image ("same" padding) and fails only on a
pooling that reaches zero, so these rules are ours: the network is ``conv_blocks`` blocks
of ``convs_per_block`` Conv2D ("same" padding, so they keep the size) and a 2x2 MaxPool
(two blocks of one by default), a kernel wider than the image only sees padding, and a
backbone (a Keras application) refuses images under its least size.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from convonet.core.model_choices import BACKBONES
from convonet.core.params import HyperParams


@dataclass(frozen=True)
class ArchitectureProblem:
    """Why the layers cannot fit images of a given size with one configuration.

    ``field`` is the params field to change (``kernel_size`` in the hyper params, or
    ``image_size`` in the data params) and ``value`` its value here; ``reason`` reads after
    "<field> <value> is", and ``fix`` says what to do.
    """

    field: str
    value: Any
    reason: str
    fix: str

    @property
    def message(self) -> str:
        return f"{self.field} {self.value} is {self.reason}: {self.fix}"


def architecture_problem(config: Mapping[str, Any],
                         input_shape: Sequence[int]) -> ArchitectureProblem | None:
    """What keeps the CNN of ``config`` from fitting images of ``input_shape``, or None."""
    height, width = int(input_shape[0]), int(input_shape[1])
    backbone = str(config.get("backbone", "none"))
    if backbone != "none":
        least = BACKBONES[backbone][1]
        if min(height, width) < least:
            return ArchitectureProblem(
                "backbone", backbone, f"too large for the {height}x{width} images (it needs "
                f"at least {least}x{least})",
                f"use an image_size of at least {least},{least} in the data params, or "
                "backbone none in the hyper params")
        return None
    blocks = int(config.get("conv_blocks", 2))
    side = 2 ** blocks
    if height < side or width < side:
        if blocks == 2:
            return ArchitectureProblem(
                "image_size", f"{height}x{width}", "too small for two 2x2 poolings",
                "use at least 4x4 (image_size in the data params)")
        fit = max(0, min(height, width).bit_length() - 1)
        return ArchitectureProblem(
            "conv_blocks", blocks, f"too many for the {height}x{width} images: each block "
            f"halves them (2x2 pooling), so they need at least {side}x{side}",
            f"use a conv_blocks of at most {fit} in the hyper params, or a larger "
            "image_size in the data params" if fit else
            "use a larger image_size in the data params")
    kernel = int(config["kernel_size"])
    if kernel > min(height, width):
        return ArchitectureProblem(
            "kernel_size", kernel, f"larger than the {height}x{width} images",
            f"use a kernel_size of at most {min(height, width)} in the hyper params, or a "
            "larger image_size in the data params")
    return None


def grid_problems(hyper_params: HyperParams, input_shape: Sequence[int]
                  ) -> list[ArchitectureProblem]:
    """One problem per combination of the tuning grid that cannot fit the images."""
    base = hyper_params.first()
    grid = hyper_params.grid()
    names = list(grid)
    found = []
    for values in itertools.product(*(grid[n] for n in names)):
        problem = architecture_problem({**base, **dict(zip(names, values, strict=True))},
                                       input_shape)
        if problem is not None:
            found.append(problem)
    return found


def all_invalid_message(problems: Sequence[ArchitectureProblem]) -> str:
    """Why nothing can be tuned: each field at fault with its values, and what to do."""
    by_field: dict[str, list[ArchitectureProblem]] = {}
    for problem in problems:
        by_field.setdefault(problem.field, []).append(problem)
    parts = []
    for name, found in by_field.items():
        # One field's problems differ only in the value: the image size and the limit in
        # the reason and the fix are the same for all of them.
        values = sorted(dict.fromkeys(p.value for p in found), key=str)
        if all(isinstance(v, int) for v in values):
            values.sort()
        verb = "is" if len(values) == 1 else "are"
        parts.append(f"{name} {', '.join(str(v) for v in values)} {verb} {found[0].reason}; "
                     f"{found[0].fix}")
    return "every combination is invalid, none can run: " + "; ".join(parts)
