"""The data screen's panels: one per dataset (classes, counts, warnings), and the list of
skipped files."""

from __future__ import annotations

from typing import Any, ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import BindingType
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import DataTable, Label, Static

from convonet.core.data import Dataset
from convonet.keytable import bindings
from convonet.tui.formatting import display_path

#: which -> (words, session attribute)
SETS: dict[str, tuple[str, str]] = {
    "train": ("training set", "train_set"),
    "test": ("test set", "test_set"),
}

_EIGHTHS = " ▏▎▍▌▋▊▉"


def share_bar(count: int, largest: int, width: int = 12) -> str:
    """A bar of block characters, ``width`` cells for the largest class, to eighths."""
    if largest <= 0:
        return ""
    eighths = round(count / largest * width * 8)
    full, part = divmod(eighths, 8)
    return "█" * full + (_EIGHTHS[part] if part else "")


class SetPanel(Vertical):
    """One dataset: what was read, its classes, and what to know about it."""

    DEFAULT_CSS = """
    SetPanel {
        border: round $primary 60%; border-title-color: $accent;
        padding: 0 1; height: auto; width: 1fr;
    }
    SetPanel .set-summary { height: auto; }
    SetPanel .set-warnings { height: auto; color: $text-warning; }
    SetPanel DataTable { height: auto; max-height: 24; }
    """

    def __init__(self, which: str) -> None:
        super().__init__(id=f"set-{which}")
        self.which = which
        self.border_title = SETS[which][0].capitalize()

    def compose(self) -> ComposeResult:
        yield Static("", classes="set-summary")
        table: DataTable[Any] = DataTable(cursor_type="none", zebra_stripes=True)
        table.can_focus = False  # the page scrolls; nothing to pick in the table
        table.display = False
        yield table
        yield Static("", classes="set-warnings", markup=False)

    def show_empty(self, hint: str) -> None:
        self.border_title = SETS[self.which][0].capitalize()
        self.query_one(".set-summary", Static).update(Text(hint, style="dim"))
        self.query_one(DataTable).display = False
        self.query_one(".set-warnings", Static).display = False

    def show(self, ds: Dataset, train_names: list[str] | None) -> None:
        words = SETS[self.which][0]
        self.border_title = f"{words.capitalize()} · {len(ds):,} images"
        h, w, c = ds.image_shape
        mode = "grayscale" if c == 1 else "RGB"
        summary = Text()
        summary.append(f"{display_path(ds.root)}\n", style="dim")
        summary.append(f"{h}×{w} px · {c} channel{'s' if c != 1 else ''} ({mode}) · "
                       f"{ds.num_classes} classes")
        if ds.from_cache:
            summary.append(" · from cache", style="dim")
        summary.append(" · ")
        if ds.skipped:
            summary.append(f"{len(ds.skipped)} file(s) skipped", style="bold yellow")
            summary.append(" (f lists them)")
        else:
            summary.append("no files skipped", style="dim")
        self.query_one(".set-summary", Static).update(summary)

        table = self.query_one(DataTable)
        table.clear(columns=True)
        table.add_column("#", key="index")
        table.add_column("Class", key="name")
        table.add_column("Count", key="count")
        table.add_column("Share", key="share")
        table.add_column("", key="bar")
        counts = ds.counts
        total = max(sum(counts), 1)
        largest = max(counts) if counts else 0
        for index, (name, count) in enumerate(zip(ds.class_names, counts, strict=True)):
            table.add_row(Text(str(index), justify="right"), Text(name),
                          Text(f"{count:,}", justify="right"),
                          Text(f"{count / total:.1%}", justify="right"),
                          Text(share_bar(count, largest), style="green"),
                          key=str(index))
        table.display = True

        lines: list[str] = []
        if ds.class_matching and train_names is not None:
            lines.append("⚠ Test folder names differ from the training ones; classes are "
                         "matched by sorted order (index → training name ← test folder):")
            for index, (train, test) in enumerate(zip(train_names, ds.class_names, strict=False)):
                lines.append(f"  {index} → {train}" + (f" ← {test}" if test != train else ""))
        for warning in ds.warnings:
            if ds.class_matching and "matched by sorted order" in warning:
                continue  # shown above as a readable list
            lines.append(f"⚠ {warning}")
        warnings = self.query_one(".set-warnings", Static)
        warnings.update("\n".join(lines))
        warnings.display = bool(lines)


class SkippedDialog(ModalScreen[None]):
    """Every skipped file of the loaded sets and why, for fixing the folders."""

    DEFAULT_CSS = """
    SkippedDialog { align: center middle; }
    SkippedDialog > Vertical {
        width: 95%; max-width: 130; height: 85%;
        border: thick $warning; background: $surface; padding: 0 1;
    }
    SkippedDialog DataTable { height: 1fr; }
    SkippedDialog .muted { color: $text-muted; }
    """

    BINDINGS: ClassVar[list[BindingType]] = [*bindings("skipped")]

    def __init__(self, rows: list[tuple[str, str, str]]) -> None:
        super().__init__()
        self.rows = rows

    def compose(self) -> ComposeResult:
        with Vertical() as box:
            box.border_title = f"Skipped files · {len(self.rows)}"
            box.border_subtitle = "escape closes"
            yield DataTable(cursor_type="row", zebra_stripes=True)
            yield Label("Files are relative to their set's folder. They were left out; the "
                        "rest loaded.", classes="muted")

    def on_mount(self) -> None:
        table = self.query_one(DataTable)
        table.add_columns("Set", "File", "Reason")
        for which, name, reason in self.rows:
            table.add_row(Text(which), Text(name), Text(reason))
        table.focus()

    def action_close(self) -> None:
        self.dismiss(None)
