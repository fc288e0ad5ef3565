"""The jitted chunk functions of the device loop (jax backend only; imports jax).

A chunk runs ``count`` whole batches, from batch ``first``, as one ``lax.fori_loop`` on the
device. Each batch gathers its rows from the arrays already there and calls Keras's own
``train_step`` / ``test_step`` / ``predict_step`` on the stateless state, so the loss,
optimizer, metrics and dropout are Keras's. The first batch and the batch count are traced
values, so one compile serves every chunk, epoch and learning rate.

The last, smaller batch of an epoch (when the batch size does not divide the rows) runs as
its own step of its own size, as Keras's ``fit`` runs it: a padded batch with zero sample
weights would be exact for the loss and the optimizer but not for Keras's unweighted
metrics (``accuracy`` counts every row it is given). Its shape depends on the data set
only, so it too compiles once. Prediction has no metrics: its last batch is padded.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import keras
import numpy as np
from jax.sharding import NamedSharding, PartitionSpec

#: uint8 images are scaled by this one product, as ``core.data.arrays.to_float32`` does.
_SCALE = np.float32(1.0 / 255.0)


def _mesh() -> Any:
    """The jax mesh of the data-parallel distribution in effect (``core.distribution``),
    or None on one device."""
    distribution = keras.distribution.distribution()
    return None if distribution is None else distribution.device_mesh.backend_mesh


def put(value: Any) -> Any:
    """``value`` on the device; under a data-parallel distribution, whole on each of its
    devices (the data set, row orders, class weights: every device gathers its share)."""
    mesh = _mesh()
    if mesh is None:
        return jax.device_put(value)
    return jax.device_put(value, NamedSharding(mesh, PartitionSpec()))


def _split(batch: Any, mesh: Any) -> Any:
    """A batch split by rows over the mesh's devices (each computes its share, and the
    gradients are summed across them); whole on each where its rows do not divide."""
    if mesh is None or batch.shape[0] % mesh.size:
        return batch
    spec = PartitionSpec(mesh.axis_names[0], *([None] * (batch.ndim - 1)))
    return jax.lax.with_sharding_constraint(batch, NamedSharding(mesh, spec))


class DeviceSet:
    """Images and labels put on the device once (uint8 stays uint8 there)."""

    def __init__(self, x: np.ndarray, y: np.ndarray | None = None) -> None:
        self.count = int(len(x))
        self.x = put(x if x.dtype == np.uint8 else np.asarray(x, np.float32))
        #: The labels on the host too (class weights are looked up there).
        self.labels = np.asarray(y, dtype=np.int32) if y is not None else None
        self.y = put(self.labels) if self.labels is not None else None

    @property
    def nbytes(self) -> int:
        return int(self.x.nbytes) + (int(self.y.nbytes) if self.y is not None else 0)


def _images(x: Any, rows: Any) -> Any:
    batch = x[rows]
    if batch.dtype == jnp.uint8:
        return batch.astype(jnp.float32) * _SCALE
    return batch


def metrics_logs(model: keras.Model, metrics_variables: list[Any]) -> dict[str, Any]:
    """The model's metric results for these metric variable values (traceable)."""
    mapping = list(zip(model.metrics_variables, metrics_variables, strict=True))
    with keras.StatelessScope(state_mapping=mapping):
        logs: dict[str, Any] = model.get_metrics_result()
    return logs


def _targets(labels: Any, one_hot: int | None) -> Any:
    """The labels as the model's loss takes them: class indices, or one-hot rows."""
    return labels if one_hot is None else jax.nn.one_hot(labels, one_hot, dtype=jnp.float32)


