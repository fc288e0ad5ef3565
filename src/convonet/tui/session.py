"""What the app holds between tasks, typed: params, data, the model and the latest results.

One ``Session`` lives on the app (``ConvonetApp.session``) so that switching screens or
running the next task loses nothing already computed. Screens change it on the UI thread
and then call ``ConvonetApp.session_changed(...)`` naming what changed (one of
``ASPECTS``); every screen hears of it through ``ConvonetScreen.session_changed`` and
redraws what depends on it, instead of polling.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from convonet.core.params import DataParams, HyperParams
from convonet.core.storage import resolve_results_dir

if TYPE_CHECKING:
    import keras

    from convonet.core.data import Dataset
    from convonet.core.testing import Evaluation, Prediction
    from convonet.core.training import TrainHistory
    from convonet.core.tuning import TuneResult

#: What a change of the session can be about.
Aspect = Literal["params", "data", "model", "history", "results", "tuning", "tasks"]
ASPECTS: tuple[Aspect, ...] = ("params", "data", "model", "history", "results", "tuning",
                               "tasks")

#: The params kinds the params screen edits.
ParamsKind = Literal["data", "hyper"]


@dataclass
class Session:
    """The app's state, shared by every screen."""

    data_params: DataParams = field(default_factory=DataParams)
    hyper_params: HyperParams = field(default_factory=HyperParams)
    #: The params kinds edited since they were last saved (quit asks about them).
    unsaved_params: set[ParamsKind] = field(default_factory=set)
    train_set: Dataset | None = None
    test_set: Dataset | None = None
    model: keras.Model | None = None
    #: The classes the model predicts, by index (None: not saved with a loaded model).
    class_names: list[str] | None = None
    #: The hyper params configuration the model was built from (None for a loaded file).
    model_config: dict[str, Any] | None = None
    #: The file the model was loaded from or saved to.
    model_path: Path | None = None
    #: Where the trained model belongs (its training run's recorded target): Save
    #: proposes it, so the app saves where ``convonet train`` would have.
    save_to: Path | None = None
    #: Trained since it was last saved.
    model_dirty: bool = False
    history: TrainHistory | None = None
    evaluation: Evaluation | None = None
    prediction: Prediction | None = None
    tuning: TuneResult | None = None
    results_dir: Path = field(default_factory=resolve_results_dir)
    #: Where the next search fits its folds: None in this process, else the Ray cluster
    #: (``"auto"``: a local one over this machine's GPUs; ``"HOST:PORT"``: a running one).
    ray: str | None = None
    #: The Ray cluster the tuning screen's switch turns to (``--ray``, ``RAY_ADDRESS``).
    ray_address: str = "auto"
    #: Each fold's share of a GPU on Ray (0.25: four folds on one GPU).
    gpus_per_fold: float = 1.0
    #: The devices training spreads one model over (``convonet --devices``: ``all``, a
    #: count, device numbers); None: ``$CONVONET_DEVICES``, else one device.
    devices: str | None = None

    def set_model(self, model: keras.Model, class_names: list[str] | None,
                  config: dict[str, Any] | None, path: Path | None) -> None:
        """A new or loaded model replaces the current one (its curves and target go)."""
        self.model = model
        self.class_names = class_names
        self.model_config = config
        self.model_path = path
        self.model_dirty = False
        self.history = None
        self.save_to = None

    def mark_params(self, kind: ParamsKind, unsaved: bool) -> None:
        """Mark or clear unsaved edits of one params kind."""
        if unsaved:
            self.unsaved_params.add(kind)
        else:
            self.unsaved_params.discard(kind)


@dataclass(frozen=True)
class SessionChange:
    """One change of the session: a serial (so each change differs) and what it was about."""

    serial: int = 0
    what: frozenset[Aspect] = frozenset()
