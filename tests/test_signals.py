"""Dropped connections and signals: SIGHUP/SIGTERM stop runs cleanly and record them as
interrupted; the app offers to resume them at its next start."""

from __future__ import annotations

import fcntl
import json
import os
import signal
import struct
import subprocess
import sys
import termios
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from conftest import wait_for as wait_until
from task_helpers import train

from convonet.cli import main, multiplexer_notice
from convonet.core import records
from convonet.core.events import CancelToken, EpochEnd, Event
from convonet.core.params import DataParams, HyperParams
from convonet.core.runs import HISTORY_CSV, RunFolder
from convonet.core.training import read_history_csv
from convonet.tui.dialogs import ConfirmDialog
from convonet.tui.screens.training import TrainingScreen
from convonet.tui.session import Session

TINY = {"num_filters": 2, "num_units": 8, "batch_size": 64}


def tiny_demo_params(demo_folder: Path, tmp_path: Path, epochs: int) -> tuple[Path, Path]:
    """The demo's data params and a tiny model's hyper params with ``epochs``."""
    from convonet.core.demo import demo_params_paths

    data, hyper = demo_params_paths(demo_folder)
    tiny = HyperParams.load(hyper).edit(epochs=epochs, **TINY)
    return data, tiny.save(tmp_path / f"tiny_{epochs}_hyper_params.json")


def wait_for(condition: Any, what: str, timeout: float = 90.0,
             proc: subprocess.Popen[bytes] | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        if proc is not None and proc.poll() is not None:
            pytest.fail(f"the process ended (status {proc.returncode}) before {what}")
        time.sleep(0.05)
    pytest.fail(f"timed out waiting for {what}")


def epochs_done(results: Path) -> int:
    runs = RunFolder.find(results, "training")
    if not runs or not runs[-1].file(HISTORY_CSV).is_file():
        return 0
    return sum(1 for r in read_history_csv(runs[-1].file(HISTORY_CSV)) if not r.partial)


def child_env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if k not in ("SSH_CONNECTION", "SSH_TTY", "TMUX", "STY")}
    env.update({"CONVONET_RESULTS_DIR": str(tmp_path / "results"),
                "CONVONET_DATA_DIR": str(tmp_path / "data"),
                "CONVONET_CACHE_DIR": str(tmp_path / "cache"),
                "CONVONET_CONFIG_DIR": str(tmp_path / "config"),
                "TF_CPP_MIN_LOG_LEVEL": "3", "TERM": "xterm-256color",
                "PYTHONUNBUFFERED": "1"})
    return env


# ---- the SSH notice -----------------------------------------------------------------------
@pytest.mark.parametrize(("env", "shown"), [
    ({}, False),
    ({"SSH_CONNECTION": "10.0.0.2 5000 10.0.0.1 22", "TERM": "xterm"}, True),
    ({"SSH_TTY": "/dev/pts/3", "TERM": "xterm-256color"}, True),
    ({"SSH_CONNECTION": "x", "TMUX": "/tmp/tmux-0/default,1,0", "TERM": "tmux-256color"},
     False),
    ({"SSH_CONNECTION": "x", "TERM": "screen-256color"}, False),
    ({"SSH_CONNECTION": "x", "STY": "1234.pts-0.host", "TERM": "xterm"}, False),
    # a browser tab of `convonet serve`: the server warns instead
    ({"SSH_CONNECTION": "x", "TERM": "xterm",
      "TEXTUAL_DRIVER": "textual.drivers.web_driver:WebDriver"}, False),
])
def test_the_ssh_notice_only_outside_tmux_and_screen(env: dict[str, str], shown: bool
                                                     ) -> None:
    text = multiplexer_notice(env)
    assert (text is not None) == shown
    if text is not None:
        assert "tmux new -s convonet" in text and "interrupted" in text


def test_serve_warns_once_when_started_over_ssh_outside_tmux() -> None:
    from convonet.cli import serve_notice

    assert serve_notice({"SSH_CONNECTION": "x", "TERM": "xterm"}) is not None
    assert serve_notice({"SSH_CONNECTION": "x", "TMUX": "/tmp/t", "TERM": "xterm"}) is None
    assert serve_notice({}) is None


