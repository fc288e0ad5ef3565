"""A device-resident training loop for the jax backend, driving fit's own callbacks.

Keras's ``fit`` on jax slices every batch from NumPy on the host, copies it over and
dispatches one jitted step per batch; on a GPU the device then idles most of the time.
Here the data goes to the device once, and an epoch runs as a few jitted chunks of
batches (``device_steps``). Between chunks the host reads the previous chunk's logs (one
chunk late, so the device never waits for the host), calls the callbacks' batch hooks with
the chunk's last batch and looks at ``model.stop_training``: a stop takes effect within
one chunk.

The callbacks are the ones ``fit`` would get, called in fit's order through a
``CallbackList``. The state is read from the Keras variables at each epoch's start (so the
learning rate the decay callback set, the reseeded dropout generators and the reset
metrics are in it, with no recompile) and written back at its end, before validation and
``on_epoch_end``: checkpoints, early stopping, the history and resume see what they see
after a ``fit`` epoch. Each epoch's order is ``np.random.permutation`` drawn after the
epoch-begin hooks, as ``fit`` draws it on jax, so the two walk the same batches.

A set already on the device trains and predicts by row indices too (``fit_rows``,
``predict_rows``: the tuning folds, ``core.device_folds``); the row blocks are padded to
the set's size, so the chunks compile once for every subset of it.

Under a data-parallel distribution (``core.distribution``, ``--devices``) the data go whole
to every device and each batch is split over them (``device_steps.put`` and ``_split``).

This module imports jax only inside the functions that run the loop.
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping, Sequence
from typing import Any

import keras
import numpy as np

from convonet.core.device_chunks import Chunks, floats
from convonet.core.events import Compiling, Reporter, no_report

#: The setting: ``on``, ``off`` or ``auto`` (on for a GPU or TPU, off on a CPU); the
#: benchmarks set it to compare the two.
ENV = "CONVONET_DEVICE_LOOP"
#: The data may take at most this share of the device memory still free.
MEMORY_SHARE = 0.5
#: Device time a chunk aims at: progress and stop checks this often, few dispatches.
CHUNK_SECONDS = 0.03


def device_loop_mode() -> str:
    """The setting's value: ``on``, ``off`` or ``auto`` (anything else reads as auto)."""
    value = os.environ.get(ENV, "auto").strip().lower()
    return value if value in ("on", "off") else "auto"


def use_device_loop(nbytes: int) -> tuple[bool, str | None]:
    """Whether to train with the device loop, and why not when the data is the reason.

    Only on the jax backend; ``auto`` takes it on a GPU or TPU only: on a CPU, XLA runs
    the convolutions inside a compiled loop several times slower than ``fit``'s one step
    per batch (``benchmarks/bench_device_loop.py``: 494 s against 58 s for an epoch of
    10,000 Fashion-MNIST images at batch 64 on 2 cores). The data (``nbytes``) must fit
    in half the device memory still free; otherwise the second value says so, for a
    notice.
    """
    if keras.backend.backend() != "jax":
        return False, None
    mode = device_loop_mode()
    if mode == "off":
        return False, None
    import jax

    device = jax.devices()[0]
    if mode == "auto" and device.platform == "cpu":
        return False, None
    free = device_free_bytes()
    if free is not None and nbytes > MEMORY_SHARE * free:
        return False, (f"the images take {_size(nbytes)} and the "
                       f"{device.platform.upper()} has {_size(free)} free, so training "
                       "streams them from the host with Keras's fit instead, which is "
                       "slower; train on fewer or smaller images to keep them on the "
                       "device")
    return True, None


def device_free_bytes() -> int | None:
    """Memory still free on jax's first device, or None where jax does not tell (a CPU)."""
    import jax

    device = jax.devices()[0]
    stats = device.memory_stats() if hasattr(device, "memory_stats") else None
    if not stats or not stats.get("bytes_limit"):
        return None
    return int(stats["bytes_limit"]) - int(stats.get("bytes_in_use", 0))


def _size(nbytes: float) -> str:
    for unit in ("bytes", "KB", "MB", "GB"):
        if nbytes < 1024 or unit == "GB":
            return f"{nbytes:.0f} {unit}" if unit == "bytes" else f"{nbytes:.1f} {unit}"
        nbytes /= 1024
    return f"{nbytes:.1f} GB"


