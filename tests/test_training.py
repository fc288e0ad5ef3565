"""NetTraining on a tiny generated set: learning, validation, early stopping, class
weights, stopping mid-epoch and seeded repeatability."""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import keras
import numpy as np
import pytest

from convonet.core.events import BatchProgress, CancelToken, EpochEnd, Event, TrainStart
from convonet.core.model import ModelError, NetModel
from convonet.core.params import HyperParams
from convonet.core.testing import NetTesting
from convonet.core.training import NetTraining, balanced_class_weights


@dataclass
class TinySet:
    """Dataset-shaped test data (the attributes training reads)."""

    x: np.ndarray
    y: np.ndarray
    class_names: list[str] = field(default_factory=list)

    @property
    def image_shape(self) -> tuple[int, int, int]:
        return tuple(self.x.shape[1:])  # type: ignore[return-value]

    @property
    def num_classes(self) -> int:
        return len(self.class_names)


def make_set(counts: tuple[int, ...] = (70, 70, 70), size: int = 12, seed: int = 0,
             noise: float = 0.3) -> TinySet:
    """Class c lights up band c of the image, plus noise: separable but not trivial."""
    rng = np.random.default_rng(seed)
    y = np.concatenate([np.full(n, c) for c, n in enumerate(counts)]).astype(np.int64)
    x = rng.normal(0.0, noise, (len(y), size, size, 1)).astype(np.float32)
    band = size // len(counts)
    for i, c in enumerate(y):
        x[i, c * band:(c + 1) * band, :, 0] += 1.0
    return TinySet(x, y, [f"c{i}" for i in range(len(counts))])


def params(**changes: Any) -> HyperParams:
    base = {"num_filters": 4, "num_units": 16, "epochs": 4, "batch_size": 16,
            "init_rate": 0.05, "decay": 0.1, "seed": 7}
    base.update(changes)
    return HyperParams().edit(**base)


def fresh(hp: HyperParams, data: TinySet) -> keras.Model:
    return NetModel(hp).build(data.image_shape, data.num_classes)


def test_train_only_beats_chance() -> None:
    data = make_set()
    hp = params()
    events: list[Event] = []
    model = fresh(hp, data)
    history = NetTraining(model, hp, report=events.append).train(data)
    assert [r.epoch for r in history.rows] == [1, 2, 3, 4]
    assert history.rows[-1].accuracy > 0.6
    assert all(r.val_loss is None for r in history.rows)
    assert not history.stopped and not history.partial
    assert NetTesting(model).evaluate(data).accuracy > 0.6
    assert isinstance(events[0], TrainStart) and events[0].batches == 14
    assert not events[0].validation
    ends = [e for e in events if isinstance(e, EpochEnd)]
    assert [e.epoch for e in ends] == [1, 2, 3, 4]
    # Time-based decay: lr = init_rate / (1 + decay * epoch), epoch from 0.
    assert [r.learning_rate for r in history.rows] == pytest.approx(
        [0.05 / (1 + 0.1 * e) for e in range(4)], rel=1e-6)


def test_train_val_beats_chance_and_reports_validation(tmp_path: Path) -> None:
    data = make_set()
    hp = params(validation_split=0.25)
    events: list[Event] = []
    history = NetTraining(fresh(hp, data), hp, report=events.append).train_val(data)
    assert history.validation
    assert history.rows[-1].val_accuracy is not None and history.rows[-1].val_accuracy > 0.6
    ends = [e for e in events if isinstance(e, EpochEnd)]
    assert {"loss", "accuracy", "val_loss", "val_accuracy", "learning_rate"} <= set(
        ends[-1].logs)
    # 210 images, a quarter held out: ceil(157 / 16) = 10 batches.
    assert isinstance(events[0], TrainStart) and events[0].batches == 10
    out = history.to_csv(tmp_path / "history.csv")
    rows = list(csv.DictReader(out.open()))
    assert len(rows) == 4 and rows[0]["epoch"] == "1" and rows[0]["val_loss"] != ""


