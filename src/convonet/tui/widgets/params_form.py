"""The edit form of data params and hyper params: every field, checked as it is typed.

The form is driven by the params' ``FIELDS`` table, so a new field shows up here without a
change. Each row shows the field's name and unit, an input holding the current value (a
``Select`` for single-valued fields with choices), what it accepts
(``FieldSpec.allowed()``) and its help.
A value the core would refuse is marked on its row with the core's own message
(``ParamsError.message``), and applying is refused until every row is valid.

``ParamsForm`` is a ``ModalScreen`` that returns the edited params (a copy made with
``edit()``), or ``None`` when cancelled.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from textual import on
from textual.app import ComposeResult
from textual.binding import BindingType
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.validation import ValidationResult, Validator
from textual.widgets import Input, Label, Select, Static

from convonet.core.params import FieldSpec, ParamsError
from convonet.keytable import bindings
from convonet.tui.dialogs import ConfirmDialog


def field_error(spec: FieldSpec, text: str) -> str | None:
    """The core's message for ``text`` in this field, or None when it is accepted."""
    try:
        spec.parse(text)
    except ParamsError as exc:
        return exc.message
    return None


class FieldValidator(Validator):
    """Validates an input with the field's own parser, so the form says what the core says."""

    def __init__(self, spec: FieldSpec) -> None:
        super().__init__()
        self.spec = spec

    def validate(self, value: str) -> ValidationResult:
        message = field_error(self.spec, value)
        return self.success() if message is None else self.failure(message, value)


def _hint(spec: FieldSpec) -> str:
    """What a field is for, then what it accepts (the start of it shows on one line)."""
    return f"{spec.help} · {spec.allowed()}"


class FieldRow(Vertical):
    """One field: name and unit, the value, the accepted values and help, the problem."""

    # One line of help per field while scanning; the focused field shows all of it.
    DEFAULT_CSS = """
    FieldRow { height: auto; padding: 0 1; }
    FieldRow:focus-within { background: $boost; }
    FieldRow > Horizontal { height: auto; }
    FieldRow .field-name { width: 18; padding: 0 1 0 0; text-style: bold; }
    FieldRow Input, FieldRow Select { width: 1fr; }
    FieldRow .field-hint {
        color: $text-muted; padding-left: 18; text-wrap: nowrap; text-overflow: ellipsis;
    }
    FieldRow:focus-within .field-hint { text-wrap: wrap; }
    FieldRow.-invalid .field-hint { text-wrap: nowrap; }  /* the error repeats it */
    FieldRow .field-error { color: $text-error; padding-left: 18; display: none; }
    FieldRow .field-warning { color: $text-warning; padding-left: 18; display: none; }
    FieldRow.-invalid .field-error { display: block; }
    FieldRow.-warned .field-warning { display: block; }
    FieldRow.-invalid .field-name { color: $text-error; }
    """

    def __init__(self, spec: FieldSpec, text: str, warning: str = "") -> None:
        super().__init__(id=f"row-{spec.name}")
        self.spec = spec
        self.text = text
        self.warning = warning

    def compose(self) -> ComposeResult:
        spec = self.spec
        name = f"{spec.name} ({spec.unit})" if spec.unit else spec.name
        with Horizontal():
            yield Label(name, classes="field-name", markup=False)
            if spec.choices and not spec.multi:  # a list cannot hold "sgd,adam"
                options = [(c, c) for c in spec.choices]
                value = self.text if self.text in spec.choices else spec.choices[0]
                yield Select(options, value=value, allow_blank=False, compact=True,
                             id=f"field-{spec.name}")
            else:
                yield Input(self.text, validators=[FieldValidator(spec)], compact=True,
                            id=f"field-{spec.name}")
        yield Static(_hint(spec), classes="field-hint", markup=False)
        yield Static("", classes="field-error", markup=False)
        yield Static(self.warning, classes="field-warning", markup=False)

    def on_mount(self) -> None:
        self.set_class(bool(self.warning), "-warned")
        self.check()

    @property
    def value(self) -> str:
        widget = self.query_one(f"#field-{self.spec.name}")
        if isinstance(widget, Select):
            return str(widget.value)
        assert isinstance(widget, Input)
        return widget.value

    @property
    def error(self) -> str | None:
        return field_error(self.spec, self.value)

    def check(self) -> bool:
        """Show or clear this field's error; True when the value is accepted."""
        message = self.error
        self.query_one(".field-error", Static).update(f"✗ {message}" if message else "")
        self.set_class(message is not None, "-invalid")
        return message is None

    def show_warning(self, text: str) -> None:
        """A problem that does not block applying (a folder missing on this machine)."""
        self.warning = text
        self.query_one(".field-warning", Static).update(f"⚠ {text}" if text else "")
        self.set_class(bool(text), "-warned")

    @on(Input.Changed)
    @on(Select.Changed)
    def _changed(self) -> None:
        self.check()


