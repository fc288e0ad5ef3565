"""Tuning by cross-validated grid search or successive halving (the seed's TuneTask, no UI).

scikit-learn decides *what* to fit: ``ParameterGrid`` enumerates the combinations,
``StratifiedKFold`` makes the folds, ``clone`` copies Keras's own
``keras.wrappers.SKLearnClassifier`` per fit, and the halving schedule is
``HalvingGridSearchCV``'s. Our loop decides *when*: it runs one fold at a time, so that

- each fold streams its held-out accuracy and loss (``FoldEnd``) as it finishes;
- a stop ends the fit in progress at the next batch and discards only that fit;
- a combination whose layers cannot fit the image size (the check training makes,
  ``architecture_problem``) is marked invalid before anything runs (``CombinationInvalid``),
  never fitted and never ranked; when every combination is invalid the search refuses to
  start (``InvalidGridError``) naming the field and its values;
- a combination that fails while it runs (out of memory, NaN loss) is recorded once
  (``CombinationFailed``) and skipped, not retried per fold; anything else is a
  ``FatalTuningError`` and stops the search;
- every finished fold is appended to ``folds.jsonl`` in the run folder, so an interrupted
  search resumes with only the folds not yet done (``resume_from=``).

Inside ``GridSearchCV`` none of this is possible (a stop is scored as a finished fold or
swallowed as a failed fit, and nothing resumes), yet our table keeps its ``cv_results_``
columns and gives the same scores on the same folds and seeds (see the tests).

Every fit uses the same seed (``keras.utils.set_random_seed(hyper_params.seed)`` before the
model is built), so a fold's score does not depend on the order fits ran in or on a resume.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import re
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import keras
import numpy as np
from sklearn.base import clone
from sklearn.model_selection import ParameterGrid, StratifiedKFold, train_test_split
from sklearn.utils import resample
from sklearn.utils.class_weight import compute_class_weight

from convonet.core.architecture import (
    ArchitectureProblem,
    all_invalid_message,
    architecture_problem,
)
from convonet.core.errors import ConvonetError
from convonet.core.events import CancelToken, Event, Reporter, TaskDone, no_report
from convonet.core.graph_memory import releasing_traced_gradients
from convonet.core.model import ARCHITECTURE_FIELDS, build_model, learning_rate_at
from convonet.core.params import HyperParams
from convonet.core.runs import FOLDS_JSONL, HYPER_PARAMS_JSON, RESULTS_CSV, RunFolder, now_iso
from convonet.core.storage import check_writable, storage_cause

STRATEGIES = ("grid", "halving")
HALVING_FACTOR = 3
TASK = "tuning"

BuildFn = Callable[[Mapping[str, Any], tuple[int, int, int], int], keras.Model]


# ---- errors (a failed combination vs a fatal error, as keras-tuner's errors.py) ---------
class TuningError(ConvonetError):
    """Base of the tuning errors."""

    title = "Tuning error"
    advice = "Check the tuning values in the hyper params, then tune again."


class CombinationError(TuningError):
    """This combination cannot run here: record it once with the reason and go on."""


class FatalTuningError(TuningError):
    """The search cannot go on (bad data, a resume that does not match, a bug)."""


class InvalidGridError(FatalTuningError, ValueError):
    """Every combination of the grid is invalid for these images: nothing can be tuned.

    A ValueError too, as the params errors are: the message is the whole story.
    """


class NonFiniteLoss(ArithmeticError):
    """The training loss became NaN or infinite: the combination diverged."""


# ---- events -----------------------------------------------------------------------------
@dataclass(frozen=True)
class TuneStart(Event):
    """Up front: how many fits the search will run (halving: at most)."""

    total_fits: int
    combinations: int
    folds: int
    strategy: str  # "grid" | "halving"
    samples: int = 0  # images in the tuning share
    fits_done: int = 0  # already done by an earlier, resumed run
    searched: tuple[str, ...] = ()  # fields with more than one value
    run_dir: str = ""
    invalid: int = 0  # combinations marked invalid, not run (counted in combinations)


@dataclass(frozen=True)
class RungStart(Event):
    """Successive halving: a rung begins with these candidates on this many samples."""

    rung: int  # 0-based
    rungs: int
    candidates: int
    n_resources: int
    total_fits: int
    fits_done: int


@dataclass(frozen=True)
class FoldEnd(Event):
    """One fold's held-out accuracy and loss, as soon as it is known."""

    combination_index: int
    params: dict[str, Any]
    fold: int  # 0-based
    accuracy: float
    loss: float
    seconds: float  # fit + score
    fits_done: int
    total_fits: int
    rung: int = 0
    n_resources: int = 0
    resumed: bool = False  # replayed from an earlier run's folds.jsonl, not fitted now


@dataclass(frozen=True)
class CombinationFailed(Event):
    """A combination could not run; it is skipped and the search goes on."""

    combination_index: int
    params: dict[str, Any]
    reason: str
    rung: int = 0
    fits_done: int = 0
    total_fits: int = 0
    resumed: bool = False


@dataclass(frozen=True)
class CombinationInvalid(Event):
    """A combination whose layers cannot fit the images: marked before anything runs."""

    combination_index: int
    params: dict[str, Any]
    field: str  # the params field to change (kernel_size, image_size)
    reason: str
    resumed: bool = False  # already recorded by an earlier run of this search