def test_validation_split_is_stratified() -> None:
    data = make_set(counts=(120, 40))
    hp = params(validation_split=0.25, epochs=1)
    seen: list[int] = []

    class CountValidation(keras.callbacks.Callback):
        def on_test_batch_end(self, batch: int, logs: dict[str, Any] | None = None) -> None:
            seen.append(batch)

    events: list[Event] = []
    history = NetTraining(fresh(hp, data), hp, report=events.append).train_val(
        data, callbacks=[CountValidation()])
    assert history.rows[0].val_loss is not None
    assert isinstance(events[0], TrainStart) and events[0].batches == 120 // 16 + 1
    # 30 + 10 held out: 40 validation images in batches of 16 -> 3 batches; 120 trained.
    assert len(seen) == 3


def test_batch_progress_is_throttled() -> None:
    data = make_set()
    hp = params(epochs=2, batch_size=8)
    events: list[Event] = []
    NetTraining(fresh(hp, data), hp, report=events.append, batch_interval=3600).train(data)
    batches = [e for e in events if isinstance(e, BatchProgress)]
    assert len(batches) == 1  # the first one, then nothing for an hour
    events.clear()
    NetTraining(fresh(hp, data), hp, report=events.append, batch_interval=0).train(data)
    batches = [e for e in events if isinstance(e, BatchProgress)]
    assert len(batches) == 2 * 27
    assert batches[-1].epoch == 2 and batches[-1].batch == 27 and "loss" in batches[-1].logs


def test_seeded_runs_give_identical_histories() -> None:
    data = make_set()
    hp = params(validation_split=0.2, epochs=3)

    def run() -> list[tuple[Any, ...]]:
        h = NetTraining(fresh(hp, data), hp).train_val(data)
        return [(r.loss, r.accuracy, r.val_loss, r.val_accuracy, r.learning_rate)
                for r in h.rows]

    assert run() == run()


