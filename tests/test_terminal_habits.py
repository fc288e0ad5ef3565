"""Terminal habits: Ctrl+Z to the shell and fg back, a terminal below 80x24, no process left
behind after a hang-up.

The Ctrl+Z and hang-up tests run the real app in a pseudo-terminal, under a real bash with
job control where the habit needs one, as a user's terminal would.
"""

from __future__ import annotations

import fcntl
import os
import re
import select
import shlex
import signal
import struct
import subprocess
import sys
import termios
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import wait_for as wait_until

from convonet import keymap
from convonet.cli import main
from convonet.core.params import HyperParams
from convonet.tui.app import ConvonetApp
from convonet.tui.dialogs import AboutDialog
from convonet.tui.terminal import TooSmallScreen

SRC = Path(__file__).resolve().parents[1] / "src"
TOO_SMALL = ("convonet needs at least 80x24; this terminal is {w}x{h}. Enlarge it, or press "
             "{key} to quit.")


def screen_text(app: ConvonetApp) -> str:
    """What the terminal shows now, one line per row."""
    return "\n".join(strip.text for strip in app.screen._compositor.render_strips())


def words(text: str) -> str:
    """``text`` with its line breaks and runs of spaces as single spaces (wrapping aside)."""
    return " ".join(text.split())


def notes(app: ConvonetApp) -> list[str]:
    return [str(n.message) for n in app._notifications]


@pytest.fixture
def config_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty config folder of our own, so the user's real keys file never leaks in."""
    folder = tmp_path / "config"
    folder.mkdir()
    monkeypatch.setenv(keymap.CONFIG_ENV, str(folder))
    return folder


# ---- below 80x24 -----------------------------------------------------------------------
async def test_a_small_terminal_says_so_and_the_screens_come_back_with_their_state(
        make_app: Callable[..., Any], config_dir: Path) -> None:
    app = make_app()
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.press("4")
        await wait_until(pilot, lambda: app.current_mode == "training", "the training screen")
        assert "1 Params" in screen_text(app)

        await pilot.resize_terminal(70, 20)
        await wait_until(pilot, lambda: isinstance(app.screen, TooSmallScreen), "the notice")
        await pilot.pause()
        text = screen_text(app)
        assert TOO_SMALL.format(w=70, h=20, key="q") in words(text)
        assert "1 Params" not in text and "Training" not in text  # nothing half-drawn

        await pilot.press("2")  # the screen keys are off meanwhile
        await pilot.resize_terminal(79, 30)  # one column short still counts
        await pilot.pause()
        assert TOO_SMALL.format(w=79, h=30, key="q") in words(screen_text(app))
        assert app.current_mode == "training"

        await pilot.resize_terminal(100, 30)
        await wait_until(pilot, lambda: not isinstance(app.screen, TooSmallScreen),
                         "the screens back")
        await pilot.pause()
        text = screen_text(app)
        assert "1 Params" in text and "convonet needs" not in text
        assert app.current_mode == "training"
        assert not any(isinstance(s, TooSmallScreen) for s in app.screen_stack)


async def test_started_small_the_quit_key_still_quits(make_app: Callable[..., Any],
                                                      config_dir: Path) -> None:
    app = make_app()
    async with app.run_test(size=(60, 15)) as pilot:
        await wait_until(pilot, lambda: isinstance(app.screen, TooSmallScreen), "the notice")
        await pilot.pause()
        assert TOO_SMALL.format(w=60, h=15, key="q") in words(screen_text(app))
        await pilot.press("q")
        await wait_until(pilot, lambda: app.return_code is not None, "the app to quit")
    assert app.return_code == 0


async def test_the_notice_names_a_remapped_quit_key(make_app: Callable[..., Any],
                                                    config_dir: Path) -> None:
    (config_dir / "keys.toml").write_text('"app.quit" = "ctrl+x"\n')
    app = make_app()
    async with app.run_test(size=(70, 20)) as pilot:
        await wait_until(pilot, lambda: isinstance(app.screen, TooSmallScreen), "the notice")
        await pilot.pause()
        assert TOO_SMALL.format(w=70, h=20, key="^x") in words(screen_text(app))