# ---- result -----------------------------------------------------------------------------
@dataclass
class TuneResult:
    """The search's table (``cv_results_`` columns), its best combination and its folds."""

    rows: list[dict[str, Any]]  # one per combination (halving: per rung and candidate)
    columns: list[str]
    folds: list[dict[str, Any]]  # every finished fold, in the order they finished
    failures: list[dict[str, Any]]
    best_index: int | None  # into rows
    best_params: dict[str, Any] | None
    best_score: float | None
    stopped: bool
    strategy: str
    searched: list[str]
    total_fits: int
    fits_done: int
    run: RunFolder | None = None
    invalid: list[dict[str, Any]] = field(default_factory=list)  # marked, never run

    @property
    def status(self) -> str:
        return "stopped" if self.stopped else "finished"

    def cv_results(self) -> dict[str, list[Any]]:
        """Column-oriented, like ``GridSearchCV.cv_results_``."""
        return {c: [row.get(c) for row in self.rows] for c in self.columns}

    def ranked(self) -> list[dict[str, Any]]:
        """Rows best first (the seed's "Grid Search Results" order)."""
        return sorted(self.rows, key=lambda r: (r["rank_test_score"],
                                                r["combination_index"], -r["iter"]))


# ---- the model as scikit-learn sees it --------------------------------------------------
class QuietSequential(keras.Sequential):
    """``SKLearnClassifier.predict`` calls ``model.predict(X)``, which prints a progress bar."""

    def predict(self, x: Any, batch_size: Any = None, verbose: Any = 0,
                **kwargs: Any) -> Any:
        return super().predict(x, batch_size=batch_size, verbose=verbose, **kwargs)


def flat_model(X: np.ndarray, y: np.ndarray, config: Mapping[str, Any],
               image_shape: Sequence[int], seed: int, build: BuildFn = build_model,
               reuse: ModelReuse | None = None) -> keras.Model:
    """The model callable given to ``SKLearnClassifier``.

    The wrapper insists on 2-D X and one-hot y, so the image CNN from ``build`` is wrapped:
    a Reshape restores the images, and the loss becomes categorical crossentropy. Every
    fit starts from the same state whoever drives it (our loop or GridSearchCV): a fresh
    session, the seed set, the model built, and the seed set again right before ``fit``.
    With ``reuse`` the model of an earlier fit with the same architecture comes back reset
    to that state, without tracing its training step again.
    """
    if reuse is not None:
        return reuse.model_for(config, image_shape, int(y.shape[1]), int(seed))
    # a fresh session and seed state for every fit; the caller collects garbage after it
    keras.backend.clear_session(free_memory=False)
    model = _build_flat_model(config, image_shape, int(y.shape[1]), int(seed), build)
    keras.utils.set_random_seed(int(seed))
    return model


def _build_flat_model(config: Mapping[str, Any], image_shape: Sequence[int],
                      n_classes: int, seed: int, build: BuildFn) -> keras.Model:
    """Build, compile and build the optimizer (its slots are part of the start state)."""
    # The seed is set right before the weights are made (Keras keeps a global seed
    # generator whose state would otherwise carry over from the fit before).
    keras.utils.set_random_seed(seed)
    shape = tuple(int(s) for s in image_shape)
    try:
        inner = build(config, shape, n_classes)  # type: ignore[arg-type]
    except CombinationError:
        raise
    except Exception as exc:  # any error building one configuration is that config's
        raise CombinationError(failure_reason(exc) or f"cannot build the model: "
                               f"{_short(exc)}") from exc
    model = QuietSequential([keras.Input(shape=(int(np.prod(shape)),)),
                             keras.layers.Reshape(shape), inner], name="tuning_model")
    optimizer = inner.optimizer
    if optimizer is None:
        optimizer = keras.optimizers.SGD(learning_rate=float(config["init_rate"]),
                                         momentum=float(config["momentum"]))
    else:  # a fresh copy: the inner model's optimizer is bound to the inner compile
        optimizer = optimizer.__class__.from_config(optimizer.get_config())
    model.compile(optimizer=optimizer, loss="categorical_crossentropy", metrics=["accuracy"])
    model.optimizer.build(model.trainable_variables)
    return model


class ModelReuse:
    """One built and traced model per architecture, reset to its start state per fit.

    Building a model and tracing its training step costs about 0.8 s here whatever the
    data, which dominated small fits (successive halving's first rungs, small folds).
    Folds of one combination, and combinations that differ only in learning rate, decay,
    epochs or batch size, share an architecture: the model built for the first of them
    keeps its traced functions, and before every later fit its variables (weights,
    dropout seed state, optimizer slots and step count) are set back to the values they
    had right after that first build, the learning rate to this combination's, and the
    seed is set again. Each fit then starts exactly where a freshly built model would
    (tests compare the scores with GridSearchCV's fresh builds).

    Only the last architecture is kept: the search runs the combinations grouped by
    architecture (``order``), so memory holds one model. ``sklearn.base.clone`` copies an
    estimator's parameters deeply; this object is shared, not copied, by its clones.
    """

    def __init__(self, build: BuildFn = build_model) -> None:
        self.build = build
        self.key: tuple[Any, ...] | None = None
        self.model: keras.Model | None = None
        self.start: list[np.ndarray] = []
        self.builds = 0
        self.reuses = 0

    def __deepcopy__(self, memo: dict[int, Any]) -> ModelReuse:
        return self

    def architecture(self, config: Mapping[str, Any], image_shape: Sequence[int],
                     n_classes: int, seed: int) -> tuple[Any, ...]:
        """What must match for two fits to share a model. A build function other than
        ``build_model`` may read any field, so then every field must match."""
        fields = ARCHITECTURE_FIELDS if self.build is build_model else sorted(config)
        return (tuple((f, _jsonish(config.get(f))) for f in fields),
                tuple(int(s) for s in image_shape), int(n_classes), int(seed))

    def order(self, candidates: Sequence[Mapping[str, Any]], members: Sequence[int],
              base: Mapping[str, Any]) -> list[int]:
        """``members`` (indices into ``candidates``) grouped by architecture, keeping
        the grid's order within a group and between the groups' first members."""
        groups: dict[tuple[Any, ...], list[int]] = {}
        for ci in members:
            config = {**base, **candidates[ci]}
            fields = ARCHITECTURE_FIELDS if self.build is build_model else sorted(config)
            key = tuple((f, _jsonish(config.get(f))) for f in fields)
            groups.setdefault(key, []).append(ci)
        return [ci for group in groups.values() for ci in group]

    def model_for(self, config: Mapping[str, Any], image_shape: Sequence[int],
                  n_classes: int, seed: int) -> keras.Model:
        key = self.architecture(config, image_shape, n_classes, seed)
        if self.model is None or key != self.key:
            self.release()
            model = _build_flat_model(config, image_shape, n_classes, seed, self.build)
            self.start = [np.array(v.numpy()) for v in self._state(model)]
            self.model, self.key = model, key
            self.builds += 1
        else:
            model = self.model
            for variable, value in zip(self._state(model), self.start, strict=True):
                variable.assign(value)
            self.reuses += 1
        model.optimizer.learning_rate = float(config["init_rate"])
        model.stop_training = False
        keras.utils.set_random_seed(seed)
        return model

    @staticmethod
    def _state(model: keras.Model) -> list[Any]:
        return [*model.variables, *model.optimizer.variables]

    def release(self) -> None:
        """Drop the kept model and clear the session (garbage collected)."""
        had = self.model is not None
        self.model, self.key, self.start = None, None, []
        if had:
            keras.backend.clear_session()


