"""A full disk, a read-only folder or a used-up quota: one message, the run kept, resumable.

Tests run as root, so these failures are injected (a write function that raises the errno
the kernel would), never made with chmod. Each message names the file, says what is wrong
and what to do, and carries no errno text; the run is marked interrupted with its finished
epochs or folds kept, and it resumes once the "disk" is freed.
"""

from __future__ import annotations

import errno
import json
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import keras
import pytest
from conftest import wait_for as wait_until
from task_helpers import evaluate, predict, resume, train

from convonet.cli import main
from convonet.core import records
from convonet.core import runs as runs_module
from convonet.core.demo import demo_params_paths, ensure_demo
from convonet.core.model_files import default_model_path
from convonet.core.params import DataParams, HyperParams
from convonet.core.runs import BACKUP_DIR, FOLDS_JSONL, RUN_JSON, RunFolder
from convonet.core.storage import (
    StorageError,
    check_writable,
    storage_error,
    writing,
)
from convonet.core.training import read_history_csv

#: Tiny: 2 filters, 8 units, 3 epochs of 16-image batches.
TINY = {"num_filters": 2, "num_units": 8, "epochs": 3, "batch_size": 16, "init_rate": 0.02}
ERRNO_TEXT = ("[Errno", "Errno 28", "Errno 30", "No space left on device",
              "Read-only file system")


def tiny_hyper(**changes: Any) -> HyperParams:
    return HyperParams().edit(**{**TINY, **changes})


def tiny_data(tiny_set: Any) -> Any:
    ds = tiny_set(per_class=16)
    ds.fingerprint = "tiny-set-v1"
    return ds


def build(hp: HyperParams, ds: Any) -> Any:
    from convonet.core.model import NetModel

    return NetModel(hp).build(ds.image_shape, ds.num_classes, ds.class_names)


def assert_plain(message: str) -> None:
    """One line, no errno text, no traceback."""
    assert "\n" not in message and "Traceback" not in message, message
    for raw in ERRNO_TEXT:
        assert raw not in message, message


# ---- injected failures --------------------------------------------------------------------
def h5py_disk_full(path: str) -> OSError:
    """What h5py raises when the disk fills while it writes weights (measured on a tmpfs):
    errno 28, no filename, the file only inside its own text."""
    return OSError(errno.ENOSPC, "Can't synchronously write data (file write failed: time = "
                   f"Mon Nov 30 20:04:12 2026\n, filename = '{path}', file descriptor = 3, "
                   "errno = 28, error message = 'No space left on device', buf = 0x5655, "
                   "total write size = 312264, bytes this sub-write = 312264, offset = 0)")


def fail_checkpoint_at(monkeypatch: pytest.MonkeyPatch, call: int,
                       make: Callable[[str], OSError] | None = None,
                       torn: bool = False) -> list[str]:
    """Make the ``call``-th checkpoint write (one per finished epoch) fail as a full disk
    does, after writing half a file when ``torn``; returns the paths of the writes."""
    original = keras.Model.save_weights
    seen: list[str] = []

    def save_weights(self: Any, filepath: Any, *args: Any, **kwargs: Any) -> Any:
        seen.append(str(filepath))
        if len(seen) >= call:
            if torn:  # what h5py leaves when the disk fills half way through
                Path(filepath).write_bytes(b"\x89HDF\r\n\x1a\n" + b"\0" * 100)
            raise (make(str(filepath)) if make is not None
                   else OSError(errno.ENOSPC, "No space left on device"))
        return original(self, filepath, *args, **kwargs)

    monkeypatch.setattr(keras.Model, "save_weights", save_weights)
    return seen