class _Pace:
    """How many batches the next chunk runs, so a chunk takes about CHUNK_SECONDS.

    Measured between the moments two chunks' logs are ready, which, with the device
    kept busy, is the later chunk's device time."""

    def __init__(self, total: int) -> None:
        self.total = total
        self.size = 1
        self._ready: float | None = None

    def done(self, batches: int) -> None:
        now = time.perf_counter()
        if self._ready is not None and batches > 0:
            per_batch = max((now - self._ready) / batches, 1e-6)
            wanted = int(CHUNK_SECONDS / per_batch)
            self.size = max(1, min(wanted, 4 * self.size, self.total))
        self._ready = now

    def restart(self) -> None:
        self._ready = None


def _class_weights(y: np.ndarray, class_weight: Mapping[int, float] | None,
                   classes: int = 0) -> np.ndarray:
    """A weight per label, for at least ``classes`` labels (1 where ``class_weight`` names
    none)."""
    given = {int(k): float(w) for k, w in (class_weight or {}).items()}
    weights = np.ones(max([int(np.max(y)) + 1, classes, *(k + 1 for k in given)]),
                      np.float32)
    for k, w in given.items():
        weights[k] = w
    return weights


def _padded(rows: np.ndarray, length: int) -> np.ndarray:
    """``rows`` as int32, padded with zeros to ``length`` (a shape that does not change
    with the rows' count, so the chunks that read them compile once)."""
    out = np.zeros(max(length, len(rows)), np.int32)
    out[:len(rows)] = rows
    return out


def _write(variables: Sequence[keras.Variable], values: Sequence[Any]) -> None:
    for variable, value in zip(variables, values, strict=True):
        variable.assign(value)


def _never() -> bool:
    return False


def _ignore(batch: int, logs: Mapping[str, float] | None = None) -> None:
    """No callbacks to tell (a plain evaluation)."""