def make_estimator(config: Mapping[str, Any], image_shape: Sequence[int], seed: int,
                   build: BuildFn = build_model, reuse: ModelReuse | None = None
                   ) -> keras.wrappers.SKLearnClassifier:
    """One combination as a scikit-learn classifier (fit arguments go to ``fit``)."""
    kwargs: dict[str, Any] = {"config": dict(config), "image_shape": tuple(image_shape),
                              "seed": int(seed), "build": build}
    if reuse is not None:
        kwargs["reuse"] = reuse
    return keras.wrappers.SKLearnClassifier(model=flat_model, model_kwargs=kwargs)


class _StopOnCancel(keras.callbacks.Callback):
    """Ends the fit at the next batch once the token is set."""

    # Async-safe: Keras may run batch-end hooks on a helper thread instead of turning every
    # batch's logs into numbers on the training thread (a per-batch sync). Reading the
    # token and setting the flag is safe from any thread; batch-begin hooks run on the
    # training thread, so a stop is seen before the next batch is dispatched.
    async_safe = True

    def __init__(self, cancel: CancelToken) -> None:
        super().__init__()
        self.cancel = cancel

    def on_train_batch_begin(self, batch: int, logs: Any = None) -> None:
        if self.cancel.cancelled:
            self.model.stop_training = True

    def on_train_batch_end(self, batch: int, logs: Any = None) -> None:
        if self.cancel.cancelled:
            self.model.stop_training = True


class _TimeBasedDecay(keras.callbacks.Callback):
    """lr = init_rate / (1 + decay * epoch), set at each epoch's start.

    Keras's LearningRateScheduler reads the rate back through ``np.array`` first, which
    warns under NumPy 2 on every epoch; this only writes it.
    """

    def __init__(self, config: Mapping[str, Any]) -> None:
        super().__init__()
        self.config = dict(config)

    def on_epoch_begin(self, epoch: int, logs: Any = None) -> None:
        self.model.optimizer.learning_rate = learning_rate_at(self.config, epoch)


class _FailOnNonFiniteLoss(keras.callbacks.Callback):
    """Raises at the end of an epoch whose loss is NaN/inf (TerminateOnNaN would print)."""

    def on_epoch_end(self, epoch: int, logs: Any = None) -> None:
        loss = (logs or {}).get("loss")
        if loss is not None and not math.isfinite(float(loss)):
            raise NonFiniteLoss(f"loss became {float(loss)} in epoch {epoch + 1}")


def fit_params(config: Mapping[str, Any], y_train: np.ndarray | None = None,
               cancel: CancelToken | None = None) -> dict[str, Any]:
    """Arguments for ``SKLearnClassifier.fit`` (constructor ``fit_kwargs`` are lost on clone)."""
    cfg = dict(config)
    callbacks: list[keras.callbacks.Callback] = [
        _TimeBasedDecay(cfg),
        _FailOnNonFiniteLoss(),
    ]
    if cancel is not None:
        callbacks.append(_StopOnCancel(cancel))
    out: dict[str, Any] = {"epochs": int(cfg["epochs"]), "batch_size": int(cfg["batch_size"]),
                           "verbose": 0, "callbacks": callbacks}
    if cfg.get("class_weight") == "balanced" and y_train is not None:
        classes = np.unique(y_train)
        weights = compute_class_weight("balanced", classes=classes, y=y_train)
        # the wrapper one-hot encodes the sorted classes present, so index i = classes[i]
        out["class_weight"] = {i: float(w) for i, w in enumerate(weights)}
    return out


# ---- failure classification -------------------------------------------------------------
_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_OOM_WORDS = ("out of memory", "resource_exhausted", "resourceexhausted", " oom ", "oom when")
_SHAPE_WORDS = ("negative dimension", "zero or negative", "negative output size",
                "would be negative", "filter must not be larger", "cannot fit")


