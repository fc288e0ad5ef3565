"""Modal dialogs shared by every screen: errors, confirmations, About and the keys help.

Each is a typed ``ModalScreen`` closed from the keyboard (escape), so nothing needs a mouse.
``ConfirmDialog`` returns ``bool`` through ``push_screen(..., callback)`` or
``await push_screen_wait(...)`` inside a worker.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import ClassVar

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import BindingType
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Button, DataTable, Label, Static, TextArea

from convonet.keytable import bindings


class ErrorDialog(ModalScreen[None]):
    """A failure, readable: what is wrong, what to do, and nothing the user cannot act on.

    The user's own mistakes (a missing folder, a bad params value) show their message
    only. An internal error (a fault in convonet) says so and where its traceback was
    logged; the traceback itself stays hidden until the details key, so it never buries
    the message.
    """

    DEFAULT_CSS = """
    ErrorDialog { align: center middle; }
    ErrorDialog > Vertical {
        width: 90%; max-width: 110; height: auto; max-height: 80%;
        border: thick $error; background: $surface; padding: 0 1;
    }
    ErrorDialog.-details > Vertical { height: 80%; max-height: 36; }
    ErrorDialog #message { height: auto; max-height: 16; }
    ErrorDialog.-details #message { max-height: 10; }
    ErrorDialog #summary { color: $text-error; text-style: bold; }
    ErrorDialog #advice, ErrorDialog #more, ErrorDialog #internal { margin-top: 1; }
    ErrorDialog #internal { color: $text-muted; }
    ErrorDialog #details { height: 1fr; margin-top: 1; display: none; }
    ErrorDialog.-details #details { display: block; }
    ErrorDialog .buttons { height: auto; align-horizontal: right; margin: 1 0 0 0; }
    ErrorDialog Button { margin-left: 2; }
    """

    BINDINGS: ClassVar[list[BindingType]] = [*bindings("error")]

    def __init__(self, title: str, summary: str, *, advice: str = "", problem: str = "",
                 more: str = "", traceback: str = "", log_path: str = "") -> None:
        """``summary`` is the whole one-line message; ``problem`` (what is wrong, the
        summary when not given) and ``advice`` (what to do) are what the dialog shows.
        A ``traceback`` marks an internal error."""
        super().__init__()
        self.error_title = title
        self.summary = summary
        self.problem = problem or summary
        self.advice = advice
        self.more = more
        self.details = traceback
        self.log_path = log_path

    @property
    def internal(self) -> bool:
        return bool(self.details)

    def compose(self) -> ComposeResult:
        with Vertical() as box:
            box.border_title = self.error_title
            keys = "escape closes · c copies all"
            box.border_subtitle = f"d details · {keys}" if self.internal else keys
            with VerticalScroll(id="message"):
                yield Static(self.problem, id="summary", markup=False)
                if self.advice:
                    yield Static(Text.assemble(("What to do: ", "bold"), self.advice),
                                 id="advice")
                if self.more:
                    yield Static(self.more, id="more", markup=False)
                if self.internal:
                    yield Static(self._internal_note(), id="internal", markup=False)
            if self.internal:
                yield TextArea(self.details, read_only=True, soft_wrap=True, id="details")
            with Horizontal(classes="buttons"):
                if self.internal:
                    yield Button("Details", id="toggle-details", compact=True)
                yield Button("Copy all", id="copy", compact=True)
                yield Button("Close", id="close", variant="error", compact=True)

    def _internal_note(self) -> str:
        where = f" and written to {self.log_path}" if self.log_path else " and written to the log"
        return ("This is a fault in convonet, not in your data or params; the app keeps "
                "running with what it had. Its details (a Python traceback) are behind d"
                f"{where}: please include them when you report it.")

    def on_mount(self) -> None:
        self.query_one("#close", Button).focus()

    @property
    def details_shown(self) -> bool:
        return self.has_class("-details")

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """The details key exists only for internal errors (nothing to reveal otherwise)."""
        if action == "toggle_details":
            return self.internal
        return True

    def action_toggle_details(self) -> None:
        if not self.internal:
            return
        self.toggle_class("-details")
        button = self.query_one("#toggle-details", Button)
        if self.details_shown:
            button.label = "Hide details"
            details = self.query_one(TextArea)
            details.focus()
            # The last lines say where it broke; the first are the worker's own frames.
            details.move_cursor(details.document.end)
            details.scroll_end(animate=False)
        else:
            button.label = "Details"
            self.query_one("#close", Button).focus()

    def action_close(self) -> None:
        self.dismiss(None)

    def copy_text(self) -> str:
        """Everything the dialog knows, the traceback included: for a bug report."""
        parts = [self.error_title, self.summary]
        if self.advice and self.advice not in self.summary:
            parts.append(f"What to do: {self.advice}")
        if self.more:
            parts.append(self.more)
        if self.details:
            parts.append(self.details)
        return "\n\n".join(parts)

    def action_copy_all(self) -> None:
        """Copy over SSH too: Textual uses the terminal's OSC 52 clipboard."""
        self.app.copy_to_clipboard(self.copy_text())
        self.notify("Error text copied to the clipboard")

    @on(Button.Pressed, "#toggle-details")
    def _details_pressed(self) -> None:
        self.action_toggle_details()

    @on(Button.Pressed, "#copy")
    def _copy_pressed(self) -> None:
        self.action_copy_all()

    @on(Button.Pressed, "#close")
    def _close_pressed(self) -> None:
        self.action_close()


