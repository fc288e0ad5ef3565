"""Reading past runs back: listing, summaries, tables, params diffs and safe deletion.

Most tests read hand-written run folders (``write_fixed_runs`` in conftest); one trains twice
with the headless command on the demo set, so the reader is checked against what the
writer really writes.
"""

from __future__ import annotations

import json
import os
import socket
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from conftest import LUNG_CLASSES, LUNG_CONFUSION

from convonet.core.run_history import (
    FOLDS_JSONL,
    UNREADABLE,
    RunHistoryError,
    delete_run,
    diff_params,
    diff_runs,
    format_duration,
    list_runs,
    load_classifications,
    load_history,
    load_params,
    load_prediction,
    load_tuning,
    summarize,
)
from convonet.core.runs import RunFolder


def test_runs_are_listed_newest_first_with_their_headline_numbers(fixed_runs: Path) -> None:
    runs = list_runs(fixed_runs)
    assert [r.name for r in runs] == [
        "20250314-120000-classification", "20250314-113000-training",
        "20250314-111000-evaluation", "20250314-110500-prediction",
        "20250314-101000-tuning", "20250314-093000-training", "20250314-091500-training",
        "20250314-084500-training"]
    by_name = {r.name: r for r in runs}
    finished = by_name["20250314-091500-training"]
    assert (finished.task_label, finished.status, finished.started_text,
            finished.duration_text, finished.result_text) == (
        "train", "finished", "2025-03-14 09:15", "2m42s", "acc 0.912 val 0.884")
    assert by_name["20250314-093000-training"].result_text == "acc 0.830 val 0.810 3/5 ep"
    assert by_name["20250314-101000-tuning"].result_text == "best 0.901 fits 12/12"
    assert by_name["20250314-110500-prediction"].result_text == "acc 0.830 F1 0.83"
    assert by_name["20250314-111000-evaluation"].result_text == "acc 0.830 loss 0.451"
    assert by_name["20250314-120000-classification"].result_text == "3 images"
    failed = by_name["20250314-084500-training"]
    assert failed.status == "failed" and "cannot fit" in (failed.error or "")


def test_an_interrupted_training_is_summarised_from_its_history(fixed_runs: Path) -> None:
    run = summarize(fixed_runs / "runs" / "20250314-113000-training")
    assert run.status == "interrupted" and run.resumable
    assert run.result_text == "acc 0.800 3/10 ep"  # from history.csv: run.json has none
    assert run.duration_text == "1m38s"  # the epochs' seconds: it never ended


def test_a_running_record_whose_process_is_gone_reads_interrupted(tmp_path: Path) -> None:
    run = RunFolder.create(tmp_path, "training")
    run.update(pid=2**22 + 12345, host=socket.gethostname())  # no such process
    assert summarize(run.path).status == "interrupted"
    run.update(pid=os.getpid())
    live = summarize(run.path)
    assert live.status == "running" and live.seconds is not None and live.seconds >= 0


def test_broken_and_half_deleted_folders(fixed_runs: Path) -> None:
    root = fixed_runs / "runs"
    (root / "20250315-080000-training").mkdir()
    (root / "20250315-080000-training" / "run.json").write_text("{ torn")
    (root / "notes").mkdir()  # no run.json: not a run
    (root / ".deleting-20250101-000000-training").mkdir()
    (root / ".deleting-20250101-000000-training" / "run.json").write_text("{}")
    runs = list_runs(fixed_runs)
    assert len(runs) == 9
    assert runs[0].status == UNREADABLE and runs[0].task == "training"
    assert "run.json" in (runs[0].error or "")
    assert list_runs(fixed_runs / "nowhere") == []


def test_history_is_read_as_numbers_and_a_torn_line_is_dropped(fixed_runs: Path) -> None:
    folder = fixed_runs / "runs" / "20250314-093000-training"
    rows = load_history(folder)
    assert [r["epoch"] for r in rows] == [1, 2, 3, 4]
    assert rows[0]["accuracy"] == pytest.approx(0.49) and rows[-1]["partial"] is True
    assert rows[-1]["val_loss"] is None
    with (folder / "history.csv").open("a") as fh:
        fh.write("5,0.41")  # killed mid-write
    assert len(load_history(folder)) == 4
    assert load_history(fixed_runs / "runs" / "20250314-101000-tuning") == []