class ParamsForm(ModalScreen[Any]):
    """Edit every field of a params object; returns the edited copy or ``None``."""

    DEFAULT_CSS = """
    ParamsForm { align: center middle; }
    ParamsForm > Vertical {
        width: 96%; max-width: 110; height: 94%;
        border: thick $accent; background: $surface; padding: 0 1;
    }
    ParamsForm #form-help { color: $text-muted; height: auto; }
    ParamsForm #form-status { height: auto; color: $text-error; }
    ParamsForm VerticalScroll { height: 1fr; }
    """

    BINDINGS: ClassVar[list[BindingType]] = [*bindings("form")]

    def __init__(self, params: Any, *, title: str,
                 warnings: Mapping[str, str] | None = None) -> None:
        super().__init__()
        self.params = params
        self.form_title = title
        self.warnings = dict(warnings or {})

    def compose(self) -> ComposeResult:
        with Vertical() as box:
            box.border_title = self.form_title
            box.border_subtitle = "ctrl+s applies · escape cancels"
            yield Static("↑↓ or Tab move between fields · 64,80 gives several values "
                         "(training uses the first, tuning searches all)", id="form-help")
            with VerticalScroll(id="form-fields"):
                for spec in self.params.FIELDS:
                    yield FieldRow(spec, self.params.text(spec.name),
                                   self.warnings.get(spec.name, ""))
            yield Static("", id="form-status", markup=False)

    def on_mount(self) -> None:
        self.rows()[0].query_one(f"#field-{self.params.FIELDS[0].name}").focus()
        self._refresh_warnings()

    def rows(self) -> list[FieldRow]:
        return list(self.query(FieldRow))

    def row(self, name: str) -> FieldRow:
        return self.query_one(f"#row-{name}", FieldRow)

    def invalid(self) -> list[FieldRow]:
        """Rows whose value the core would refuse (their errors are shown)."""
        return [row for row in self.rows() if not row.check()]

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action in ("next_field", "previous_field"):
            # In an open Select list, up/down move through its options.
            focused = self.focused
            return not (focused is not None and isinstance(focused.parent, Select)
                        or isinstance(focused, Select) and focused.expanded)
        return True

    def action_next_field(self) -> None:
        self.focus_next()

    def action_previous_field(self) -> None:
        self.focus_previous()

    def action_apply(self) -> None:
        """Apply every field at once, or say which fields keep the form open."""
        bad = self.invalid()
        status = self.query_one("#form-status", Static)
        if bad:
            names = ", ".join(row.spec.name for row in bad)
            status.update(f"Not applied: fix {names} first.")
            bad[0].query_one(f"#field-{bad[0].spec.name}").focus()
            bad[0].scroll_visible()
            return
        changes = self.changes()
        try:
            edited = self.params.edit(**changes)
        except ParamsError as exc:  # a check across fields the rows cannot see
            status.update(exc.message if exc.field is None
                          else f"{exc.field}: {exc.message}")
            return
        self.dismiss(edited if changes else None)

    def changes(self) -> dict[str, str]:
        """The fields whose text differs from the params the form opened with."""
        return {row.spec.name: row.value for row in self.rows()
                if row.value != self.params.text(row.spec.name)}

    def action_cancel(self) -> None:
        """Leave without applying; asks first when something was typed."""
        if not self.changes():
            self.dismiss(None)
            return

        def answered(yes: bool | None) -> None:
            if yes:
                self.dismiss(None)

        self.app.push_screen(ConfirmDialog("Discard the changes made in this form?",
                                           title="Cancel editing", yes="Discard",
                                           no="Keep editing"), answered)

    def _refresh_warnings(self) -> None:
        """Folder problems of the path fields and fields that change nothing as the form
        stands (momentum with adam), updated as they are typed (not blocking)."""
        rows = self.rows()
        values = {row.spec.name: row.value for row in rows if row.error is None}
        try:
            edited = self.params.edit(**values)
        except ParamsError:
            return
        found = {**edited.notes(), **{p.field: p.message for p in edited.problems()}}
        for row in rows:
            row.show_warning(found.get(row.spec.name, "") if row.error is None else "")

    @on(Input.Submitted)
    def _next_on_enter(self, event: Input.Submitted) -> None:
        """Enter moves on, as in a paper form; ctrl+s applies."""
        event.stop()
        self.focus_next()

    @on(Input.Changed)
    @on(Select.Changed)
    def _clear_status(self) -> None:
        self.query_one("#form-status", Static).update("")
        self._refresh_warnings()
