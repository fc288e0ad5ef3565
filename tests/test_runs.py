"""Run folders: layout, atomic run.json, durable fold records, interrupted runs."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from convonet.core.params import DataParams, HyperParams
from convonet.core.runs import (
    DATA_PARAMS_JSON,
    HYPER_PARAMS_JSON,
    RUN_JSON,
    RunFolder,
    dataset_fingerprint,
)


def test_create_makes_the_documented_layout(tmp_path: Path) -> None:
    hp = HyperParams({"num_filters": "2,4"})
    run = RunFolder.create(tmp_path, "tuning", hyper_params=hp, data_params=DataParams(),
                           seed=7, fingerprint="abc")
    assert run.path.parent == tmp_path / "runs"
    assert re.fullmatch(r"\d{8}-\d{6}-tuning", run.path.name)
    info = json.loads((run.path / RUN_JSON).read_text())
    assert info["task"] == "tuning" and info["status"] == "running"
    assert info["seed"] == 7 and info["dataset_fingerprint"] == "abc"
    assert info["ended"] is None and info["started"]
    assert info["keras_backend"] and "keras" in info["versions"]
    assert HyperParams.load(run.path / HYPER_PARAMS_JSON) == hp
    assert (run.path / DATA_PARAMS_JSON).is_file()


def test_names_are_unique_within_one_second(tmp_path: Path) -> None:
    runs = [RunFolder.create(tmp_path, "tuning") for _ in range(5)]
    assert len({r.path for r in runs}) == 5
    assert [r.path for r in RunFolder.find(tmp_path, "tuning")] == sorted(r.path for r in runs)


def test_finish_updates_run_json_atomically(tmp_path: Path) -> None:
    run = RunFolder.create(tmp_path, "training")
    run.finish("stopped", metrics={"accuracy": np.float32(0.5), "loss": float("nan")})
    info = RunFolder.open(run.path).info
    assert info["status"] == "stopped" and info["ended"]
    assert info["metrics"] == {"accuracy": 0.5, "loss": None}  # JSON has no NaN
    assert not [p for p in run.path.iterdir() if p.name.endswith(".tmp")]
    with pytest.raises(ValueError):
        run.finish("done")


def test_jsonl_survives_a_torn_last_line(tmp_path: Path) -> None:
    run = RunFolder.create(tmp_path, "tuning")
    run.append_jsonl("folds.jsonl", {"fold": 0, "accuracy": np.float64(0.25)})
    run.append_jsonl("folds.jsonl", {"fold": 1, "accuracy": 0.5})
    with open(run.file("folds.jsonl"), "a") as fh:
        fh.write('{"fold": 2, "accu')  # killed in the middle of a write
    assert run.read_jsonl("folds.jsonl") == [{"fold": 0, "accuracy": 0.25},
                                             {"fold": 1, "accuracy": 0.5}]


def test_csv_round_trip(tmp_path: Path) -> None:
    run = RunFolder.create(tmp_path, "tuning")
    run.write_csv("results.csv", [{"params": {"a": 1}, "score": 0.5, "reason": None}],
                  ["params", "score", "reason"])
    assert run.read_csv("results.csv") == [{"params": '{"a": 1}', "score": "0.5",
                                            "reason": ""}]


def test_a_running_record_whose_process_died_reads_as_interrupted(tmp_path: Path) -> None:
    code = ("import sys; from convonet.core.runs import RunFolder; "
            "print(RunFolder.create(sys.argv[1], 'training').path)")
    out = subprocess.run([sys.executable, "-c", code, str(tmp_path)], check=True,
                         capture_output=True, text=True, env={**os.environ})
    run = RunFolder.open(out.stdout.strip())
    assert run.info["status"] == "running"
    assert run.status == "interrupted"
    assert RunFolder.create(tmp_path, "training").status == "running"  # this process


def test_open_rejects_a_folder_without_run_json(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        RunFolder.open(tmp_path)


def test_fingerprint_sees_order_and_values() -> None:
    x = np.arange(12, dtype=np.float32).reshape(3, 2, 2, 1)
    y = np.array([0, 1, 2])
    assert dataset_fingerprint(x, y) == dataset_fingerprint(x.copy(), y.copy())
    assert dataset_fingerprint(x[::-1], y[::-1]) != dataset_fingerprint(x, y)
    assert dataset_fingerprint(x, y[[1, 0, 2]]) != dataset_fingerprint(x, y)


def test_recording_params_in_a_run_leaves_their_own_file_alone(tmp_path: Path) -> None:
    from convonet.core.params import HyperParams
    from convonet.core.runs import RunFolder

    hp = HyperParams.new().edit(epochs=3)
    own = hp.save(tmp_path / "mine.json")
    run = RunFolder.create(tmp_path / "results", "train", hyper_params=hp)
    assert hp.path == own
    assert HyperParams.load(run.path / "hyper_params.json") == hp