def _short(exc: BaseException, limit: int = 300) -> str:
    """The informative line of an exception (Keras wraps it in call context and ANSI)."""
    text = _ANSI.sub("", str(exc))
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    lines = [ln for ln in lines if not ln.startswith(("Exception encountered when calling",
                                                      "Arguments received by", "•"))]
    line = lines[0] if lines else type(exc).__name__
    return line if len(line) <= limit else line[: limit - 1] + "…"


def failure_reason(exc: BaseException) -> str | None:
    """Why one combination failed, or None when the error is not a per-combination one."""
    if isinstance(exc, CombinationError):
        return str(exc)
    if isinstance(exc, NonFiniteLoss):
        return f"NaN loss: {exc}"
    names = " ".join(c.__name__ for c in type(exc).__mro__).lower()
    text = " " + _ANSI.sub("", str(exc)).lower() + " "
    if isinstance(exc, MemoryError) or "resourceexhausted" in names \
            or "outofmemory" in names or any(w in text for w in _OOM_WORDS):
        return f"out of memory: {_short(exc)}"
    if any(w in text for w in _SHAPE_WORDS):
        return f"layers do not fit the image size: {_short(exc)}"
    return None


# ---- data and schedule ------------------------------------------------------------------
def tuning_data(x: np.ndarray, y: np.ndarray, hyper_params: HyperParams,
                class_names: Sequence[str] | None = None
                ) -> tuple[np.ndarray, np.ndarray, tuple[int, int, int]]:
    """The stratified, seeded tuning share, flattened to 2-D for the sklearn wrapper.

    Returns (X 2-D float32, y int64, image shape). Raises FatalTuningError on bad data,
    naming a class by its folder when ``class_names`` are given.
    """
    x = np.asarray(x)
    y = np.asarray(y)
    if x.ndim == 3:
        x = x[..., np.newaxis]
    if x.ndim != 4:
        raise FatalTuningError(f"images must be an array (n, height, width, channels); got "
                               f"shape {x.shape}")
    if y.ndim != 1 or len(y) != len(x):
        raise FatalTuningError(f"labels must be one per image: {len(x)} images, labels of "
                               f"shape {y.shape}")
    if not np.issubdtype(y.dtype, np.integer):
        raise FatalTuningError(f"labels must be whole class indices, got {y.dtype}")
    image_shape = (int(x.shape[1]), int(x.shape[2]), int(x.shape[3]))
    share = float(hyper_params.tuning_share)
    folds = int(hyper_params.cv_folds)
    idx = np.arange(len(y))
    if share < 1.0:
        try:
            idx, _ = train_test_split(idx, train_size=share, stratify=y,
                                      random_state=int(hyper_params.seed))
        except ValueError as exc:
            raise FatalTuningError(f"cannot take a stratified tuning share of {share} from "
                                   f"{len(y)} images: {exc}") from exc
        idx = np.sort(idx)
    xs = np.ascontiguousarray(x[idx].reshape(len(idx), -1), dtype=np.float32)
    ys = y[idx].astype(np.int64)
    if not np.isfinite(xs).all():
        raise FatalTuningError("the images hold NaN or infinite values")
    classes, counts = np.unique(ys, return_counts=True)
    if len(classes) < 2:
        raise FatalTuningError("tuning needs at least two classes in the tuning share")
    if counts.min() < folds:
        c = int(classes[int(np.argmin(counts))])
        name = (f"class '{class_names[c]}'" if class_names is not None
                and 0 <= c < len(class_names) else f"class {c}")
        raise FatalTuningError(f"the tuning share holds only {counts.min()} images of {name}, "
                               f"fewer than cv_folds={folds}: raise tuning_share, lower "
                               f"cv_folds or add images to that class")
    return xs, ys, image_shape


def cv_splitter(hyper_params: HyperParams) -> StratifiedKFold:
    """The folds every strategy uses: stratified, shuffled with the params' seed."""
    return StratifiedKFold(n_splits=int(hyper_params.cv_folds), shuffle=True,
                           random_state=int(hyper_params.seed))