class _Diverge(keras.callbacks.Callback):
    """Makes epochs after the second worse by scrambling the weights at their start."""

    def on_epoch_begin(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        if epoch >= 2:
            rng = np.random.default_rng(epoch)
            self.model.set_weights([w + rng.normal(0, 3.0, w.shape).astype(w.dtype)
                                    for w in self.model.get_weights()])


def test_early_stopping_restores_best_epoch() -> None:
    data = make_set()
    hp = params(validation_split=0.2, epochs=8, patience=2)
    model = fresh(hp, data)
    captured: dict[int, list[np.ndarray]] = {}

    class Snap(keras.callbacks.Callback):
        def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
            captured[epoch + 1] = [w.copy() for w in self.model.get_weights()]

    history = NetTraining(model, hp).train_val(data, callbacks=[_Diverge(), Snap()])
    assert history.early_stopped
    assert len(history.rows) < 8
    assert history.best_epoch == 2
    assert history.restored_epoch == history.best_epoch
    for now, best in zip(model.get_weights(), captured[2], strict=True):
        np.testing.assert_array_equal(now, best)


def test_balanced_class_weights_change_the_loss() -> None:
    data = make_set(counts=(150, 30))
    weights = balanced_class_weights(data.y, 2)
    assert weights[0] == pytest.approx(180 / (2 * 150))
    assert weights[1] == pytest.approx(180 / (2 * 30))
    losses = {}
    for mode in ("none", "balanced"):
        hp = params(class_weight=mode, epochs=1)
        losses[mode] = NetTraining(fresh(hp, data), hp).train(data).rows[0].loss
    assert losses["none"] != pytest.approx(losses["balanced"], rel=1e-3)


def test_stop_mid_epoch_keeps_model_and_partial_history() -> None:
    data = make_set()
    hp = params(validation_split=0.2, epochs=5)
    token = CancelToken()
    events: list[Event] = []
    test_batches: list[int] = []

    def report(event: Event) -> None:
        events.append(event)
        if isinstance(event, BatchProgress) and event.epoch == 2 and event.batch == 3:
            token.cancel()

    class CountValidation(keras.callbacks.Callback):
        def on_test_begin(self, logs: dict[str, Any] | None = None) -> None:
            test_batches.append(0)

        def on_test_batch_end(self, batch: int, logs: dict[str, Any] | None = None) -> None:
            test_batches[-1] += 1

    model = fresh(hp, data)
    history = NetTraining(model, hp, report=report, cancel=token, batch_interval=0) \
        .train_val(data, callbacks=[CountValidation()])
    assert history.stopped and history.partial
    assert [r.epoch for r in history.rows] == [1, 2]
    last = history.rows[-1]
    # Batch-end hooks run on Keras's helper thread (async-safe callbacks, for speed), so
    # the stop asked for after batch 3 lands before batch 4 or, at worst, batch 5.
    assert last.partial and last.batches in (3, 4)
    assert last.val_loss is None and last.val_accuracy is None
    assert np.isfinite(last.loss)
    assert not history.rows[0].partial and history.rows[0].val_loss is not None
    # The first epoch validated fully (3 batches of 16); after the stop Keras runs one
    # validation batch before it sees stop_evaluating.
    assert test_batches == [3, 1]
    ends = [e for e in events if isinstance(e, EpochEnd)]
    assert ends[-1].partial and ends[-1].epoch == 2
    assert not any(isinstance(e, BatchProgress) and e.epoch > 2 for e in events)
    # The model is usable: it predicts and evaluates.
    ev = NetTesting(model).evaluate(data)
    assert np.isfinite(ev.loss) and ev.count == len(data.y)


def test_stop_before_start_trains_nothing() -> None:
    data = make_set()
    hp = params()
    token = CancelToken()
    token.cancel()
    model = fresh(hp, data)
    before = model.get_weights()
    history = NetTraining(model, hp, cancel=token).train(data)
    assert history.stopped and history.rows == []
    assert all(np.array_equal(a, b) for a, b in zip(before, model.get_weights(), strict=True))


def test_mismatched_data_is_refused_before_training() -> None:
    data = make_set()
    hp = params()
    model = NetModel(hp).build((8, 8, 1), 3)
    with pytest.raises(ModelError, match="8x8x1.*12x12x1"):
        NetTraining(model, hp).train(data)


def test_a_resumed_run_keeps_counting_patience_from_its_best_epoch(tmp_path: Path) -> None:
    """Stopped after epoch 3 (best: epoch 2), resumed: it stops early after epoch 4 and
    restores epoch 2's weights, exactly as the uninterrupted run does."""
    from convonet.core.training import read_history_csv

    data = make_set()
    hp = params(validation_split=0.2, epochs=8, patience=2)
    whole = fresh(hp, data)
    straight = NetTraining(whole, hp).train_val(data, callbacks=[_Diverge()])
    assert straight.early_stopped and len(straight.rows) == 4
    assert straight.restored_epoch == 2

    checkpoints, csv_path = tmp_path / "backup", tmp_path / "history.csv"
    cancel = CancelToken()

    def stop_after_three(event: Event) -> None:
        if isinstance(event, EpochEnd) and event.epoch == 3:
            cancel.cancel()

    first = NetTraining(fresh(hp, data), hp, report=stop_after_three, cancel=cancel,
                        checkpoint_dir=checkpoints, history_csv=csv_path)
    stopped = first.train_val(data, callbacks=[_Diverge()])
    assert stopped.stopped and [r.epoch for r in stopped.rows if not r.partial] == [1, 2, 3]

    model = fresh(hp, data)
    resumed = NetTraining(model, hp, checkpoint_dir=checkpoints, history_csv=csv_path,
                          history_rows=read_history_csv(csv_path)
                          ).train_val(data, callbacks=[_Diverge()])
    assert resumed.early_stopped and [r.epoch for r in resumed.rows] == [1, 2, 3, 4]
    assert resumed.restored_epoch == 2
    for now, best in zip(model.get_weights(), whole.get_weights(), strict=True):
        np.testing.assert_array_equal(now, best)
