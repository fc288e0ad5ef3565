"""One combination as scikit-learn sees it: Keras's ``SKLearnClassifier`` over a flat model,
and the reuse of one built, traced model across fits that share an architecture."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import keras
import numpy as np

from convonet.core.model import ARCHITECTURE_FIELDS, build_model
from convonet.core.model_options import has_phases, make_loss, make_optimizer
from convonet.core.tensorflow_guard import set_random_seed
from convonet.core.tuning.errors import CombinationError, _short, failure_reason

BuildFn = Callable[[Mapping[str, Any], tuple[int, int, int], int], keras.Model]


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
    set_random_seed(int(seed))
    return model


def _build_flat_model(config: Mapping[str, Any], image_shape: Sequence[int],
                      n_classes: int, seed: int, build: BuildFn) -> keras.Model:
    """Build, compile and build the optimizer (its slots are part of the start state)."""
    # The seed is set right before the weights are made (Keras keeps a global seed
    # generator whose state would otherwise carry over from the fit before).
    set_random_seed(seed)
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
        optimizer = make_optimizer(config)
    else:  # a fresh copy: the inner model's optimizer is bound to the inner compile
        optimizer = optimizer.__class__.from_config(optimizer.get_config())
    # The wrapper gives one-hot labels: the categorical loss, smoothed as training's.
    model.compile(optimizer=optimizer, loss=make_loss(config, one_hot=True),
                  metrics=["accuracy"])
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
        # A fit with a frozen phase changes what it trains part-way: never re-used.
        if self.model is None or key != self.key or has_phases(config):
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
        set_random_seed(seed)
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



def _jsonish(value: Any) -> Any:
    """A value as JSON would give it back (tuples -> lists), for comparisons."""
    from convonet.core.runs import to_json

    return json.loads(to_json(value)) if value is not None else None
