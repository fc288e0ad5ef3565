"""The convonet app: seven screens as modes, the command palette, dialogs, task failures.

The app holds the ``Session`` (params, datasets, model, results) so every screen sees the
same state, and each screen is an App mode: switching with 1-6 keeps its widgets as they were.
A screen that changes the session calls ``session_changed``; the others hear of it through
the ``session_change`` reactive they watch.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, ClassVar, cast

from textual.app import App, SystemCommand
from textual.binding import BindingType
from textual.command import CommandPalette
from textual.notifications import SeverityLevel
from textual.reactive import var
from textual.screen import ModalScreen, Screen
from textual.worker import Worker, WorkerState

from convonet import __version__
from convonet.core.events import Notice
from convonet.core.storage import resolve_results_dir
from convonet.keytable import bindings
from convonet.noise import LOG_NAME
from convonet.tui.commands import MenuCommands
from convonet.tui.dialogs import AboutDialog, ConfirmDialog, ErrorDialog, KeyRow, KeysDialog
from convonet.tui.lifecycle import LifecycleApp
from convonet.tui.screens import SCREENS
from convonet.tui.screens.params import unsaved_params_question
from convonet.tui.screens.training import TrainingScreen
from convonet.tui.screens.tuning import TuningScreen
from convonet.tui.session import Aspect, Session, SessionChange
from convonet.tui.tasks import (
    CoreEvent,
    TaskEnded,
    TaskRegistry,
    describe_error,
    is_cancellation,
)

log = logging.getLogger("convonet.app")
# Never logging's last resort (stderr, where Textual draws): the results folder's log
# gets these records through the root logger (cli.run_tui sets it up).
log.addHandler(logging.NullHandler())

class ConvonetApp(LifecycleApp):
    """Train, tune and test Keras image classifiers from the terminal."""

    TITLE = "convonet"
    CSS_PATH = Path(__file__).with_name("app.tcss")  # absolute: subclasses live elsewhere
    MODES: ClassVar[dict[str, Any]] = dict(SCREENS)
    DEFAULT_MODE = "params"
    COMMANDS = App.COMMANDS | {MenuCommands}

    BINDINGS: ClassVar[list[BindingType]] = [*bindings("app")]

    #: The latest change of the session; screens watch it to redraw what it touched.
    session_change: var[SessionChange] = var(SessionChange())

    def __init__(self, session: Session | None = None,
                 results_dir: str | os.PathLike[str] | None = None, *,
                 backend_label: str | None = None, notices: Sequence[str] = ()) -> None:
        """``backend_label`` is computed (importing Keras) when not given; tests pass one.
        ``results_dir`` (else the session's, else the default) is where runs are recorded."""
        super().__init__()
        self.session = session if session is not None else Session()
        if results_dir is not None:
            self.session.results_dir = resolve_results_dir(results_dir)
        if backend_label is None:
            from convonet.tui.backend import describe_backend

            backend_label = describe_backend()
        self.backend_label = backend_label
        self.tasks = TaskRegistry()
        self._notices = list(notices)
        #: Binding id -> key(s) from the user's keymap file (applied at mount).
        self.user_keys: dict[str, str] = {}
        self.title = f"convonet · {backend_label}"
        self.refresh_params_label()

    # ---- the session -------------------------------------------------------------------
    @property
    def results_dir(self) -> Path:
        """Where runs, models, screenshots and the log go."""
        return self.session.results_dir

    def session_changed(self, *what: Aspect) -> None:
        """Tell every screen that the session changed (``what``: the aspects touched)."""
        if "params" in what:
            self.refresh_params_label()
        self.session_change = SessionChange(self.session_change.serial + 1,
                                            frozenset(what))

    # ---- state shown in the header ---------------------------------------------------
    def params_label(self) -> str:
        """The loaded params files by name, for the header."""
        data = self.session.data_params.path
        hyper = self.session.hyper_params.path
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
        self.user_keys = dict(keymap.keys)
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
        screen = self.screen
        if isinstance(screen, (TrainingScreen, TuningScreen)):
            screen.resume_run(run)

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
        if handle is not None and state == WorkerState.RUNNING:
            self.session_changed("tasks")
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
            self.session_changed("tasks")
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
        if self.session.model_dirty:
            return "The model has changed since it was last saved. Quit without saving?"
        return unsaved_params_question(self.session)

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