def read_only(monkeypatch: pytest.MonkeyPatch, folder: Path) -> None:
    """Writes under ``folder`` fail as on a read-only mount: os.open for writing and
    os.mkdir raise EROFS (reading still works)."""
    root = os.path.abspath(folder)
    real_open, real_mkdir = os.open, os.mkdir
    writes = os.O_WRONLY | os.O_RDWR | os.O_CREAT

    def inside(path: Any) -> bool:
        return os.path.abspath(os.fspath(path)).startswith(root)

    def fake_open(path: Any, flags: int, *args: Any, **kwargs: Any) -> int:
        if flags & writes and inside(path):
            raise OSError(errno.EROFS, "Read-only file system", os.fspath(path))
        return real_open(path, flags, *args, **kwargs)

    def fake_mkdir(path: Any, *args: Any, **kwargs: Any) -> None:
        if inside(path):
            raise OSError(errno.EROFS, "Read-only file system", os.fspath(path))
        real_mkdir(path, *args, **kwargs)

    monkeypatch.setattr(os, "open", fake_open)
    monkeypatch.setattr(os, "mkdir", fake_mkdir)


# ---- the translation ------------------------------------------------------------------------
def test_the_message_names_the_file_and_what_to_do_without_errno_text(tmp_path: Path) -> None:
    target = tmp_path / "runs" / "x" / "history.csv"
    target.parent.mkdir(parents=True)
    try:
        with writing(target):  # a failed write names no file: ``writing`` supplies it
            raise OSError(errno.ENOSPC, "No space left on device")
    except OSError as exc:
        error = storage_error(exc)
    assert isinstance(error, StorageError) and error.path == str(target)
    text = str(error)
    assert text.startswith(f"{target}: the disk is full (") and " free)" in text
    assert "free some space or choose another results folder with --results-dir / " \
           "CONVONET_RESULTS_DIR" in text
    assert_plain(text)

    # h5py's text carries the real file; a wrapping error (ModelError) keeps the cause
    weights = str(tmp_path / "backup" / "latest.weights.h5")
    wrapped = ValueError("cannot be saved")
    wrapped.__cause__ = h5py_disk_full(weights)
    assert str(storage_error(wrapped)).startswith(f"{weights}: the disk is full")

    quota = storage_error(OSError(errno.EDQUOT, "Disk quota exceeded", str(target)))
    assert "your disk quota is used up; delete some of your files" in str(quota)

    # a file the user chose outside the results folder is not sent to another one
    best = storage_error(OSError(errno.EROFS, "Read-only file system", "/mnt/ro/best.json"),
                         results_dir=tmp_path)
    assert str(best) == "/mnt/ro/best.json: the file system is read-only; write it " \
                        "somewhere else"

    # a permission error from a read is the reader's business, not a storage failure
    assert storage_error(PermissionError(errno.EACCES, "Permission denied", "x.png")) is None
    try:
        with writing(target):
            raise PermissionError(errno.EACCES, "Permission denied")
    except OSError as exc:
        assert "no permission to write there" in str(storage_error(exc))
    assert storage_error(ValueError("batch_size must be positive")) is None