def test_tuning_table_from_results_csv_best_first(fixed_runs: Path) -> None:
    table = load_tuning(fixed_runs / "runs" / "20250314-101000-tuning")
    assert table.source == "results.csv"
    assert table.columns == ["rank", "num_filters", "num_units", "accuracy", "std", "loss",
                             "fit s", "status"]
    assert table.rows[0] == ["1", "32", "128", "0.9012", "0.0110", "0.3120", "41.2", "ok"]
    assert table.rows[-1][-1] == "out of memory" and table.rows[-1][3] == ""


def test_tuning_table_falls_back_to_the_folds_of_a_killed_search(tmp_path: Path) -> None:
    run = RunFolder.create(tmp_path, "tuning")
    run.append_jsonl(FOLDS_JSONL, {"kind": "fold", "combination_index": 0, "rung": 0,
                                   "fold": 0, "params": {"num_units": 64},
                                   "accuracy": 0.875, "loss": 0.4})
    run.append_jsonl(FOLDS_JSONL, {"kind": "failed", "combination_index": 1, "rung": 0,
                                   "params": {"num_units": 128}, "reason": "out of memory"})
    table = load_tuning(run.path)
    assert table.source == "folds.jsonl"
    assert table.columns == ["comb", "fold", "num_units", "accuracy", "loss", "status"]
    assert table.rows == [["0", "1", "64", "0.8750", "0.4000", "ok"],
                          ["1", "", "128", "", "", "out of memory"]]


def test_prediction_and_classifications_read_back(fixed_runs: Path) -> None:
    prediction = load_prediction(fixed_runs / "runs" / "20250314-110500-prediction")
    assert prediction is not None
    assert prediction.class_names == LUNG_CLASSES
    np.testing.assert_array_equal(prediction.confusion, np.array(LUNG_CONFUSION))
    assert prediction.accuracy == pytest.approx(0.83)
    assert [r["class"] for r in prediction.report][-2:] == ["macro avg", "weighted avg"]
    assert load_prediction(fixed_runs / "runs" / "20250314-091500-training") is None
    rows = load_classifications(fixed_runs / "runs" / "20250314-120000-classification")
    assert [r["class"] for r in rows] == ["normal", "adenocarcinoma",
                                          "squamous.cell.carcinoma"]


def test_a_broken_confusion_file_says_which_file(fixed_runs: Path) -> None:
    folder = fixed_runs / "runs" / "20250314-110500-prediction"
    (folder / "confusion.csv").write_text("true \\ predicted,0 a,1 b\n0 a,1,x\n1 b,2,3\n")
    with pytest.raises(RunHistoryError, match="confusion.csv"):
        load_prediction(folder)


def test_params_are_flat_and_diffs_marked(fixed_runs: Path) -> None:
    root = fixed_runs / "runs"
    params = load_params(root / "20250314-091500-training")
    assert params["hyper.num_filters"] == 32 and params["data.image_size"] == [28, 28]
    assert params["run.seed"] == 42 and params["metrics.accuracy"] == 0.912
    assert params["versions.keras"] == "3.15.0"
    diffs = diff_runs(root / "20250314-091500-training", root / "20250314-093000-training")
    differing = {d.field: (d.a, d.b) for d in diffs if d.differs}
    assert differing["hyper.num_filters"] == (32, 16)
    assert differing["hyper.init_rate"] == (0.02, 0.01)
    assert "hyper.batch_size" not in differing and "data.train_dir" not in differing
    assert [d.field for d in diffs][:2] == ["run.task", "run.status"]


def test_diff_marks_fields_only_one_side_has_and_compares_numbers_as_numbers() -> None:
    a: dict[str, Any] = {"x": 1, "y": 0.1 + 0.2, "z": "1"}
    b: dict[str, Any] = {"x": 1.0, "y": 0.30000000000000004, "w": None}
    diffs = {d.field: d for d in diff_params(a, b)}
    assert not diffs["x"].differs and not diffs["y"].differs
    assert diffs["z"].differs and diffs["z"].b is None
    assert diffs["w"].differs and list(diffs) == ["x", "y", "z", "w"]