# ---- the app's handler, under Pilot ---------------------------------------------------------
async def test_sighup_in_the_app_stops_training_and_records_it_interrupted(
        make_app: Any, tiny_set: Any, tmp_path: Path) -> None:
    controller = Session(
        hyper_params=HyperParams().edit(epochs=500, **TINY, init_rate=0.01),
        train_set=tiny_set(per_class=20))
    app = make_app(session=controller)
    results = app.results_dir
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("3", "i")
        await app.workers.wait_for_complete()
        await pilot.press("4", "v")
        await wait_until(pilot, lambda: epochs_done(results) >= 2,
                         "two epochs in the run folder", timeout=120)
        assert epochs_done(results) >= 2
        started = time.monotonic()
        app.handle_signal(signal.SIGHUP)
        await wait_until(pilot, lambda: app.return_code is not None, "the app to exit")
        assert app.return_code == 128 + signal.SIGHUP
        assert time.monotonic() - started < 10
    (run,) = RunFolder.find(results, "training")
    info = run.info
    assert info["status"] == "interrupted" and info["interrupted_by"] == "SIGHUP"
    rows = read_history_csv(run.file(HISTORY_CSV))
    assert [r.epoch for r in rows if not r.partial] == list(range(1, len(
        [r for r in rows if not r.partial]) + 1))
    assert records.resume_problem(run) is None  # start.keras and the checkpoint are kept


# ---- offered at the next start, resumed to the end ------------------------------------------
def dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


async def test_the_next_start_offers_the_interrupted_run_and_resumes_it(
        make_app: Any, demo_folder: Path, tmp_path: Path) -> None:
    from convonet.core.data import DataPrep
    from convonet.core.model import NetModel

    data_json, hyper_json = tiny_demo_params(demo_folder, tmp_path, epochs=3)
    data, hyper = DataParams.load(data_json), HyperParams.load(hyper_json)
    ds = DataPrep(data, cache_dir=tmp_path / "cache").prep_data("train", seed=hyper.seed)
    model = NetModel(hyper).build(ds.image_shape, ds.num_classes, ds.class_names)
    cancel = CancelToken()

    def stop_after_one(event: Event) -> None:
        if isinstance(event, EpochEnd):
            cancel.cancel()

    results = tmp_path / "results"
    out = train(model, hyper, ds, True, results, data, report=stop_after_one,
                cancel=cancel)
    run = out.run
    assert run is not None
    run.update(status="running", pid=dead_pid())  # as a killed process leaves it

    app = make_app(session=Session(), results_dir=results)
    async with app.run_test(size=(100, 30)) as pilot:
        await wait_until(pilot, lambda: isinstance(app.screen, ConfirmDialog),
                         "the offer to resume")
        dialog = app.screen
        assert isinstance(dialog, ConfirmDialog)
        assert run.path.name in dialog.question and "1 of 3 epochs" in dialog.question
        assert run.info["status"] == "interrupted" and run.info["resume_offered"]
        await pilot.press("y")
        await wait_until(pilot,
                         lambda: app.session.history is not None and not app.tasks.running(),
                         "the resumed training to finish", timeout=120)
        assert isinstance(app.screen, TrainingScreen)
        history = app.session.history
        assert history is not None and [r.epoch for r in history.rows] == [1, 2, 3]
        assert app.session.model is not None and app.session.train_set is not None
    assert run.status == "finished" and len(run.info["resumed"]) == 1
    assert [r.epoch for r in read_history_csv(run.file(HISTORY_CSV))] == [1, 2, 3]
    # Offered once: the next start asks nothing.
    assert records.resume_offers(results) == []