class Steps:
    """The jitted train, test and predict chunks of one model at one batch size.

    With ``one_hot`` (a class count) the labels on the device stay class indices and each
    batch's become one-hot rows, for a model whose loss takes those (the tuning's)."""

    def __init__(self, model: keras.Model, batch_size: int,
                 one_hot: int | None = None) -> None:
        self.model = model
        self.batch_size = size = int(batch_size)
        mesh = _mesh()  # a data-parallel distribution's: each batch split over it

        def train_rows(state: Any, x: Any, y: Any, rows: Any, class_weights: Any) -> Any:
            rows = _split(rows, mesh)
            labels = y[rows]
            return model.train_step(state, (_split(_images(x, rows), mesh),
                                            _split(_targets(labels, one_hot), mesh),
                                            _split(class_weights[labels], mesh)))[1]

        def train_chunk(state: Any, x: Any, y: Any, order: Any, class_weights: Any,
                        first: Any, count: Any) -> Any:
            def body(i: Any, state: Any) -> Any:
                rows = jax.lax.dynamic_slice(order, (i * size,), (size,))
                return train_rows(state, x, y, rows, class_weights)

            state = jax.lax.fori_loop(first, first + count, body, state)
            return state, metrics_logs(model, state[3])

        def train_tail(state: Any, x: Any, y: Any, rows: Any, class_weights: Any) -> Any:
            state = train_rows(state, x, y, rows, class_weights)
            return state, metrics_logs(model, state[3])

        def test_rows(state: Any, x: Any, y: Any, rows: Any) -> Any:
            rows = _split(rows, mesh)
            return model.test_step(state, (_split(_images(x, rows), mesh),
                                           _split(_targets(y[rows], one_hot), mesh)))[1]

        def test_chunk(state: Any, x: Any, y: Any, first: Any, count: Any) -> Any:
            def body(i: Any, state: Any) -> Any:
                return test_rows(state, x, y, i * size + jnp.arange(size))

            state = jax.lax.fori_loop(first, first + count, body, state)
            return state, metrics_logs(model, state[2])

        def test_tail(state: Any, x: Any, y: Any) -> Any:
            # The rows after the last whole batch: a static slice of the data set.
            start = x.shape[0] - x.shape[0] % size
            state = test_rows(state, x, y, start + jnp.arange(x.shape[0] - start))
            return state, metrics_logs(model, state[2])

        def predict_chunk(state: Any, x: Any, index: Any, out: Any, first: Any,
                          count: Any) -> Any:
            # ``index``: the rows to predict, padded to whole batches (``out``'s length).
            def body(i: Any, out: Any) -> Any:
                rows = _split(jax.lax.dynamic_slice(index, (i * size,), (size,)), mesh)
                probs, _ = model.predict_step(state, (_split(_images(x, rows), mesh),))
                return jax.lax.dynamic_update_slice(
                    out, probs.astype(out.dtype), (i * size,) + (0,) * (out.ndim - 1))

            return jax.lax.fori_loop(first, first + count, body, out)

        self.train_chunk = jax.jit(train_chunk)
        self.train_tail = jax.jit(train_tail)
        self.test_chunk = jax.jit(test_chunk)
        self.test_tail = jax.jit(test_tail)
        self.predict_chunk = jax.jit(predict_chunk, donate_argnums=(3,))

    def output_buffer(self, state: Any, data: DeviceSet, length: int) -> Any:
        """Zeros for ``length`` predictions of ``data``'s rows (whole batches)."""
        sample = jax.ShapeDtypeStruct((self.batch_size, *data.x.shape[1:]), jnp.float32)
        shape = jax.eval_shape(lambda s, x: self.model.predict_step(s, (x,))[0],
                               state, sample)
        return put(np.zeros((length, *shape.shape[1:]), shape.dtype))


def steps_for(model: keras.Model, batch_size: int, one_hot: int | None = None) -> Steps:
    """The model's chunk functions at this batch size, made once per model and optimizer
    (kept on the model, so a second training or evaluation does not trace again)."""
    cache: dict[tuple[int, int, int | None], Steps] | None = getattr(
        model, "_convonet_steps", None)
    if cache is None:
        cache = {}
        object.__setattr__(model, "_convonet_steps", cache)  # not a tracked Keras attribute
    key = (int(batch_size), id(model.optimizer), one_hot)
    if key not in cache:
        cache[key] = Steps(model, batch_size, one_hot)
    return cache[key]