def test_a_read_only_results_folder_is_refused_by_name(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    results = tmp_path / "app_results"
    read_only(monkeypatch, results)
    with pytest.raises(StorageError) as info:
        check_writable(results)
    assert str(info.value) == (
        f"cannot write the results folder {results}: the file system is read-only; choose "
        "another results folder with --results-dir / CONVONET_RESULTS_DIR")
    monkeypatch.undo()
    check_writable(results)  # writable again: no error, and no probe file left behind
    assert list(results.iterdir()) == []

    blocker = tmp_path / "file"
    blocker.write_text("a file where the results folder should be")
    with pytest.raises(StorageError, match="it is a file, not a folder"):
        check_writable(blocker)


# ---- training: the 3rd epoch's checkpoint write fails ---------------------------------------
@pytest.mark.parametrize("make", [None, h5py_disk_full], ids=["plain", "h5py"])
def test_a_full_disk_at_a_checkpoint_keeps_the_finished_epochs_and_resumes(
        tmp_path: Path, tiny_set: Any, monkeypatch: pytest.MonkeyPatch,
        make: Callable[[str], OSError] | None) -> None:
    ds, hp = tiny_data(tiny_set), tiny_hyper()
    model = build(hp, ds)
    attempts = fail_checkpoint_at(monkeypatch, 3, make)
    with pytest.raises(StorageError) as info:
        train(model, hp, ds, True, tmp_path)
    (run,) = RunFolder.find(tmp_path)
    weights = attempts[-1]
    assert Path(weights).parent == run.file(BACKUP_DIR)
    text = str(info.value)
    assert text.startswith(f"{weights}: the disk is full (")
    assert "the run is marked interrupted with its 2 finished epochs kept" in text
    assert f"Free some space, then resume with `convonet train --resume {run.path}`" in text
    assert_plain(text)

    info_json = run.info
    assert info_json["status"] == "interrupted" and run.status == "interrupted"
    assert info_json["metrics"]["epochs_done"] == 2 and info_json["error"] == text
    assert records.resume_problem(run) is None
    before = [r for r in read_history_csv(run.file("history.csv")) if r.epoch <= 2]
    assert [r.epoch for r in before] == [1, 2]

    monkeypatch.undo()  # the disk has room again
    out = resume(run, dataset=ds)
    assert out.status == "finished" and run.status == "finished"
    assert [r.epoch for r in out.history.rows] == [1, 2, 3]
    assert out.history.rows[:2] == before  # the finished epochs kept as they were
    assert run.info["metrics"]["epochs_done"] == 3 and run.file("model.keras").is_file()


@pytest.mark.parametrize("call", [1, 3], ids=["first checkpoint", "third checkpoint"])
def test_a_half_written_checkpoint_is_never_resumed_from(
        tmp_path: Path, tiny_set: Any, monkeypatch: pytest.MonkeyPatch, call: int) -> None:
    """The last whole checkpoint comes back (or none at all): a resume starts right after
    the last finished epoch, never from a torn weights file."""
    from convonet.core.training import checkpoint_epoch

    ds, hp = tiny_data(tiny_set), tiny_hyper()
    whole: dict[str, bytes] = {}
    original = keras.Model.save_weights

    def remember(self: Any, filepath: Any, *args: Any, **kwargs: Any) -> Any:
        original(self, filepath, *args, **kwargs)
        whole["weights"] = Path(filepath).read_bytes()  # the last checkpoint written whole

    monkeypatch.setattr(keras.Model, "save_weights", remember)
    fail_checkpoint_at(monkeypatch, call, torn=True)
    with pytest.raises(StorageError, match="the disk is full"):
        train(build(hp, ds), hp, ds, False, tmp_path)
    (run,) = RunFolder.find(tmp_path)
    backup = run.file(BACKUP_DIR)
    assert checkpoint_epoch(backup) == call - 1 == run.info["metrics"]["epochs_done"]
    weights = backup / "latest.weights.h5"
    if call == 1:
        assert not weights.exists()  # none is better than half of one
    else:
        assert weights.read_bytes() == whole["weights"]  # epoch 2's, whole
    monkeypatch.undo()
    out = resume(run, dataset=ds)
    assert out.status == "finished" and [r.epoch for r in out.history.rows] == [1, 2, 3]


def test_when_run_json_cannot_be_written_either_the_message_says_so(
        tmp_path: Path, tiny_set: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    ds, hp = tiny_data(tiny_set), tiny_hyper()
    attempts = fail_checkpoint_at(monkeypatch, 3)
    real_write = runs_module.atomic_write_text

    def write(path: Any, text: str) -> None:
        if len(attempts) >= 3:  # the disk is full from the 3rd checkpoint on
            raise OSError(errno.ENOSPC, "No space left on device", str(path))
        real_write(path, text)

    monkeypatch.setattr(runs_module, "atomic_write_text", write)
    with pytest.raises(StorageError) as info:
        train(build(hp, ds), hp, ds, False, tmp_path)
    (run,) = RunFolder.find(tmp_path)
    text = str(info.value)
    assert "its 2 finished epochs are kept, but run.json cannot be written either" in text
    assert f"convonet train --resume {run.path}" in text
    assert_plain(text)
    assert run.info["status"] == "running"  # what run.json still says; the process lives


# ---- tuning: the ledger write fails --------------------------------------------------------
class TornWrite:
    """A folds.jsonl handle on a disk that fills mid-line: half the line, then ENOSPC."""

    def __init__(self, fh: Any) -> None:
        self.fh = fh
        self.wrote = False

    def __enter__(self) -> TornWrite:
        return self

    def __exit__(self, *exc: object) -> None:
        self.fh.close()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.fh, name)

    def write(self, data: bytes) -> int:
        if not self.wrote:
            self.wrote = True
            return int(self.fh.write(data[: len(data) // 2]))
        raise OSError(errno.ENOSPC, "No space left on device")


def test_a_full_disk_at_the_tuning_ledger_keeps_the_finished_folds_and_resumes(
        tmp_path: Path, tiny_set: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    from convonet.core.tuning import tune

    ds = tiny_set(per_class=12)
    hp = tiny_hyper(epochs=1, init_rate="0.02,0.05", cv_folds=2, tuning_share=1.0)
    opened: list[str] = []

    def fake_open(path: Any, mode: str = "r", *args: Any, **kwargs: Any) -> Any:
        fh = open(path, mode, *args, **kwargs)  # noqa: SIM115 - closed by TornWrite
        if Path(path).name == FOLDS_JSONL:
            opened.append(str(path))
            if len(opened) == 2:  # the second fold's record hits the full disk
                return TornWrite(fh)
        return fh

    monkeypatch.setattr(runs_module, "open", fake_open, raising=False)
    with pytest.raises(StorageError) as info:
        tune(ds.x, ds.y, hp, results_dir=tmp_path)
    (run,) = RunFolder.find(tmp_path)
    text = str(info.value)
    assert text.startswith(f"{run.file(FOLDS_JSONL)}: the disk is full (")
    assert "the run is marked interrupted with its 1 finished fold kept" in text
    assert f"then resume with `convonet tune --resume {run.path}`" in text
    assert_plain(text)
    assert run.status == "interrupted" and run.info["metrics"]["fits_done"] == 1
    # the torn half line was cut off again: one whole record, nothing after it
    ledger = run.file(FOLDS_JSONL).read_text(encoding="utf-8")
    assert ledger.count("\n") == 1 and ledger.endswith("\n")
    assert json.loads(ledger)["fold"] == 0

    monkeypatch.undo()
    result = tune(ds.x, ds.y, None, resume_from=run)
    assert result.status == "finished" and result.fits_done == result.total_fits == 4
    assert [f.get("resumed", False) for f in result.folds] == [True, False, False, False]
    assert run.status == "finished" and len(run.read_jsonl(FOLDS_JSONL)) == 4


def test_a_full_disk_while_writing_a_prediction_marks_it_failed(
        tmp_path: Path, tiny_set: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    from convonet.core import testing

    ds, hp = tiny_data(tiny_set), tiny_hyper(epochs=1)
    model = build(hp, ds)

    def full(*args: Any, **kwargs: Any) -> Any:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(testing.Prediction, "write_report_csv", full)
    with pytest.raises(StorageError) as info:
        predict(model, ds, tmp_path)
    (run,) = RunFolder.find(tmp_path)
    text = str(info.value)
    assert text.startswith(f"{run.file('report.csv')}: the disk is full (")
    assert text.endswith("; the run is marked failed. Free some space or choose another "
                         "results folder with --results-dir / CONVONET_RESULTS_DIR, then run "
                         "it again")
    assert_plain(text)
    assert run.status == "failed" and run.info["error"] == text


# ---- headless ---------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, Path]]:
    """The demo set's data params and tiny hyper params (3 epochs)."""
    root = tmp_path_factory.mktemp("storage")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("CONVONET_CACHE_DIR", str(root / "cache"))
        mp.setenv("CONVONET_DATA_DIR", str(root / "data"))
        folder = ensure_demo(root / "demo")
        data, hyper = demo_params_paths(folder)
        tiny = HyperParams.load(hyper).edit(epochs=3, num_filters=4, num_units=16,
                                            batch_size=64)
        yield data, tiny.save(root / "tiny_hyper_params.json")


def error_lines(err: str) -> list[str]:
    assert "Traceback" not in err, err
    return [line for line in err.splitlines() if line.startswith("convonet: error: ")]


@pytest.mark.parametrize("command", [
    ["train"], ["tune"], ["evaluate", "--model", "m.keras"], ["predict", "--model", "m.keras"],
    ["classify", ".", "--model", "m.keras"], ["demo", "--train"],
])
def test_headless_refuses_a_read_only_results_folder_before_it_starts(
        demo: tuple[Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str], command: list[str]) -> None:
    results = tmp_path / "results"
    results.mkdir()
    read_only(monkeypatch, results)
    data, hyper = demo
    extra = [] if command[0] == "demo" else ["--data-params", str(data)]
    status = main([*command, *extra, "--results-dir", str(results)])
    err = capsys.readouterr().err
    assert status == 2
    assert err.strip().splitlines() == [
        f"convonet: error: cannot write the results folder {results}: the file system is "
        "read-only; choose another results folder with --results-dir / CONVONET_RESULTS_DIR"]
    monkeypatch.undo()
    assert list(results.iterdir()) == []  # nothing ran: no run, no log


def test_headless_train_with_a_full_disk_exits_2_and_resumes(
        demo: tuple[Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    data, hyper = demo
    fail_checkpoint_at(monkeypatch, 3, h5py_disk_full)
    argv = ["--results-dir", str(tmp_path)]
    status = main(["train", "--data-params", str(data), "--hyper-params", str(hyper), *argv])
    err = capsys.readouterr().err
    (run,) = RunFolder.find(tmp_path)
    assert status == 2
    (line,) = error_lines(err)
    assert line.startswith(f"convonet: error: {run.file(BACKUP_DIR)}/latest.weights.h5: the "
                           "disk is full (")
    assert f"resume with `convonet train --resume {run.path}`" in line
    assert_plain(line)
    assert run.status == "interrupted" and run.info["metrics"]["epochs_done"] == 2
    assert not (tmp_path / "demo.keras").exists()

    monkeypatch.undo()
    assert main(["train", "--resume", str(run.path), *argv, "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["status"] == "finished" and [r["epoch"] for r in out["history"]] == [1, 2, 3]
    assert run.status == "finished"


def test_headless_train_whose_model_copy_hits_a_full_disk_says_where_the_model_is(
        demo: tuple[Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    data, hyper = demo
    target = default_model_path(tmp_path, DataParams.load(data))  # where train saves it
    real_replace = os.replace

    def replace(src: Any, dst: Any, *args: Any, **kwargs: Any) -> None:
        if Path(dst) == target:
            raise OSError(errno.ENOSPC, "No space left on device")
        real_replace(src, dst, *args, **kwargs)

    monkeypatch.setattr(os, "replace", replace)
    status = main(["train", "--data-params", str(data), "--hyper-params", str(hyper),
                   "--epochs", "1", "--results-dir", str(tmp_path)])
    (line,) = error_lines(capsys.readouterr().err)
    (run,) = RunFolder.find(tmp_path)
    assert status == 2 and run.status == "finished"
    assert line.startswith(f"convonet: error: {target}: the disk is full (")
    assert line.endswith(f" free); the trained model is kept in {run.file('model.keras')}. "
                         "Free some space or choose another results folder with "
                         "--results-dir / CONVONET_RESULTS_DIR, then copy it from there")
    assert not target.exists() and run.file("model.keras").is_file()


def test_headless_json_says_the_same_message(
        demo: tuple[Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    results = tmp_path / "results"
    read_only(monkeypatch, results)
    assert main(["evaluate", "--data-params", str(demo[0]), "--model", "m.keras",
                 "--results-dir", str(results), "--json"]) == 2
    captured = capsys.readouterr()
    out = json.loads(captured.out)
    assert out["status"] == "failed"
    assert out["error"].startswith(f"cannot write the results folder {results}: ")
    assert error_lines(captured.err) == [f"convonet: error: {out['error']}"]


def test_save_best_on_a_full_disk_names_the_file_not_the_results_folder(
        demo: tuple[Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    from convonet.core import files

    data, hyper = demo
    grid = HyperParams.load(hyper).edit(epochs=1, cv_folds=2, tuning_share=0.2)
    best = tmp_path / "elsewhere" / "best.json"
    real_write = files.os.replace

    def replace(src: Any, dst: Any) -> None:
        if Path(dst) == best:
            raise OSError(errno.ENOSPC, "No space left on device")
        real_write(src, dst)

    monkeypatch.setattr(files.os, "replace", replace)
    status = main(["tune", "--data-params", str(data), "--hyper-params",
                   str(grid.save(tmp_path / "grid.json")), "--results-dir",
                   str(tmp_path / "results"), "--save-best", str(best)])
    (line,) = error_lines(capsys.readouterr().err)
    assert status == 2
    assert line.startswith(f"convonet: error: {best}: the disk is full (")
    assert line.endswith("; free some space or write it somewhere else")


# ---- the app ------------------------------------------------------------------------------
async def test_the_app_refuses_training_into_a_read_only_folder_and_keeps_its_state(
        make_app: Any, tiny_set: Any, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    from textual.widgets import DataTable

    from convonet.tui.dialogs import ErrorDialog
    from convonet.tui.screens.training import TrainingScreen
    from convonet.tui.session import Session

    ds, hp = tiny_data(tiny_set), tiny_hyper()
    model = build(hp, ds)
    weights = [w.copy() for w in model.get_weights()]
    controller = Session(hyper_params=hp, train_set=ds, model=model)
    results = tmp_path / "ro-results"
    app = make_app(session=controller, results_dir=results)
    async with app.run_test(size=(100, 34)) as pilot:
        await pilot.press("4")
        screen = app.screen
        assert isinstance(screen, TrainingScreen)
        read_only(monkeypatch, results)
        await pilot.press("v")
        await wait_until(pilot, lambda: isinstance(app.screen, ErrorDialog), "the error")
        dialog = app.screen
        assert dialog.error_title == "Training cannot start"
        assert dialog.summary == (
            f"cannot write the results folder {results}: the file system is read-only; "
            "choose another results folder with --results-dir / CONVONET_RESULTS_DIR")
        assert "Traceback" not in dialog.details
        assert not app.tasks.running() and screen._job is None  # nothing started
        await pilot.press("escape")
        await wait_until(pilot, lambda: app.screen is screen, "the training screen")
        assert controller.model is model and controller.train_set is ds
        assert all((a == b).all() for a, b in zip(model.get_weights(), weights, strict=True))
        assert screen.query_one("#train-epochs", DataTable).row_count == 0
    monkeypatch.undo()
    assert not results.exists() or not RunFolder.find(results)


async def test_the_app_shows_a_full_disk_mid_training_and_keeps_model_and_history(
        make_app: Any, tiny_set: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        wait_for_tasks: Any) -> None:
    from textual.widgets import DataTable

    from convonet.tui.dialogs import ErrorDialog
    from convonet.tui.session import Session

    ds, hp = tiny_data(tiny_set), tiny_hyper()
    model = build(hp, ds)
    controller = Session(hyper_params=hp, train_set=ds, model=model)
    results = tmp_path / "results"
    app = make_app(session=controller, results_dir=results)
    fail_checkpoint_at(monkeypatch, 3)
    async with app.run_test(size=(100, 34)) as pilot:
        await pilot.press("4")
        screen = app.screen
        await pilot.press("t")
        await wait_until(pilot, lambda: isinstance(app.screen, ErrorDialog), "the error")
        await wait_for_tasks(pilot)
        (run,) = RunFolder.find(results)
        dialog = app.screen
        assert dialog.summary.startswith(f"{run.file(BACKUP_DIR)}/latest.weights.h5: the "
                                         "disk is full (")
        assert f"resume with `convonet train --resume {run.path}`" in dialog.summary
        assert_plain(dialog.summary)
        assert "Traceback" not in dialog.details  # the message is the whole story
        await pilot.press("escape")
        await wait_until(pilot, lambda: app.screen is screen, "the training screen")
        await wait_until(pilot, lambda: screen._job is None, "the task to end")
        assert controller.model is model  # the weights it reached stay in memory
        assert screen.query_one("#train-epochs", DataTable).row_count == 3
        assert run.status == "interrupted" and run.info["metrics"]["epochs_done"] == 2


def test_run_json_is_plain_json_after_a_storage_failure(tmp_path: Path) -> None:
    """The error kept in run.json is the message itself, readable by the Runs screen."""
    run = RunFolder.create(tmp_path, "evaluation")
    error = records.storage_failure(run, OSError(errno.ENOSPC, "No space left on device",
                                                 str(run.file("confusion.csv"))))
    data = json.loads(run.file(RUN_JSON).read_text(encoding="utf-8"))
    assert data["status"] == "failed" and data["error"] == str(error)


def test_an_unraisable_error_goes_to_the_log_not_the_terminal(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """h5py reports a file it could not close on a full disk as "Exception ignored in"
    with a traceback on stderr, after the error itself: the log takes it instead."""
    import gc

    from convonet.noise import route_noise_to_log

    class FailsToClose:
        def __del__(self) -> None:
            raise OSError(errno.ENOSPC, "No space left on device")

    log = tmp_path / "convonet.log"
    with route_noise_to_log(log):
        FailsToClose()
        gc.collect()
    err = capsys.readouterr().err
    assert "Exception ignored" not in err and "Traceback" not in err, err
    text = log.read_text(encoding="utf-8")
    assert "Exception ignored" in text and "FailsToClose" in text and "OSError" in text


def test_an_evaluation_whose_run_json_cannot_be_finished_says_so_once(
        tmp_path: Path, tiny_set: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    ds, hp = tiny_data(tiny_set), tiny_hyper()
    real_write = runs_module.atomic_write_text
    writes: list[str] = []

    def write(path: Any, text: str) -> None:
        writes.append(str(path))
        if len(writes) > 1:  # run.json was written at the start; the disk is full since
            raise OSError(errno.ENOSPC, "No space left on device", str(path))
        real_write(path, text)

    monkeypatch.setattr(runs_module, "atomic_write_text", write)
    with pytest.raises(StorageError) as info:
        evaluate(build(hp, ds), ds, tmp_path)
    (run,) = RunFolder.find(tmp_path)
    text = str(info.value)
    assert text.startswith(f"{run.file(RUN_JSON)}: the disk is full (")
    assert text.endswith(" free); the run reads as running until this process ends. Free "
                         "some space or choose another results folder with --results-dir / "
                         "CONVONET_RESULTS_DIR, then run it again")
    assert_plain(text)


def test_c_library_start_up_lines_stay_off_the_screen_with_a_read_only_folder(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capfd: pytest.CaptureFixture[str]) -> None:
    """TensorFlow's C++ lines at start go to the log; when the log cannot be written they
    go nowhere, not onto the screen the app is about to draw."""
    from convonet.noise import stderr_to_log

    results = tmp_path / "results"
    read_only(monkeypatch, results)
    with stderr_to_log(results / "convonet.log"):
        os.write(2, b"cuda_platform.cc:52] failed call to cuInit\n")
    assert "cuInit" not in capfd.readouterr().err


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs Linux's /dev/full")
def test_a_real_full_device_under_keras_and_h5py_is_worded_the_same(tmp_path: Path) -> None:
    """Not injected: h5py writing to /dev/full fails as on a full disk (errno 28, the file
    only inside its own text), and the message names the file."""
    weights = tmp_path / "latest.weights.h5"
    weights.symlink_to("/dev/full")
    model = keras.Sequential([keras.Input((8,)), keras.layers.Dense(4)])
    with pytest.raises(OSError) as info:
        model.save_weights(str(weights))
    error = storage_error(info.value)
    assert error is not None
    assert str(error).startswith(f"{weights}: the disk is full (")
    assert_plain(str(error))