class DeviceTrainer:
    """Training, evaluation and prediction of ``model`` on the device (see the module doc).

    With ``one_hot`` (the class count) the model's loss takes one-hot labels; the labels
    given stay class indices (the device holds those).
    """

    def __init__(self, model: keras.Model, batch_size: int,
                 report: Reporter = no_report, *, one_hot: int | None = None) -> None:
        from convonet.core.device_steps import steps_for

        self.model = model
        self.batch_size = int(batch_size)
        self.report = report
        self.one_hot = one_hot
        self.steps = steps_for(model, batch_size, one_hot)
        self._compile_started: float | None = None
        self._compiled = False

    def _variables(self, *, optimizer: bool) -> tuple[list[keras.Variable], ...]:
        m = self.model
        groups = [m.trainable_variables, m.non_trainable_variables]
        if optimizer:
            groups.append(m.optimizer.variables)
        return (*groups, m.metrics_variables)

    def _state(self, *, optimizer: bool) -> tuple[list[Any], ...]:
        return tuple([v.value for v in group]
                     for group in self._variables(optimizer=optimizer))

    def _put_state(self, state: tuple[list[Any], ...], *, optimizer: bool) -> None:
        for variables, values in zip(self._variables(optimizer=optimizer), state,
                                     strict=True):
            _write(variables, values)

    def _build(self, x: Any, label_dtype: Any, *, fit_rows: int | None = None) -> None:
        """Build the model, its metrics and optimizer as fit's first batch would.

        To build them, ``fit`` (training ``fit_rows`` rows) peeks at its first shuffled
        batch, drawing one permutation from NumPy: drawn here too, so that the epochs'
        permutations stay the same as fit's when nothing reseeds NumPy in between."""
        m = self.model
        if fit_rows is not None and (
                not all(layer.built for layer in m._flatten_layers())
                or (m._compile_metrics is not None and not m._compile_metrics.built)
                or (m._compile_loss is not None and not m._compile_loss.built)):
            np.random.permutation(fit_rows)
        labels = (np.zeros((1,), label_dtype) if self.one_hot is None
                  else np.zeros((1, self.one_hot), np.float32))
        batch = (np.zeros((1, *x.shape[1:]), np.float32), labels)
        self.model._symbolic_build(data_batch=batch)
        if self.model.optimizer is not None and not self.model.optimizer.built:
            self.model.optimizer.build(self.model.trainable_variables)

    # -- training -------------------------------------------------------------------------
    def fit(self, x: np.ndarray, y: np.ndarray, *, epochs: int,
            validation_data: tuple[np.ndarray, np.ndarray] | None = None,
            class_weight: Mapping[int, float] | None = None,
            callbacks: Sequence[keras.callbacks.Callback] = ()) -> Any:
        """``model.fit(x, y, ...)`` with ``shuffle=True``, on the device; returns History."""
        from convonet.core.device_steps import DeviceSet

        self._build(x, y.dtype, fit_rows=len(x))
        val = DeviceSet(*validation_data) if validation_data is not None else None
        return self._fit(DeviceSet(x, y), None, epochs=epochs, validation=val,
                         class_weight=class_weight, callbacks=callbacks)

    def fit_rows(self, data: Any, rows: np.ndarray, *, epochs: int,
                 class_weight: Mapping[int, float] | None = None,
                 callbacks: Sequence[keras.callbacks.Callback] = ()) -> Any:
        """``model.fit(x[rows], y[rows], ...)`` for a ``DeviceSet`` already on the device
        (a tuning fold): the same batches, and shapes that do not depend on ``rows``, so
        one compile serves every fold of the set."""
        self._build(data.x, np.int32, fit_rows=len(rows))
        return self._fit(data, np.asarray(rows), epochs=epochs, validation=None,
                         class_weight=class_weight, callbacks=callbacks)

    def _fit(self, data: Any, rows: np.ndarray | None, *, epochs: int, validation: Any,
             class_weight: Mapping[int, float] | None,
             callbacks: Sequence[keras.callbacks.Callback]) -> Any:
        from convonet.core.device_steps import put

        model = self.model
        labels = data.labels if rows is None else data.labels[rows]
        weights = put(_class_weights(labels, class_weight, self.one_hot or 0))
        count = len(labels)
        chunks = Chunks(self.batch_size, count, _Pace(-(-count // self.batch_size)))
        cbs = keras.callbacks.CallbackList(list(callbacks), add_history=True,
                                           add_progbar=False, model=model, verbose=0,
                                           epochs=epochs, steps=chunks.total)
        model.stop_training = False
        training_logs: dict[str, float] = {}
        finished = False
        cbs.on_train_begin()
        try:
            for epoch in range(model._initial_epoch or 0, epochs):
                model.reset_metrics()
                cbs.on_epoch_begin(epoch)
                self._train_epoch(cbs, chunks, data, rows, weights)
                training_logs = floats(model.get_metrics_result())
                if validation is not None:
                    val_logs = self._validate(cbs, validation)
                    training_logs.update({f"val_{k}": v for k, v in val_logs.items()})
                cbs.on_epoch_end(epoch, training_logs)
                if model.stop_training:
                    break
            finished = True
        finally:
            if epochs > 0:
                model.optimizer.finalize_variable_values(model.trainable_weights)
            if finished:
                cbs.on_train_end(logs=training_logs)
        return model.history

    def _train_epoch(self, cbs: Any, chunks: Chunks, data: Any, rows: np.ndarray | None,
                     weights: Any) -> None:
        from convonet.core.device_steps import put

        # The epoch's order, drawn where fit draws it on jax (after the epoch-begin hooks
        # reseeded NumPy), so both walk the same batches; of ``rows`` when given.
        order = np.random.permutation(chunks.count).astype(np.int32)
        if rows is not None:
            order = rows[order].astype(np.int32)
        cut = chunks.full * self.batch_size
        # The whole batches' rows, padded to as many as the data set could have.
        head = put(_padded(order[:cut], data.count // self.batch_size
                                      * self.batch_size))
        rest = put(order[cut:])
        steps, box = self.steps, {"state": self._state(optimizer=True)}

        def chunk(first: int, count: int) -> Any:
            started = self._compile_begins()
            box["state"], logs = steps.train_chunk(box["state"], data.x, data.y, head,
                                                   weights, np.int32(first),
                                                   np.int32(count))
            self._compile_ends(started, logs)
            return logs

        def tail() -> Any:
            started = self._compile_begins()  # the first step when rows < batch size
            box["state"], logs = steps.train_tail(box["state"], data.x, data.y, rest,
                                                  weights)
            self._compile_ends(started, logs)
            return logs

        try:
            chunks.run(chunk, tail, cbs.on_train_batch_begin, cbs.on_train_batch_end,
                       lambda: bool(self.model.stop_training))
        finally:  # as fit syncs its state when a callback raises mid-epoch
            self._put_state(box["state"], optimizer=True)

    def _compile_begins(self) -> float | None:
        if self._compiled:
            return None
        self._compiled = True
        self.report(Compiling())
        return time.perf_counter()

    def _compile_ends(self, started: float | None, result: Any) -> None:
        if started is None:
            return
        import jax

        jax.block_until_ready(result)
        self.report(Compiling(seconds=time.perf_counter() - started))

    # -- validation, evaluation, prediction --------------------------------------------------
    def _validate(self, cbs: Any, val: Any) -> dict[str, float]:
        """fit's validation pass (``evaluate`` with the fit's callbacks)."""
        model = self.model
        model.stop_evaluating = False
        cbs.on_test_begin()
        model.reset_metrics()
        self._evaluate_chunks(val, cbs.on_test_batch_begin, cbs.on_test_batch_end,
                              lambda: bool(model.stop_evaluating))
        logs = floats(model.get_metrics_result())
        cbs.on_test_end(logs)
        return logs

    def _evaluate_chunks(self, data: Any, begin: Any = _ignore, end: Any = _ignore,
                         stopped: Any = _never) -> None:
        steps, box = self.steps, {"state": self._state(optimizer=False)}

        def chunk(first: int, count: int) -> Any:
            box["state"], logs = steps.test_chunk(box["state"], data.x, data.y,
                                                  np.int32(first), np.int32(count))
            return logs

        def tail() -> Any:
            box["state"], logs = steps.test_tail(box["state"], data.x, data.y)
            return logs

        chunks = Chunks(self.batch_size, data.count, _Pace(data.count))
        chunks.run(chunk, tail, begin, end, stopped)
        _write(self.model.metrics_variables, box["state"][2])

    def evaluate(self, x: np.ndarray, y: np.ndarray) -> dict[str, float]:
        """``model.evaluate(x, y, return_dict=True)`` on the device."""
        from convonet.core.device_steps import DeviceSet

        self._build(x, y.dtype)
        self.model.reset_metrics()
        self._evaluate_chunks(DeviceSet(x, y))
        return floats(self.model.get_metrics_result())

    def predict(self, x: np.ndarray) -> np.ndarray:
        """``model.predict(x)``: every row's outputs, computed on the device."""
        from convonet.core.device_steps import DeviceSet

        self._build(x, np.int32)
        return self.predict_rows(DeviceSet(x))

    def predict_rows(self, data: Any, rows: np.ndarray | None = None) -> np.ndarray:
        """``model.predict(x[rows])`` for a ``DeviceSet`` (all its rows without ``rows``),
        with shapes that do not depend on ``rows`` (one compile for every fold)."""
        from convonet.core.device_steps import put

        model, steps, size = self.model, self.steps, self.batch_size
        self._build(data.x, np.int32)
        count = data.count if rows is None else len(rows)
        wanted = np.arange(count) if rows is None else np.asarray(rows)
        # Padded (by repeating the last row) to whole batches of the whole data set.
        length = -(-data.count // size) * size
        index = np.full(length, wanted[-1] if count else 0, np.int32)
        index[:count] = wanted
        state = ([v.value for v in model.trainable_variables],
                 [v.value for v in model.non_trainable_variables])
        out = steps.output_buffer(state, data, length)
        index_on_device = put(index)
        total = -(-count // size)
        pace = _Pace(total)
        first = 0
        while first < total:
            batches = min(pace.size, total - first)
            out = steps.predict_chunk(state, data.x, index_on_device, out, np.int32(first),
                                      np.int32(batches))
            first += batches
            out.block_until_ready()
            pace.done(batches)
        return np.asarray(out)[:count]
