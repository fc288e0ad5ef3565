"""Headless commands, run in-process through ``convonet.cli.main`` on a tiny demo set.

One small model is trained once per module and shared by the evaluate, predict and
classify tests; the stop tests train their own.
"""

from __future__ import annotations

import csv
import json
import logging
import os
import subprocess
import sys
import threading
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from convonet import headless
from convonet.cli import main
from convonet.core.demo import demo_params_paths, ensure_demo
from convonet.core.model_files import default_model_path
from convonet.core.params import HyperParams
from convonet.core.runs import RunFolder
from convonet.noise import route_noise_to_log

#: The demo's hyper params made tiny: one epoch of a 4-filter, 16-unit model.
TINY = {"epochs": 1, "num_filters": 4, "num_units": 16, "batch_size": 64}


@dataclass
class Demo:
    folder: Path
    data: Path
    hyper: Path  # tiny
    test_count: int


@dataclass
class Trained:
    results: Path
    model: Path
    run: RunFolder
    output: dict[str, Any]


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Demo]:
    root = tmp_path_factory.mktemp("headless")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("CONVONET_CACHE_DIR", str(root / "cache"))
        mp.setenv("CONVONET_DATA_DIR", str(root / "data"))
        mp.setenv("CONVONET_RESULTS_DIR", str(root / "default-results"))
        folder = ensure_demo(root / "demo")
        data, hyper = demo_params_paths(folder)
        tiny = HyperParams.load(hyper).edit(**TINY)
        tiny_path = tiny.save(root / "tiny_hyper_params.json")
        count = sum(1 for p in (folder / "test").rglob("*.png"))
        yield Demo(folder, data, tiny_path, count)


def run_json(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, dict[str, Any]]:
    """Run ``convonet ARGV --json``: the exit status and the parsed stdout."""
    status = main([*argv, "--json"])
    out = capsys.readouterr().out
    return status, json.loads(out)


@pytest.fixture(scope="module")
def trained(demo: Demo, tmp_path_factory: pytest.TempPathFactory) -> Trained:
    results = tmp_path_factory.mktemp("results")
    capture: list[str] = []

    # module scope: no capsys here, so read stdout through a pipe-like list
    class Sink:
        def write(self, text: str) -> int:
            capture.append(text)
            return len(text)

        def flush(self) -> None:
            return None

    old = sys.stdout
    sys.stdout = Sink()  # type: ignore[assignment]
    try:
        status = main(["train", "--data-params", str(demo.data), "--hyper-params",
                       str(demo.hyper), "--results-dir", str(results), "--json"])
    finally:
        sys.stdout = old
    assert status == 0
    output = json.loads("".join(capture))
    return Trained(results, Path(output["model"]), RunFolder.open(output["run_dir"]), output)


# ---- train ----------------------------------------------------------------------------
def test_train_records_the_run_and_saves_the_model(demo: Demo, trained: Trained) -> None:
    run = trained.run
    assert run.status == "finished" and run.task == "training"
    assert trained.output["status"] == "finished"
    assert trained.model == default_model_path(trained.results, demo.data)
    assert trained.model.is_file() and trained.model.name.startswith("demo-")
    assert run.file("model.keras").is_file() and run.file("model.classes.json").is_file()
    rows = list(csv.DictReader(run.file("history.csv").open()))
    assert len(rows) == TINY["epochs"] == len(trained.output["history"])
    assert rows[0]["val_accuracy"] != ""  # validation is on by default
    assert run.file("hyper_params.json").is_file() and run.file("data_params.json").is_file()
    assert 0.0 <= trained.output["metrics"]["accuracy"] <= 1.0
    assert run.info["metrics"]["epochs_done"] == 1


