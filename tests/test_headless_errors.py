"""How a headless command ends on an error: the user's mistakes (a ``ConvonetError``, a file
error) in one line with the class's exit status and no traceback; anything else is a fault
in convonet, said in one line that names the log holding its traceback, exit status 1."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest

from convonet.cli import main
from convonet.core.data import DataError
from convonet.core.errors import ConvonetError
from convonet.headless.commands import COMMANDS
from convonet.headless.output import Output
from convonet.headless.runner import Runner
from convonet.noise import LOG_NAME


def failing_with(error: Exception):  # type: ignore[no-untyped-def]
    def command(args: argparse.Namespace, output: Output, runner: Runner) -> int:
        raise error

    return command


def run_failing(error: Exception, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                capsys: pytest.CaptureFixture[str], *extra: str) -> tuple[int, str, str]:
    """``convonet evaluate`` whose body raises ``error``: status, stdout, stderr."""
    monkeypatch.setitem(COMMANDS, "evaluate", failing_with(error))
    status = main(["evaluate", "--results-dir", str(tmp_path), *extra])
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def test_a_bare_value_error_is_an_internal_error_with_its_traceback_in_the_log(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    status, _, err = run_failing(ValueError("shape mismatch in layer 3"), tmp_path,
                                 monkeypatch, capsys)
    log_path = tmp_path / LOG_NAME
    assert status == 1
    assert err.splitlines() == [
        f"convonet: error: internal error in convonet: ValueError: shape mismatch in layer 3 "
        f"(the traceback is in the log {log_path}; please report it)"]
    logged = log_path.read_text()
    assert "Traceback (most recent call last)" in logged
    assert "shape mismatch in layer 3" in logged and "raise error" in logged


def test_a_data_error_is_the_users_one_line_exit_2_without_a_traceback(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    message = "dataset folder '/d/train' does not exist; fix train_dir in the data params"
    status, _, err = run_failing(DataError(message), tmp_path, monkeypatch, capsys)
    assert status == 2
    assert err.splitlines() == [f"convonet: error: {message}"]
    log_path = tmp_path / LOG_NAME
    assert "Traceback" not in (log_path.read_text() if log_path.exists() else "")


def test_the_exit_status_is_the_error_classs(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    class Unavailable(ConvonetError):
        exit_code = 69

    status, out, _ = run_failing(Unavailable("the server is away; try later"), tmp_path,
                                 monkeypatch, capsys, "--json")
    assert status == 69
    assert json.loads(out) == {"command": "evaluate", "status": "failed",
                               "error": "the server is away; try later", "backend": None,
                               "notices": []}


def test_a_file_error_is_the_users(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                   capsys: pytest.CaptureFixture[str]) -> None:
    missing = FileNotFoundError(2, "No such file or directory", "/data/x.keras")
    status, _, err = run_failing(missing, tmp_path, monkeypatch, capsys)
    assert status == 2
    assert err.splitlines() == [
        "convonet: error: [Errno 2] No such file or directory: '/data/x.keras'"]


def test_a_bad_params_file_for_the_app_is_one_line_exit_2(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "hyper.json"
    bad.write_text('{"batch_size": 0}')
    assert main(["--hyper-params", str(bad), "--results-dir", str(tmp_path)]) == 2
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("convonet: error: ")
    assert str(bad) in lines[0] and "batch_size" in lines[0]


@pytest.mark.parametrize("command", ["train", "tune"])
def test_resuming_a_folder_that_is_no_run_is_the_users_mistake(
        command: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = tmp_path / "notarun"
    folder.mkdir()
    assert main([command, "--resume", str(folder), "--results-dir", str(tmp_path)]) == 2
    assert capsys.readouterr().err.splitlines() == [
        f"convonet: error: cannot resume: {folder} is not a run folder: it has no run.json"]


def test_a_validation_split_that_leaves_no_images_is_the_users_mistake(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """One image per class cannot be split for validation: a data error naming
    validation_split and what to do, not an internal fault."""
    import numpy as np
    from PIL import Image

    for name in ("cats", "dogs"):
        (tmp_path / "train" / name).mkdir(parents=True)
        Image.fromarray(np.full((8, 8), 90, dtype=np.uint8)).save(
            tmp_path / "train" / name / "only.png")
    data = tmp_path / "data_params.json"
    data.write_text(json.dumps({"train_dir": str(tmp_path / "train"), "image_size": [8, 8],
                                "color_mode": "grayscale"}))
    hyper = tmp_path / "hyper_params.json"
    hyper.write_text(json.dumps({"epochs": 1, "num_filters": 4, "num_units": 8,
                                 "batch_size": 2, "validation_split": 0.2}))
    status = main(["train", "--data-params", str(data), "--hyper-params", str(hyper),
                   "--validation", "--results-dir", str(tmp_path / "results")])
    err = capsys.readouterr().err
    assert status == 2, err
    assert "convonet: error: validation_split 0.2 leaves no images to validate on (2 images)" \
        "; add images to the training set, change validation_split in the hyper params, " \
        "or train without validation" in err
    assert "internal error" not in err


def test_resuming_a_folder_that_does_not_exist_says_so(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = tmp_path / "runs" / "20250101-120000-trainnig"
    assert main(["train", "--resume", str(folder), "--results-dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.splitlines() == [
        f"convonet: error: cannot resume: {folder} does not exist; give a run folder under "
        "<results>/runs/ (the runs screen and run.json name them)"]
