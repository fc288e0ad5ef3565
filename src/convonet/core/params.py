"""Data params and hyper params: new, load, save, edit, each value validated.

Both kinds are described by a table of ``FieldSpec`` rows (``convonet.core.param_fields``,
re-exported here with ``ParamsError``). The same table drives validation, the JSON
layout, the defaults and the help text that the edit forms show, so a field is declared
once.

Model and training values may hold several values ("64,80" in JSON, or a list): training
uses the first, tuning searches the grid of all. Every error is a ``ParamsError`` that
names the file, the field and what is expected.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar

from convonet.core.files import atomic_write_text
from convonet.core.model_choices import AUGMENTATIONS, BACKBONES, momentum_note
from convonet.core.param_fields import (
    DuplicateKeyError,
    FieldSpec,
    ParamsError,
    _did_you_mean,
    _show,
    refuse_duplicate_keys,
)

__all__ = [
    "DATA_FIELDS", "HYPER_FIELDS", "DataParams", "DuplicateKeyError", "FieldSpec",
    "HyperParams", "ParamsError", "refuse_duplicate_keys",
]


class _Params:
    """Shared behaviour of DataParams and HyperParams (new / load / save / edit)."""

    FIELDS: ClassVar[tuple[FieldSpec, ...]] = ()
    KIND: ClassVar[str] = "params"

    def __init__(self, values: Mapping[str, Any] | None = None,
                 path: str | os.PathLike[str] | None = None) -> None:
        self._values: dict[str, Any] = {f.name: f.parse(f.default) for f in self.FIELDS}
        self.path: Path | None = Path(path) if path is not None else None
        if values:
            self._values.update(self._validate(values))

    # ---- the seed's four verbs -------------------------------------------------------
    @classmethod
    def new(cls) -> _Params:
        """Defaults for every field (the seed's newParams)."""
        return cls()

    @classmethod
    def load(cls, path: str | os.PathLike[str],  # type: ignore[no-untyped-def]
             *, check: bool = True):
        """Read and validate a JSON file (the seed's loadParams).

        ``check=False`` skips the checks that look outside the file (data params' folders
        exist), so an editor can open a file whose dataset is not on this machine and show
        ``problems()`` on the fields instead.
        """
        p = Path(path)
        if not p.exists():
            raise ParamsError(f"file not found; check the path or create new {cls.KIND}",
                              file=p)
        if p.is_dir():
            raise ParamsError("is a folder, not a JSON file", file=p)
        try:
            # utf-8-sig: Notepad and some other Windows editors start the file with a
            # byte-order mark, which plain json.loads refuses; saving writes none.
            text = p.read_text(encoding="utf-8-sig")
        except (OSError, UnicodeDecodeError) as exc:
            raise ParamsError(f"cannot be read: {exc}", file=p) from None
        if not text.strip():
            raise ParamsError(f"is empty: expected a JSON object of {cls.KIND}", file=p)
        try:
            data = json.loads(text, object_pairs_hook=refuse_duplicate_keys)
        except json.JSONDecodeError as exc:
            raise ParamsError(f"is not valid JSON: {exc.msg} at line {exc.lineno}, "
                              f"column {exc.colno}", file=p) from None
        except DuplicateKeyError as exc:
            raise ParamsError(exc.detail, file=p, field=exc.key) from None
        if not isinstance(data, dict):
            raise ParamsError(f"expected a JSON object {{...}} of {cls.KIND}, got "
                              f"{_show(data)}", file=p)
        try:
            obj = cls(data, path=p)
            if check:
                obj._check_on_load()
        except ParamsError as exc:
            raise exc.with_file(p) from None
        return obj

    def save(self, path: str | os.PathLike[str] | None = None) -> Path:
        """Write the params as JSON atomically (the seed's saveParams)."""
        target = Path(path) if path is not None else self.path
        if target is None:
            raise ParamsError(f"no file name given to save the {self.KIND} to")
        data = self.to_json(relative_to=target.parent)
        atomic_write_text(target, json.dumps(data, indent=2) + "\n")
        self.path = target
        return target

    def save_copy(self, path: str | os.PathLike[str]) -> Path:
        """Write the params to another file (a run record) without making it their file."""
        return self.edit().save(path)

    def edit(self, **changes: Any):  # type: ignore[no-untyped-def]
        """A copy with some fields changed, each validated (the seed's editParams)."""
        merged = dict(self._values)
        merged.update(self._validate(changes))
        out = type(self)(path=self.path)
        out._values = merged
        return out

    # ---- access ----------------------------------------------------------------------
    @classmethod
    def spec(cls, name: str) -> FieldSpec:
        for f in cls.FIELDS:
            if f.name == name:
                return f
        raise ParamsError(f"unknown field{_did_you_mean(name, cls.field_names())}", field=name)

    @classmethod
    def field_names(cls) -> list[str]:
        return [f.name for f in cls.FIELDS]

    def __getattr__(self, name: str) -> Any:
        values = self.__dict__.get("_values")
        if values is not None and name in values:
            return values[name]
        raise AttributeError(name)

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and other._values == self._values  # type: ignore

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self._values!r})"

    def as_dict(self) -> dict[str, Any]:
        """Every field's validated value (multi fields as tuples)."""
        return dict(self._values)

    def text(self, name: str) -> str:
        """A field's value as form text."""
        return self.spec(name).to_text(self._values[name])

    def to_json(self, relative_to: Path | None = None) -> dict[str, Any]:
        return {f.name: f.to_json(self._values[f.name]) for f in self.FIELDS}

    # ---- validation ------------------------------------------------------------------
    def _validate(self, values: Mapping[str, Any]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        names = self.field_names()
        for key, raw in values.items():
            if key not in names:
                raise ParamsError(f"unknown field{_did_you_mean(key, names)}; known fields: "
                                  f"{', '.join(names)}", field=key)
            out[key] = self.spec(key).parse(raw)
        return out

    def _check_on_load(self) -> None:
        """Checks that need the file's location (overridden by DataParams)."""

    def problems(self) -> list[ParamsError]:
        """What ``load`` would refuse beyond the file itself (e.g. a missing folder)."""
        try:
            self._check_on_load()
        except ParamsError as exc:
            return [exc]
        return []

    def notes(self) -> dict[str, str]:
        """Field -> why its value changes nothing as the other fields stand (shown beside
        the field, never refused: the value may matter again after another edit)."""
        return {}


# --------------------------------------------------------------------------------------
DATA_FIELDS: tuple[FieldSpec, ...] = (
    FieldSpec("train_dir", str, "", "folder of the training set: one sub-folder per class",
              is_path=True),
    FieldSpec("test_dir", str, "", "folder of the test set (same classes, matched by sorted "
              "order); empty to split the training folder by test_split", is_path=True),
    FieldSpec("image_size", int, (28, 28), "every image is resized to this height,width",
              unit="px", size_pair=True),
    FieldSpec("color_mode", str, "grayscale", "images are converted to this many channels",
              choices=("grayscale", "rgb")),
    FieldSpec("test_split", float, 0.0, "share of the training folder held out as the test "
              "set when test_dir is empty (0 = use test_dir)", min=0.0, max=0.9),
)


class DataParams(_Params):
    """Where the training and test sets are, and how images are prepared."""

    FIELDS = DATA_FIELDS
    KIND = "data params"

    def _validate(self, values: Mapping[str, Any]) -> dict[str, Any]:
        out = super()._validate(values)
        # Paths are kept as given; they resolve against the params file's folder.
        return out

    def resolve(self, name: str) -> Path | None:
        """A path field as an absolute path (relative ones against the JSON's folder)."""
        raw = self._values[name]
        if not raw:
            return None
        p = Path(raw).expanduser()
        if not p.is_absolute():
            base = self.path.parent if self.path is not None else Path.cwd()
            p = base / p
        return p.resolve()

    @property
    def train_path(self) -> Path | None:
        return self.resolve("train_dir")

    @property
    def test_path(self) -> Path | None:
        return self.resolve("test_dir")

    @property
    def channels(self) -> int:
        return 1 if self.color_mode == "grayscale" else 3

    def check_folders(self) -> None:
        """Every named folder exists and is a folder; else an error naming the field."""
        problems = self.folder_problems()
        if problems:
            raise problems[0]

    def problems(self) -> list[ParamsError]:
        return self.folder_problems()

    def folder_problems(self) -> list[ParamsError]:
        """One error per path field that names a missing folder or a file."""
        found: list[ParamsError] = []
        for name in ("train_dir", "test_dir"):
            p = self.resolve(name)
            if p is None:
                continue
            if not p.exists():
                found.append(ParamsError(f"folder '{p}' does not exist; fix the path "
                                         "(relative paths are read from the params file's "
                                         "folder)", file=self.path, field=name))
            elif not p.is_dir():
                found.append(ParamsError(f"'{p}' is a file, not a folder of class "
                                         "sub-folders", file=self.path, field=name))
        return found

    def _check_on_load(self) -> None:
        self.check_folders()

    def to_json(self, relative_to: Path | None = None) -> dict[str, Any]:
        data = super().to_json()
        if relative_to is not None and self.path is not None:
            # Keep paths pointing at the same folders when saved somewhere else.
            for name in ("train_dir", "test_dir"):
                p = self.resolve(name)
                if p is not None and not Path(self._values[name]).is_absolute():
                    data[name] = os.path.relpath(p, relative_to.resolve())
        return data


# --------------------------------------------------------------------------------------
HYPER_FIELDS: tuple[FieldSpec, ...] = (
    FieldSpec("batch_size", int, (64,), "images per gradient step", multi=True, min=1,
              max=65536),
    FieldSpec("epochs", int, (10,), "passes over the training data", multi=True, min=1,
              max=10000),
    FieldSpec("init_rate", float, (0.02,), "initial learning rate of the optimizer",
              multi=True, min=0.0, min_open=True, max=10.0),
    FieldSpec("decay", float, (0.0,), "time-based learning-rate decay: lr = init_rate / "
              "(1 + decay * epoch)", multi=True, min=0.0, max=100.0),
    FieldSpec("momentum", float, (0.9,), "SGD momentum (optimizer sgd only)", multi=True,
              min=0.0, max=1.0, max_open=True),
    FieldSpec("num_filters", int, (32,), "filters of the (first) Conv2D layers",
              multi=True, min=1, max=4096),
    FieldSpec("kernel_size", int, (3,), "Conv2D kernel height and width", multi=True, min=1,
              max=64, unit="px"),
    FieldSpec("num_units", int, (512,), "units in the hidden Dense layer", multi=True, min=1,
              max=65536),
    FieldSpec("dropout", float, (0.5,), "dropout rate after the hidden Dense layer",
              multi=True, min=0.0, max=1.0, max_open=True),
    FieldSpec("batch_norm", str, ("off",), "BatchNormalization after each convolution",
              multi=True, choices=("off", "on")),
    FieldSpec("conv_blocks", int, (2,), "Conv2D + 2x2 MaxPool blocks (the seed has 2)",
              multi=True, min=1, max=4),
    FieldSpec("convs_per_block", int, (1,), "Conv2D layers in each block before its pooling "
              "(2: VGG-like)", multi=True, min=1, max=3),
    FieldSpec("filter_growth", str, ("fixed",), "num_filters in every block, or doubled "
              "per block", multi=True, choices=("fixed", "double")),
    FieldSpec("augment", str, ("none",), "random changes while training only: left-right "
              "flip, 10% shift or zoom, 18 degree rotation, 20% contrast", multi=True,
              choices=("none", *AUGMENTATIONS), combine=True),
    FieldSpec("optimizer", str, ("sgd",), "sgd (with momentum, the seed's), adam or adamw",
              multi=True, choices=("sgd", "adam", "adamw")),
    FieldSpec("weight_decay", float, (0.0,), "decoupled weight decay of the optimizer "
              "(0 = off)", multi=True, min=0.0, max=1.0),
    FieldSpec("label_smoothing", float, (0.0,), "label smoothing of the loss (0 = off)",
              multi=True, min=0.0, max=1.0, max_open=True),
    FieldSpec("backbone", str, ("none",), "none: the CNN; or a Keras application under the "
              "Dense head (images >= 32x32)", multi=True, choices=("none", *BACKBONES)),
    FieldSpec("backbone_weights", str, ("imagenet",), "a backbone's start weights: imagenet "
              "(downloaded once), none, or a weights file path", multi=True),
    FieldSpec("frozen_epochs", int, (0,), "a backbone's first epochs train only the head, "
              "then all is fine-tuned (0 = none)", multi=True, min=0, max=10000,
              unit="epochs"),
    FieldSpec("validation_split", float, 0.2, "share of the training data held out for "
              "validation in 'training with validation'", min=0.0, min_open=True, max=0.9),
    FieldSpec("cv_folds", int, 3, "cross-validation folds per tuning combination", min=2,
              max=20),
    FieldSpec("tuning_share", float, 0.2, "share of the training data used for tuning",
              min=0.0, min_open=True, max=1.0),
    FieldSpec("patience", int, 0, "early stopping: epochs without val_loss improvement "
              "before stopping and restoring the best weights (0 = off)", min=0, max=1000,
              unit="epochs"),
    FieldSpec("class_weight", str, "none", "weight classes by inverse frequency for "
              "imbalanced sets", choices=("none", "balanced")),
    FieldSpec("seed", int, 42, "random seed for shuffling, splits and initial weights",
              min=0, max=2**31 - 1),
    FieldSpec("search", str, "grid", "tuning strategy: the full grid, or successive halving",
              choices=("grid", "halving")),
)


class HyperParams(_Params):
    """Every value the model, training and tuning need."""

    FIELDS = HYPER_FIELDS
    KIND = "hyper params"

    @classmethod
    def multi_fields(cls) -> list[str]:
        return [f.name for f in cls.FIELDS if f.multi]

    def first(self) -> dict[str, Any]:
        """The training configuration: the first value of each multi-valued field."""
        return {k: (v[0] if self.spec(k).multi else v) for k, v in self._values.items()}

    def notes(self) -> dict[str, str]:
        note = momentum_note(self._values["optimizer"], self._values["momentum"])
        return {"momentum": note} if note else {}

    def grid(self) -> dict[str, list[Any]]:
        """The tuning grid: every multi-valued field with all its values."""
        return {k: list(self._values[k]) for k in self.multi_fields()}

    def searched(self) -> dict[str, list[Any]]:
        """Only the fields that hold more than one value (the grid's varying axes)."""
        return {k: v for k, v in self.grid().items() if len(v) > 1}

    def grid_size(self) -> int:
        n = 1
        for values in self.grid().values():
            n *= len(values)
        return n

    def apply(self, combination: Mapping[str, Any]) -> HyperParams:
        """A copy whose multi-valued fields are set to one combination, values in front.

        The chosen value moves to the front (so training uses it) and the rest of the grid
        is kept, so a later tuning run still searches the same values.
        """
        changes: dict[str, Any] = {}
        for name, value in combination.items():
            current = list(self._values[name])
            rest = [v for v in current if v != value]
            changes[name] = [value, *rest]
        return self.edit(**changes)