def test_train_prints_summary_and_history_tables(demo: Demo, tmp_path: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    model = tmp_path / "named.keras"
    status = main(["train", "--data-params", str(demo.data), "--hyper-params",
                   str(demo.hyper), "--results-dir", str(tmp_path), "--no-validation",
                   "--epochs", "2", "--model", str(model)])
    out = capsys.readouterr().out
    assert status == 0
    assert "Total params" in out and "Training history" in out and "val_loss" not in out
    assert f"model: {model}" in out and model.is_file()
    run = RunFolder.find(tmp_path, "training")[-1]
    assert len(run.read_csv("history.csv")) == 2 and run.info["validation"] is False


def test_train_with_tensorboard_logs_into_the_run_folder(
        demo: Demo, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("tensorboard", reason="the optional 'tensorboard' extra")
    status, out = run_json(capsys, "train", "--data-params", str(demo.data),
                           "--hyper-params", str(demo.hyper), "--results-dir", str(tmp_path),
                           "--epochs", "1", "--tensorboard")
    assert status == 0
    logs = Path(out["run_dir"]) / "tensorboard"
    assert any(p.name.startswith("events.out.tfevents") for p in logs.rglob("*"))


# ---- evaluate, predict, classify --------------------------------------------------------
def test_evaluate(demo: Demo, trained: Trained, capsys: pytest.CaptureFixture[str]) -> None:
    status, out = run_json(capsys, "evaluate", "--data-params", str(demo.data),
                           "--results-dir", str(trained.results))
    assert status == 0 and out["status"] == "finished"
    assert out["count"] == demo.test_count and 0.0 <= out["accuracy"] <= 1.0
    assert out["model"] == str(trained.model)  # the default model of these data params
    run = RunFolder.open(out["run_dir"])
    assert run.status == "finished" and run.info["metrics"]["accuracy"] == out["accuracy"]


def test_predict_writes_confusion_and_report(demo: Demo, trained: Trained,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    status = main(["predict", "--data-params", str(demo.data), "--model", str(trained.model),
                   "--results-dir", str(trained.results)])
    out = capsys.readouterr().out
    assert status == 0 and "Confusion matrix" in out and "Per-class report" in out
    run = RunFolder.find(trained.results, "prediction")[-1]
    assert run.status == "finished"
    with run.file("confusion.csv").open() as fh:
        rows = list(csv.reader(fh))[1:]
    assert len(rows) == 10
    assert sum(int(v) for row in rows for v in row[1:]) == demo.test_count
    report = run.read_csv("report.csv")
    assert len(report) == 10 + 2 and report[-1]["class"] == "weighted avg"


def test_classify_files_and_folders_to_csv(demo: Demo, trained: Trained, tmp_path: Path,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    folder = demo.folder / "test" / "3"
    one = sorted((demo.folder / "test" / "7").glob("*.png"))[0]
    out_csv = tmp_path / "out.csv"
    status, out = run_json(capsys, "classify", str(folder), str(one), "--model",
                           str(trained.model), "--csv", str(out_csv),
                           "--results-dir", str(trained.results))
    expected = len(list(folder.glob("*.png"))) + 1
    assert status == 0 and out["count"] == expected
    rows = list(csv.DictReader(out_csv.open()))
    assert len(rows) == expected and rows[-1]["file"] == str(one)
    run = RunFolder.open(out["run_dir"])
    assert run.status == "finished" and len(run.read_csv("classifications.csv")) == expected
    assert all(0.0 <= c["confidence"] <= 1.0 for c in out["classifications"])


# ---- tune and demo ---------------------------------------------------------------------
def test_tune_small_grid_and_save_best(demo: Demo, tmp_path: Path,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    hyper = HyperParams.load(demo.hyper).edit(init_rate="0.02,0.05", num_filters=4,
                                              cv_folds=2, tuning_share=0.3)
    hyper_path = hyper.save(tmp_path / "grid.json")
    best = tmp_path / "best.json"
    status, out = run_json(capsys, "tune", "--data-params", str(demo.data), "--hyper-params",
                           str(hyper_path), "--results-dir", str(tmp_path),
                           "--save-best", str(best))
    assert status == 0 and out["status"] == "finished"
    assert out["fits_done"] == out["total_fits"] == 4 and len(out["rows"]) == 2
    assert out["searched"] == ["init_rate"]
    run = RunFolder.open(out["run_dir"])
    assert run.status == "finished" and len(run.read_csv("results.csv")) == 2
    assert HyperParams.load(best).init_rate[0] == out["best_params"]["init_rate"]


def test_demo_prints_its_params(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    status, out = run_json(capsys, "demo", "--data-dir", str(tmp_path / "d"))
    assert status == 0
    assert Path(out["data_params"]).is_file() and Path(out["hyper_params"]).is_file()
    assert main(["demo", "--data-dir", str(tmp_path / "d")]) == 0
    assert "convonet train --data-params" in capsys.readouterr().out


def test_every_command_has_help_with_an_example(capsys: pytest.CaptureFixture[str]) -> None:
    for command in ("train", "tune", "evaluate", "predict", "classify", "demo"):
        with pytest.raises(SystemExit) as exc:
            main([command, "--help"])
        assert exc.value.code == 0
        text = capsys.readouterr().out
        assert "examples:" in text and f"convonet {command}" in text


# ---- errors ----------------------------------------------------------------------------
def assert_one_line_error(capsys: pytest.CaptureFixture[str], *needles: str) -> str:
    err = capsys.readouterr().err.strip()
    lines = [ln for ln in err.splitlines() if ln.startswith("convonet: error: ")]
    assert len(lines) == 1, err
    assert "Traceback" not in err
    for needle in needles:
        assert needle in lines[0]
    return lines[0]


def test_bad_inputs_are_one_line_and_exit_2(demo: Demo, tmp_path: Path, trained: Trained,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text('{"batch_size": 0}')
    assert main(["train", "--data-params", str(demo.data), "--hyper-params", str(bad),
                 "--results-dir", str(tmp_path)]) == 2
    assert_one_line_error(capsys, str(bad), "batch_size")

    missing = tmp_path / "data.json"
    missing.write_text('{"train_dir": "nowhere", "test_dir": "nowhere"}')
    assert main(["evaluate", "--data-params", str(missing), "--model", str(trained.model),
                 "--results-dir", str(tmp_path)]) == 2
    assert_one_line_error(capsys, "nowhere")

    assert main(["predict", "--data-params", str(demo.data), "--model",
                 str(tmp_path / "none.keras"), "--results-dir", str(tmp_path)]) == 2
    assert_one_line_error(capsys, "none.keras")

    assert main(["classify", str(tmp_path / "ghost.png"), "--model", str(trained.model),
                 "--results-dir", str(tmp_path)]) == 2
    assert_one_line_error(capsys, "ghost.png")
    assert not RunFolder.find(tmp_path), "input errors start no run"


def test_json_failure_is_json_on_stdout(demo: Demo, tmp_path: Path,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["evaluate", "--data-params", str(demo.data), "--model",
                 str(tmp_path / "none.keras"), "--results-dir", str(tmp_path), "--json"]) == 2
    captured = capsys.readouterr()
    out = json.loads(captured.out)
    assert out["status"] == "failed" and "none.keras" in out["error"]


def test_bad_params_in_a_real_process_print_no_traceback(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text('{"epochs": "many",}')
    env = {**os.environ, "CONVONET_RESULTS_DIR": str(tmp_path / "r"),
           "CONVONET_DATA_DIR": str(tmp_path / "d")}
    result = subprocess.run([sys.executable, "-m", "convonet", "train", "--hyper-params",
                             str(bad)], capture_output=True, text=True, timeout=120, env=env)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines() == [
        line for line in result.stderr.strip().splitlines() if line.startswith("convonet:")]
    assert f"convonet: error: {bad}" in result.stderr


# ---- Ctrl+C --------------------------------------------------------------------------
def interrupt_on(monkeypatch: pytest.MonkeyPatch, kind: type) -> None:
    """Make the main thread's display raise KeyboardInterrupt at the first ``kind`` event,
    as Ctrl+C would while it is drawing that event."""
    original = headless.Display.handle
    fired: list[bool] = []

    def handle(self: headless.Display, event: Any) -> None:
        original(self, event)
        if isinstance(event, kind) and not fired:
            fired.append(True)
            raise KeyboardInterrupt

    monkeypatch.setattr(headless.Display, "handle", handle)


def test_ctrl_c_stops_training_keeping_finished_epochs(
        demo: Demo, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    from convonet.core.events import EpochEnd

    interrupt_on(monkeypatch, EpochEnd)
    status, out = run_json(capsys, "train", "--data-params", str(demo.data),
                           "--hyper-params", str(demo.hyper), "--epochs", "4",
                           "--results-dir", str(tmp_path))
    assert status == 130 and out["status"] == "stopped"
    run = RunFolder.open(out["run_dir"])
    assert run.status == "stopped"
    rows = run.read_csv("history.csv")
    assert rows[0]["partial"] == "False" and rows[0]["val_accuracy"] != ""
    assert len(rows) < 4 and rows[-1]["partial"] == "True"
    assert run.file("model.keras").is_file()
    assert not list(tmp_path.glob("*.keras")), "a stopped model never replaces a good one"


def test_ctrl_c_stops_tuning_keeping_finished_folds(
        demo: Demo, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    from convonet.core.tuning import FoldEnd

    hyper = HyperParams.load(demo.hyper).edit(init_rate="0.02,0.05", cv_folds=2,
                                              tuning_share=0.3)
    interrupt_on(monkeypatch, FoldEnd)
    status, out = run_json(capsys, "tune", "--data-params", str(demo.data), "--hyper-params",
                           str(hyper.save(tmp_path / "grid.json")),
                           "--results-dir", str(tmp_path))
    assert status == 130 and out["status"] == "stopped"
    run = RunFolder.open(out["run_dir"])
    assert run.status == "stopped"
    assert len(run.read_jsonl("folds.jsonl")) == 1 == out["fits_done"]
    assert run.file("results.csv").is_file()


# ---- warnings stay off the terminal ----------------------------------------------------
def test_warnings_from_threads_go_to_the_log(tmp_path: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    log_path = tmp_path / "logs" / "convonet.log"
    before = (warnings.showwarning, logging.getLogger("py.warnings").handlers[:],
              logging.getLogger().handlers[:])

    def noisy() -> None:
        warnings.warn("old api", DeprecationWarning, stacklevel=1)
        logging.getLogger("absl").warning("absl says hi")
        logging.getLogger("tensorflow").warning("retracing")

    with route_noise_to_log(log_path):
        worker = threading.Thread(target=noisy)
        worker.start()
        worker.join()
    captured = capsys.readouterr()
    assert captured.err == "" and captured.out == ""
    text = log_path.read_text()
    assert "old api" in text and "absl says hi" in text and "retracing" in text
    after = (warnings.showwarning, logging.getLogger("py.warnings").handlers[:],
             logging.getLogger().handlers[:])
    assert after == before


def test_the_app_keeps_warnings_in_its_log(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    """The TUI launch path: a warning from a worker thread while the app runs."""
    from convonet.tui.app import ConvonetApp

    def run(self: ConvonetApp, *args: Any, **kwargs: Any) -> None:
        worker = threading.Thread(target=lambda: warnings.warn("from a worker", UserWarning,
                                                               stacklevel=1))
        worker.start()
        worker.join()

    monkeypatch.setattr(ConvonetApp, "run", run)
    monkeypatch.setenv("CONVONET_DATA_DIR", str(tmp_path / "data"))
    assert main(["--results-dir", str(tmp_path)]) == 0
    assert capsys.readouterr().err == ""
    assert "from a worker" in (tmp_path / "convonet.log").read_text()


def test_a_closed_pipe_ends_a_listing_quietly() -> None:
    """`convonet keys | head -1`: the reader leaves before the listing is written."""
    child = subprocess.Popen([sys.executable, "-m", "convonet", "keys"],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert child.stdout is not None and child.stderr is not None
    child.stdout.close()  # before the child has started writing
    err = child.stderr.read().decode()
    assert child.wait(timeout=60) == 141
    assert "Traceback" not in err and "BrokenPipeError" not in err
