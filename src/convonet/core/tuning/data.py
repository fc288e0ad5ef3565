"""The data a search runs on: the stratified tuning share, its folds, and each halving
rung's subsample of them."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from sklearn.model_selection import StratifiedKFold, train_test_split
from sklearn.utils import resample

from convonet.core.params import HyperParams
from convonet.core.tuning.errors import FatalTuningError


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

def rung_splits(splits: list[tuple[np.ndarray, np.ndarray]], y: np.ndarray,
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


def norm_params(params: Mapping[str, Any]) -> dict[str, Any]:
    """Params as they read back from JSON (so recorded and current ones compare equal)."""
    return {str(k): (v.item() if isinstance(v, np.generic) else v) for k, v in params.items()}