def test_delete_removes_only_a_run_folder_inside_runs(fixed_runs: Path, tmp_path: Path
                                                      ) -> None:
    root = fixed_runs / "runs"
    target = root / "20250314-084500-training"
    assert delete_run(fixed_runs, target) == target.resolve()
    assert not target.exists() and len(list_runs(fixed_runs)) == 7
    assert not any(p.name.startswith(".") for p in root.iterdir())

    outside = tmp_path / "elsewhere" / "20250314-084500-training"
    outside.mkdir(parents=True)
    (outside / "run.json").write_text("{}")
    with pytest.raises(RunHistoryError, match="not a run folder inside"):
        delete_run(fixed_runs, outside)
    with pytest.raises(RunHistoryError, match="not a run folder inside"):
        delete_run(fixed_runs, root)  # the runs folder itself
    with pytest.raises(RunHistoryError, match="not a run folder inside"):
        delete_run(fixed_runs, root / ".." / ".." / "elsewhere" / outside.name)
    link = root / "20250316-000000-training"
    link.symlink_to(outside, target_is_directory=True)
    with pytest.raises(RunHistoryError, match="a link"):
        delete_run(fixed_runs, link)
    (root / "notes").mkdir()
    with pytest.raises(RunHistoryError, match="no run.json"):
        delete_run(fixed_runs, root / "notes")
    assert outside.is_dir() and (root / "notes").is_dir()


def test_a_live_run_is_not_deleted(tmp_path: Path) -> None:
    run = RunFolder.create(tmp_path, "training")  # this process: alive
    with pytest.raises(RunHistoryError, match="still running"):
        delete_run(tmp_path, run.path)
    run.finish("stopped")
    delete_run(tmp_path, run.path)
    assert not run.path.exists()


def test_format_duration() -> None:
    assert [format_duration(s) for s in (None, -1, 0.4, 42, 185, 7620)] == [
        "–", "–", "0s", "42s", "3m05s", "2h07m"]


# ---- what the headless command really writes --------------------------------------------
@pytest.fixture(scope="module")
def two_trainings(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two one- and two-epoch trainings of a tiny model on the demo set, via the CLI."""
    from convonet.cli import main
    from convonet.core.demo import demo_params_paths, ensure_demo
    from convonet.core.params import HyperParams

    root = tmp_path_factory.mktemp("history")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("CONVONET_CACHE_DIR", str(root / "cache"))
        mp.setenv("CONVONET_DATA_DIR", str(root / "data"))
        folder = ensure_demo(root / "demo")
        data, hyper = demo_params_paths(folder)
        tiny = HyperParams.load(hyper).edit(epochs=1, num_filters=4, num_units=16,
                                            batch_size=64).save(root / "tiny.json")
        results = root / "results"
        for epochs in ("1", "2"):
            assert main(["train", "--data-params", str(data), "--hyper-params", str(tiny),
                         "--results-dir", str(results), "--epochs", epochs, "--json",
                         "--force"]) == 0  # the second replaces the first's model
    return results


def test_runs_written_by_the_train_command_read_back(two_trainings: Path) -> None:
    runs = list_runs(two_trainings)
    assert [r.task for r in runs] == ["training", "training"]
    assert all(r.status == "finished" for r in runs)
    newest, oldest = runs
    assert newest.name > oldest.name
    assert [len(load_history(r.path)) for r in runs] == [2, 1]
    assert newest.result_text.startswith("acc ") and " val " in newest.result_text
    assert newest.seconds is not None and newest.seconds >= 0
    differing = {d.field for d in diff_runs(oldest.path, newest.path) if d.differs}
    assert "hyper.epochs" in differing and "hyper.num_filters" not in differing
    assert "run.dataset_fingerprint" not in differing
    json.loads((newest.path / "run.json").read_text())  # still valid after reading
