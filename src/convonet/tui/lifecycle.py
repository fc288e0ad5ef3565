"""What the app does as a terminal program: signals, a gone terminal, size, Ctrl+Z.

``LifecycleApp`` is the base of ``ConvonetApp``: SIGHUP (a dropped SSH connection) and
SIGTERM stop running tasks at their next batch or fold and record their runs as
interrupted; a thread ends the process should its terminal go while the event loop is stuck;
below 80x24 a screen says the terminal is too small; Ctrl+Z suspends to the shell.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import threading
import time
from pathlib import Path

from textual import events
from textual.app import App, SuspendNotSupported

from convonet.tui.tasks import TaskRegistry
from convonet.tui.terminal import TooSmallScreen, resumable_by_shell, too_small

#: Seconds a SIGHUP/SIGTERM waits for running tasks to stop at their next batch or fold.
SIGNAL_GRACE = 20.0
#: Seconds the normal exit gets once the runs are recorded, before the process leaves
#: regardless (a terminal that is gone can make it hang on its last writes).
SIGNAL_HARD_EXIT = 3.0
#: Seconds the process may outlive its terminal should even the event loop be stuck; its
#: runs then stay "running" under a dead pid, and the next start marks them interrupted.
SIGNAL_DEADLINE = SIGNAL_GRACE + SIGNAL_HARD_EXIT + 7.0


def watch_terminal(fd: int, deadline: float, poll: float = 1.0) -> None:
    """Thread body: once the terminal on ``fd`` has gone, end the process ``deadline``
    seconds later unless it has left by itself.

    The last resort, so that no process outlives its terminal: the SIGHUP handler normally
    ends the app within seconds, but it runs on the event loop, and a loop stuck on
    something that never comes (a write to the gone terminal) would never run it. A
    Python-level signal handler is no help there: the signal may land on any thread and
    the main thread only runs it between bytecodes. A hung-up terminal answers every
    ``tcgetattr`` with an error, which a thread can see whatever the loop does.
    """
    import termios  # POSIX only, as SIGHUP is

    while True:
        time.sleep(poll)
        try:
            termios.tcgetattr(fd)
        except (termios.error, OSError):
            break
    time.sleep(deadline)
    os._exit(128 + signal.SIGHUP)


class LifecycleApp(App[None]):
    """Signals, the terminal watcher, the too-small cover and Ctrl+Z for the app."""

    #: The app's running tasks (set by the subclass).
    tasks: TaskRegistry

    def __init__(self) -> None:
        super().__init__()
        #: The signal (SIGHUP, SIGTERM) that is shutting the app down, if any.
        self.signalled: int | None = None
        self._signals: list[int] = []
        self._watchdog: threading.Timer | None = None

    @property
    def results_dir(self) -> Path:
        """Where the runs are recorded (the subclass says)."""
        raise NotImplementedError

    # ---- dropped connections and signals ------------------------------------------------
    def install_signal_handlers(self) -> None:
        """SIGHUP (the SSH connection dropped) and SIGTERM stop the app cleanly.

        Textual installs no SIGHUP handler, so without this a dropped connection kills the
        process mid-epoch. Not under Pilot (tests call ``handle_signal`` themselves).
        """
        if self.is_headless:
            return
        loop = asyncio.get_running_loop()
        for name in ("SIGHUP", "SIGTERM"):
            sig = getattr(signal, name, None)
            if sig is None:
                continue
            try:
                loop.add_signal_handler(sig, self.handle_signal, sig)
            except (NotImplementedError, RuntimeError, ValueError):
                continue  # not the main thread, or no such signals here
            self._signals.append(sig)
        stdin = sys.__stdin__
        # Pilot apps draw on no terminal: one watcher per test app would only pile up.
        if not self.is_headless and stdin is not None and stdin.isatty():
            threading.Thread(target=watch_terminal, args=(stdin.fileno(), SIGNAL_DEADLINE),
                             name="convonet-terminal-watch", daemon=True).start()

    def on_unmount(self) -> None:
        loop = asyncio.get_running_loop()
        for sig in self._signals:
            loop.remove_signal_handler(sig)
        self._signals.clear()

    def handle_signal(self, signum: int) -> None:
        """Start the clean shutdown; a second signal while it runs is ignored."""
        if self.signalled is not None:
            return
        self.signalled = signum
        self.run_worker(self.shut_down(signum), name="signal", group="signal",
                        exit_on_error=False)

    async def shut_down(self, signum: int) -> None:
        """Stop every task at its next batch or fold, record its run as interrupted, exit.

        The core keeps what finished (epochs in history.csv and the checkpoint, folds in
        folds.jsonl); runs it had already recorded as "stopped" become "interrupted", so
        they are offered for resuming at the next start.
        """
        from convonet.core.records import active_runs, mark_interrupted

        name = signal.Signals(signum).name
        active = await asyncio.to_thread(active_runs, self.results_dir)
        self.tasks.cancel_all()
        deadline = time.monotonic() + SIGNAL_GRACE
        while self.tasks.running() and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        later = await asyncio.to_thread(active_runs, self.results_dir)
        await asyncio.to_thread(mark_interrupted, active + [r for r in later
                                                            if r not in active], name)
        # Should the exit hang, leave anyway: everything worth keeping is on disk now. It
        # can hang after the app has unmounted, so the timer stays armed to the end: once a
        # suspended app was continued by the hang-up, Textual's writer thread died on the
        # gone terminal and its close() waited on its full queue for ever (an orphan
        # process). Not under Pilot, where it would end the test run.
        if not self.is_headless:
            self._watchdog = threading.Timer(SIGNAL_HARD_EXIT, os._exit,
                                             args=(128 + signum,))
            self._watchdog.daemon = True
            self._watchdog.start()
        self.exit(return_code=128 + signum)

    # ---- terminal habits: too small, Ctrl+Z -------------------------------------------
    def on_resize(self, event: events.Resize) -> None:
        # Runs before App's own handler has stored the new size: check once it has.
        self.call_later(self.check_terminal_size)

    def check_terminal_size(self) -> None:
        """Cover the app with the "too small" message below 80x24; uncover when it grows."""
        covers = [s for s in self.screen_stack if isinstance(s, TooSmallScreen)]
        for screen in covers:
            screen.update_size()
        if not covers and too_small(self.size.width, self.size.height):
            self.push_screen(TooSmallScreen())

    def action_suspend_process(self) -> None:
        """Ctrl+Z: give the terminal back to the shell, as any terminal program does.

        The whole process stops (Textual's suspend, then SIGTSTP to our process group as a
        terminal's own Ctrl+Z would send it): a running task pauses with it and carries on
        after ``fg``, its run folder untouched. Without a job-control shell above us nobody
        could resume the process, so the app stays and says why.
        """
        if self.is_web:
            return  # a browser tab has no shell to go back to (check_action hides the key)
        if self.is_headless:
            self._cannot_suspend()
            return
        if not resumable_by_shell():
            self.notify("Ctrl+Z cannot suspend convonet here: it was not started from a "
                        "shell with job control, so nothing could bring it back (fg). "
                        "Quit with q, or start it from a shell prompt.", title="Suspend",
                        severity="warning", timeout=10, markup=False)
            return
        note = self.suspend_note()
        try:
            with self.suspend():
                print(note, file=sys.__stderr__, flush=True)
                # Textual's SIGTSTP handler stops this process; the rest of the job (a
                # launcher, the decoding processes) stops too, and the shell's fg resumes all.
                os.killpg(os.getpgrp(), signal.SIGTSTP)
        except SuspendNotSupported:  # raised before suspending: nothing was stopped
            self._cannot_suspend()
            return
        # Back from fg: the screen is redrawn by suspend(); sizes may have changed.
        self.check_terminal_size()

    def _cannot_suspend(self) -> None:
        self.notify("This terminal cannot suspend the app.", title="Suspend",
                    severity="warning", markup=False)

    def suspend_note(self) -> str:
        """The line the shell shows while the app is suspended."""
        names = sorted({h.name for h in self.tasks.running()})
        if not names:
            return "convonet is suspended: type fg to bring it back."
        return (f"convonet is suspended, and the running task ({', '.join(names)}) is "
                "paused with it until you type fg to bring it back.")
