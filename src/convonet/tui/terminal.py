"""The app's terminal habits: a too-small terminal, and Ctrl+Z to the shell.

Below 80x24 the screens cannot show their tabs, their keys and the quit key; rather than a
layout cut in pieces, the app covers it with one centred line that says so, and takes it
away (the screens as they were) when the terminal grows back.

Ctrl+Z hands the terminal back to the shell as any terminal program does; ``fg`` brings
the app back. That needs a job-control shell above the process: started straight from
``tmux new 'convonet'`` or ``ssh host convonet`` there is none, and a stopped process could
never be resumed, so the app says so and stays.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import BindingType
from textual.screen import ModalScreen
from textual.widgets import Static

from convonet.keytable import bindings

#: The smallest terminal the screens are laid out for (the snapshot tests' small size).
MIN_WIDTH, MIN_HEIGHT = 80, 24


def too_small(width: int, height: int) -> bool:
    return width < MIN_WIDTH or height < MIN_HEIGHT


def too_small_text(width: int, height: int, quit_key: str = "q") -> str:
    return (f"convonet needs at least {MIN_WIDTH}x{MIN_HEIGHT}; this terminal is "
            f"{width}x{height}. Enlarge it, or press {quit_key} to quit.")


class TooSmallScreen(ModalScreen[None]):
    """Covers the app while the terminal is smaller than the screens' layout needs.

    Modal, so the screen keys (1-7) stay off while it shows; a modal screen hides the app's
    keys, so it binds quit itself, under the app's binding id (a remapped quit key applies
    here too). It closes itself once the terminal is large enough, also when a dialog opened
    above it in the meantime (then as soon as that dialog closes).
    """

    DEFAULT_CSS = """
    TooSmallScreen { align: center middle; background: $background; }
    TooSmallScreen > Static {
        width: 100%; height: auto; content-align: center middle; text-align: center;
        padding: 0 1; color: $text-warning; text-style: bold;
    }
    """

    BINDINGS: ClassVar[list[BindingType]] = [*bindings("too_small")]

    def compose(self) -> ComposeResult:
        yield Static("", id="too-small", markup=False)  # filled when shown: on_screen_resume

    def _message(self) -> str:
        size = self.app.size
        return too_small_text(size.width, size.height, self._quit_key())

    def _quit_key(self) -> str:
        """The quit key as the user's keymap left it (``app.quit``, "q" by default)."""
        for active in self.active_bindings.values():
            if active.binding.id == "app.quit":
                return self.app.get_key_display(active.binding)
        return "q"

    def update_size(self) -> None:
        """Show the new size, or close once the terminal is large enough."""
        size = self.app.size
        if not too_small(size.width, size.height):
            if self.app.screen is self:
                self.dismiss(None)
            return  # under a dialog: closes when it is shown again (on_screen_resume)
        self.query_one("#too-small", Static).update(self._message())

    def on_screen_resume(self) -> None:
        self.update_size()


# ---- Ctrl+Z --------------------------------------------------------------------------
def _parent_of(pid: int) -> int | None:
    """The parent of ``pid`` from /proc (Linux); None where that cannot be read."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    try:
        return int(stat.rsplit(")", 1)[1].split()[1])
    except (IndexError, ValueError):
        return None


def resumable_by_shell() -> bool:
    """True when a job-control shell can bring this process back with ``fg``.

    That is, the process group is not orphaned: some ancestor in the same session sits in
    another process group (the shell that started the job). A session leader, or a group
    whose ancestors left the session, has nobody to send it SIGCONT: stopping it would
    freeze the terminal for good.
    """
    if os.name != "posix":
        return False
    try:
        sid, pgrp = os.getsid(0), os.getpgrp()
    except OSError:
        return False
    if sid == os.getpid():
        return False
    pid: int | None = os.getppid()
    for _ in range(64):  # a few wrappers at most (a launcher script, `uv run` ...)
        if pid is None:
            return True  # cannot tell: let the shell decide, as a terminal's Ctrl+Z would
        if pid <= 1:
            return False
        try:
            if os.getsid(pid) != sid:
                return False
            if os.getpgid(pid) != pgrp:
                return True
        except OSError:
            return False
        pid = _parent_of(pid)
    return False