async def test_at_80x24_nothing_covers_the_app(make_app: Callable[..., Any],
                                               config_dir: Path) -> None:
    """The snapshot tests' small size is the smallest full layout."""
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        await pilot.pause()
        assert not any(isinstance(s, TooSmallScreen) for s in app.screen_stack)
        assert "1 Params" in screen_text(app)


async def test_grown_under_a_dialog_the_notice_goes_when_the_dialog_closes(
        make_app: Callable[..., Any], config_dir: Path) -> None:
    app = make_app()
    async with app.run_test(size=(70, 20)) as pilot:
        await wait_until(pilot, lambda: isinstance(app.screen, TooSmallScreen), "the notice")
        app.push_screen(AboutDialog("0", "tensorflow · CPU", str(app.results_dir)))
        await wait_until(pilot, lambda: isinstance(app.screen, AboutDialog), "the dialog")
        await pilot.resize_terminal(120, 40)
        await pilot.pause()
        assert isinstance(app.screen, AboutDialog)
        await pilot.press("escape")
        await wait_until(pilot, lambda: not any(isinstance(s, (TooSmallScreen, AboutDialog))
                                                for s in app.screen_stack), "both closed")
        await pilot.pause()
        assert "1 Params" in screen_text(app)


# ---- Ctrl+Z: the binding -----------------------------------------------------------------
def test_ctrl_z_is_a_listed_binding_that_can_be_remapped(config_dir: Path,
                                                         capsys: pytest.CaptureFixture[str]
                                                         ) -> None:
    infos = {info.id: info for info in keymap.binding_infos()}
    assert infos["app.suspend"].key == "ctrl+z" and infos["app.suspend"].where == "App"
    (config_dir / "keys.toml").write_text('"app.suspend" = "f9"\n')
    assert keymap.load_user_keymap().keys == {"app.suspend": "f9"}
    assert main(["keys"]) == 0
    out = capsys.readouterr().out
    assert any(line.split()[:2] == ["app.suspend", "f9*"] for line in out.splitlines())


async def test_ctrl_z_without_a_terminal_says_so(make_app: Callable[..., Any],
                                                 config_dir: Path) -> None:
    app = make_app()
    async with app.run_test() as pilot:
        await pilot.press("ctrl+z")
        await pilot.pause()
        assert app.is_running
        assert "This terminal cannot suspend the app." in notes(app)


async def test_served_to_a_browser_ctrl_z_is_off(make_app: Callable[..., Any],
                                                 config_dir: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ConvonetApp, "is_web", property(lambda self: True))
    app = make_app()
    async with app.run_test() as pilot:
        await pilot.pause()
        assert app.check_action("suspend_process", ()) is False
        assert "ctrl+z" not in app.screen.active_bindings
        await pilot.press("ctrl+z")
        await pilot.pause()
        assert app.is_running and notes(app) == []


PROBE = "from convonet.tui.terminal import resumable_by_shell; print(resumable_by_shell())"


@pytest.mark.parametrize(("wrapped", "own_session", "expected"), [
    (False, False, "True"),   # a job of its own, started by a process in this session
    (True, False, "True"),    # behind a launcher in the same job
    (False, True, "False"),   # the session leader: `tmux new 'convonet'`, `ssh host convonet`
    (True, True, "False"),    # a launcher that is the session leader
])
def test_suspend_needs_a_shell_that_can_resume(wrapped: bool, own_session: bool,
                                               expected: str) -> None:
    command = [sys.executable, "-c", PROBE]
    if wrapped:
        command = ["sh", "-c", shlex.join(command) + "; true"]
    env = dict(os.environ, PYTHONPATH=str(SRC))
    kwargs: dict[str, Any] = {"start_new_session": True} if own_session \
        else {"preexec_fn": os.setpgrp}  # a job of its own (process_group=0 needs 3.11)
    out = subprocess.run(command, capture_output=True, text=True, env=env, timeout=60,
                         check=True, **kwargs).stdout
    assert out.strip() == expected


