"""The task layer: what the app and headless used to rebuild apart, and drifted on."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from headless_helpers import write_tiny_folder

from convonet.cli import main
from convonet.core.params import HyperParams
from convonet.core.records import resume_problem, train_metrics
from convonet.core.run_history import summarize
from convonet.core.runs import START_KERAS, RunFolder
from convonet.core.training import EpochRow, TrainHistory
from convonet.tasks import Status, execute
from convonet.tasks.common import SKIPPED_CSV
from convonet.tasks.load import LoadSpec
from convonet.tasks.resume import check_resumable


def early_stopped_history() -> TrainHistory:
    """Epoch 2 was the best and was restored; epoch 3 collapsed."""
    rows = [EpochRow(1, 0.9, 0.60, 0.8, 0.62, 0.02, 1.0, 10),
            EpochRow(2, 0.3, 0.91, 0.35, 0.89, 0.02, 1.0, 10),
            EpochRow(3, 2.1, 0.23, 2.3, 0.25, 0.02, 1.0, 10)]
    return TrainHistory(rows=rows, validation=True, early_stopped=True, restored_epoch=2,
                        monitor="val_loss", epochs=10)


def test_run_metrics_are_the_restored_epochs() -> None:
    metrics = train_metrics(early_stopped_history(), 3.0)
    assert (metrics["accuracy"], metrics["val_accuracy"]) == (0.91, 0.89)
    assert (metrics["loss"], metrics["val_loss"]) == (0.3, 0.35)
    assert metrics["result_epoch"] == 2 and metrics["epochs_done"] == 3


def test_headless_train_reports_the_restored_epoch(capsys: pytest.CaptureFixture[str]
                                                   ) -> None:
    from convonet import headless
    from convonet.headless.commands.train import present_training
    from convonet.tasks.train import TrainOutcome

    history = early_stopped_history()
    outcome = TrainOutcome(history=history, status=Status.FINISHED, run=None, model=None,
                           metrics=train_metrics(history, 3.0))
    output = headless.Output(json_mode=False)
    assert present_training(outcome, output, headless.Runner(output)) == 0
    out = capsys.readouterr().out
    assert "accuracy 0.9100, val_accuracy 0.8900 (weights of epoch 2" in out
    output = headless.Output(json_mode=True)
    present_training(outcome, output, headless.Runner(output))
    printed = json.loads(capsys.readouterr().out)
    assert printed["metrics"]["accuracy"] == 0.91
    assert printed["metrics"]["val_accuracy"] == 0.89
    assert [r["accuracy"] for r in printed["history"]] == [0.60, 0.91, 0.23]


def tiny_inputs(root: Path) -> tuple[Path, Path]:
    data = write_tiny_folder(root, classes=3, per_class=12)
    (root / "train" / "class_1" / "broken.png").write_bytes(b"not a png at all")
    hyper = HyperParams().edit(epochs=1, num_filters=4, num_units=8, batch_size=16,
                               patience=0).save(root / "tiny_hyper_params.json")
    return data, hyper


def test_skipped_files_go_to_the_run_folder_json_and_stderr(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data, hyper = tiny_inputs(tmp_path / "in")
    status = main(["train", "--data-params", str(data), "--hyper-params", str(hyper),
                   "--results-dir", str(tmp_path / "results"), "--json"])
    captured = capsys.readouterr()
    assert status == 0
    printed = json.loads(captured.out)
    assert [Path(s["path"]).name for s in printed["skipped"]] == ["broken.png"]
    assert printed["skipped"][0]["reason"]
    listed = Path(printed["skipped_csv"])
    assert listed == Path(printed["run_dir"]) / SKIPPED_CSV
    with listed.open(encoding="utf-8", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert [Path(r["path"]).name for r in rows] == ["broken.png"] and rows[0]["reason"]
    assert str(listed) in captured.err.replace("\n", "")


def test_load_task_gives_the_dataset_and_its_skipped_files(tmp_path: Path) -> None:
    from convonet.core.params import DataParams

    data, _ = tiny_inputs(tmp_path)
    outcome = execute(LoadSpec(DataParams.load(data), "train"))
    assert outcome.status is Status.FINISHED and len(outcome.dataset) == 36
    assert [p.path.name for p in outcome.skipped] == ["broken.png"]


def stopped_training(results: Path) -> RunFolder:
    run = RunFolder.create(results, "training", hyper_params=HyperParams())
    run.file(START_KERAS).write_bytes(b"")
    run.finish("stopped")
    return run


def test_the_runs_list_and_the_cli_agree_a_stopped_training_resumes(tmp_path: Path
                                                                    ) -> None:
    run = stopped_training(tmp_path)
    assert resume_problem(run) is None
    assert check_resumable(run.path, "training") == run
    assert summarize(run.path).resumable  # the runs screen refused it before


@pytest.mark.parametrize("status", ["finished", "failed"])
def test_the_runs_list_and_the_cli_agree_on_runs_that_do_not_resume(
        tmp_path: Path, status: str) -> None:
    run = stopped_training(tmp_path)
    run.update(status=status, error="boom" if status == "failed" else None)
    problem = resume_problem(run)
    assert problem is not None and problem == summarize(run.path).resume_problem
    assert not summarize(run.path).resumable
    with pytest.raises(Exception, match="cannot resume"):
        check_resumable(run, "training")


def test_resume_checks_the_task_asked_for(tmp_path: Path) -> None:
    run = stopped_training(tmp_path)
    with pytest.raises(Exception, match="is a training run, not a tuning"):
        check_resumable(run, "tuning")


def test_every_task_module_registers_its_spec() -> None:
    from convonet.tasks import _EXECUTORS
    from convonet.tasks.build import BuildSpec
    from convonet.tasks.testing import ClassifySpec, EvaluateSpec, PredictSpec
    from convonet.tasks.train import TrainSpec

    with pytest.raises(TypeError, match="no task executes"):
        execute(object())
    assert {LoadSpec, BuildSpec, TrainSpec, EvaluateSpec, PredictSpec,
            ClassifySpec} <= set(_EXECUTORS)
