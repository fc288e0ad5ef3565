"""Building the CNN the hyper params describe, for a dataset's image shape and classes."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from convonet.core.events import CancelToken, Reporter, no_report
from convonet.tasks import Status, executes

if TYPE_CHECKING:
    import keras

    from convonet.core.params import HyperParams

__all__ = ["BuildOutcome", "BuildSpec", "run_build"]


@dataclass(frozen=True)
class BuildSpec:
    """A new, untrained model for ``image_shape`` (h, w, channels) and ``class_names``."""

    hyper_params: HyperParams
    image_shape: tuple[int, int, int]
    class_names: tuple[str, ...]


@dataclass
class BuildOutcome:
    model: keras.Model
    class_names: list[str]
    config: dict[str, Any] = field(default_factory=dict)  # the architecture as built
    summary: Any = None  # core.model.ModelSummary: layers, shapes, parameter counts
    status: Status = Status.FINISHED


@executes(BuildSpec)
def run_build(spec: BuildSpec, *, report: Reporter = no_report,
              cancel: CancelToken | None = None) -> BuildOutcome:
    from convonet.core.model import NetModel

    net = NetModel(spec.hyper_params)
    names = list(spec.class_names)
    model = net.build(tuple(spec.image_shape), len(names), names)
    return BuildOutcome(model, names, dict(net.config), net.summary())
