"""One model trained data-parallel over several devices (``--devices``).

Each batch is split evenly over the devices; every device holds a copy of the weights and
the gradients are summed across them, so the training is the one-device training with the
work shared. On jax that is Keras's ``keras.distribution.DataParallel``; on TensorFlow it
is ``tf.distribute.MirroredStrategy``.

Both need the model's variables created under the distribution, while the app builds (or
loads) its model long before it trains. So the training runs on a copy made under the
distribution (the model round-trips through a ``.keras`` file, optimizer state included),
and when it ends, stopped, finished or failed, the weights, the optimizer's state and the
layers' ``trainable`` flags go back into the model that was given. That model stays an
ordinary one-device model: evaluation, prediction, saving and a later training see no
difference, and a saved ``.keras`` file loads anywhere.

The batch size must be a multiple of the device count, or the batches would not split:
that is checked first, with a value that works. On jax an epoch's last, smaller batch must
split evenly too (Keras shards every batch as it shards the first, and jax refuses a
shape that does not divide: ``IndivisibleError``), so there the training and validation
sets leave out their last few rows (fewer than the device count) to make their sizes
multiples of it, and say so; TensorFlow's MirroredStrategy splits an uneven last batch
itself.

The jax device-resident loop (``core.device_loop``) trains data-parallel too: under the
distribution its data set, row orders and class weights go whole to every device and each
batch's rows are split over them (``device_steps._split``), so XLA partitions the step and
sums the gradients across the devices as it does for ``fit``.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import keras
import numpy as np

from convonet.core.errors import UsageError
from convonet.core.events import Notice, Reporter, no_report
from convonet.core.params import ParamsError

#: The setting when no ``--devices`` is given (the app and headless alike).
ENV = "CONVONET_DEVICES"
OPTION = "--devices"
_FORMS = ("give all, a device count such as 2, or device numbers such as 0,1 "
          "(the devices: {devices})")


class DevicesError(UsageError):
    """A ``--devices`` value this machine cannot honour."""

    title = "Devices"
    advice = "Give --devices all, a count of devices, or a list of device numbers."


def requested_devices(value: str | int | None) -> tuple[str | None, str]:
    """The devices asked for and where they were asked: ``value`` when given (the
    option), else ``$CONVONET_DEVICES``; (None, ...) when neither says anything."""
    if value is not None and str(value).strip():
        return str(value).strip(), OPTION
    env = os.environ.get(ENV, "").strip()
    return (env or None), ENV


def available_devices() -> list[str]:
    """The devices Keras computes on, ``gpu:0``-style: the GPUs (or TPUs), else the CPUs."""
    backend = keras.backend.backend()
    if backend not in ("jax", "tensorflow"):
        return ["cpu:0"]
    return [str(d).lower() for d in keras.distribution.list_devices()]


def default_device() -> str:
    """The one device a training without ``--devices`` computes on (``gpu:0``, ``cpu:0``);
    ``unknown`` when the driver cannot tell."""
    try:
        devices = available_devices()
    except Exception:  # a broken driver must not stop a training from being recorded
        return "unknown"
    return devices[0] if devices else "unknown"


def choose_devices(request: str, available: Sequence[str], name: str = OPTION
                   ) -> list[str]:
    """The devices ``request`` names: ``all``, a count (the first N) or a comma-separated
    list of numbers (``0,2``) or names (``gpu:0,gpu:2``) of ``available``."""
    text = request.strip().lower()
    shown = ", ".join(available) or "none"
    if text == "all":
        return list(available)
    if text.isdigit():
        count = int(text)
        if count < 1:
            raise DevicesError(f"{name} {request}: {_FORMS.format(devices=shown)}")
        if count > len(available):
            raise DevicesError(
                f"{name} {request} asks for {count} devices, but this machine has "
                f"{len(available)} ({shown}); give at most {len(available)}, or all")
        return list(available[:count])
    chosen: list[str] = []
    for item in (part.strip() for part in text.split(",")):
        device = _named(item, available)
        if device is None:
            raise DevicesError(f"{name} {request}: there is no device {item!r}; "
                               + _FORMS.format(devices=shown))
        if device in chosen:
            raise DevicesError(f"{name} {request} names {device} twice; name each device "
                               "once")
        chosen.append(device)
    return chosen


def _named(item: str, available: Sequence[str]) -> str | None:
    if item.isdigit():
        index = int(item)
        return available[index] if index < len(available) else None
    return item if item in available else None


def batch_size_problem(batch_size: int, count: int) -> str | None:
    """Why ``batch_size`` cannot be split over ``count`` devices, or None when it can."""
    if count <= 1 or batch_size % count == 0:
        return None
    up = -(-batch_size // count) * count
    down = batch_size // count * count
    other = f" (or {down})" if down > 0 else ""
    return (f"batch_size {batch_size} in the hyper params must be divisible by the number "
            f"of devices ({count}) to split each batch evenly over them; use batch_size "
            f"{up}{other}, or train on fewer devices with {OPTION}")


def data_parallelism(value: str | int | None, batch_size: int) -> DataParallelism | None:
    """The data-parallel training ``value`` (or ``$CONVONET_DEVICES``) asks for, checked
    against this machine and ``batch_size``; None for one device (today's training)."""
    request, name = requested_devices(value)
    if request is None:
        return None
    devices = choose_devices(request, available_devices(), name)
    if len(devices) <= 1:
        return None
    backend = keras.backend.backend()
    if backend not in ("jax", "tensorflow"):
        raise DevicesError(f"{name} {request}: training on several devices needs the jax "
                           f"or tensorflow backend, not {backend}; set KERAS_BACKEND=jax")
    problem = batch_size_problem(int(batch_size), len(devices))
    if problem is not None:
        raise ParamsError(problem)
    return DataParallelism(tuple(devices), int(batch_size))


@dataclass(frozen=True)
class DataParallelism:
    """Data-parallel training over ``devices`` at ``batch_size`` (see the module doc)."""

    devices: tuple[str, ...]
    batch_size: int

    @property
    def count(self) -> int:
        return len(self.devices)

    def describe(self) -> str:
        """``data-parallel training on 2 devices (gpu:0, gpu:1): each batch of 64 split
        32 per device``."""
        return (f"data-parallel training on {self.count} devices ({', '.join(self.devices)})"
                f": each batch of {self.batch_size} split {self.batch_size // self.count} "
                "per device")

    def backend_distribution(self) -> Any:
        """jax: a ``keras.distribution.DataParallel``; TensorFlow: a MirroredStrategy."""
        if keras.backend.backend() == "tensorflow":
            import tensorflow as tf

            return tf.distribute.MirroredStrategy(devices=[f"/{d}" for d in self.devices])
        return keras.distribution.DataParallel(devices=list(self.devices))

    def even(self, x: np.ndarray, y: np.ndarray, what: str
              ) -> tuple[np.ndarray, np.ndarray, str | None]:
        """``x`` and ``y`` cut to a multiple of the device count where the backend needs
        it (jax), and what was left out, for a notice (None when nothing was)."""
        extra = len(y) % self.count if keras.backend.backend() == "jax" else 0
        if extra == 0:
            return x, y, None
        keep = len(y) - extra
        return x[:keep], y[:keep], f"{extra} of {len(y)} {what} images"

    def even_sets(self, x: np.ndarray, y: np.ndarray,
                  validation: tuple[np.ndarray, np.ndarray] | None,
                  report: Reporter = no_report
                  ) -> tuple[np.ndarray, np.ndarray, tuple[np.ndarray, np.ndarray] | None]:
        """The training and validation sets cut as ``even`` cuts them; a notice says what
        sat out."""
        x, y, left = self.even(x, y, "training")
        notes = [left] if left else []
        if validation is not None:
            vx, vy, vleft = self.even(*validation, "validation")
            validation = (vx, vy)
            notes += [vleft] if vleft else []
        if notes:
            report(Notice(f"leaving out {' and '.join(notes)} so that every batch "
                          f"splits evenly over the {self.count} devices", "information"))
        return x, y, validation

    @contextlib.contextmanager
    def training(self, model: keras.Model, report: Reporter = no_report
                 ) -> Iterator[keras.Model]:
        """Within: ``model``'s copy on the devices, to fit. After: its trained state back
        in ``model``, however the training ended.

        The copy is made under the distribution. On jax the fit runs under it too (Keras
        shards each batch by the distribution in effect); on TensorFlow the copy keeps its
        strategy, and fit enters it itself (inside its scope reading a mirrored variable
        from a callback fails). The copy back runs outside: ``model`` stays on one device.
        """
        report(Notice(self.describe(), "information"))
        distribution = self.backend_distribution()
        with distribution.scope():
            copy = copy_model(model)
        fitting = (distribution.scope() if keras.backend.backend() == "jax"
                   else contextlib.nullcontext())
        try:
            with fitting:
                yield copy
        finally:
            copy_state(copy, model)


def copy_model(model: keras.Model) -> keras.Model:
    """``model`` rebuilt with its weights and optimizer state, in the current scope."""
    with tempfile.TemporaryDirectory(prefix="convonet-devices-") as folder:
        path = Path(folder) / "model.keras"
        model.save(path)
        with warnings.catch_warnings():
            # An optimizer that has not trained yet has no slots to load; nothing is lost.
            warnings.filterwarnings("ignore", message="Skipping variable loading for")
            copy = keras.saving.load_model(path, safe_mode=True)
    if not isinstance(copy, keras.Model):  # pragma: no cover - a model saves as a model
        raise TypeError(f"a {type(model).__name__} reloaded as a {type(copy).__name__}")
    return copy


def copy_state(source: keras.Model, target: keras.Model) -> None:
    """``source``'s trainable flags, weights and optimizer state into ``target`` (the same
    architecture)."""
    for src, dst in zip(source._flatten_layers(), target._flatten_layers(), strict=True):
        if dst.trainable != src.trainable:
            dst.trainable = src.trainable
    target.set_weights([np.asarray(w) for w in source.get_weights()])
    _copy_optimizer(source, target)


def _copy_optimizer(source: keras.Model, target: keras.Model) -> None:
    src, dst = source.optimizer, target.optimizer
    if src is None or dst is None or not src.built:
        return
    if not dst.built:
        dst.build(target.trainable_variables)
    pairs = list(zip(src.variables, dst.variables, strict=False))
    if len(src.variables) != len(dst.variables) or any(
            tuple(a.shape) != tuple(b.shape) for a, b in pairs):
        return  # another layout of slots (trainable flags changed): the weights are what count
    for a, b in pairs:
        b.assign(np.asarray(keras.ops.convert_to_numpy(a.value)))
