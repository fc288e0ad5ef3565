"""Loading one dataset (training or test set) from the data params."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from convonet.core.events import CancelToken, Reporter, no_report
from convonet.tasks import Status, executes

if TYPE_CHECKING:
    from convonet.core.data import Dataset, SkippedFile
    from convonet.core.params import DataParams

__all__ = ["LoadOutcome", "LoadSpec", "run_load"]


@dataclass(frozen=True)
class LoadSpec:
    """Load ``which`` ("train" or "test") as ``data_params`` say, split and shuffled with
    ``seed``. ``train_classes`` (the training set's class names, or a saved model's when
    ``classes_of`` is "model") makes a test load match classes by index."""

    data_params: DataParams
    which: str = "train"
    seed: int = 42
    train_classes: tuple[str, ...] | None = None
    classes_of: str = "training"


@dataclass
class LoadOutcome:
    """The loaded set; the files it left out are in ``skipped`` with their reasons."""

    dataset: Dataset
    status: Status = Status.FINISHED

    @property
    def skipped(self) -> list[SkippedFile]:
        return list(self.dataset.skipped)


@executes(LoadSpec)
def run_load(spec: LoadSpec, *, report: Reporter = no_report,
             cancel: CancelToken | None = None) -> LoadOutcome:
    """The core's prep_data, which refuses a set too big for memory before decoding."""
    from convonet.core.data import DataPrep

    dataset = DataPrep(spec.data_params).prep_data(
        spec.which, report, cancel, seed=spec.seed,
        train_classes=list(spec.train_classes) if spec.train_classes is not None else None,
        classes_of=spec.classes_of)
    return LoadOutcome(dataset)
