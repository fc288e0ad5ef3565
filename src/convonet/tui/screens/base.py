"""What every screen shares: header, a bar naming the screens, the body, the footer.

A screen subclasses ``ConvonetScreen``, sets ``SCREEN_NAME``/``SCREEN_TITLE``, and overrides
``compose_body`` with its widgets; it owns its ``BINDINGS`` and ``action_*`` methods (the
command palette runs the seed's menu items through those actions, see
``convonet.tui.commands``). Long core work goes through ``convonet.tui.tasks.run_task``.
"""

from __future__ import annotations

import os
from typing import Any, ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import VerticalScroll
from textual.content import Content
from textual.screen import Screen
from textual.widgets import Footer, Header, Static
from textual.worker import Worker, WorkerState

from convonet.core.state import Controller


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


class Planned(VerticalScroll):
    """A placeholder body: what the screen will hold and which menu items live on it."""

    def __init__(self, title: str, planned: str, screen: str) -> None:
        super().__init__(classes="planned")
        self.border_title = title
        self.planned = planned
        self.screen_name = screen

    def compose(self) -> ComposeResult:
        from convonet.tui.commands import command_state, menu_commands

        yield Static(Text(self.planned), classes="planned-text")
        items = [c for c in menu_commands() if c.screen == self.screen_name]
        if items:
            lines = Text("Menu items here (ctrl+p):", style="bold")
            for item in items:
                enabled, reason = command_state(self.app, item)
                lines.append(f"\n  {item.label}")
                if not enabled:
                    lines.append(f"  ({reason})", style="italic")
            yield Static(lines, classes="planned-items")


class ConvonetScreen(Screen[None]):
    """Base of the app's screens."""

    SCREEN_NAME: ClassVar[str] = ""
    SCREEN_TITLE: ClassVar[str] = ""
    PLANNED: ClassVar[str] = ""

    @property
    def controller(self) -> Controller:
        """The app's state (params, datasets, model, results), shared by every screen."""
        return self.app.controller  # type: ignore[attr-defined, no-any-return]

    def results_refused(self, what: str, folder: str | os.PathLike[str] | None = None
                        ) -> bool:
        """True, with the error dialog, when the results folder (or ``folder``) cannot be
        written: a task that records a run is refused before it starts, so nothing on the
        screen or in the app's state changes (the core checks again, for headless use)."""
        from convonet.core.storage import StorageError, check_writable

        target = folder if folder is not None else getattr(self.app, "results_dir", None)
        if target is None:
            return False
        try:
            check_writable(target)
        except StorageError as exc:
            show: Any = getattr(self.app, "show_error", None)
            if callable(show):
                show(f"{what} cannot start", exc)
            else:
                self.notify(str(exc), severity="error", markup=False)
            return True
        return False

    def compose(self) -> ComposeResult:
        yield Header()
        yield NavBar(self.SCREEN_NAME)
        yield from self.compose_body()
        yield Footer()

    def compose_body(self) -> ComposeResult:
        """The screen's own widgets; the default says what the screen will hold."""
        yield Planned(self.SCREEN_TITLE, self.PLANNED, self.SCREEN_NAME)

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        """A worker started on this screen (``@work``) fails into the app's error dialog.

        ``run_task`` workers run on the app and reach its handler directly; this covers
        workers a screen starts itself.
        """
        if event.state == WorkerState.ERROR:
            show: Any = getattr(self.app, "show_worker_error", None)
            if callable(show):
                show(event.worker)
