"""A keyboard file picker: a path box with type-ahead completion over a directory tree.

Used for every load and save in the app (params JSON, `.keras` models, images to classify),
so nothing needs a mouse. ``FilePicker`` is a ``ModalScreen[Path | None]``: push it with a
callback or ``push_screen_wait`` and get the chosen path, or ``None`` when cancelled.

Keys: type a path (right arrow or Tab accepts the grey completion), Enter opens a folder
or picks a file, Down moves into the tree, Backspace in the tree goes up a folder,
Escape cancels.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path
from typing import ClassVar

from textual import on
from textual.app import ComposeResult
from textual.binding import BindingType
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.suggester import Suggester
from textual.widgets import DirectoryTree, Input, Label, Static

from convonet.keytable import bindings


class PathSuggester(Suggester):
    """Completes the last part of a typed path from what is on disk (the type-ahead)."""

    def __init__(self, suffixes: tuple[str, ...]) -> None:
        super().__init__(use_cache=False, case_sensitive=True)
        self.suffixes = suffixes

    async def get_suggestion(self, value: str) -> str | None:
        if not value:
            return None
        typed = Path(os.path.expanduser(value))
        folder, stem = (typed, "") if value.endswith(os.sep) else (typed.parent, typed.name)
        try:
            names = sorted(p.name + (os.sep if p.is_dir() else "") for p in folder.iterdir()
                           if not p.name.startswith(".") and _shown(p, self.suffixes))
        except OSError:
            return None
        for name in names:
            if name.startswith(stem) and name != stem:
                return value[: len(value) - len(stem)] + name
        return None


def _shown(path: Path, suffixes: tuple[str, ...]) -> bool:
    try:
        return path.is_dir() or not suffixes or path.suffix.lower() in suffixes
    except OSError:
        return False


class FilteredDirectoryTree(DirectoryTree):
    """A directory tree showing folders and files with the wanted suffixes only."""

    def __init__(self, path: str | Path, suffixes: tuple[str, ...], **kwargs) -> None:
        self.suffixes = suffixes
        super().__init__(path, **kwargs)

    def filter_paths(self, paths: Iterable[Path]) -> Iterable[Path]:
        return [p for p in paths if not p.name.startswith(".") and _shown(p, self.suffixes)]


class FilePicker(ModalScreen[Path | None]):
    """Pick a file (or, with ``pick_folders``, a folder) by keyboard."""

    DEFAULT_CSS = """
    FilePicker { align: center middle; }
    FilePicker > Vertical {
        width: 90%; max-width: 110; height: 85%;
        border: thick $accent; background: $surface; padding: 0 1;
    }
    FilePicker #picker-title { text-style: bold; width: 1fr; }
    FilePicker #picker-help { color: $text-muted; }
    FilePicker #picker-error { color: $error; height: auto; }
    FilePicker FilteredDirectoryTree { height: 1fr; border: round $primary-darken-2; }
    """

    BINDINGS: ClassVar[list[BindingType]] = [*bindings("picker")]

    def __init__(self, title: str, start: Path, *, suffixes: tuple[str, ...] = (),
                 save: bool = False, default_name: str = "", pick_folders: bool = False,
                 must_exist: bool = True) -> None:
        super().__init__()
        self.title_text = title
        self.suffixes = tuple(s.lower() for s in suffixes)
        self.save = save
        self.pick_folders = pick_folders
        self.must_exist = must_exist and not save
        start = Path(start).expanduser()
        if start.is_file():
            default_name = default_name or start.name
            start = start.parent
        while not start.is_dir() and start != start.parent:
            start = start.parent
        self.start = start.resolve()
        self.default_name = default_name

    def compose(self) -> ComposeResult:
        kinds = ", ".join(self.suffixes) if self.suffixes else "all files"
        verb = "Save as" if self.save else ("Choose a file or folder" if self.pick_folders
                                            else "Open")
        with Vertical():
            yield Label(self.title_text, id="picker-title")
            yield Static(f"{verb} ({kinds}). Type a path (→ accepts the completion), Enter to "
                         "choose, ↓ to browse, Esc to cancel.", id="picker-help")
            value = str(self.start / self.default_name) if self.default_name \
                else str(self.start) + os.sep
            yield Input(value=value, id="picker-path", suggester=PathSuggester(self.suffixes))
            yield Static("", id="picker-error")
            yield FilteredDirectoryTree(self.start, self.suffixes, id="picker-tree")

    def on_mount(self) -> None:
        path_box = self.query_one("#picker-path", Input)
        path_box.focus()
        path_box.cursor_position = len(path_box.value)

    # ---- choosing --------------------------------------------------------------------
    def _error(self, text: str) -> None:
        self.query_one("#picker-error", Static).update(text)

    def _finish(self, path: Path) -> None:
        path = path.expanduser()
        if path.is_dir() and not self.pick_folders:
            self._browse(path)
            return
        if self.save:
            if self.suffixes and path.suffix.lower() not in self.suffixes:
                path = path.with_name(path.name + self.suffixes[0])
            if not path.parent.is_dir():
                self._error(f"Folder '{path.parent}' does not exist: choose another folder.")
                return
        elif self.must_exist and not path.exists():
            self._error(f"'{path}' does not exist: check the name, or pick from the tree.")
            return
        elif (not path.is_dir() and self.suffixes
              and path.suffix.lower() not in self.suffixes):
            self._error(f"'{path.name}' is not a {' / '.join(self.suffixes)} file.")
            return
        self.dismiss(path.resolve())

    def _browse(self, folder: Path) -> None:
        tree = self.query_one(FilteredDirectoryTree)
        tree.path = folder.resolve()
        path_box = self.query_one("#picker-path", Input)
        name = Path(path_box.value).name if self.save else ""
        path_box.value = str(folder.resolve() / name) if name else str(folder.resolve()) + os.sep
        path_box.cursor_position = len(path_box.value)
        self._error("")

    @on(Input.Submitted, "#picker-path")
    def _path_submitted(self, event: Input.Submitted) -> None:
        text = event.value.strip()
        if not text:
            self._error("Type a path, or pick one from the tree below.")
            return
        self._finish(Path(text))

    @on(DirectoryTree.FileSelected)
    def _file_selected(self, event: DirectoryTree.FileSelected) -> None:
        event.stop()
        if self.save:
            path_box = self.query_one("#picker-path", Input)
            path_box.value = str(event.path)
            path_box.focus()
            return
        self._finish(event.path)

    @on(DirectoryTree.DirectorySelected)
    def _folder_selected(self, event: DirectoryTree.DirectorySelected) -> None:
        event.stop()
        path_box = self.query_one("#picker-path", Input)
        name = Path(path_box.value).name if self.save else ""
        path_box.value = str(event.path / name) if name else str(event.path) + os.sep
        path_box.cursor_position = len(path_box.value)

    def action_parent(self) -> None:
        tree = self.query_one(FilteredDirectoryTree)
        if self.focused is tree:
            self._browse(Path(tree.path).parent)

    def action_reload(self) -> None:
        self.query_one(FilteredDirectoryTree).reload()

    def action_cancel(self) -> None:
        self.dismiss(None)

    def action_focus_tree(self) -> None:
        """Down from the path box moves into the tree."""
        self.query_one(FilteredDirectoryTree).focus()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "focus_tree":
            # Only from the path box: in the tree, Down moves the cursor as usual.
            return isinstance(self.focused, Input)
        return True