# ---- the real app in a pseudo-terminal ----------------------------------------------------
ANSI = re.compile(rb"\x1b\[[0-9;?<>=]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)|\x1b.")
TINY = {"num_filters": 2, "num_units": 8, "batch_size": 64}


def app_env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if k not in ("SSH_CONNECTION", "SSH_TTY", "TMUX", "STY")}
    env.update({"CONVONET_RESULTS_DIR": str(tmp_path / "results"),
                "CONVONET_DATA_DIR": str(tmp_path / "data"),
                "CONVONET_CACHE_DIR": str(tmp_path / "cache"),
                "CONVONET_CONFIG_DIR": str(tmp_path / "config"),
                "PYTHONPATH": os.pathsep.join([str(SRC), os.environ.get("PYTHONPATH", "")]),
                "TF_CPP_MIN_LOG_LEVEL": "3", "TERM": "xterm-256color", "PS1": "$ "})
    return env


def session_processes(sid: int) -> list[tuple[int, str, str]]:
    """(pid, state, command line) of every live process in session ``sid``; zombies count
    as gone (their parent, init here, reaps them)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        state, session = fields[0], int(fields[3])
        if session == sid and state not in ("Z", "X"):
            found.append((int(entry.name), state, cmdline.strip()))
    return found


class Terminal:
    """A pseudo-terminal with one program in its own session, as a terminal window or an SSH
    login has: a hang-up (closing it) sends SIGHUP to that session's leader."""

    def __init__(self, argv: list[str], env: dict[str, str], size: tuple[int, int] = (100, 30)
                 ) -> None:
        pid, fd = os.forkpty()  # setsid + the pty as controlling terminal, as login does
        if pid == 0:  # pragma: no cover - the child
            try:
                os.execvpe(argv[0], argv, env)
            finally:
                os._exit(127)
        self.pid, self.fd = pid, fd
        fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", size[1], size[0], 0, 0))
        self.output = bytearray()
        self.closed = False
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        # select with a timeout, not a blocking read: a read in progress would keep the
        # terminal open after hang_up closes it, and the hang-up would never happen.
        while not self.closed:
            ready, _, _ = select.select([self.fd], [], [], 0.05)
            if not ready:
                continue
            try:
                chunk = os.read(self.fd, 65536)
            except OSError:
                return
            if not chunk:
                return
            self.output.extend(chunk)

    def text(self, start: int = 0) -> str:
        return ANSI.sub(b"", bytes(self.output[start:])).decode("utf-8", "replace")

    def wait_for(self, what: str, start: int = 0, timeout: float = 90.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if what in self.text(start):
                return
            time.sleep(0.05)
        pytest.fail(f"timed out waiting for {what!r} on the terminal; it shows "
                    f"{self.text(start)[-1500:]!r}")

    def press_until(self, key: str, what: str, tries: int = 10, wait: float = 5.0) -> None:
        """Press ``key`` until ``what`` shows: a task that has just reported its end may
        still be finishing, and the app then refuses (and says so) rather than queueing."""
        for _ in range(tries):
            mark = self.send(key)
            deadline = time.monotonic() + wait
            while time.monotonic() < deadline:
                if what in self.text(mark):
                    return
                time.sleep(0.05)
        pytest.fail(f"{what!r} never showed after pressing {key!r} {tries} times; the "
                    f"terminal shows {self.text()[-1500:]!r}")

    def send(self, keys: str) -> int:
        """Type ``keys``; returns the output offset before them, for ``wait_for``."""
        mark = len(self.output)
        os.write(self.fd, keys.encode())
        return mark

    def hang_up(self) -> None:
        """Close the terminal, as killing a tmux session or dropping SSH does."""
        if not self.closed:
            self.closed = True
            self._reader.join()
            os.close(self.fd)

    def close(self) -> None:
        """Leave nothing behind, whatever the test did."""
        self.hang_up()
        for pid, _, _ in session_processes(self.pid):
            os.kill(pid, signal.SIGKILL)
        try:
            os.waitpid(self.pid, 0)
        except ChildProcessError:
            pass


@pytest.fixture
def terminals() -> Iterator[Callable[..., Terminal]]:
    opened: list[Terminal] = []

    def open_terminal(argv: list[str], env: dict[str, str]) -> Terminal:
        terminal = Terminal(argv, env)
        opened.append(terminal)
        return terminal

    yield open_terminal
    for terminal in opened:
        terminal.close()


def the_app(terminal: Terminal) -> tuple[int, str]:
    """The app's pid and process state in the terminal's session (T = stopped)."""
    apps = [(pid, state) for pid, state, cmd in session_processes(terminal.pid)
            if "-m convonet" in cmd]
    assert len(apps) == 1, session_processes(terminal.pid)
    return apps[0]


def wait_for_state(terminal: Terminal, states: str, what: str) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if the_app(terminal)[1] in states:
            return
        time.sleep(0.05)
    pytest.fail(f"the app never became {what}: {the_app(terminal)}")


def wait_until_gone(terminal: Terminal, timeout: float) -> None:
    """No process at all is left in the terminal's session (the app, a worker process, a
    multiprocessing helper), within ``timeout`` seconds of the hang-up."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not session_processes(terminal.pid):
            return
        time.sleep(0.1)
    pytest.fail(f"left behind {timeout:.0f} s after the hang-up: "
                f"{session_processes(terminal.pid)}")


def wait_for_exit(pid: int, timeout: float) -> int:
    """The wait status of our child ``pid``; fails (not hangs) when it does not end."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return status
        time.sleep(0.05)
    pytest.fail(f"process {pid} still runs {timeout:.0f} s after the hang-up")


def demo_command(demo_folder: Path, tmp_path: Path, epochs: int = 2) -> list[str]:
    from convonet.core.demo import demo_params_paths

    data, hyper = demo_params_paths(demo_folder)
    tiny = HyperParams.load(hyper).edit(epochs=epochs, **TINY)
    hyper_path = tiny.save(tmp_path / "tiny_hyper_params.json")
    return [sys.executable, "-m", "convonet", "--data-params", str(data),
            "--hyper-params", str(hyper_path)]


def test_ctrl_z_suspends_to_the_shell_fg_returns_and_a_hang_up_leaves_nothing(
        terminals: Callable[..., Terminal], demo_folder: Path, tmp_path: Path) -> None:
    """bash with job control, as in a terminal window: Ctrl+Z, fg, keys work again; then
    suspended once more, the terminal closes (tmux kill-session): nothing stays behind."""
    terminal = terminals(["bash", "--norc", "--noprofile", "-i"], app_env(tmp_path))
    terminal.wait_for("$ ")
    command = " ".join(demo_command(demo_folder, tmp_path))
    mark = terminal.send(command + "\r")
    terminal.wait_for("1 Params", mark)

    mark = terminal.send("\x1a")  # Ctrl+Z
    terminal.wait_for("convonet is suspended: type fg to bring it back.", mark)
    terminal.wait_for("Stopped", mark)
    wait_for_state(terminal, "T", "stopped")

    mark = terminal.send("fg\r")
    terminal.wait_for("1 Params", mark)  # redrawn
    wait_for_state(terminal, "SR", "running")
    mark = terminal.send("2")
    terminal.wait_for("Training set", mark)  # and it reads keys again

    mark = terminal.send("\x1a")
    terminal.wait_for("convonet is suspended", mark)
    wait_for_state(terminal, "T", "stopped")
    terminal.hang_up()
    wait_until_gone(terminal, timeout=15)


def test_a_hang_up_during_training_leaves_no_process_and_ctrl_z_needs_a_shell(
        terminals: Callable[..., Terminal], demo_folder: Path, tmp_path: Path) -> None:
    """The app as the session's leader, as `ssh host convonet` or `tmux new 'convonet'` start
    it: Ctrl+Z cannot suspend (nobody could resume it) and says so; a hang-up during
    training stops it, records the run and leaves no process behind."""
    from convonet.core.runs import RunFolder

    terminal = terminals(demo_command(demo_folder, tmp_path, epochs=500), app_env(tmp_path))
    terminal.wait_for("1 Params")
    mark = terminal.send("\x1a")
    terminal.wait_for("cannot suspend convonet here", mark)
    assert the_app(terminal)[1] != "T"

    mark = terminal.send("2")
    terminal.wait_for("Training set", mark)
    mark = terminal.send("t")
    terminal.wait_for("1,438 images", mark)
    mark = terminal.send("3")
    terminal.wait_for("Initialize", mark)
    terminal.press_until("i", "Trainable params")
    mark = terminal.send("4")
    terminal.wait_for("-param model", mark)
    terminal.press_until("v", "Epoch 1/500")
    terminal.wait_for("Epoch 2/500")

    terminal.hang_up()
    wait_until_gone(terminal, timeout=30)
    (run,) = RunFolder.find(tmp_path / "results", "training")
    assert run.info["status"] == "interrupted" and run.info["interrupted_by"] == "SIGHUP"


STUCK_APP = """
import sys, threading
from textual.binding import Binding
from convonet.tui.session import Session
from convonet.tui import app as app_module
from convonet.tui import lifecycle

lifecycle.SIGNAL_DEADLINE = 2

class StuckApp(app_module.ConvonetApp):
    BINDINGS = [Binding("x", "stick", "Stick")]

    def action_stick(self) -> None:
        print("stuck", file=sys.__stderr__, flush=True)
        threading.Event().wait()  # the event loop never comes back

StuckApp(session=Session(), results_dir=sys.argv[1], backend_label="test").run()
"""


def test_a_hang_up_ends_the_process_even_when_the_event_loop_is_stuck(
        terminals: Callable[..., Terminal], tmp_path: Path) -> None:
    """A thread watches the terminal: once it has gone, the process leaves within the
    deadline even if the event loop (where the SIGHUP handler runs) never runs again."""
    terminal = terminals([sys.executable, "-c", STUCK_APP, str(tmp_path / "results")],
                         app_env(tmp_path))
    terminal.wait_for("1 Params")
    pid = terminal.pid  # the app leads its session here
    mark = terminal.send("x")
    terminal.wait_for("stuck", mark)
    started = time.monotonic()
    terminal.hang_up()
    status = wait_for_exit(pid, timeout=30)
    assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 128 + signal.SIGHUP
    assert time.monotonic() - started < 10


def test_convonet_keys_imports_nothing_of_the_app(config_dir: Path) -> None:
    """`convonet keys` lists every binding from the table alone: in a fresh interpreter
    neither the app module nor Textual's App is imported."""
    script = ("import sys, contextlib, io\n"
              "from convonet.cli import main\n"
              "with contextlib.redirect_stdout(io.StringIO()) as out:\n"
              "    code = main(['keys'])\n"
              "app = ('textual.app', 'convonet.tui.app')\n"
              "loaded = sorted(m for m in app if m in sys.modules)\n"
              "text = out.getvalue()\n"
              "print(code, loaded, 'table.sort' in text, 'goto.runs' in text)\n")
    env = {**os.environ, "PYTHONPATH": str(Path(keymap.__file__).resolve().parents[1])}
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          env=env, timeout=120)
    assert done.stdout.split("\n")[-2] == "0 [] True True", done.stdout + done.stderr