async def test_a_resumed_tuning_runs_live_on_the_tuning_screen(
        make_app: Any, demo_folder: Path, tmp_path: Path) -> None:
    """The runs screen's resume hook on a stopped search: the tuning screen shows the
    finished fold at once (as resumed), runs the others live and ends finished."""
    from convonet.core.data import DataPrep
    from convonet.core.tuning import FoldEnd, tune
    from convonet.tui.screens.tuning import TuningScreen

    data_json, hyper_json = tiny_demo_params(demo_folder, tmp_path, epochs=1)
    data = DataParams.load(data_json)
    hyper = HyperParams.load(hyper_json).edit(num_units="8,12", cv_folds=2,
                                              tuning_share=0.15)
    ds = DataPrep(data, cache_dir=tmp_path / "cache").prep_data("train", seed=hyper.seed)
    cancel = CancelToken()

    def stop_after_one(event: Event) -> None:
        if isinstance(event, FoldEnd):
            cancel.cancel()

    results = tmp_path / "results"
    stopped = tune(ds.x, ds.y, hyper, report=stop_after_one, cancel=cancel,
                   results_dir=results, data_params=data)
    run = stopped.run
    assert run is not None and run.status == "stopped" and stopped.fits_done == 1

    app = make_app(session=Session(), results_dir=results)
    async with app.run_test(size=(120, 40)) as pilot:
        await app.resume_run(run.path)
        screen = app.screen
        assert isinstance(screen, TuningScreen) and screen.running
        await wait_until(pilot, lambda: not app.tasks.running(),
                         "the resumed tuning to finish", timeout=120)
        await pilot.pause()
        result = app.session.tuning
        assert result is not None and result.status == "finished"
        total = stopped.total_fits  # the demo grid with num_units 8,12: 4 x 2 folds
        assert result.fits_done == result.total_fits == total == 8
        assert screen.partial.row_count == total  # 1 replayed + 7 run now
        assert [bool(f.get("resumed")) for f in result.folds].count(True) == 1
        assert screen.results.row_count == total // 2  # the ranked combinations
    assert run.status == "finished" and len(run.info["resumed"]) == 1


async def test_the_resume_hook_refuses_a_changed_dataset(
        make_app: Any, demo_folder: Path, tmp_path: Path) -> None:
    data_json, hyper_json = tiny_demo_params(demo_folder, tmp_path, epochs=2)
    results = tmp_path / "results"
    run = RunFolder.create(results, "training", hyper_params=HyperParams.load(hyper_json),
                           data_params=DataParams.load(data_json), seed=42,
                           fingerprint="not-this-data", validation=False, epochs=2)
    run.file("start.keras").write_bytes(b"")  # a checkpoint exists; data is checked first
    run.finish("interrupted")
    app = make_app(session=Session(), results_dir=results)
    errors: list[Any] = []
    async with app.run_test(size=(100, 30)) as pilot:
        app.show_error = lambda title, error: errors.append((title, error))  # type: ignore
        await wait_until(pilot, lambda: isinstance(app.screen, ConfirmDialog),
                         "the offer to resume")
        await pilot.press("n")  # not now: the runs screen resumes it through the same hook
        assert not app.tasks.running()
        await app.resume_run(run.path)
        await wait_until(pilot, lambda: errors, "the refusal")
        notes = [n.message for n in app._notifications]
    assert errors, f"the refusal is shown; notifications: {notes}"
    text = str(errors[0][1])
    assert "changed" in text and "not-this-data" in text, text
    assert run.info["status"] == "interrupted"  # untouched


