"""What every screen shares: header, a bar naming the screens, the body, the footer.

A screen subclasses ``ConvonetScreen``, sets ``SCREEN_NAME``/``SCREEN_TITLE``, and overrides
``compose_body`` with its widgets; it owns its ``BINDINGS`` and ``action_*`` methods (the
command palette runs the seed's menu items through those actions, see
``convonet.tui.commands``). Long core work goes through ``convonet.tui.tasks.run_task``.
When the session changes (on any screen, or a task starts or ends) ``session_changed`` is
called with what changed; a screen overrides it to redraw.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, ClassVar

from textual import events, on
from textual.app import ComposeResult
from textual.content import Content
from textual.screen import Screen
from textual.widgets import Footer, Header, Static
from textual.worker import Worker, WorkerState

from convonet.tui.session import ASPECTS, Aspect, Session, SessionChange

if TYPE_CHECKING:
    from convonet.tui.app import ConvonetApp


class NavBar(Static):
    """The screens with their keys; the current one highlighted, each clickable."""

    def __init__(self, current: str) -> None:
        super().__init__(id="nav")
        self.current = current

    def on_mount(self) -> None:
        from convonet.tui.screens import SCREENS

        parts: list[Content] = []
        for key, (name, cls) in enumerate(SCREENS.items(), start=1):
            label = Content.from_markup(
                f"[@click=app.goto('{name}')] [b]{key}[/b] {cls.SCREEN_TITLE} [/]"
            )
            if name == self.current:
                label = label.stylize("reverse")
            parts.append(label)
        self.update(Content("").join(parts))


class ConvonetScreen(Screen[None]):
    """Base of the app's screens."""

    SCREEN_NAME: ClassVar[str] = ""
    SCREEN_TITLE: ClassVar[str] = ""

    if TYPE_CHECKING:  # the app a screen belongs to is always the convonet app
        app: ConvonetApp

    @property
    def session(self) -> Session:
        """The app's state (params, datasets, model, results), shared by every screen."""
        return self.app.session

    def tasks_running(self) -> bool:
        """True while any task of the app is working."""
        return bool(self.app.tasks.running())

    @on(events.Mount)
    def _follow_session(self) -> None:
        self.watch(self.app, "session_change", self._on_session_change, init=False)

    def _on_session_change(self, change: SessionChange) -> None:
        self.session_changed(change.what)

    @on(events.ScreenResume)
    def _catch_up(self) -> None:
        """Shown again: redraw from the session (cheap where nothing changed)."""
        self.session_changed(frozenset(ASPECTS))

    def session_changed(self, what: frozenset[Aspect]) -> None:
        """The session changed (``what``: the aspects); override to redraw."""

    def results_refused(self, what: str, folder: str | os.PathLike[str] | None = None
                        ) -> bool:
        """True, with the error dialog, when the results folder (or ``folder``) cannot be
        written: a task that records a run is refused before it starts, so nothing on the
        screen or in the app's state changes (the core checks again, for headless use)."""
        from convonet.core.storage import StorageError, check_writable

        try:
            check_writable(folder if folder is not None else self.app.results_dir)
        except StorageError as exc:
            self.app.show_error(f"{what} cannot start", exc)
            return True
        return False

    def compose(self) -> ComposeResult:
        yield Header()
        yield NavBar(self.SCREEN_NAME)
        yield from self.compose_body()
        yield Footer()

    def compose_body(self) -> ComposeResult:
        """The screen's own widgets."""
        yield from ()

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        """A worker started on this screen (``@work``) fails into the app's error dialog.

        ``run_task`` workers run on the app and reach its handler directly; this covers
        workers a screen starts itself.
        """
        if event.state == WorkerState.ERROR:
            self.app.show_worker_error(event.worker)