class ConfirmDialog(ModalScreen[bool]):
    """A yes/no question; ``True`` when confirmed. Escape or ``n`` answers no."""

    DEFAULT_CSS = """
    ConfirmDialog { align: center middle; }
    ConfirmDialog > Vertical {
        width: 60; max-width: 95%; height: auto;
        border: thick $warning; background: $surface; padding: 1 2;
    }
    ConfirmDialog #question { width: 1fr; margin-bottom: 1; }
    ConfirmDialog .buttons { height: auto; align-horizontal: right; }
    ConfirmDialog Button { margin-left: 2; }
    """

    BINDINGS: ClassVar[list[BindingType]] = [*bindings("confirm")]

    def __init__(self, question: str, *, title: str = "Please confirm",
                 yes: str = "Yes", no: str = "No") -> None:
        super().__init__()
        self.question = question
        self.dialog_title = title
        self.yes_label = yes
        self.no_label = no

    def compose(self) -> ComposeResult:
        with Vertical() as box:
            box.border_title = self.dialog_title
            yield Label(self.question, id="question", markup=False)
            with Horizontal(classes="buttons"):
                yield Button(f"{self.yes_label} (y)", id="yes", variant="warning", compact=True)
                yield Button(f"{self.no_label} (n)", id="no", variant="primary", compact=True)

    def on_mount(self) -> None:
        self.query_one("#no", Button).focus()

    def action_answer(self, answer: bool) -> None:
        self.dismiss(answer)

    @on(Button.Pressed)
    def _pressed(self, event: Button.Pressed) -> None:
        self.dismiss(event.button.id == "yes")


class AboutDialog(ModalScreen[None]):
    """Name, version, Keras backend and what the app is for."""

    DEFAULT_CSS = """
    AboutDialog { align: center middle; }
    AboutDialog > Vertical {
        width: 64; max-width: 95%; height: auto;
        border: thick $primary; background: $surface; padding: 1 2;
    }
    AboutDialog #name { text-style: bold; color: $accent; }
    AboutDialog .muted { color: $text-muted; margin-top: 1; }
    """

    BINDINGS: ClassVar[list[BindingType]] = [*bindings("about")]

    def __init__(self, version: str, backend: str, results_dir: str) -> None:
        super().__init__()
        self.version = version
        self.backend = backend
        self.results_dir = results_dir

    def compose(self) -> ComposeResult:
        with Vertical() as box:
            box.border_title = "About"
            yield Label(f"convonet {self.version}", id="name", markup=False)
            yield Static("Train, tune and test Keras image classifiers from the terminal.",
                         markup=False)
            yield Static(f"Keras backend: {self.backend}", markup=False)
            yield Static(f"Results folder: {self.results_dir}", markup=False)
            yield Label("escape closes", classes="muted")

    def action_close(self) -> None:
        self.dismiss(None)


@dataclass(frozen=True)
class KeyRow:
    """One line of the keys help: where the key works, the key, and what it does."""

    where: str
    key: str
    description: str


class KeysDialog(ModalScreen[None]):
    """Every key of the app and of the screen it was opened from."""

    DEFAULT_CSS = """
    KeysDialog { align: center middle; }
    KeysDialog > Vertical {
        width: 72; max-width: 95%; height: 80%; max-height: 30;
        border: thick $primary; background: $surface; padding: 0 1;
    }
    KeysDialog DataTable { height: 1fr; }
    KeysDialog .muted { color: $text-muted; }
    """

    BINDINGS: ClassVar[list[BindingType]] = [*bindings("keys")]

    def __init__(self, rows: Iterable[KeyRow], screen_title: str) -> None:
        super().__init__()
        self.rows = list(rows)
        self.screen_title = screen_title

    def compose(self) -> ComposeResult:
        with Vertical() as box:
            box.border_title = f"Keys · {self.screen_title}"
            box.border_subtitle = "escape closes"
            yield DataTable(cursor_type="row", zebra_stripes=True)
            yield Label("ctrl+p opens the command palette: every menu item by name",
                        classes="muted")

    def on_mount(self) -> None:
        table = self.query_one(DataTable)
        table.add_columns("Where", "Key", "Does")
        for row in self.rows:
            table.add_row(Text(row.where), Text(row.key), Text(row.description))
        table.focus()

    def action_close(self) -> None:
        self.dismiss(None)
