"""A backbone run resumed after its frozen phase continues exactly as the uninterrupted
run: the backbone is trainable again and the fine-tuning optimizer's state (momentum, step
count) comes back from the checkpoint instead of starting blank (``weights=none``, tiny
images, no download)."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import keras
import numpy as np
import pytest
from task_helpers import resume, train

from convonet.core.events import CancelToken, EpochEnd, Event
from convonet.core.model import NetModel
from convonet.core.model_options import find_backbone
from convonet.core.params import HyperParams
from convonet.core.training import checkpoint_epoch


class Watch(keras.callbacks.Callback):
    """Per epoch, as it begins: backbone trainable?, trainable variables, optimizer steps."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: dict[int, tuple[bool, int, int]] = {}

    def on_epoch_begin(self, epoch: int, logs: Any = None) -> None:
        backbone = find_backbone(self.model)
        assert backbone is not None
        self.seen[epoch] = (bool(backbone.trainable), len(self.model.trainable_variables),
                            int(keras.ops.convert_to_numpy(self.model.optimizer.iterations)))


def stopped_after(epochs: int, fresh: Any, hyper: HyperParams, ds: Any, folder: Path) -> Any:
    cancel = CancelToken()

    def stop(event: Event) -> None:
        if isinstance(event, EpochEnd) and event.epoch >= epochs:
            cancel.cancel()

    run = train(fresh(), hyper, ds, True, folder, report=stop, cancel=cancel)
    assert run.status == "stopped" and run.run is not None
    assert checkpoint_epoch(run.run.file("backup")) == epochs
    return run


@pytest.mark.slow
def test_a_backbone_run_resumed_after_its_frozen_phase_repeats_the_whole_run(
        tiny_set: Any, tmp_path: Path) -> None:
    ds = tiny_set(classes=3, per_class=10, size=32)
    hyper = HyperParams().edit(epochs=3, num_units=8, batch_size=16, dropout=0.0,
                               init_rate=0.01, momentum=0.9, seed=5,
                               backbone="mobilenetv3small", backbone_weights="none",
                               frozen_epochs=1)

    def fresh() -> Any:
        return NetModel(hyper).build(ds.image_shape, ds.num_classes, ds.class_names)

    whole_watch = Watch()
    whole = train(fresh(), hyper, ds, True, tmp_path / "whole", callbacks=[whole_watch])
    frozen, unfrozen = whole_watch.seen[0], whole_watch.seen[2]
    assert not frozen[0] and unfrozen[0] and unfrozen[1] > frozen[1]
    assert unfrozen[2] == 2  # one epoch of 2 batches since the unfreeze renewed it
    whole_loss = [row.loss for row in whole.history.rows]

    # Stopped past the phase: epoch 2 trained unfrozen, so its checkpoint holds the
    # fine-tuning optimizer. (A stop at the phase's end resumes into the frozen model and
    # unfreezes at the next epoch, as the whole run does.)
    stopped = stopped_after(2, fresh, hyper, ds, tmp_path / "stopped")
    watch = Watch()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        resumed = resume(stopped.run, dataset=ds, callbacks=(watch,))
    assert resumed.status == "finished"
    assert not [w for w in caught if "Skipping variable loading" in str(w.message)]
    # the trainable flags and the optimizer's step count are the whole run's
    assert watch.seen == {2: whole_watch.seen[2]}
    assert [row.loss for row in resumed.history.rows] == pytest.approx(
        whole_loss, rel=1e-6, abs=1e-7)
    for a, b in zip(resumed.model.get_weights(), whole.model.get_weights(), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)
    # the momentum slots (not just the weights) are the whole run's
    mine, theirs = resumed.model.optimizer.variables, whole.model.optimizer.variables
    assert len(mine) == len(theirs)
    for a, b in zip(mine, theirs, strict=True):
        np.testing.assert_allclose(keras.ops.convert_to_numpy(a),
                                   keras.ops.convert_to_numpy(b), rtol=1e-6, atol=1e-7)
