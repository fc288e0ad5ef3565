"""The model screen: initialize, load, save and summarise the network (the seed's NetModel).

Keys: ``i`` Initialize New Network Model, ``l`` Load Network Model, ``s`` Save Network Model.
Building, loading and saving run in a task worker (Keras can take seconds the first time), and
each is greyed out with its reason while it cannot run: no training set to size the model
from, no model to save, or another task (training, tuning) using the model.

The model lives in ``session.model`` (a ``keras.Model``), the class names it predicts in
``session.class_names`` and the hyper params it was built from in ``session.model_config``
(``None`` for a loaded file), so other screens can name classes and say what the model is.
When the hyper params change a field that needs a new model (the core's
``ARCHITECTURE_FIELDS``), the screen says so and ``i`` rebuilds. Keras is imported only
when a model is built or loaded, so opening the app stays quick.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import BindingType
from textual.containers import Vertical
from textual.widgets import DataTable, Static

from convonet.core.events import CancelToken, Reporter
from convonet.keytable import bindings
from convonet.tui.dialogs import ConfirmDialog
from convonet.tui.formatting import right
from convonet.tui.model_text import (
    class_names_text,
    config_text,
    model_origin,
    model_summary_of,
    stale_note,
)
from convonet.tui.screens.base import ConvonetScreen
from convonet.tui.tasks import TaskEnded, TaskHandle, run_task
from convonet.tui.widgets.file_picker import FilePicker

if TYPE_CHECKING:
    from convonet.tui.session import Aspect


# ---- work done in the task worker (no widgets here) ----------------------------------
def build_network(hyper_params: Any, train_set: Any, *, report: Reporter,
                  cancel: CancelToken) -> tuple[Any, list[str], dict[str, Any]]:
    """Build the seed's CNN for the training set: (keras model, class names, config)."""
    from convonet.tasks import execute
    from convonet.tasks.build import BuildOutcome, BuildSpec

    spec = BuildSpec(hyper_params, train_set.image_shape, tuple(train_set.class_names))
    outcome: BuildOutcome = execute(spec, report, cancel)
    return outcome.model, outcome.class_names, outcome.config


def load_network(path: Path, train_set: Any, test_set: Any, *, report: Reporter,
                 cancel: CancelToken) -> tuple[Any, list[str] | None]:
    """Load a ``.keras`` file and check it fits the loaded data before it replaces anything."""
    from convonet.core.model import ModelError, check_fits, load_model, read_class_names

    model = load_model(path)
    for which, dataset in (("training set", train_set), ("test set", test_set)):
        if dataset is None:
            continue
        try:
            check_fits(model, dataset.image_shape, dataset.num_classes)
        except ModelError as exc:
            raise ModelError(f"{path}: does not fit the loaded {which} ({dataset.num_classes} "
                             f"classes of {_shape(dataset.image_shape)} images): {exc}") \
                from None
    return model, read_class_names(path)


def save_network(model: Any, path: Path, class_names: list[str] | None, *,
                 report: Reporter, cancel: CancelToken) -> Path:
    """Save atomically, with the class names beside the model."""
    from convonet.core.model import save_model

    return save_model(model, path, class_names=class_names)


# ---- what other screens show about the model ----------------------------------------
def _shape(shape: Any) -> str:
    return "x".join(str(d) for d in shape)


