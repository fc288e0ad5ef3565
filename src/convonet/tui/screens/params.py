"""The params screen: data params and hyper params (the seed's App and Tasks menu items).

Both params are shown side by side, every field with its value. Lower-case keys act on the
data params and upper-case keys on the hyper params: n/N new, l/L load, e/E edit, s/S save.
Loading and saving go through the keyboard ``FilePicker``; editing through ``ParamsForm``,
which checks each value with the core's own parser.

Data params are loaded leniently (``check=False``): a file whose dataset folders are not on
this machine still opens, and its missing folders are marked on their fields so they can be
fixed in the form. Edits not yet saved are kept in ``session.unsaved_params``; the app's
quit question reads them through ``unsaved_params_question``.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import BindingType
from textual.containers import Horizontal, VerticalScroll
from textual.widgets import Static

from convonet.core.model_choices import momentum_unused
from convonet.core.params import DataParams, HyperParams, ParamsError
from convonet.keytable import bindings
from convonet.tui.dialogs import ConfirmDialog
from convonet.tui.formatting import display_path
from convonet.tui.screens.base import ConvonetScreen
from convonet.tui.session import Aspect, ParamsKind, Session
from convonet.tui.widgets.file_picker import FilePicker
from convonet.tui.widgets.params_form import ParamsForm

#: kind -> (session attribute, class, words for titles, default file name)
KINDS: dict[ParamsKind, tuple[str, type[Any], str, str]] = {
    "data": ("data_params", DataParams, "Data params", "data_params.json"),
    "hyper": ("hyper_params", HyperParams, "Hyper params", "hyper_params.json"),
}

PANEL_HELP = (
    "Lower-case keys act on the data params, upper-case keys on the hyper params. "
    "Fields with ×2 hold several values: training uses the first, tuning searches them all. "
    "Paths are read relative to the params file's folder."
)

#: The sample params ship here; pickers start here when params have no file yet.
SAMPLES_DIR = Path("app_input")


def unsaved_params_question(session: Session) -> str | None:
    """The quit question when params have unsaved edits, else None."""
    kinds = session.unsaved_params
    if not kinds:
        return None
    names = " and ".join(KINDS[k][2].lower() for k in ("data", "hyper") if k in kinds)
    return f"The {names} have unsaved changes. Quit without saving?"


def short_notes(params: Any) -> dict[str, str]:
    """Field -> a few dim words beside its value when it changes nothing (momentum with
    adam); the edit form says why in full."""
    if not isinstance(params, HyperParams):
        return {}
    unused = momentum_unused(params.optimizer)
    return {"momentum": f"unused with {unused}"} if unused else {}


class ParamsPanel(VerticalScroll):
    """One params object: its file, then every field and value, problems under fields."""

    DEFAULT_CSS = """
    ParamsPanel {
        border: round $primary 60%; border-title-color: $accent;
        border-subtitle-color: $text-muted;
        padding: 0 1; height: 1fr; width: 1fr;
        scrollbar-size-vertical: 1;  /* a long hyper params file name keeps its line */
    }
    ParamsPanel:focus { border: round $accent; }
    ParamsPanel#panel-hyper { width: 38; }
    ParamsPanel.-dirty { border-title-color: $warning; }
    ParamsPanel .params-file { color: $text-muted; }
    ParamsPanel .params-help { color: $text-muted; margin-top: 1; }
    """

    def __init__(self, kind: ParamsKind, keys: str) -> None:
        super().__init__(id=f"panel-{kind}")
        self.kind = kind
        self.border_subtitle = keys
        #: The fields as plain text, one per line (what the table shows, for tests and logs).
        self.plain = ""

    def compose(self) -> ComposeResult:
        yield Static("", classes="params-file", markup=False)
        yield Static("", classes="params-fields")
        if self.kind == "data":
            yield Static(PANEL_HELP, classes="params-help", markup=False)

    def show(self, params: Any, *, dirty: bool, problems: dict[str, str]) -> None:
        """Draw ``params``; ``problems`` are shown in red under their fields."""
        title = KINDS[self.kind][2]
        state = " · modified" if dirty else ""
        if params.path is None:
            state = " · new, not saved" if dirty else " · defaults"
        self.border_title = title + state
        self.set_class(dirty, "-dirty")
        where = (display_path(params.path) if params.path is not None
                 else "not saved to a file yet")
        self.query_one(".params-file", Static).update(where)
        plain: list[str] = []
        table = Table.grid(padding=(0, 1))
        table.add_column(style="bold", no_wrap=True)
        table.add_column(overflow="fold")
        notes = short_notes(params)
        for spec in params.FIELDS:
            text = params.text(spec.name)
            value = Text(text if text else "(empty)", style="" if text else "dim")
            if spec.multi and "," in text:
                value.append(f"  ×{text.count(',') + 1}", style="dim")
            if spec.unit:
                value.append(f" {spec.unit}", style="dim")
            if spec.name in notes:
                value.append(f"  {notes[spec.name]}", style="dim")
            table.add_row(spec.name, value)
            plain.append(f"{spec.name} {value.plain}")
            if spec.name in problems:
                table.add_row("", Text(f"⚠ {problems[spec.name]}", style="red"))
                plain.append(f"  ⚠ {problems[spec.name]}")
        self.query_one(".params-fields", Static).update(table)
        self.plain = "\n".join(plain)


class ParamsScreen(ConvonetScreen):
    """Shows and edits the data params and hyper params the session holds."""

    SCREEN_NAME = "params"
    SCREEN_TITLE = "Params"

    DEFAULT_CSS = """
    ParamsScreen #params-panels { height: 1fr; margin: 0 0; }
    """

    # Footer groups (in the table): "e E Edit" = e edits the data params, E the hyper params.
    BINDINGS: ClassVar[list[BindingType]] = [*bindings("params")]

    def compose_body(self) -> ComposeResult:
        with Horizontal(id="params-panels"):
            yield ParamsPanel("data", "n new · l load · e edit · s save")
            yield ParamsPanel("hyper", "N new · L load · E edit · S save")

    def on_mount(self) -> None:
        self.refresh_panels()

    def session_changed(self, what: frozenset[Aspect]) -> None:
        """Another screen (tuning's apply-best) may have changed the params."""
        if "params" in what:
            self.refresh_panels()

    # ---- state -----------------------------------------------------------------------
    def params(self, kind: ParamsKind) -> DataParams | HyperParams:
        return self.session.data_params if kind == "data" else self.session.hyper_params

    def problems(self, kind: ParamsKind) -> dict[str, str]:
        """Field -> message for what a strict load would refuse (missing folders)."""
        return {p.field or "": p.message for p in self.params(kind).problems()}

    def _set(self, kind: ParamsKind, params: Any, *, dirty: bool) -> None:
        if kind == "data":
            self.session.data_params = params
        else:
            self.session.hyper_params = params
        self.session.mark_params(kind, dirty)
        self.refresh_panels()
        self.app.session_changed("params")

    def refresh_panels(self) -> None:
        dirty = self.session.unsaved_params
        for kind in KINDS:
            self.query_one(f"#panel-{kind}", ParamsPanel).show(
                self.params(kind), dirty=kind in dirty, problems=self.problems(kind))
        self.refresh_bindings()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """Saving needs something to save: params from a file, or new or edited ones."""
        for kind in KINDS:
            if action == f"save_{kind}_params":
                params = self.params(kind)
                if params.path is None and kind not in self.session.unsaved_params:
                    return None
        return True

    def _start_folder(self, kind: ParamsKind) -> Path:
        path = self.params(kind).path
        if path is not None and path.parent.is_dir():
            return path.parent
        return SAMPLES_DIR if SAMPLES_DIR.is_dir() else Path.cwd()

    def _unless_dirty(self, kind: ParamsKind, verb: str, then: Callable[[], None]) -> None:
        """Run ``then``, asking first when it would drop unsaved edits."""
        if kind not in self.session.unsaved_params:
            then()
            return
        title = KINDS[kind][2]

        def answered(yes: bool | None) -> None:
            if yes:
                then()

        self.app.push_screen(ConfirmDialog(
            f"The {title.lower()} have unsaved changes. {verb} anyway and lose them?",
            title=f"{verb} {title.lower()}", yes=verb, no="Keep them"), answered)

    # ---- new ---------------------------------------------------------------------------
    def _new(self, kind: ParamsKind) -> None:
        def make() -> None:
            self._set(kind, KINDS[kind][1].new(), dirty=True)
            self.notify(f"New {KINDS[kind][2].lower()} from the defaults (not saved yet)")

        self._unless_dirty(kind, "New", make)

    def action_new_data_params(self) -> None:
        self._new("data")

    def action_new_hyper_params(self) -> None:
        self._new("hyper")

    # ---- load --------------------------------------------------------------------------
    def _load(self, kind: ParamsKind) -> None:
        title = KINDS[kind][2]

        def pick() -> None:
            self.app.push_screen(
                FilePicker(f"Load {title.lower()}", self._start_folder(kind),
                           suffixes=(".json",)),
                lambda path: self._read(kind, path))

        self._unless_dirty(kind, "Load", pick)

    def _read(self, kind: ParamsKind, path: Path | None) -> None:
        if path is None:
            return
        _, cls, title, _ = KINDS[kind]
        try:
            params = cls.load(path, check=False) if cls is DataParams else cls.load(path)
        except ParamsError as exc:
            self.app.show_error(f"Loading {title.lower()} failed", exc)
            return
        self._set(kind, params, dirty=False)
        problems = params.problems()
        if problems:
            fields = ", ".join(p.field or "?" for p in problems)
            self.notify(f"Loaded {path.name}, but {fields} name a folder not found here: "
                        f"fix with {'e' if kind == 'data' else 'E'} (edit).",
                        severity="warning", timeout=8)
        else:
            self.notify(f"Loaded {path.name}")

    def action_load_data_params(self) -> None:
        self._load("data")

    def action_load_hyper_params(self) -> None:
        self._load("hyper")

    # ---- edit --------------------------------------------------------------------------
    def _edit(self, kind: ParamsKind) -> None:
        params = self.params(kind)
        title = KINDS[kind][2]
        name = params.path.name if params.path is not None else "new"

        def edited(result: Any) -> None:
            if result is not None:
                self._set(kind, result, dirty=True)
                self.notify(f"{title} changed (not saved yet)")

        self.app.push_screen(ParamsForm(params, title=f"Edit {title.lower()} · {name}",
                                        warnings=self.problems(kind)), edited)

    def action_edit_data_params(self) -> None:
        self._edit("data")

    def action_edit_hyper_params(self) -> None:
        self._edit("hyper")

    # ---- save --------------------------------------------------------------------------
    def _save(self, kind: ParamsKind) -> None:
        params = self.params(kind)
        title = KINDS[kind][2]
        default = params.path.name if params.path is not None else KINDS[kind][3]
        self.app.push_screen(
            FilePicker(f"Save {title.lower()}", self._start_folder(kind), suffixes=(".json",),
                       save=True, default_name=default),
            lambda path: self._confirm_write(kind, path))

    def _confirm_write(self, kind: ParamsKind, path: Path | None) -> None:
        if path is None:
            return
        current = self.params(kind).path
        same = current is not None and current.resolve() == path.resolve()
        if path.exists() and not same:
            self.app.push_screen(
                ConfirmDialog(f"'{display_path(path)}' exists. Replace it?",
                              title="Save", yes="Replace", no="Cancel"),
                lambda yes: self._write(kind, path) if yes else None)
            return
        self._write(kind, path)

    def _write(self, kind: ParamsKind, path: Path) -> None:
        params = self.params(kind)
        title = KINDS[kind][2]
        try:
            params.save(path)
        except (ParamsError, OSError) as exc:
            self.app.show_error(f"Saving {title.lower()} failed", exc)
            return
        self._set(kind, params, dirty=False)
        self.notify(f"{title} saved to {display_path(path)}")

    def action_save_data_params(self) -> None:
        self._save("data")

    def action_save_hyper_params(self) -> None:
        self._save("hyper")