# ---- a real process in a pseudo-terminal ----------------------------------------------------
def test_sighup_to_the_app_in_a_pty_records_the_run_interrupted(
        demo_folder: Path, tmp_path: Path) -> None:
    data_json, hyper_json = tiny_demo_params(demo_folder, tmp_path, epochs=300)
    results = tmp_path / "results"
    master, slave = os.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 80, 0, 0))
    proc = subprocess.Popen(
        [sys.executable, "-m", "convonet", "--data-params", str(data_json),
         "--hyper-params", str(hyper_json)],
        stdin=slave, stdout=slave, stderr=slave, env=child_env(tmp_path),
        start_new_session=True, close_fds=True)
    os.close(slave)
    screen = bytearray()

    def drain() -> None:
        while True:
            try:
                chunk = os.read(master, 65536)
            except OSError:
                return
            if not chunk:
                return
            screen.extend(chunk)

    reader = threading.Thread(target=drain, daemon=True)
    reader.start()
    try:
        wait_for(lambda: b"Params" in screen or len(screen) > 2000, "the first screen",
                 proc=proc)
        time.sleep(1.0)

        def keys(*presses: str, pause: float = 0.4) -> None:
            for key in presses:
                os.write(master, key.encode())
                time.sleep(pause)

        keys("2", "t")
        wait_for(lambda: (results / "runs").exists() or b"images" in screen,
                 "the training set", proc=proc, timeout=60)
        time.sleep(2.0)
        keys("3", "i")
        time.sleep(2.0)
        keys("4", "v")
        wait_for(lambda: epochs_done(results) >= 2, "two epochs in history.csv", proc=proc)
        os.kill(proc.pid, signal.SIGHUP)
        started = time.monotonic()
        proc.wait(timeout=15)
        took = time.monotonic() - started
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        os.close(master)
    assert took < 10, f"took {took:.1f} s to leave"
    assert proc.returncode == 128 + signal.SIGHUP
    (run,) = RunFolder.find(results, "training")
    info = json.loads(run.file("run.json").read_text())
    assert info["status"] == "interrupted" and info["interrupted_by"] == "SIGHUP"
    complete = [r.epoch for r in read_history_csv(run.file(HISTORY_CSV)) if not r.partial]
    assert len(complete) >= 2 and complete == list(range(1, len(complete) + 1))
    assert records.resume_problem(run) is None


# ---- headless -------------------------------------------------------------------------------
def test_sigterm_to_headless_training_records_it_interrupted(
        demo_folder: Path, tmp_path: Path) -> None:
    data_json, hyper_json = tiny_demo_params(demo_folder, tmp_path, epochs=300)
    results = tmp_path / "results"
    proc = subprocess.Popen(
        [sys.executable, "-m", "convonet", "train", "--data-params", str(data_json),
         "--hyper-params", str(hyper_json), "--results-dir", str(results), "--json"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=child_env(tmp_path))
    try:
        wait_for(lambda: epochs_done(results) >= 2, "two epochs in history.csv", proc=proc)
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=15)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 128 + signal.SIGTERM, err.decode()
    assert json.loads(out)["status"] == "interrupted"
    (run,) = RunFolder.find(results, "training")
    assert run.info["status"] == "interrupted"
    assert epochs_done(results) >= 2 and records.resume_problem(run) is None


def test_headless_train_resume_finishes_a_stopped_run(
        demo_folder: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    from convonet import headless

    monkeypatch.setenv("CONVONET_CACHE_DIR", str(tmp_path / "cache"))
    data_json, hyper_json = tiny_demo_params(demo_folder, tmp_path, epochs=3)
    results = tmp_path / "results"
    original = headless.Display.handle
    fired: list[bool] = []

    def handle(self: Any, event: Any) -> None:
        original(self, event)
        if isinstance(event, EpochEnd) and not fired:
            fired.append(True)
            raise KeyboardInterrupt

    monkeypatch.setattr(headless.Display, "handle", handle)
    assert main(["train", "--data-params", str(data_json), "--hyper-params", str(hyper_json),
                 "--results-dir", str(results), "--json"]) == 130
    run_dir = json.loads(capsys.readouterr().out)["run_dir"]
    monkeypatch.setattr(headless.Display, "handle", original)
    assert main(["train", "--resume", run_dir, "--results-dir", str(results), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["status"] == "finished" and out["run_dir"] == run_dir
    assert [r["epoch"] for r in out["history"]] == [1, 2, 3]
    run = RunFolder.open(run_dir)
    assert run.status == "finished" and len(run.read_csv("history.csv")) == 3
    # Finished: resuming again is refused with the reason, exit 2.
    assert main(["train", "--resume", run_dir, "--results-dir", str(results)]) == 2
    assert "already finished" in capsys.readouterr().err