class ModelScreen(ConvonetScreen):
    """The network model: its summary table and where it came from."""

    SCREEN_NAME = "model"
    SCREEN_TITLE = "Model"

    DEFAULT_CSS = """
    ModelScreen #model-body { padding: 0 1; height: 1fr; }
    ModelScreen #model-status { height: auto; color: $text; text-style: bold; }
    ModelScreen #model-info { height: auto; color: $text-muted; }
    ModelScreen #model-reason { height: auto; color: $warning; }
    ModelScreen #model-empty { height: auto; margin-top: 1; }
    ModelScreen #model-table { height: auto; max-height: 1fr; margin-top: 1; }
    ModelScreen #model-totals { height: auto; margin-top: 1; }
    ModelScreen #model-classes { height: auto; color: $text-muted; }
    """

    BINDINGS: ClassVar[list[BindingType]] = [*bindings("model")]

    def __init__(self) -> None:
        super().__init__()
        self._job: TaskHandle | None = None
        self._busy = ""  # what the running model task is doing, for the status line
        self._shown: tuple[Any, ...] | None = None
        self._loading: Path | None = None  # the file the running load task reads

    def compose_body(self) -> ComposeResult:
        with Vertical(id="model-body"):
            yield Static("", id="model-status", markup=False)
            yield Static("", id="model-info", markup=False)
            yield Static("", id="model-reason", markup=False)
            yield Static("", id="model-empty", markup=False)
            table: DataTable[Any] = DataTable(id="model-table", cursor_type="row",
                                              zebra_stripes=True)
            yield table
            yield Static("", id="model-totals", markup=False)
            yield Static("", id="model-classes", markup=False)

    def on_mount(self) -> None:
        table = self.query_one("#model-table", DataTable)
        table.add_column("Layer", key="layer")
        table.add_column("Type", key="type")
        table.add_column("Output shape", key="shape")
        table.add_column("Params", key="params")
        self.refresh_view(force=True)

    def session_changed(self, what: frozenset[Aspect]) -> None:
        """Data, params, the model or a task changed (maybe on another screen)."""
        self.refresh_view()

    # ---- state ---------------------------------------------------------------------
    def _task_running(self) -> bool:
        return self.tasks_running()

    def blocked_reason(self, action: str) -> str | None:
        """Why ``action`` cannot run now, or None when it can."""
        if self._task_running():
            return "wait: a task is running" if not self._busy else f"wait: {self._busy}"
        if action == "initialize_network_model" and self.session.train_set is None:
            return ("no training set: load it on the Data screen (2) first; the model "
                    "takes its image size and classes from it")
        if action == "save_network_model" and self.session.model is None:
            return "no model to save: initialize or load one first"
        return None

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action in ("initialize_network_model", "load_network_model",
                      "save_network_model"):
            return None if self.blocked_reason(action) else True
        return True

    # ---- drawing ---------------------------------------------------------------------
    def refresh_view(self, force: bool = False) -> None:
        """Redraw when the model, data or running task changed (cheap when nothing did)."""
        c = self.session
        key = (id(c.model), c.model_path, c.model_dirty, id(c.train_set), self._busy,
               self._task_running(), id(c.class_names), id(c.hyper_params))
        if key == self._shown and not force:
            return
        self._shown = key
        self.refresh_bindings()
        self._draw()

    def _draw(self) -> None:
        c = self.session
        status = self.query_one("#model-status", Static)
        info = self.query_one("#model-info", Static)
        reason = self.query_one("#model-reason", Static)
        empty = self.query_one("#model-empty", Static)
        table = self.query_one("#model-table", DataTable)
        totals = self.query_one("#model-totals", Static)
        classes = self.query_one("#model-classes", Static)

        reasons = [r for r in (self.blocked_reason("initialize_network_model"),) if r]
        reason.update("Initialize: " + reasons[0] if reasons and not self._busy else "")
        reason.display = bool(reasons) and not self._busy

        summary = model_summary_of(c)
        has_model = summary is not None
        for widget in (info, table, totals, classes):
            widget.display = has_model
        empty.display = not has_model
        if self._busy:
            status.update(f"{self._busy}…")
        elif summary is None:
            status.update("No network model yet")
        else:
            status.update(model_origin(c))
        if summary is None:
            empty.update(Text.assemble(
                ("i", "bold"), "  Initialize New Network Model: the seed's CNN from the hyper "
                "params, sized for the loaded training set\n",
                ("l", "bold"), "  Load Network Model: a .keras file "
                f"(from {self._results_dir()})\n",
                ("s", "bold"), "  Save Network Model: once there is a model"))
            table.clear()
            return

        config = c.model_config
        info.update(f"Input {_shape(summary.input_shape)} → {summary.num_classes} classes · "
                    f"{config_text(config)}" + stale_note(config, c.hyper_params))
        table.clear()
        width = max((len(f"{row.params:,}") for row in summary.rows), default=1)
        for row in summary.rows:
            table.add_row(Text(row.name), Text(row.type), Text(row.output_shape),
                          Text(right(f"{row.params:,}", width)))
        lines = summary.totals()
        label_width = max(len(label) for label, _, _ in lines) + 1
        count_width = max(len(f"{count:,}") for _, count, _ in lines)
        totals.update(Text("\n".join(f"{label + ':':<{label_width}} {count:>{count_width},}"
                                     f" ({size})" for label, count, size in lines)))
        names = c.class_names
        classes.update("Classes: " + class_names_text(names, summary.num_classes))

    def _results_dir(self) -> Path:
        return self.app.results_dir

    # ---- actions ---------------------------------------------------------------------
    def _confirm_replace(self, then: Any, what: str) -> None:
        """Ask before a trained, unsaved model is replaced; otherwise go straight on."""
        if self.session.model is not None and self.session.model_dirty:
            question = (f"The current model was trained and is not saved. {what} "
                        "anyway? (Answer n, then press s to save it first.)")

            def answered(yes: bool | None) -> None:
                if yes:
                    then()

            self.app.push_screen(ConfirmDialog(question, title="Unsaved model",
                                               yes="Replace", no="Keep"), answered)
            return
        then()

    def action_initialize_network_model(self) -> None:
        """Build a fresh model from the hyper params for the loaded training set."""
        if self.blocked_reason("initialize_network_model"):
            return
        self._confirm_replace(self._start_build, "Replace it with a new, untrained model")

    def _start_build(self) -> None:
        c = self.session
        self._start("Building the model from the hyper params", build_network,
                    c.hyper_params, c.train_set, name="build_model",
                    description="Initializing the network model")

    def action_load_network_model(self) -> None:
        """Pick a .keras file and load it (checked against the loaded data)."""
        if self.blocked_reason("load_network_model"):
            return
        self._confirm_replace(self._pick_to_load, "Load another model")

    def _pick_to_load(self) -> None:
        folder = self._ensure_results_dir()
        if folder is None:
            return
        start = self.session.model_path or folder

        def chosen(path: Path | None) -> None:
            if path is not None:
                c = self.session
                self._loading = path
                self._start(f"Loading {path.name}", load_network, path, c.train_set,
                            c.test_set, name="load_model",
                            description="Loading the network model")

        self.app.push_screen(FilePicker("Load Network Model", Path(start),
                                        suffixes=(".keras",)), chosen)

    def action_save_network_model(self) -> None:
        """Pick where to save (default: the results folder) and save atomically."""
        if self.blocked_reason("save_network_model"):
            return
        folder = self._ensure_results_dir()
        if folder is None:
            return
        current = self.session.model_path
        proposed = Path(current) if current is not None else self.default_save_path(folder)
        start, name = proposed.parent, proposed.name

        def chosen(path: Path | None) -> None:
            if path is None:
                return
            if path.exists() and path != current:
                def answered(yes: bool | None) -> None:
                    if yes:
                        self._start_save(path)

                self.app.push_screen(ConfirmDialog(f"{path} exists. Replace it?",
                                                   title="Save Network Model",
                                                   yes="Replace", no="Cancel"), answered)
                return
            self._start_save(path)

        self.app.push_screen(FilePicker("Save Network Model", start, suffixes=(".keras",),
                                        save=True, default_name=name), chosen)

    def default_save_path(self, folder: Path) -> Path:
        """The file ``convonet train`` saves for these data params (so ``convonet evaluate``
        finds it): the training run's recorded target, else the core's default name."""
        from convonet.core.model_files import default_model_path

        recorded = self.session.save_to
        if recorded is not None and str(recorded):
            return Path(recorded)
        return default_model_path(folder, self.session.data_params).resolve()

    def _start_save(self, path: Path) -> None:
        c = self.session
        self._start(f"Saving to {path.name}", save_network, c.model, path,
                    c.class_names, name="save_model",
                    description="Saving the network model")

    def _ensure_results_dir(self) -> Path | None:
        folder = self._results_dir()
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            self.app.show_error("The results folder cannot be created", exc)
            return None
        return folder

    def _start(self, busy: str, work: Any, *args: Any, name: str, description: str) -> None:
        self._busy = busy
        self._job = run_task(self, work, *args, name=name, description=description)
        self.refresh_view(force=True)

    # ---- results ---------------------------------------------------------------------
    @on(TaskEnded)
    def _task_ended(self, message: TaskEnded) -> None:
        """Apply what the worker produced; a failure is already in the error dialog."""
        message.stop()
        if self._job is None or message.task != self._job.name:
            return  # an end already handled
        self._busy = ""
        self._job = None
        c = self.session
        if message.ok:
            if message.task == "build_model":
                model, names, config = message.result
                c.set_model(model, names, config, path=None)
                self.notify(f"New model: {model.count_params():,} params, untrained")
            elif message.task == "load_model":
                model, names = message.result
                path = self._loading
                c.set_model(model, names, None, path=path)
                self._warn_names(names)
                self.notify(f"Loaded {path}")
            elif message.task == "save_model":
                c.model_path = Path(message.result)
                c.model_dirty = False
                self.notify(f"Saved to {message.result}")
            self.app.session_changed("model", "history")
        self.refresh_view(force=True)

    def _warn_names(self, names: list[str] | None) -> None:
        """Class names differ from the data's: matched by index, as the data screen does."""
        train = self.session.train_set
        if names and train is not None and list(train.class_names) != list(names):
            self.notify("The model's classes differ from the training set's class folders; "
                        "they are matched by index and shown with the model's class names",
                        severity="warning", timeout=8)
