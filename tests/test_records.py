"""Run records of training and testing, checkpoints, resume after kill -9, interrupted runs."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest
from task_helpers import classify, evaluate, predict, resume, train

from convonet.core import records
from convonet.core.events import CancelToken, EpochEnd, Event, TrainStart
from convonet.core.params import DataParams, HyperParams
from convonet.core.runs import (
    BACKUP_DIR,
    HISTORY_CSV,
    MODEL_KERAS,
    START_KERAS,
    RunFolder,
)
from convonet.core.training import HISTORY_COLUMNS, read_history_csv

TESTS = Path(__file__).parent
#: Tiny: 2 filters, 8 units; decay so the learning rate changes every epoch.
TINY = {"num_filters": 2, "num_units": 8, "epochs": 4, "batch_size": 16, "decay": 0.5,
        "init_rate": 0.02}


def tiny_hyper(**changes: Any) -> HyperParams:
    return HyperParams().edit(**{**TINY, **changes})


def tiny_data(tiny_set: Any, per_class: int = 16) -> Any:
    ds = tiny_set(per_class=per_class)
    ds.fingerprint = "tiny-set-v1"
    return ds


def build(hp: HyperParams, ds: Any) -> Any:
    from convonet.core.model import NetModel

    return NetModel(hp).build(ds.image_shape, ds.num_classes, ds.class_names)


def history_rows(run: RunFolder) -> list[dict[str, str]]:
    with run.file(HISTORY_CSV).open(encoding="utf-8", newline="") as fh:
        return list(csv.DictReader(fh))


# ---- training -------------------------------------------------------------------------
def test_training_run_folder_holds_everything(tmp_path: Path, tiny_set: Any) -> None:
    ds, hp = tiny_data(tiny_set), tiny_hyper()
    events: list[Event] = []
    out = train(build(hp, ds), hp, ds, True, tmp_path, DataParams(),
                            report=events.append)
    run = out.run
    assert run is not None and out.status == "finished" and run.status == "finished"
    info = run.info
    assert info["task"] == "training" and info["validation"] is True
    assert info["dataset_fingerprint"] == "tiny-set-v1" and info["seed"] == hp.seed
    assert info["device"] and info["keras_backend"] and "keras" in info["versions"]
    assert info["started"] and info["ended"] and info["class_names"] == ds.class_names
    assert info["metrics"]["epochs_done"] == 4 and info["metrics"]["val_accuracy"] is not None
    assert info["model"] == str(run.file(MODEL_KERAS))
    assert run.file("hyper_params.json").is_file() and run.file("data_params.json").is_file()
    rows = history_rows(run)
    assert list(rows[0]) == list(HISTORY_COLUMNS)
    assert [int(r["epoch"]) for r in rows] == [1, 2, 3, 4]
    assert run.file(MODEL_KERAS).is_file()
    # Nothing left to resume: the checkpoint and the start model are gone.
    assert not run.file(BACKUP_DIR).exists() and not run.file(START_KERAS).exists()
    assert records.resume_problem(run) is not None


def test_a_stopped_training_keeps_its_checkpoint_and_resumes(tmp_path: Path,
                                                            tiny_set: Any) -> None:
    ds, hp = tiny_data(tiny_set), tiny_hyper()
    cancel = CancelToken()

    def stop_after_two(event: Event) -> None:
        if isinstance(event, EpochEnd) and event.epoch == 2:
            cancel.cancel()

    out = train(build(hp, ds), hp, ds, False, tmp_path, DataParams(),
                            report=stop_after_two, cancel=cancel)
    run = out.run
    assert run is not None and out.status == "stopped" and run.status == "stopped"
    assert run.file(START_KERAS).is_file() and run.file(BACKUP_DIR).is_dir()
    assert records.resume_problem(run) is None

    starts: list[TrainStart] = []
    resumed = resume(run, dataset=ds, report=lambda e: starts.append(e)
                                      if isinstance(e, TrainStart) else None)
    assert resumed.status == "finished" and run.status == "finished"
    assert starts and starts[0].initial_epoch == 2  # the checkpoint of epoch 2
    assert [r.epoch for r in resumed.history.rows] == [1, 2, 3, 4]
    assert [int(r["epoch"]) for r in history_rows(run)] == [1, 2, 3, 4]
    assert len(run.info["resumed"]) == 1


def test_interrupted_status_when_a_signal_stopped_it(tmp_path: Path, tiny_set: Any) -> None:
    ds, hp = tiny_data(tiny_set), tiny_hyper(epochs=3)
    cancel = CancelToken()
    cancel.cancel()
    out = train(build(hp, ds), hp, ds, False, tmp_path, report=lambda e: None,
                            cancel=cancel, interrupted=lambda: True)
    assert out.status == "interrupted" and out.run is not None
    assert out.run.status == "interrupted"


KILL_DRIVER = textwrap.dedent("""
    import sys, time
    sys.path.insert(0, {tests!r})
    import keras
    from conftest import make_tiny_set
    from task_helpers import train
    from convonet.core.model import NetModel
    from convonet.core.params import DataParams, HyperParams

    ds = make_tiny_set(per_class=16)
    ds.fingerprint = "tiny-set-v1"
    hp = HyperParams().edit(**{tiny!r})
    model = NetModel(hp).build(ds.image_shape, ds.num_classes, ds.class_names)

    class Slow(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            if self.model.optimizer.iterations.numpy() > 2 * 3:  # from epoch 3 on
                time.sleep(0.5)

    train(model, hp, ds, True, {results!r}, DataParams(), callbacks=[Slow()])
""")


def test_kill_9_mid_training_then_resume_finishes_with_the_whole_history(
        tmp_path: Path, tiny_set: Any) -> None:
    results = tmp_path / "results"
    script = KILL_DRIVER.format(tests=str(TESTS), tiny=TINY, results=str(results))
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    proc = subprocess.Popen([sys.executable, "-c", script], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 90
        run: RunFolder | None = None
        while time.monotonic() < deadline:
            assert proc.poll() is None, proc.stderr.read().decode() if proc.stderr else ""
            found = RunFolder.find(results)
            if found and found[0].file(HISTORY_CSV).is_file():
                run = found[0]
                if len(read_history_csv(run.file(HISTORY_CSV))) >= 2:
                    break
            time.sleep(0.05)
        else:
            pytest.fail("epoch 2 never reached history.csv")
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert run is not None
    assert run.info["status"] == "running" and run.status == "interrupted"
    assert [r.epoch for r in read_history_csv(run.file(HISTORY_CSV))] == [1, 2]

    found = records.find_interrupted(results)
    assert found == [run] and run.info["status"] == "interrupted"
    assert records.resume_offers(results) == [run]

    ds = tiny_data(tiny_set)
    starts: list[TrainStart] = []
    out = resume(run, dataset=ds, report=lambda e: starts.append(e)
                                  if isinstance(e, TrainStart) else None)
    assert out.status == "finished" and run.status == "finished"
    assert starts[0].initial_epoch in (1, 2)  # kill -9 lost at most the epoch in progress
    rows = history_rows(run)
    assert [int(r["epoch"]) for r in rows] == [1, 2, 3, 4]  # whole, no duplicates
    # The learning-rate schedule continued: lr = init_rate / (1 + decay * epoch index).
    for r in rows:
        expected = TINY["init_rate"] / (1 + TINY["decay"] * (int(r["epoch"]) - 1))
        assert float(r["learning_rate"]) == pytest.approx(expected, rel=1e-5)

    # The same shape as a run never interrupted.
    plain = train(build(tiny_hyper(), ds), tiny_hyper(), ds, True,
                              tmp_path / "plain", DataParams())
    assert plain.run is not None
    plain_rows = history_rows(plain.run)
    assert list(rows[0]) == list(plain_rows[0]) and len(rows) == len(plain_rows)
    assert all(r["val_loss"] for r in rows) and all(r["partial"] == "False" for r in rows)
    assert sorted(p.name for p in run.path.iterdir()) == sorted(
        p.name for p in plain.run.path.iterdir())
    assert set(run.info["metrics"]) == set(plain.run.info["metrics"])


def test_resume_refuses_a_changed_dataset_with_a_reason(tmp_path: Path,
                                                       tiny_set: Any) -> None:
    ds, hp = tiny_data(tiny_set), tiny_hyper(epochs=3)
    cancel = CancelToken()
    cancel.cancel()
    out = train(build(hp, ds), hp, ds, False, tmp_path, cancel=cancel)
    assert out.run is not None
    other = tiny_set(per_class=10)
    other.fingerprint = "something-else"
    with pytest.raises(records.ResumeError) as err:
        resume(out.run, dataset=other)
    text = str(err.value)
    assert out.run.path.name in text and "changed" in text
    assert "tiny-set-v1" in text and "something-else" in text
    assert out.run.info["status"] == "stopped"  # untouched


def test_resume_refuses_finished_and_live_runs(tmp_path: Path) -> None:
    done = RunFolder.create(tmp_path, "training")
    done.finish("finished")
    assert "already finished" in (records.resume_problem(done) or "")
    live = RunFolder.create(tmp_path, "training")  # this process: alive
    assert "still running" in (records.resume_problem(live) or "")
    evaluation = RunFolder.create(tmp_path, "evaluation")
    evaluation.finish("stopped")
    assert "nothing to resume" in (records.resume_problem(evaluation) or "")
    with pytest.raises(records.ResumeError, match="already finished"):
        resume(done)


def dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_runs_left_running_by_a_dead_process_are_marked_interrupted(tmp_path: Path) -> None:
    gone = RunFolder.create(tmp_path, "training")
    gone.update(pid=dead_pid())
    alive = RunFolder.create(tmp_path, "tuning")
    stopped = RunFolder.create(tmp_path, "training")
    stopped.finish("stopped")
    assert gone.info["status"] == "running" and gone.status == "interrupted"
    found = records.find_interrupted(tmp_path)
    assert found == [gone]
    assert json.loads(gone.file("run.json").read_text())["status"] == "interrupted"
    assert gone.info["interrupted_by"] == "the process ended"
    assert alive.info["status"] == "running" and stopped.info["status"] == "stopped"
    # No start.keras: it cannot be resumed, so it is not offered.
    assert records.resume_offers(tmp_path) == []


def test_mark_interrupted_takes_this_process_runs_only(tmp_path: Path) -> None:
    mine = RunFolder.create(tmp_path, "tuning")
    other = RunFolder.create(tmp_path, "training")
    other.update(pid=os.getpid() + 100000)
    finished = RunFolder.create(tmp_path, "evaluation")
    finished.finish("finished")
    active = records.active_runs(tmp_path)
    assert active == [mine]
    mine.finish("stopped")  # the core saw the cancel first and said "stopped"
    assert records.mark_interrupted(active, "SIGHUP") == [mine]
    assert mine.info["status"] == "interrupted" and mine.info["interrupted_by"] == "SIGHUP"
    assert other.info["status"] == "running" and finished.info["status"] == "finished"


# ---- testing ---------------------------------------------------------------------------
@pytest.fixture(scope="module")
def trained_tiny() -> Any:
    from conftest import make_tiny_set

    from convonet.core.model import NetModel
    from convonet.core.training import NetTraining

    ds = make_tiny_set(per_class=16)
    ds.fingerprint = "tiny-set-v1"
    hp = tiny_hyper(epochs=2)
    model = NetModel(hp).build(ds.image_shape, ds.num_classes, ds.class_names)
    NetTraining(model, hp).train(ds)
    return model, ds


def test_evaluation_run(tmp_path: Path, trained_tiny: Any) -> None:
    model, ds = trained_tiny
    out = evaluate(model, ds, tmp_path, model_path="m.keras")
    assert out.run is not None and out.run.status == "finished"
    metrics = out.run.info["metrics"]
    assert metrics["accuracy"] == pytest.approx(out.evaluation.accuracy)
    assert metrics["count"] == len(ds) and out.run.info["model"] == "m.keras"
    assert out.run.info["dataset_fingerprint"] == "tiny-set-v1"


def test_prediction_run_writes_confusion_and_report(tmp_path: Path, trained_tiny: Any
                                                    ) -> None:
    model, ds = trained_tiny
    names = ["a", "b", "c"]
    out = predict(model, ds, tmp_path, class_names=names)
    run = out.run
    assert run is not None and run.status == "finished" and out.files is not None
    assert out.prediction.class_names == names
    assert {p.name for p in out.files} == {"confusion.csv", "report.csv"}
    confusion = list(csv.reader(run.file("confusion.csv").open()))
    assert sum(int(v) for row in confusion[1:] for v in row[1:]) == len(ds)
    assert run.info["metrics"]["macro_f1"] == pytest.approx(out.prediction.macro.f1)


def test_classification_run_writes_its_csv(tmp_path: Path, trained_tiny: Any) -> None:
    from PIL import Image

    model, ds = trained_tiny
    folder = tmp_path / "new"
    folder.mkdir()
    for i in range(3):
        Image.fromarray((ds.x[i, :, :, 0] * 255).astype("uint8")).save(folder / f"{i}.png")
    (folder / "notes.txt").write_text("not an image")
    params = DataParams().edit(image_size=[16, 16], color_mode="grayscale")
    out = classify(model, [folder], params, tmp_path / "res",
                               class_names=ds.class_names)
    assert out.run is not None and out.run.status == "finished" and len(out.rows) == 3
    assert out.csv == out.run.file("classifications.csv")
    assert len(out.run.read_csv("classifications.csv")) == 3
    assert out.run.info["metrics"]["count"] == 3


def test_an_unwritable_results_folder_is_refused_before_the_task(
        tmp_path: Path, trained_tiny: Any) -> None:
    from convonet.core.storage import StorageError

    model, ds = trained_tiny
    not_a_folder = tmp_path / "file"
    not_a_folder.write_text("x")
    with pytest.raises(StorageError, match=f"{not_a_folder}: it is a file, not a folder"):
        evaluate(model, ds, not_a_folder)


def test_a_failure_is_recorded_as_failed(tmp_path: Path, tiny_set: Any) -> None:
    ds, hp = tiny_data(tiny_set), tiny_hyper()
    model = build(hp, tiny_set(classes=4))  # 4 outputs for 3 classes
    with pytest.raises(ValueError):
        train(model, hp, ds, False, tmp_path)
    (run,) = RunFolder.find(tmp_path)
    assert run.status == "failed" and run.info["error"]


def test_recording_leaves_the_callers_params_pointing_at_their_files(
        tmp_path: Path, tiny_set: Any) -> None:
    ds = tiny_data(tiny_set)
    hp = tiny_hyper(epochs=1)
    hp.save(tmp_path / "mine_hyper.json")
    data = DataParams().edit(image_size=[16, 16])
    data.save(tmp_path / "mine_data.json")
    train(build(hp, ds), hp, ds, False, tmp_path / "res", data)
    assert hp.path == tmp_path / "mine_hyper.json"
    assert data.path == tmp_path / "mine_data.json"


def test_a_stop_during_validation_ends_the_fit_at_that_epoch(tmp_path: Path,
                                                              tiny_set: Any) -> None:
    import keras

    ds, hp = tiny_data(tiny_set), tiny_hyper()
    cancel = CancelToken()

    class StopInValidation(keras.callbacks.Callback):
        epoch = 0

        def on_epoch_begin(self, epoch: int, logs: Any = None) -> None:
            self.epoch = epoch

        def on_test_begin(self, logs: Any = None) -> None:
            if self.epoch == 1:
                cancel.cancel()

    out = train(build(hp, ds), hp, ds, True, tmp_path, cancel=cancel,
                            callbacks=[StopInValidation()])
    rows = out.history.rows
    assert [r.epoch for r in rows] == [1, 2] and rows[-1].partial  # no third epoch begun
    assert out.run is not None
    assert [r.epoch for r in read_history_csv(out.run.file(HISTORY_CSV))] == [1, 2]
