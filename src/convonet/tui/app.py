"""The convonet app: seven screens as modes, the command palette, dialogs, task failures.

The app holds the ``Controller`` (params, datasets, model, results) so every screen sees the
same state, and each screen is an App mode: switching with 1-6 keeps its widgets as they were.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, ClassVar, cast

from textual import events
from textual.app import App, SuspendNotSupported, SystemCommand
from textual.binding import Binding, BindingType
from textual.command import CommandPalette
from textual.notifications import SeverityLevel
from textual.screen import ModalScreen, Screen
from textual.worker import Worker, WorkerState

from convonet import __version__
from convonet.core.events import Notice
from convonet.core.state import Controller
from convonet.noise import LOG_NAME
from convonet.tui.commands import MenuCommands
from convonet.tui.dialogs import AboutDialog, ConfirmDialog, ErrorDialog, KeyRow, KeysDialog
from convonet.tui.screens import SCREENS
from convonet.tui.screens.params import unsaved_params_question
from convonet.tui.tasks import (
    CoreEvent,
    TaskEnded,
    TaskRegistry,
    describe_error,
    is_cancellation,
)
from convonet.tui.terminal import TooSmallScreen, resumable_by_shell, too_small

log = logging.getLogger("convonet.app")
# Never logging's last resort (stderr, where Textual draws): the results folder's log
# gets these records through the root logger (cli.run_tui sets it up).
log.addHandler(logging.NullHandler())

#: Where results go when neither --results-dir nor CONVONET_RESULTS_DIR says otherwise.
DEFAULT_RESULTS_DIR = "app_results"


def default_results_dir() -> Path:
    return Path(os.environ.get("CONVONET_RESULTS_DIR") or DEFAULT_RESULTS_DIR)


#: Seconds a SIGHUP/SIGTERM waits for running tasks to stop at their next batch or fold.
SIGNAL_GRACE = 20.0
#: Seconds the normal exit gets once the runs are recorded, before the process leaves
#: regardless (a terminal that is gone can make it hang on its last writes).
SIGNAL_HARD_EXIT = 3.0
#: Seconds the process may outlive its terminal should even the event loop be stuck; its
#: runs then stay "running" under a dead pid, and the next start marks them interrupted.
SIGNAL_DEADLINE = SIGNAL_GRACE + SIGNAL_HARD_EXIT + 7.0


def _screen_bindings() -> list[BindingType]:
    return [
        Binding(str(key), f"goto('{name}')", cls.SCREEN_TITLE, id=f"goto.{name}",
                show=False, tooltip=f"Show the {cls.SCREEN_TITLE.lower()} screen")
        for key, (name, cls) in enumerate(SCREENS.items(), start=1)
    ]


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


class ConvonetApp(App[None]):
    """Train, tune and test Keras image classifiers from the terminal."""

    TITLE = "convonet"
    CSS_PATH = Path(__file__).with_name("app.tcss")  # absolute: subclasses live elsewhere
    MODES: ClassVar[dict[str, Any]] = dict(SCREENS)
    DEFAULT_MODE = "params"
    COMMANDS = App.COMMANDS | {MenuCommands}

    BINDINGS: ClassVar[list[BindingType]] = [
        *_screen_bindings(),
        Binding("question_mark", "show_keys", "Keys", id="app.keys"),
        Binding("f1", "show_keys", "Keys", id="app.keys_f1", show=False),
        Binding("f2", "show_about", "About", id="app.about", show=False),
        Binding("f12", "save_screenshot", "Screenshot", id="app.screenshot", show=False,
                tooltip="Save an SVG screenshot of this screen in the results folder"),
        Binding("q", "quit", "Quit", id="app.quit"),
        # Priority: Ctrl+Z means the shell in every terminal program, whatever has focus.
        # A system binding, like Textual's ctrl+c: a terminal habit, not one of our keys, so
        # the keys dialog leaves it out; `convonet keys` lists it, and it can be remapped.
        Binding("ctrl+z", "suspend_process", "Suspend", id="app.suspend", show=False,
                priority=True, system=True,
                tooltip="Suspend to the shell; fg brings the app back"),
    ]

    def __init__(self, controller: Controller | None = None,
                 results_dir: str | os.PathLike[str] | None = None, *,
                 backend_label: str | None = None, notices: Sequence[str] = ()) -> None:
        """``backend_label`` is computed (importing Keras) when not given; tests pass one."""
        super().__init__()
        self.controller = controller if controller is not None else Controller()
        self.results_dir = Path(results_dir) if results_dir is not None \
            else default_results_dir()
        if backend_label is None:
            from convonet.tui.backend import describe_backend

            backend_label = describe_backend()
        self.backend_label = backend_label
        self.tasks = TaskRegistry()
        #: The signal (SIGHUP, SIGTERM) that is shutting the app down, if any.
        self.signalled: int | None = None
        self._signals: list[int] = []
        self._watchdog: threading.Timer | None = None
        self._notices = list(notices)
        self.title = f"convonet · {backend_label}"
        self.refresh_params_label()

    # ---- state shown in the header ---------------------------------------------------
    def params_label(self) -> str:
        """The loaded params files by name, for the header."""
        data = self.controller.data_params.path
        hyper = self.controller.hyper_params.path
        if data is None and hyper is None:
            return "no params files"
        return " · ".join(p.name if p is not None else "unsaved" for p in (data, hyper))

    def refresh_params_label(self) -> None:
        """Call after loading or saving params so the header names the files."""
        self.sub_title = self.params_label()

    def on_mount(self) -> None:
        for notice in self._notices:
            self.notify(notice, severity="warning", timeout=10)
        self.install_signal_handlers()
        self.call_after_refresh(self.check_terminal_size)
        self.call_after_refresh(self.offer_resume)
        self.apply_user_keymap()

    def apply_user_keymap(self) -> None:
        """Remap keys from the user's keys.toml/keys.json; a bad entry is named, not fatal."""
        from convonet.keymap import load_user_keymap

        keymap = load_user_keymap()
        if keymap.keys:
            self.set_keymap(keymap.keys)
        for problem in keymap.problems:
            self.notify(problem, title="Key config", severity="warning", timeout=20,
                        markup=False)

    def action_save_screenshot(self) -> None:
        """Save this screen as SVG in <results>/screenshots (in a browser, also download it)."""
        folder = self.results_dir / "screenshots"
        stamp = time.strftime("%Y%m%d-%H%M%S")
        name = f"convonet-{self.current_mode}-{stamp}.svg"
        count = 1
        while (folder / name).exists():  # two in one second must not overwrite each other
            count += 1
            name = f"convonet-{self.current_mode}-{stamp}-{count}.svg"
        try:
            folder.mkdir(parents=True, exist_ok=True)
            path = self.save_screenshot(name, str(folder))
        except OSError as exc:
            self.notify(f"Cannot save the screenshot: {exc}", title="Screenshot",
                        severity="error", markup=False)
            return
        self.notify(f"Saved {path}", title="Screenshot", markup=False)
        if self.is_web:
            self.deliver_text(path, save_filename=name, mime_type="image/svg+xml")

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

    # ---- interrupted runs ---------------------------------------------------------------
    def offer_resume(self) -> None:
        """Mark runs a dead process left "running" as interrupted; offer the newest.

        Each run is offered once (run.json keeps ``resume_offered``); the runs screen can
        resume any interrupted run later.
        """
        from convonet.core.records import progress_text, resume_offers
        from convonet.core.runs import now_iso

        try:
            offers = resume_offers(self.results_dir)
            for run in offers:
                run.update(resume_offered=now_iso())
        except OSError as exc:
            self.notify(f"Cannot check {self.results_dir} for interrupted runs: {exc}",
                        severity="warning", markup=False)
            return
        if not offers:
            return
        run = offers[0]
        more = len(offers) - 1
        if more:
            self.notify(f"{more} more interrupted run{'s' if more > 1 else ''} can be "
                        "resumed from the runs screen.", title="Interrupted runs",
                        timeout=15, markup=False)

        def answered(yes: bool | None) -> None:
            if yes:
                self.run_worker(self.resume_run(run.path), name="resume", group="resume",
                                exit_on_error=False)

        self.push_screen(ConfirmDialog(
            f"The {run.task} run {progress_text(run)} was interrupted (the app or its "
            "connection went away). Resume it now? Its finished work is kept either way.",
            title="Interrupted run", yes="Resume", no="Later"), answered)

    async def resume_run(self, path: str | os.PathLike[str]) -> None:
        """Resume an interrupted training or tuning run (also the runs screen's hook).

        Raises ResumeError with the reason when it cannot (finished, still running,
        another task running); a changed dataset is refused when it has been loaded.
        """
        from convonet.core.records import ResumeError, resume_problem
        from convonet.core.runs import RunFolder

        run = RunFolder.open(path)
        problem = resume_problem(run)
        if problem is None and self.tasks.running():
            problem = "wait: another task is running"
        if problem is not None:
            raise ResumeError(f"cannot resume: {problem}")
        # The run's own screen resumes it, so its progress shows live as a new run's does.
        await self.switch_mode("training" if run.task == "training" else "tuning")
        screen: Any = self.screen
        resume = getattr(screen, "resume_run", None)
        if callable(resume):
            resume(run)

    # ---- screens ---------------------------------------------------------------------
    async def action_goto(self, name: str) -> None:
        """Show one of the screens (a mode, so it keeps its state)."""
        if name in SCREENS:
            await self.switch_mode(name)

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """Hide the screen and help keys while a dialog is open (they would stack up)."""
        if action in ("goto", "show_keys", "show_about"):
            dialog = isinstance(self.screen, ModalScreen)
            return not dialog or isinstance(self.screen, CommandPalette)
        if action == "suspend_process":
            return not self.is_web  # served to a browser: no shell to suspend to
        return True

    # ---- help ------------------------------------------------------------------------
    def action_show_about(self) -> None:
        self.push_screen(AboutDialog(__version__, self.backend_label, str(self.results_dir)))

    def action_show_keys(self) -> None:
        screen = self.screen
        self.push_screen(KeysDialog(self.key_rows(screen), self._screen_title(screen)))

    def key_rows(self, screen: Screen[Any]) -> list[KeyRow]:
        """Every key of the app and of ``screen`` (widgets' own keys show in the footer)."""
        rows: list[KeyRow] = []
        for key, active in screen.active_bindings.items():
            binding = active.binding
            if binding.system or active.node not in (self, screen):
                continue
            where = "App" if active.node is self else self._screen_title(screen)
            description = binding.description or binding.tooltip or binding.action
            if not active.enabled:
                description += " (not available now)"
            rows.append(KeyRow(where, self.get_key_display(binding) or key, description))
        rows.sort(key=lambda row: row.where == "App")  # the screen's own keys first
        return rows

    @staticmethod
    def _screen_title(screen: Screen[Any]) -> str:
        return getattr(screen, "SCREEN_TITLE", "") or type(screen).__name__

    def get_system_commands(self, screen: Screen[Any]) -> Iterable[SystemCommand]:
        """Textual's own palette commands, minus Quit and Keys (our menu has both)."""
        for command in super().get_system_commands(screen):
            if command.title not in ("Quit", "Keys"):
                yield command

    # ---- task events nobody handled -------------------------------------------------
    def on_core_event(self, message: CoreEvent) -> None:
        """A core ``Notice`` that bubbles up this far becomes a notification.

        A screen that shows notices itself calls ``message.stop()`` in its handler.
        """
        event = message.event
        if isinstance(event, Notice):
            level = event.level if event.level in ("information", "warning", "error") \
                else "warning"
            self.notify(event.text, severity=cast(SeverityLevel, level), markup=False)

    # ---- failures --------------------------------------------------------------------
    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        """The one place a worker's failure becomes an error dialog; the app keeps going."""
        worker = event.worker
        handle = self.tasks.for_worker(worker)
        state = event.state
        if state == WorkerState.CANCELLED and handle is not None:
            handle.cancel()
        if state == WorkerState.ERROR:
            if is_cancellation(worker.error):
                state = WorkerState.CANCELLED
            else:
                self.show_worker_error(worker)
        if handle is not None and state in (WorkerState.SUCCESS, WorkerState.ERROR,
                                             WorkerState.CANCELLED):
            handle.target.post_message(TaskEnded(handle.name, state, worker.result,
                                                 worker.error))
            handle.ended = True
        self.tasks.prune()

    def show_worker_error(self, worker: Worker[Any]) -> None:
        """Show a failed worker's error (also used for workers screens start themselves)."""
        error = worker.error
        if error is None or is_cancellation(error):
            return
        what = worker.description or worker.name or "A task"
        self.show_error(f"{what} failed", error)

    def show_error(self, title: str, error: BaseException | str) -> None:
        """A readable, copyable error; use it for any failure the user must see.

        The user's mistakes show their message and what to do; an internal error also
        says it is one, and its traceback goes to the log at once and to the screen only
        behind the dialog's details key.
        """
        text = describe_error(error)
        log_path = self.results_dir / LOG_NAME
        if text.internal:
            log.error("%s: %s", title, text.summary, exc_info=cast(BaseException, error))
        else:
            log.warning("%s: %s", title, text.summary)
        self.push_screen(ErrorDialog(title, text.summary, problem=text.problem,
                                     advice=text.advice, more=text.more,
                                     traceback=text.traceback, log_path=str(log_path)))

    # ---- quitting --------------------------------------------------------------------
    def quit_question(self) -> str | None:
        """Why quitting now would lose something, or None when it is safe."""
        running = self.tasks.running()
        if running:
            names = ", ".join(sorted({h.name for h in running}))
            return f"A task is running ({names}). Stop it and quit?"
        if self.controller.model_dirty:
            return "The model has changed since it was last saved. Quit without saving?"
        return unsaved_params_question(self.controller)

    async def action_quit(self) -> None:
        """Quit, asking first while a task runs or the model is unsaved."""
        if isinstance(self.screen, ConfirmDialog):
            return
        question = self.quit_question()
        if question is None:
            self.exit()
            return

        def answered(yes: bool | None) -> None:
            if yes:
                self.tasks.cancel_all()
                self.exit()

        self.push_screen(ConfirmDialog(question, title="Quit", yes="Quit", no="Stay"),
                         answered)