def halving_schedule(n_candidates: int, n_samples: int, n_splits: int, n_classes: int,
                     factor: int = HALVING_FACTOR) -> list[tuple[int, int]]:
    """(candidates, samples) per rung, as HalvingGridSearchCV computes it.

    resource=n_samples, min_resources="exhaust", max_resources=n_samples,
    aggressive_elimination=False (scikit-learn's defaults).
    """
    min_resources = n_splits * 2 * n_classes  # scikit-learn's "smallest"
    n_required = 1 + math.floor(math.log(n_candidates, factor))
    min_resources = max(min_resources, n_samples // factor ** (n_required - 1))
    if min_resources > n_samples:
        raise FatalTuningError(f"successive halving needs at least {min_resources} images "
                               f"(2 x folds x classes); the tuning share has {n_samples}")
    n_possible = 1 + math.floor(math.log(n_samples // min_resources, factor))
    rungs = []
    candidates = n_candidates
    for itr in range(min(n_possible, n_required)):
        rungs.append((candidates, min(int(factor**itr * min_resources), n_samples)))
        candidates = math.ceil(candidates / factor)
    return rungs


def _rung_splits(splits: list[tuple[np.ndarray, np.ndarray]], y: np.ndarray,
                 n_resources: int, seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """Subsample each fold to a share of the data, as HalvingGridSearchCV does.

    Unlike scikit-learn's subsample ours is stratified, so that every class is in every
    small training fold (the one-hot width must match the number of classes).
    """
    n = len(y)
    if n_resources >= n:
        return splits
    fraction = n_resources / n
    out = []
    for train, test in splits:
        sub = []
        for part in (train, test):
            k = int(fraction * len(part))
            try:
                sub.append(np.sort(resample(part, replace=False, n_samples=k,
                                            random_state=seed, stratify=y[part])))
            except ValueError:  # too few per class to stratify: plain subsample
                sub.append(np.sort(resample(part, replace=False, n_samples=k,
                                            random_state=seed)))
        out.append((sub[0], sub[1]))
    return out


def _log_loss(y: np.ndarray, proba: np.ndarray, classes: np.ndarray) -> float:
    """Mean categorical crossentropy, clipped as Keras clips (1e-7)."""
    col = {int(c): i for i, c in enumerate(classes)}
    p = np.array([proba[i, col[int(t)]] if int(t) in col else 0.0 for i, t in enumerate(y)])
    return float(-np.mean(np.log(np.clip(p, 1e-7, 1.0))))


def _norm(params: Mapping[str, Any]) -> dict[str, Any]:
    """Params as they read back from JSON (so recorded and current ones compare equal)."""
    return {str(k): (v.item() if isinstance(v, np.generic) else v) for k, v in params.items()}


# ---- the search -------------------------------------------------------------------------
class Tuner:
    """One search: holds its state so that stop, failure and resume share one loop."""

    def __init__(self, x: np.ndarray, y: np.ndarray, hyper_params: HyperParams, *,
                 report: Reporter = no_report, cancel: CancelToken | None = None,
                 run: RunFolder | None = None, build: BuildFn = build_model,
                 class_names: Sequence[str] | None = None) -> None:
        self.hp = hyper_params
        self.report = report
        self.cancel = cancel or CancelToken()
        self.run = run
        self.build = build
        self.strategy = str(hyper_params.search)
        if self.strategy not in STRATEGIES:
            raise FatalTuningError(f"unknown search strategy {self.strategy!r}")
        self.seed = int(hyper_params.seed)
        self.n_folds = int(hyper_params.cv_folds)
        self.X, self.y, self.image_shape = tuning_data(x, y, hyper_params, class_names)
        self.base_config = hyper_params.first()
        self.grid = hyper_params.grid()
        self.candidates = [_norm(p) for p in ParameterGrid(self.grid)]
        self.searched = sorted(hyper_params.searched())
        # Training refuses these configurations, so tuning never fits or ranks them.
        self.invalid: dict[int, ArchitectureProblem] = {}
        for ci, params in enumerate(self.candidates):
            problem = architecture_problem({**self.base_config, **params}, self.image_shape)
            if problem is not None:
                self.invalid[ci] = problem
        if len(self.invalid) == len(self.candidates):
            raise InvalidGridError(all_invalid_message(list(self.invalid.values())))
        self.valid = [ci for ci in range(len(self.candidates)) if ci not in self.invalid]
        self.invalid_recorded: set[int] = set()
        self.splits = list(cv_splitter(hyper_params).split(self.X, self.y))
        n_classes = len(np.unique(self.y))
        if self.strategy == "halving" and len(self.valid) > 1:
            self.schedule = halving_schedule(len(self.valid), len(self.y), self.n_folds,
                                             n_classes)
        else:
            self.schedule = [(len(self.valid), len(self.y))]
        # state
        self.folds: dict[tuple[int, int, int], dict[str, Any]] = {}  # (rung, comb, fold)
        self.order: list[dict[str, Any]] = []
        self.failed: dict[int, dict[str, Any]] = {}  # combination -> failure record
        self.rung_members: list[list[int]] = []
        self.reuse = ModelReuse(build)
        self.fits_done = 0
        self.total_fits = sum(c for c, _ in self.schedule) * self.n_folds
        self.stopped = False

    # ---- persistence ---------------------------------------------------------------
    def signature(self) -> dict[str, Any]:
        """What must match for a resume to continue the same search."""
        from convonet.core.runs import dataset_fingerprint

        return {"strategy": self.strategy, "grid": self.grid, "cv_folds": self.n_folds,
                "tuning_share": float(self.hp.tuning_share), "seed": self.seed,
                "base_config": _norm(self.base_config), "samples": len(self.y),
                "fingerprint": dataset_fingerprint(self.X, self.y)}

    def load_records(self, records: list[dict[str, Any]]) -> None:
        """Take the folds and failures an earlier run of this search already recorded."""
        for rec in records:
            ci = int(rec["combination_index"])
            if ci >= len(self.candidates) or _norm(rec["params"]) != self.candidates[ci]:
                raise FatalTuningError(f"{FOLDS_JSONL} does not match this grid "
                                       f"(combination {ci})")
            if rec.get("kind") == "invalid":
                self.invalid_recorded.add(ci)
            elif ci in self.invalid:
                continue  # fitted by a version that did not check: never a score now
            elif rec.get("kind") == "failed":
                self.failed[ci] = rec
            elif rec.get("kind") == "fold":
                # marked for the tables: this fold comes from the earlier run, not this one
                self.folds[(int(rec["rung"]), ci, int(rec["fold"]))] = {**rec, "resumed": True}

    def _failed_at(self, ci: int, rung: int) -> bool:
        """A combination can pass a rung and fail a later one (e.g. out of memory on more
        samples); only its own rung treats it as failed, also on resume."""
        failure = self.failed.get(ci)
        return failure is not None and int(failure["rung"]) == rung

    def _record(self, rec: dict[str, Any]) -> None:
        if self.run is not None:
            self.run.append_jsonl(FOLDS_JSONL, rec)

    # ---- the loop ------------------------------------------------------------------
    def run_search(self) -> TuneResult:
        resumed_fits = sum(1 for (rung, ci, _) in self.folds if not self._failed_at(ci, rung))
        self.report(TuneStart(total_fits=self.total_fits, combinations=len(self.candidates),
                              folds=self.n_folds, strategy=self.strategy,
                              samples=len(self.y), fits_done=resumed_fits,
                              searched=tuple(self.searched),
                              run_dir=str(self.run.path) if self.run else "",
                              invalid=len(self.invalid)))
        self._mark_invalid()
        members = list(self.valid)
        planned = [c for c, _ in self.schedule]
        for rung, (_, n_resources) in enumerate(self.schedule):
            if rung > 0:
                members = self._promote(rung - 1, members)
                self._replan(rung, len(members), planned)
                if not members:
                    break
            self.rung_members.append(members)
            splits = _rung_splits(self.splits, self.y, n_resources, self.seed)
            if self.strategy == "halving":
                self.report(RungStart(rung=rung, rungs=len(self.schedule),
                                      candidates=len(members), n_resources=n_resources,
                                      total_fits=self.total_fits, fits_done=self.fits_done))
            for ci in self.reuse.order(self.candidates, members, self.base_config):
                if not self._run_combination(rung, ci, splits, n_resources):
                    self.stopped = True
                    return self.result()
        return self.result()

    def _mark_invalid(self) -> None:
        """Record and report each invalid combination once, before any fit."""
        for ci, problem in self.invalid.items():
            resumed = ci in self.invalid_recorded
            if not resumed:
                self._record({**self._invalid_record(ci), "time": now_iso()})
                self.invalid_recorded.add(ci)
            self.report(CombinationInvalid(ci, self.candidates[ci], problem.field,
                                           problem.message, resumed=resumed))

    def _invalid_record(self, ci: int) -> dict[str, Any]:
        """An invalid combination as folds.jsonl and ``TuneResult.invalid`` hold it."""
        problem = self.invalid[ci]
        return {"kind": "invalid", "rung": 0, "combination_index": ci,
                "params": self.candidates[ci], "field": problem.field,
                "reason": problem.message}

    def _replan(self, rung: int, n_members: int, planned: list[int]) -> None:
        """Halving: fewer candidates than scheduled (failures) means fewer fits to come."""
        old = sum(planned[rung:])
        c = n_members
        for j in range(rung, len(planned)):
            planned[j] = c
            c = math.ceil(c / HALVING_FACTOR)
        self.total_fits += (sum(planned[rung:]) - old) * self.n_folds

    def _promote(self, rung: int, members: list[int]) -> list[int]:
        """The best ceil(n / factor) complete candidates of a rung (failed ones never)."""
        scored = []
        for ci in members:
            recs = [self.folds.get((rung, ci, k)) for k in range(self.n_folds)]
            if self._failed_at(ci, rung) or any(r is None for r in recs):
                continue
            scored.append((float(np.mean([r["accuracy"] for r in recs if r])), ci))
        keep = math.ceil(len(members) / HALVING_FACTOR)
        best = sorted(scored, key=lambda s: (-s[0], s[1]))[:keep]
        return sorted(ci for _, ci in best)

    def _run_combination(self, rung: int, ci: int, splits: list[tuple[np.ndarray,
                         np.ndarray]], n_resources: int) -> bool:
        """All folds of one combination; False when the search was stopped."""
        params = self.candidates[ci]
        if self._failed_at(ci, rung):
            failure = self.failed[ci]
            self.total_fits -= self.n_folds
            self.report(CombinationFailed(ci, params, str(failure["reason"]), rung=rung,
                                          fits_done=self.fits_done,
                                          total_fits=self.total_fits, resumed=True))
            return True
        config = {**self.base_config, **params}
        estimator = make_estimator(config, self.image_shape, self.seed, self.build,
                                   self.reuse)
        for k, (train, test) in enumerate(splits):
            key = (rung, ci, k)
            if key in self.folds:  # done by an earlier run: replay it
                done = self.folds[key]
                self.fits_done += 1
                self.order.append(done)
                self.report(self._fold_event(done, resumed=True))
                continue
            if self.cancel.cancelled:
                return False
            try:
                rec = self._fit_fold(estimator, config, train, test)
            except CombinationError as exc:
                self._fail(rung, ci, k, str(exc))
                return True
            if rec is None:  # stopped during the fit: discard it
                return False
            rec.update({"kind": "fold", "rung": rung, "n_resources": n_resources,
                        "combination_index": ci, "params": params, "fold": k,
                        "time": now_iso()})
            self._record(rec)
            self.folds[key] = rec
            self.order.append(rec)
            self.fits_done += 1
            self.report(self._fold_event(rec))
        return True

    def _fail(self, rung: int, ci: int, fold: int, reason: str) -> None:
        rec = {"kind": "failed", "rung": rung, "combination_index": ci,
               "params": self.candidates[ci], "fold": fold, "reason": reason,
               "time": now_iso()}
        self._record(rec)
        self.failed[ci] = rec
        # folds of this combination already finished in this rung stay counted
        self.total_fits -= self.n_folds - fold
        self.report(CombinationFailed(ci, self.candidates[ci], reason, rung=rung,
                                      fits_done=self.fits_done, total_fits=self.total_fits))

    def _fold_event(self, rec: Mapping[str, Any], resumed: bool = False) -> FoldEnd:
        return FoldEnd(combination_index=int(rec["combination_index"]),
                       params=dict(rec["params"]), fold=int(rec["fold"]),
                       accuracy=float(rec["accuracy"]), loss=float(rec["loss"]),
                       seconds=float(rec["fit_time"]) + float(rec["score_time"]),
                       fits_done=self.fits_done, total_fits=self.total_fits,
                       rung=int(rec["rung"]), n_resources=int(rec["n_resources"]),
                       resumed=resumed)

    def _fit_fold(self, estimator: Any, config: Mapping[str, Any], train: np.ndarray,
                  test: np.ndarray) -> dict[str, Any] | None:
        """Fit one clone on one fold and score it; None if a stop cut the fit short."""
        est = clone(estimator)
        try:
            t0 = time.perf_counter()
            with releasing_traced_gradients():
                est.fit(self.X[train], self.y[train],
                        **fit_params(config, self.y[train], self.cancel))
            fit_time = time.perf_counter() - t0
            if self.cancel.cancelled:
                return None
            t1 = time.perf_counter()
            proba = est.model_.predict(self.X[test], batch_size=int(config["batch_size"]),
                                       verbose=0)
            if not np.isfinite(proba).all():
                raise NonFiniteLoss("the model predicts NaN")
            pred = est.classes_[np.argmax(proba, axis=1)]
            accuracy = float(np.mean(pred == self.y[test]))
            loss = _log_loss(self.y[test], proba, est.classes_)
            score_time = time.perf_counter() - t1
        except CombinationError:
            raise
        except Exception as exc:
            reason = failure_reason(exc)
            if reason is None:
                raise FatalTuningError(f"{type(exc).__name__}: {_short(exc)}") from exc
            raise CombinationError(reason) from exc
        finally:
            del est  # the model stays with self.reuse until the architecture changes
        return {"accuracy": accuracy, "loss": loss, "fit_time": fit_time,
                "score_time": score_time, "train_size": int(len(train)),
                "test_size": int(len(test))}

    # ---- the table -----------------------------------------------------------------
    def columns(self) -> list[str]:
        k = range(self.n_folds)
        return (["params", *(f"param_{n}" for n in sorted(self.grid))]
                + [f"split{i}_test_score" for i in k]
                + ["mean_test_score", "std_test_score", "rank_test_score"]
                + [f"split{i}_test_loss" for i in k]
                + ["mean_test_loss", "std_test_loss", "mean_fit_time", "std_fit_time",
                   "mean_score_time", "std_score_time", "status", "reason", "iter",
                   "n_resources", "combination_index"])

    def rows(self) -> list[dict[str, Any]]:
        rows = []
        for rung, members in enumerate(self.rung_members):
            n_resources = self.schedule[rung][1]
            for ci in members:
                params = self.candidates[ci]
                row: dict[str, Any] = {"params": params, "iter": rung,
                                       "n_resources": n_resources, "combination_index": ci}
                for name in sorted(self.grid):
                    row[f"param_{name}"] = params[name]
                recs = [self.folds.get((rung, ci, k)) for k in range(self.n_folds)]
                done = [r for r in recs if r is not None]
                for k, r in enumerate(recs):
                    row[f"split{k}_test_score"] = r["accuracy"] if r else math.nan
                    row[f"split{k}_test_loss"] = r["loss"] if r else math.nan
                for col, key in (("test_score", "accuracy"), ("test_loss", "loss"),
                                 ("fit_time", "fit_time"), ("score_time", "score_time")):
                    vals = [float(r[key]) for r in done]
                    row[f"mean_{col}"] = float(np.mean(vals)) if vals else math.nan
                    row[f"std_{col}"] = float(np.std(vals)) if vals else math.nan
                failure = self.failed.get(ci)
                if failure is not None and int(failure["rung"]) == rung:
                    row["status"], row["reason"] = "failed", str(failure["reason"])
                elif len(done) == self.n_folds:
                    row["status"], row["reason"] = "ok", ""
                else:
                    row["status"] = "stopped"
                    row["reason"] = (f"stopped after {len(done)} of {self.n_folds} folds"
                                     if done else "not run")
                rows.append(row)
        rows += [self._invalid_row(ci, problem) for ci, problem in self.invalid.items()]
        # rank like GridSearchCV ("min" ties); incomplete, failed and invalid rows rank last
        ok = [r for r in rows if r["status"] == "ok"]
        scores = sorted((r["mean_test_score"] for r in ok), reverse=True)
        for r in rows:
            r["rank_test_score"] = (scores.index(r["mean_test_score"]) + 1
                                    if r["status"] == "ok" else len(ok) + 1)
        return rows

    def _invalid_row(self, ci: int, problem: ArchitectureProblem) -> dict[str, Any]:
        """An invalid combination's row: no fold ran, so every score is missing."""
        params = self.candidates[ci]
        row: dict[str, Any] = {"params": params, "iter": 0,
                               "n_resources": self.schedule[0][1], "combination_index": ci,
                               "status": "invalid", "reason": problem.message}
        for name in sorted(self.grid):
            row[f"param_{name}"] = params[name]
        for k in range(self.n_folds):
            row[f"split{k}_test_score"] = row[f"split{k}_test_loss"] = math.nan
        for col in ("test_score", "test_loss", "fit_time", "score_time"):
            row[f"mean_{col}"] = row[f"std_{col}"] = math.nan
        return row

    def result(self) -> TuneResult:
        rows = self.rows()
        best_index: int | None = None
        ok = [i for i, r in enumerate(rows) if r["status"] == "ok"]
        if ok:  # halving: the best of the last rung with complete rows, as scikit-learn
            last = max(rows[i]["iter"] for i in ok)
            ok = [i for i in ok if rows[i]["iter"] == last]
            best_index = max(ok, key=lambda i: (rows[i]["mean_test_score"], -i))
        best = rows[best_index] if best_index is not None else None
        return TuneResult(rows=rows, columns=self.columns(), folds=list(self.order),
                          failures=list(self.failed.values()), best_index=best_index,
                          best_params=dict(best["params"]) if best else None,
                          best_score=float(best["mean_test_score"]) if best else None,
                          stopped=self.stopped, strategy=self.strategy,
                          searched=list(self.searched), total_fits=self.total_fits,
                          fits_done=self.fits_done, run=self.run,
                          invalid=[self._invalid_record(ci) for ci in self.invalid])


def tune(x: np.ndarray, y: np.ndarray, hyper_params: HyperParams | None = None, *,
         report: Reporter = no_report, cancel: CancelToken | None = None,
         results_dir: str | os.PathLike[str] | None = None,
         run: RunFolder | None = None,
         resume_from: RunFolder | str | os.PathLike[str] | None = None,
         data_params: Any = None, build: BuildFn = build_model,
         class_names: Sequence[str] | None = None) -> TuneResult:
    """Tune on images ``x`` (n, h, w, c) and labels ``y`` with ``hyper_params.search``.

    ``class_names`` (the dataset's, by label) only make messages name class folders.

    Persistence: with ``results_dir`` a new run folder is made under it (or pass ``run``);
    with ``resume_from`` that run folder is continued, running only the folds its
    folds.jsonl lacks (``hyper_params`` default to the copy saved there). Without any of
    them nothing is written. A stop returns a result with ``stopped=True``; a fatal error
    raises ``FatalTuningError`` after the partial table is written.
    """
    records: list[dict[str, Any]] = []
    if resume_from is not None:
        run = resume_from if isinstance(resume_from, RunFolder) else RunFolder.open(resume_from)
        check_writable(run.path)  # still full or read-only: say so before any fit
        if hyper_params is None:
            hyper_params = HyperParams.load(run.file(HYPER_PARAMS_JSON))
        records = run.read_jsonl(FOLDS_JSONL)
    if hyper_params is None:
        raise FatalTuningError("no hyper params given")
    tuner = Tuner(x, y, hyper_params, report=report, cancel=cancel, build=build,
                  class_names=class_names)
    signature = tuner.signature()
    if run is not None and resume_from is not None:
        recorded = run.info.get("tuning", {})
        diff = sorted(k for k in signature if _jsonish(recorded.get(k)) != _jsonish(
            signature[k]))
        if diff:
            raise FatalTuningError(f"cannot resume {run.path}: {', '.join(diff)} differ from "
                                   f"the recorded search")
        tuner.load_records(records)
        resumes = list(run.info.get("resumed", [])) + [now_iso()]
        run.update(status="running", ended=None, pid=os.getpid(), resumed=resumes)
    elif run is None and results_dir is not None:
        from convonet.core.records import start_run

        run = start_run(results_dir, TASK, hyper_params=hyper_params,
                        data_params=data_params, seed=tuner.seed,
                        fingerprint=signature["fingerprint"], tuning=signature)
    elif run is not None:
        run.update(tuning=signature, seed=tuner.seed, dataset_fingerprint=signature[
            "fingerprint"])
    tuner.run = run
    try:
        with quiet_tensorflow_logger():
            try:
                result = tuner.run_search()
            finally:
                tuner.reuse.release()
        if run is not None:
            _write_table(run, result)
            run.finish(result.status, metrics=_metrics(result))
    except BaseException as exc:
        if run is None:
            raise
        partial = tuner.result()
        if isinstance(exc, Exception) and storage_cause(exc) is not None:
            # The disk is full or the folder read-only: folds.jsonl keeps the finished
            # folds and a resume rewrites the table, so say that once, plainly.
            from convonet.core.records import storage_failure

            with contextlib.suppress(OSError):
                _write_table(run, partial)
            raise storage_failure(run, exc, metrics=_metrics(partial)) from exc
        _write_table(run, partial)
        status = "failed" if isinstance(exc, Exception) else "interrupted"
        run.finish(status, metrics=_metrics(partial), error=f"{type(exc).__name__}: "
                   f"{_short(exc)}")
        raise
    report(TaskDone(TASK, result.status, result))
    return result


@contextlib.contextmanager
def quiet_tensorflow_logger() -> Iterator[None]:
    """TensorFlow's Python logger warns about retracing when many small models are fitted
    in a row (every new model traces new functions); nothing the user can act on, and it
    would garble a terminal UI. Only the stdlib logger is touched (no backend calls)."""
    logger = logging.getLogger("tensorflow")
    old = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(old)


def _jsonish(value: Any) -> Any:
    """A value as JSON would give it back (tuples -> lists), for comparisons."""
    import json

    from convonet.core.runs import to_json

    return json.loads(to_json(value)) if value is not None else None


def _metrics(result: TuneResult) -> dict[str, Any]:
    return {"best_score": result.best_score, "best_params": result.best_params,
            "fits_done": result.fits_done, "total_fits": result.total_fits,
            "failed": len(result.failures), "invalid": len(result.invalid),
            "strategy": result.strategy}


def _write_table(run: RunFolder, result: TuneResult) -> Path:
    return run.write_csv(RESULTS_CSV, result.ranked(), result.columns)


def read_results(run: RunFolder) -> list[dict[str, str]]:
    """The saved table of a run (strings, as CSV stores them)."""
    return run.read_csv(RESULTS_CSV)


__all__ = [
    "STRATEGIES", "CombinationError", "CombinationFailed", "CombinationInvalid",
    "FatalTuningError", "FoldEnd", "InvalidGridError",
    "NonFiniteLoss", "RungStart", "TuneResult", "TuneStart", "Tuner", "TuningError",
    "ModelReuse", "cv_splitter", "failure_reason", "fit_params", "flat_model", "halving_schedule",
    "make_estimator", "read_results", "tune", "tuning_data",
]
