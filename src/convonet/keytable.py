"""Every key of the app in one table: its id, default key, action and what it does.

The screens, dialogs and widgets take their ``BINDINGS`` from here (``bindings(owner)``),
the keys dialog and the command palette show what the app's bindings say, and ``convonet
keys`` lists this table without importing the app. Each binding has an id, so every key can
be remapped in the user's keys.toml (see ``convonet.keymap``).

An owner is the class the bindings are attached to ("app", a screen's name, a dialog's or a
widget's); ``where`` is how ``convonet keys`` names it. Textual is imported only when
``bindings`` builds the ``Binding`` objects.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from textual.binding import Binding


@dataclass(frozen=True)
class KeySpec:
    """One binding: id (what keys.toml names), default key(s), action, description."""

    id: str
    key: str
    action: str
    description: str
    tooltip: str = ""
    show: bool = True
    priority: bool = False
    system: bool = False
    #: A footer group label: bindings of one group share one footer entry.
    group: str = ""


@dataclass(frozen=True)
class Owner:
    """The bindings of one class, and how ``convonet keys`` names the place."""

    where: str
    keys: tuple[KeySpec, ...]


K = KeySpec

#: The screens in their order (their number keys), with their titles.
SCREEN_TITLES = {"params": "Params", "data": "Data", "model": "Model",
                 "training": "Training", "tuning": "Tuning", "testing": "Testing",
                 "runs": "Runs"}

_GOTO = tuple(K(f"goto.{name}", str(number), f"goto('{name}')", title, show=False,
                tooltip=f"Show the {title.lower()} screen")
              for number, (name, title) in enumerate(SCREEN_TITLES.items(), start=1))

TABLE: dict[str, Owner] = {
    "app": Owner("App", (
        *_GOTO,
        K("app.keys", "question_mark", "show_keys", "Keys"),
        K("app.keys_f1", "f1", "show_keys", "Keys", show=False),
        K("app.about", "f2", "show_about", "About", show=False),
        K("app.screenshot", "f12", "save_screenshot", "Screenshot", show=False,
          tooltip="Save an SVG screenshot of this screen in the results folder"),
        K("app.quit", "q", "quit", "Quit"),
        # Priority: Ctrl+Z means the shell in every terminal program, whatever has focus.
        # A system binding, like Textual's ctrl+c: a terminal habit, not one of our keys, so
        # the keys dialog leaves it out; `convonet keys` lists it, and it can be remapped.
        K("app.suspend", "ctrl+z", "suspend_process", "Suspend", show=False, priority=True,
          system=True, tooltip="Suspend to the shell; fg brings the app back"),
    )),
    "too_small": Owner("App", (K("app.quit", "q", "app.quit", "Quit"),)),
    "params": Owner("Params", (
        K("params.edit_data", "e", "edit_data_params", "Edit data params", group="Edit"),
        K("params.edit_hyper", "E", "edit_hyper_params", "Edit hyper params", group="Edit"),
        K("params.load_data", "l", "load_data_params", "Load data params", group="Load"),
        K("params.load_hyper", "L", "load_hyper_params", "Load hyper params", group="Load"),
        K("params.save_data", "s", "save_data_params", "Save data params", group="Save"),
        K("params.save_hyper", "S", "save_hyper_params", "Save hyper params", group="Save"),
        K("params.new_data", "n", "new_data_params", "New data params", group="New"),
        K("params.new_hyper", "N", "new_hyper_params", "New hyper params", group="New"),
    )),
    "data": Owner("Data", (
        K("data.load_train", "t", "load_training_dataset", "Load training dataset",
          group="Load"),
        K("data.load_test", "T", "load_test_dataset", "Load test dataset", group="Load"),
        K("data.cancel", "c,escape", "cancel_load", "Cancel"),
        K("data.skipped", "f", "show_skipped", "Skipped"),
        K("data.samples", "r", "other_samples", "Samples"),
        K("data.samples_set", "v", "switch_samples", "Other set", show=False),
    )),
    "skipped": Owner("SkippedDialog", (
        K("skipped.close", "escape", "close", "Close"),
        K("skipped.close_f", "f", "close", "Close", show=False),
    )),
    "model": Owner("Model", (
        K("model.initialize", "i", "initialize_network_model", "Initialize",
          tooltip="Build a new model from the hyper params for the training set"),
        K("model.load", "l", "load_network_model", "Load", tooltip="Load a .keras model file"),
        K("model.save", "s", "save_network_model", "Save",
          tooltip="Save the model to a .keras file"),
    )),
    "training": Owner("Training", (
        K("training.train", "t", "train", "Train",
          tooltip="Training only, on the whole training set"),
        K("training.validate", "v", "train_with_validation", "Train+validate",
          tooltip="Train and validate on a held-out share of the training set"),
        K("training.stop", "s", "stop_training", "Stop",
          tooltip="Stop at the next batch; the model and the history are kept"),
    )),
    "tuning": Owner("Tuning", (
        K("tuning.tune", "t", "tune", "Tune",
          tooltip="Search every combination of the hyper params' values with k folds"),
        K("tuning.stop", "s", "stop_tuning", "Stop Tuning",
          tooltip="Stop at the next batch; the finished folds are kept"),
        K("tuning.apply", "a", "apply_best", "Apply best",
          tooltip="Put the best combination's values first in the hyper params"),
        K("tuning.strategy", "g", "toggle_strategy", "Grid/halving",
          tooltip="Next search: the full grid or successive halving"),
        K("tuning.executor", "r", "toggle_executor", "In-process/Ray", show=False,
          tooltip="Next search: folds one after another in this process, or several at "
                  "once on Ray workers (every GPU of this machine, or a cluster)"),
    )),
    "sortable_table": Owner("SortableTable", (
        K("table.sort", "o", "cycle_sort", "Sort", tooltip="Sort by the next column"),
        K("table.reverse", "O", "reverse_sort", "Reverse", show=False,
          tooltip="Reverse the order of the sort column"),
    )),
    "testing": Owner("Testing", (
        K("testing.evaluate", "e", "evaluate", "Evaluate",
          tooltip="Accuracy and loss of the model on the test set"),
        K("testing.predict", "p", "predict", "Predict",
          tooltip="Confusion matrix and per-class scores on the test set"),
        K("testing.classify", "c", "classify_images", "Classify",
          tooltip="Predict the class of new images: one file or a folder"),
        K("testing.export", "x", "export_classifications", "Export CSV",
          tooltip="Write the classified images as a CSV file"),
    )),
    "runs": Owner("Runs", (
        # priority: the table's own enter (select a row) would otherwise hide "Open"
        K("runs.open", "enter", "open_run", "Open", priority=True,
          tooltip="Its charts, tables, heatmap and params again"),
        K("runs.mark", "space", "mark_run", "Mark", tooltip="Mark for comparing (two at most)"),
        K("runs.compare", "c", "compare_runs", "Compare",
          tooltip="Curves overlaid and params side by side for two runs"),
        K("runs.resume", "r", "resume_run", "Resume", tooltip="Continue an interrupted run"),
        K("runs.delete", "d", "delete_run", "Delete",
          tooltip="Delete the run's folder, after asking"),
        K("runs.refresh", "f5", "refresh_runs", "Refresh", show=False,
          tooltip="Read the runs folder again"),
    )),
    "run": Owner("Run", (
        K("run.back", "escape", "back", "Back"),
        K("run.resume", "r", "resume_run", "Resume", tooltip="Continue this interrupted run"),
        K("run.delete", "d", "delete_run", "Delete",
          tooltip="Delete this run's folder, after asking"),
    )),
    "compare": Owner("Compare runs", (
        K("compare.back", "escape", "back", "Back"),
        K("compare.only", "o", "only_differences", "Only diffs",
          tooltip="Show only the fields that differ, or every field"),
    )),
    "form": Owner("ParamsForm", (
        K("form.apply", "ctrl+s", "apply", "Apply", priority=True),
        K("form.cancel", "escape", "cancel", "Cancel"),
        # Priority: the scrolling container would otherwise take up/down for itself.
        K("form.next", "down", "next_field", "Next field", show=False, priority=True),
        K("form.previous", "up", "previous_field", "Previous field", show=False,
          priority=True),
    )),
    "picker": Owner("FilePicker", (
        K("picker.cancel", "escape", "cancel", "Cancel"),
        K("picker.parent", "ctrl+up,backspace", "parent", "Up a folder", show=False),
        K("picker.reload", "ctrl+r", "reload", "Reload", show=False),
        K("picker.browse", "down", "focus_tree", "Browse", show=False),
    )),
    "error": Owner("ErrorDialog", (
        K("error.close", "escape", "close", "Close"),
        # "c", not a ctrl key: the read-only text area leaves letters alone but binds ctrl+y.
        K("error.copy", "c", "copy_all", "Copy all"),
        K("error.details", "d", "toggle_details", "Details",
          tooltip="Show or hide the traceback of an internal error"),
    )),
    "confirm": Owner("ConfirmDialog", (
        K("confirm.yes", "y", "answer(True)", "Yes"),
        K("confirm.no", "n", "answer(False)", "No"),
        K("confirm.cancel", "escape", "answer(False)", "Cancel", show=False),
    )),
    "about": Owner("AboutDialog", (
        K("about.close", "escape", "close", "Close"),
        K("about.close_enter", "enter", "close", "Close", show=False),
    )),
    "keys": Owner("KeysDialog", (
        K("keys.close", "escape", "close", "Close"),
        K("keys.close_question", "question_mark", "close", "Close", show=False),
    )),
}


def all_specs() -> list[tuple[str, KeySpec]]:
    """(where, spec) for every id once (the first owner that binds it), sorted by id."""
    found: dict[str, tuple[str, KeySpec]] = {}
    for owner in TABLE.values():
        for spec in owner.keys:
            found.setdefault(spec.id, (owner.where, spec))
    return sorted(found.values(), key=lambda item: item[1].id)


def owner_ids() -> list[set[str]]:
    """The id set of each owner (a remapped key may clash only within one)."""
    return [{spec.id for spec in owner.keys} for owner in TABLE.values()]


def bindings(owner: str) -> list[Binding]:
    """The Textual bindings of ``owner`` (a key of ``TABLE``), ids and all."""
    from textual.binding import Binding

    groups: dict[str, Binding.Group] = {}
    made = []
    for spec in TABLE[owner].keys:
        group = None
        if spec.group:
            group = groups.setdefault(spec.group, Binding.Group(spec.group))
        made.append(Binding(spec.key, spec.action, spec.description, show=spec.show,
                            priority=spec.priority, system=spec.system, id=spec.id,
                            tooltip=spec.tooltip, group=group))
    return made
