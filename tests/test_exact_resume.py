"""A resumed training repeats the uninterrupted one exactly: each epoch's shuffle and
dropout masks come from the seed and the epoch alone (TensorFlow on the CPU here)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from headless_helpers import child_env, write_tiny_folder
from task_helpers import resume, train

from convonet.core.events import CancelToken, EpochEnd, Event
from convonet.core.model import NetModel
from convonet.core.params import HyperParams
from convonet.core.runs import HISTORY_CSV, RunFolder
from convonet.core.training import TrainHistory, checkpoint_epoch, read_history_csv

NUMBERS = ("loss", "accuracy", "val_loss", "val_accuracy", "learning_rate")


def assert_same_history(resumed: list[dict[str, Any]], whole: list[dict[str, Any]]) -> None:
    assert [r["epoch"] for r in resumed] == [r["epoch"] for r in whole]
    for a, b in zip(resumed, whole, strict=True):
        for name in NUMBERS:
            if b[name] is None:
                assert a[name] is None
            else:
                assert a[name] == pytest.approx(b[name], rel=1e-6, abs=1e-7), \
                    f"epoch {b['epoch']} {name}: {a[name]} resumed, {b[name]} uninterrupted"


def rows(history: TrainHistory) -> list[dict[str, Any]]:
    return history.as_rows()


def test_stopped_after_epoch_2_and_resumed_gives_the_uninterrupted_history(
        tiny_set: Any, tmp_path: Path) -> None:
    """In one process: a stop (cut short during epoch 3), then a resume from the epoch-2
    checkpoint, with validation and dropout."""
    ds = tiny_set(classes=3, per_class=30, size=12)
    hyper = HyperParams().edit(epochs=5, num_filters=2, num_units=8, batch_size=16,
                               dropout=0.5, momentum=0.9, decay=0.1, seed=11)

    def fresh() -> Any:
        return NetModel(hyper).build(ds.image_shape, ds.num_classes, ds.class_names)

    whole = train(fresh(), hyper, ds, True, tmp_path / "whole")
    cancel = CancelToken()

    def stop_after_two(event: Event) -> None:
        if isinstance(event, EpochEnd) and event.epoch >= 2:
            cancel.cancel()

    stopped = train(fresh(), hyper, ds, True, tmp_path / "stopped",
                                report=stop_after_two, cancel=cancel)
    assert stopped.status == "stopped" and stopped.run is not None
    assert checkpoint_epoch(stopped.run.file("backup")) == 2
    resumed = resume(stopped.run, dataset=ds)
    assert resumed.status == "finished"
    assert_same_history(rows(resumed.history), rows(whole.history))
    for a, b in zip(resumed.model.get_weights(), whole.model.get_weights(), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)


#: ``convonet train`` that stops at the end of epoch 3, before that epoch's checkpoint
#: (epoch 2's is on disk), for the test to kill it there.
PAUSED_AT_EPOCH_3 = """
import sys, time
from convonet import headless
from convonet.core.events import EpochEnd
shown = headless.Display.handle
def handle(self, event):
    shown(self, event)
    if isinstance(event, EpochEnd) and event.epoch == 3:
        time.sleep(600)
headless.Display.handle = handle
from convonet.cli import main
sys.exit(main(sys.argv[1:]))
"""


def test_killed_after_epoch_2_and_resumed_gives_the_uninterrupted_history(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    """A real kill (SIGKILL: nothing recorded at the end) in another process, resumed
    with ``convonet train --resume`` here; the uninterrupted run also runs here."""
    from convonet.cli import main

    data = write_tiny_folder(tmp_path / "data")
    hyper = HyperParams().edit(epochs=5, num_filters=2, num_units=8, batch_size=16,
                               dropout=0.5, validation_split=0.25,
                               seed=5).save(tmp_path / "hyper.json")
    killed_results = tmp_path / "killed"
    proc = subprocess.Popen(
        [sys.executable, "-c", PAUSED_AT_EPOCH_3, "train", "--data-params", str(data),
         "--hyper-params", str(hyper), "--results-dir", str(killed_results), "--json"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=child_env(tmp_path))
    try:
        deadline = time.monotonic() + 120
        run: RunFolder | None = None
        while True:
            runs = RunFolder.find(killed_results, "training") \
                if (killed_results / "runs").is_dir() else []
            run = runs[-1] if runs else None
            if run is not None and checkpoint_epoch(run.file("backup")) == 2:
                break
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"no epoch-2 checkpoint (status {proc.poll()}): "
                            + proc.stderr.read().decode(errors="replace")[-2000:]
                            if proc.stderr else "")
            time.sleep(0.05)
        time.sleep(0.3)  # paused in epoch 3's end: its checkpoint never comes
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        if proc.stderr:
            proc.stderr.close()
    assert run is not None and proc.returncode == -signal.SIGKILL
    assert run.info["status"] == "running" and run.status == "interrupted"  # pid gone
    assert [r.epoch for r in read_history_csv(run.file(HISTORY_CSV))] == [1, 2]

    monkeypatch.setenv("CONVONET_CACHE_DIR", str(tmp_path / "cache"))
    assert main(["train", "--resume", str(run.path), "--json"]) == 0
    resumed = json.loads(capsys.readouterr().out)
    assert resumed["status"] == "finished" and len(run.info["resumed"]) == 1
    assert main(["train", "--data-params", str(data), "--hyper-params", str(hyper),
                 "--results-dir", str(tmp_path / "whole"), "--json"]) == 0
    whole = json.loads(capsys.readouterr().out)
    assert_same_history(resumed["history"], whole["history"])
    assert os.path.isfile(resumed["model"])
