"""A headless run whose terminal goes away (a killed tmux session, a dropped SSH connection)
ends as Ctrl+C does: recorded as interrupted, its model kept, the process gone.

The command runs in a real pseudo-terminal that is its controlling terminal. Closing the
master side hangs the terminal up as tmux and sshd do: the kernel sends SIGHUP and every
later write to the terminal fails with EIO. A second SIGHUP follows, as tmux sends one.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import select
import signal
import struct
import subprocess
import sys
import termios
import time
from pathlib import Path
from typing import Any

import pytest
from headless_helpers import child_env, write_tiny_folder

from convonet.core import records
from convonet.core.params import HyperParams
from convonet.core.runs import FOLDS_JSONL, HISTORY_CSV, RunFolder
from convonet.core.training import read_history_csv
from convonet.hangup import guarded_output, terminal_gone

#: Makes the pseudo-terminal the command's controlling terminal (a new session), then
#: becomes the command: what a terminal emulator, tmux or sshd does for a shell.
CONTROLLING_TTY = ("import fcntl, os, sys, termios; os.setsid(); "
                   "fcntl.ioctl(0, termios.TIOCSCTTY, 0); "
                   "os.execv(sys.executable, [sys.executable, *sys.argv[1:]])")


def session_members(sid: int) -> list[int]:
    """Processes still in session ``sid`` (the command and anything it started)."""
    members = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2:].split()  # after "pid (comm) "
        if int(fields[3]) == sid and fields[0] != "Z":  # fields[3]: the session id
            members.append(int(entry.name))
    return members


def hang_up_after(args: list[str], tmp_path: Path, ready: Any, what: str,
                  timeout: float = 120.0) -> subprocess.Popen[bytes]:
    """Run ``convonet ARGS`` in a pseudo-terminal; once ``ready()``, hang it up as tmux
    does and wait for the process to end. Returns the ended process."""
    master, slave = os.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 80, 0, 0))
    proc = subprocess.Popen([sys.executable, "-c", CONTROLLING_TTY, "-m", "convonet", *args],
                            stdin=slave, stdout=slave, stderr=slave,
                            env=child_env(tmp_path), close_fds=True)
    os.close(slave)
    shown = bytearray()
    try:
        deadline = time.monotonic() + timeout
        while not ready():
            # Drained here, not in a thread: a read blocked on the master would keep it
            # open after the close below, and the terminal would never hang up.
            while select.select([master], [], [], 0)[0]:
                try:
                    chunk = os.read(master, 65536)
                except OSError:
                    chunk = b""
                if not chunk:
                    break
                shown.extend(chunk)
            if proc.poll() is not None:
                pytest.fail(f"the command ended (status {proc.returncode}) before {what}:\n"
                            + shown.decode(errors="replace")[-2000:])
            if time.monotonic() > deadline:
                pytest.fail(f"timed out waiting for {what}")
            time.sleep(0.05)
        assert b"epoch" in shown or b"fits" in shown or b"loading" in shown, \
            "the progress was drawn on the terminal"
        os.close(master)  # the terminal hangs up: SIGHUP from the kernel, EIO from now on
        master = -1
        time.sleep(0.2)
        with contextlib.suppress(ProcessLookupError):
            os.kill(proc.pid, signal.SIGHUP)  # and tmux's own, while the run is stopping
        proc.wait(timeout=60)
    finally:
        if master >= 0:
            os.close(master)
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    # No process of its session outlives it (a loader's worker, a stuck thread's process).
    deadline = time.monotonic() + 5
    while session_members(proc.pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert session_members(proc.pid) == [], "processes were left behind"
    return proc


def complete_epochs(run: RunFolder) -> list[int]:
    return [r.epoch for r in read_history_csv(run.file(HISTORY_CSV)) if not r.partial]


def latest_run(results: Path, task: str) -> RunFolder | None:
    runs = RunFolder.find(results, task) if (results / "runs").is_dir() else []
    return runs[-1] if runs else None


def check_log(results: Path, resume_hint: str) -> None:
    """How the command ended is in its log, since nobody could read it on the terminal."""
    text = (results / "convonet.log").read_text(encoding="utf-8")
    assert "the terminal went away" in text
    assert resume_hint in text
    assert "Traceback" not in text and "Input/output error" not in text


def test_a_hung_up_training_is_recorded_interrupted_with_its_model(tmp_path: Path) -> None:
    from convonet.core.model import load_model

    data = write_tiny_folder(tmp_path / "data")
    hyper = HyperParams().edit(epochs=400, num_filters=2, num_units=8, batch_size=16,
                               validation_split=0.25, seed=7).save(tmp_path / "hyper.json")
    results = tmp_path / "results"

    def one_epoch() -> bool:
        run = latest_run(results, "training")
        return run is not None and len(complete_epochs(run)) >= 1

    proc = hang_up_after(["train", "--data-params", str(data), "--hyper-params", str(hyper),
                          "--results-dir", str(results)], tmp_path, one_epoch,
                         "the first epoch")
    assert proc.returncode == 128 + signal.SIGHUP
    run = latest_run(results, "training")
    assert run is not None
    info = json.loads(run.file("run.json").read_text(encoding="utf-8"))
    assert info["status"] == "interrupted" and info["interrupted_by"] == "SIGHUP"
    epochs = complete_epochs(run)
    assert epochs and epochs == list(range(1, len(epochs) + 1)) and len(epochs) < 400
    assert info["metrics"]["epochs_done"] == len(epochs)
    model = load_model(run.file("model.keras"))  # the finished epochs' model, loadable
    assert model.output_shape == (None, 3)
    assert info["model"] == str(run.file("model.keras"))
    assert records.resume_problem(run) is None
    check_log(results, f"resume with: convonet train --resume {run.path}")


def test_a_hung_up_search_is_recorded_interrupted_with_its_folds(tmp_path: Path) -> None:
    data = write_tiny_folder(tmp_path / "data")
    hyper = HyperParams().edit(epochs=2, num_filters=2, num_units="4,6,8,10,12,14",
                               batch_size=16, cv_folds=2, tuning_share=1.0,
                               seed=7).save(tmp_path / "hyper.json")
    results = tmp_path / "results"

    def one_fold() -> bool:
        run = latest_run(results, "tuning")
        return run is not None and len(run.read_jsonl(FOLDS_JSONL)) >= 1

    proc = hang_up_after(["tune", "--data-params", str(data), "--hyper-params", str(hyper),
                          "--results-dir", str(results)], tmp_path, one_fold,
                         "the first fold")
    assert proc.returncode == 128 + signal.SIGHUP
    run = latest_run(results, "tuning")
    assert run is not None
    info = json.loads(run.file("run.json").read_text(encoding="utf-8"))
    assert info["status"] == "interrupted" and info["interrupted_by"] == "SIGHUP"
    folds = run.read_jsonl(FOLDS_JSONL)
    assert 1 <= len(folds) < 12
    check_log(results, f"resume with: convonet tune --resume {run.path}")
    assert f"interrupted: {len(folds)} of 12 fits" in (results / "convonet.log").read_text()


def test_writes_to_a_reader_that_went_away_are_dropped_and_logged(
        monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    """``ssh host convonet train ...`` without a terminal: stdout is a pipe, and when the
    connection drops every write fails with EPIPE. The command goes on; the log says so."""
    read_end, write_end = os.pipe()
    stream = os.fdopen(write_end, "w", buffering=1)
    monkeypatch.setattr(sys, "stdout", stream)
    os.close(read_end)
    try:
        with caplog.at_level(logging.WARNING, logger="convonet.hangup"), guarded_output():
            assert not terminal_gone()
            print("epoch 1/3  loss 1.0986")  # EPIPE: the reader is gone
            assert terminal_gone()
            print("epoch 2/3  loss 0.9012", flush=True)  # now into /dev/null
        assert sys.stdout is stream  # put back
    finally:
        stream.close()
    assert "the terminal went away (writing failed: Broken pipe)" in caplog.text


def test_after_a_hang_up_later_sighups_cannot_kill_the_closing_lines() -> None:
    """The kernel's SIGHUP is followed by tmux's or sshd's, possibly after the task has
    stopped and while the command writes how the run ended; with the default action back
    in place one killed the process (status -1, the closing lines lost)."""
    from convonet.headless import Output, Runner, signals_as_interrupt

    before = signal.getsignal(signal.SIGHUP)
    try:
        for hung_up, expected in ((False, before), (True, signal.SIG_IGN)):
            runner = Runner(Output(json_mode=True, verbose=False))
            with signals_as_interrupt(runner):
                if hung_up:
                    runner.signal = signal.SIGHUP  # as the handler records it
            assert signal.getsignal(signal.SIGHUP) == expected
            signal.signal(signal.SIGHUP, before)
    finally:
        signal.signal(signal.SIGHUP, before)
