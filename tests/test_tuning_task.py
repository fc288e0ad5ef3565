"""The tune task and the search's failure handling: a run folder owned by the task layer
(device, fingerprint, status), resume checks as training's, a cap on failures in a row,
and each failed combination's full traceback kept in the run folder."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import keras
import pytest

from convonet.core.events import CancelToken, Event
from convonet.core.model import build_model
from convonet.core.params import DataParams, HyperParams
from convonet.core.records import ResumeError
from convonet.core.runs import FOLDS_JSONL, RunFolder
from convonet.core.tuning import (
    MAX_CONSECUTIVE_FAILURES,
    CombinationFailed,
    FoldEnd,
    TooManyFailures,
    tune,
)
from convonet.tasks import Status, execute
from convonet.tasks.resume import load_run_dataset
from convonet.tasks.tune import TuneSpec
from tests.headless_helpers import write_tiny_folder
from tests.test_tuning import hp, tiny_data


def _out_of_memory(t: Any) -> Any:
    raise RuntimeError("OOM when allocating tensor with shape [16,8]")


def failing_build(failing_units: tuple[int, ...]) -> Any:
    """A build whose models with these ``num_units`` run out of memory in the fit (a
    per-combination failure; a NaN loss would be a divergence, which is no failure)."""

    def build(config: Mapping[str, Any], input_shape: tuple[int, int, int],
              num_classes: int) -> keras.Model:
        model = build_model(config, input_shape, num_classes)
        if config["num_units"] in failing_units:
            model = keras.Sequential([model, keras.layers.Lambda(_out_of_memory)])
            model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
        return model

    return build


UNITS = (4, 5, 6, 7, 8, 9, 10)


def test_failures_in_a_row_stop_the_search_at_the_cap(tmp_path: Path) -> None:
    x, y = tiny_data()
    events: list[Event] = []
    with pytest.raises(TooManyFailures) as info:
        tune(x, y, hp(num_units=",".join(map(str, UNITS)), cv_folds=2),
             report=events.append, results_dir=tmp_path, build=failing_build(UNITS))
    assert MAX_CONSECUTIVE_FAILURES == 5
    failed = [e for e in events if isinstance(e, CombinationFailed)]
    assert [e.combination_index for e in failed] == [0, 1, 2, 3, 4]  # not the whole grid
    (run,) = RunFolder.find(tmp_path, "tuning")
    text = str(info.value)
    assert text.startswith("5 combinations in a row failed, so the search stopped. "
                           "Last reasons: out of memory: ")
    assert text.count("out of memory") == 1  # the same reason once
    assert f"kept in {run.path}" in text and f"{run.path}/failures/" in text
    assert f"convonet tune --resume {run.path}" in text
    assert run.status == "interrupted"  # the rest of the grid may run once fixed
    ledger = run.read_jsonl(FOLDS_JSONL)
    assert [r["kind"] for r in ledger] == ["failed"] * 5
    table = run.read_csv("results.csv")
    assert sorted(r["status"] for r in table) == ["failed"] * 5 + ["stopped"] * 2


def test_a_finished_combination_resets_the_count(tmp_path: Path) -> None:
    x, y = tiny_data()
    with pytest.raises(TooManyFailures, match="^2 combinations in a row failed"):
        tune(x, y, hp(num_units="4,5,6,7,8", cv_folds=2), results_dir=tmp_path,
             build=failing_build((4, 6, 7)), max_consecutive_failures=2)
    (run,) = RunFolder.find(tmp_path, "tuning")
    kinds = [(r["kind"], r["combination_index"]) for r in run.read_jsonl(FOLDS_JSONL)]
    assert kinds == [("failed", 0), ("fold", 1), ("fold", 1), ("failed", 2), ("failed", 3)]


def test_a_failed_combination_keeps_its_full_traceback(tmp_path: Path) -> None:
    x, y = tiny_data()
    events: list[Event] = []
    result = tune(x, y, hp(num_units="4,5", cv_folds=2), report=events.append,
                  results_dir=tmp_path, build=failing_build((5,)))
    run = result.run
    assert run is not None
    [failure] = result.failures
    assert failure["traceback"] == "failures/combination-1.txt"
    [event] = [e for e in events if isinstance(e, CombinationFailed)]
    assert event.traceback_file == failure["traceback"]
    text = run.file(failure["traceback"]).read_text(encoding="utf-8")
    head = text.splitlines()
    assert head[0].startswith("combination 1: {") and '"num_units": 5' in head[0]
    assert head[1:3] == ["rung 0, fold 0", f"reason: {failure['reason']}"]
    assert "Traceback (most recent call last)" in text and "_out_of_memory" in text
    assert "CombinationError: out of memory" in text  # the whole chain, cause first
    row = next(r for r in run.read_csv("results.csv") if r["status"] == "failed")
    assert row["reason"] == failure["reason"] and "\n" not in row["reason"]


# ---- the task ----------------------------------------------------------------------------
@pytest.fixture
def tiny_folder(tmp_path: Path) -> DataParams:
    return DataParams.load(write_tiny_folder(tmp_path / "data"))


def tiny_grid() -> HyperParams:
    return HyperParams().edit(num_filters=2, num_units="4,8", epochs=1, batch_size=16,
                              cv_folds=2, tuning_share=1.0, seed=7)


def stopped_search(data_params: DataParams, results: Path) -> RunFolder:
    """A search stopped after its first fold, its run folder made by the task."""
    cancel = CancelToken()

    def report(event: Event) -> None:
        if isinstance(event, FoldEnd):
            cancel.cancel()

    outcome = execute(TuneSpec(hyper_params=tiny_grid(), data_params=data_params,
                               results_dir=results), report=report, cancel=cancel)
    assert outcome.status is Status.STOPPED and outcome.run is not None
    return outcome.run


def test_the_task_records_the_run_and_resumes_it(tiny_folder: DataParams,
                                                 tmp_path: Path) -> None:
    run = stopped_search(tiny_folder, tmp_path / "results")
    info = run.info
    assert info["task"] == "tuning" and info["status"] == "stopped"
    assert info["device"]  # tuning runs record where they computed, as training's do
    assert len(info["dataset_fingerprint"]) > 0
    assert info["dataset_fingerprint"] != info["tuning"]["fingerprint"]  # the set's own
    assert len(run.read_jsonl(FOLDS_JSONL)) == 1

    events: list[Event] = []
    outcome = execute(TuneSpec(resume=run.path), report=events.append)
    assert outcome.status is Status.FINISHED and outcome.result.fits_done == 4
    assert [e.resumed for e in events if isinstance(e, FoldEnd)] == [True] + [False] * 3
    assert run.status == "finished" and len(run.info["resumed"]) == 1
    with pytest.raises(ResumeError, match="has already finished"):
        execute(TuneSpec(resume=run.path))


def test_resume_refuses_what_train_resume_refuses(tiny_folder: DataParams,
                                                  tmp_path: Path) -> None:
    run = stopped_search(tiny_folder, tmp_path / "results")
    changed = dataclasses.replace(load_run_dataset(run), fingerprint="0123456789abcdef")
    with pytest.raises(ResumeError, match="training set in .* has changed"):
        execute(TuneSpec(resume=run.path, train_set=changed))
    training = RunFolder.create(tmp_path / "results", "training", hyper_params=tiny_grid())
    training.file("start.keras").write_bytes(b"")  # resumable, as a training
    training.finish("stopped")
    with pytest.raises(ResumeError, match="is a training run, not a tuning"):
        execute(TuneSpec(resume=training.path))
    with pytest.raises(ResumeError, match="cannot resume"):
        execute(TuneSpec(resume=tmp_path / "no-such-run"))
    record = json.loads(run.file("run.json").read_text(encoding="utf-8"))
    assert record["status"] == "stopped"  # refused before anything was touched


def test_tune_resume_on_the_command_line(tiny_folder: DataParams, tmp_path: Path,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    from convonet.cli import main

    results = tmp_path / "results"
    run = stopped_search(tiny_folder, results)
    argv = ["tune", "--resume", str(run.path), "--results-dir", str(results)]
    assert main([*argv, "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["status"] == "finished" and out["run_dir"] == str(run.path)
    assert out["fits_done"] == out["total_fits"] == 4
    assert main(argv) == 2  # the same verdict as train --resume, before any loading
    err = capsys.readouterr().err
    assert f"cannot resume: {run.path.name} has already finished" in " ".join(err.split())
