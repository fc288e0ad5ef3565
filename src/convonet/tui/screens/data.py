"""The data screen: the training and test datasets (the seed's DataTask).

Each set loads in a thread worker through ``run_task`` with a progress bar (images done /
total, rate, ETA); ``c`` or escape cancels, and the set loaded before stays. A load too big
for memory is refused by the core before decoding (``check_memory``, the same check headless
runs), and its message shows in the error dialog.

Afterwards each set shows its classes (index, folder name, count, share and a bar, so an
imbalance shows at a glance), image size and channels, warnings, the class matching of a
test set whose folder names differ, and the skipped files (``f`` lists them with reasons).
Sample images are drawn with half-blocks; ``r`` draws other samples, ``v`` switches between
the training and the test set.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import ClassVar

import numpy as np
from textual import on
from textual.app import ComposeResult
from textual.binding import BindingType
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.events import Resize
from textual.widgets import Label, ProgressBar

from convonet.core.data import Dataset
from convonet.core.events import CancelToken, LoadProgress, Notice, Reporter
from convonet.core.params import DataParams
from convonet.keytable import bindings
from convonet.tui.formatting import display_path
from convonet.tui.screens.base import ConvonetScreen
from convonet.tui.session import Aspect
from convonet.tui.tasks import CoreEvent, TaskEnded, TaskHandle, run_task
from convonet.tui.widgets.data_panels import SETS, SetPanel, SkippedDialog
from convonet.tui.widgets.images import ImageGrid


def dataset_root(params: DataParams, which: str) -> Path | None:
    """The folder a load of ``which`` reads (the training folder when splitting)."""
    split = params.test_path is None and params.test_split > 0
    return params.train_path if which == "train" or split else params.test_path


def load_dataset(params: DataParams, which: str, *, seed: int,
                 train_classes: list[str] | None, report: Reporter,
                 cancel: CancelToken) -> Dataset:
    """The worker's job: the load task (which refuses a set too big for memory)."""
    from convonet.tasks import execute
    from convonet.tasks.load import LoadOutcome, LoadSpec

    spec = LoadSpec(params, which, seed=seed, train_classes=tuple(train_classes)
                    if train_classes is not None else None)
    outcome: LoadOutcome = execute(spec, report, cancel)
    return outcome.dataset



class DataScreen(ConvonetScreen):
    """Loads the datasets the data params point to and shows what was read."""

    SCREEN_NAME = "data"
    SCREEN_TITLE = "Data"

    DEFAULT_CSS = """
    DataScreen #data-body { height: 1fr; }
    DataScreen #data-body:focus { background-tint: $foreground 0%; }
    DataScreen #load-progress {
        height: auto; display: none; padding: 0 1; margin: 1 1 0 1;
        border: round $accent;
    }
    DataScreen.-loading #load-progress { display: block; }
    DataScreen #load-label { width: 1fr; }
    DataScreen #load-bar { width: 1fr; }
    DataScreen #sets { height: auto; }
    DataScreen.-narrow #sets { layout: vertical; }
    DataScreen #samples {
        height: auto; border: round $primary 60%; border-title-color: $accent;
        border-subtitle-color: $text-muted; padding: 0 1;
    }
    """

    # Footer (groups in the table): "t T Load" = t loads the training set, T the test set.
    BINDINGS: ClassVar[list[BindingType]] = [*bindings("data")]

    def __init__(self) -> None:
        super().__init__()
        self._handle: TaskHandle | None = None
        self._loading: str | None = None
        self._started = 0.0
        self._samples_of = "train"
        self._draw = 0  # bumped by r: which random samples are shown

    def compose_body(self) -> ComposeResult:
        with VerticalScroll(id="data-body"):
            with Vertical(id="load-progress"):
                yield Label("", id="load-label")
                yield ProgressBar(id="load-bar", show_eta=False)
            with Horizontal(id="sets"):
                yield SetPanel("train")
                yield SetPanel("test")
            with Vertical(id="samples"):
                yield ImageGrid(id="sample-grid")

    def on_mount(self) -> None:
        self.query_one("#data-body").focus()
        self.refresh_sets()

    def session_changed(self, what: frozenset[Aspect]) -> None:
        """The data params may have changed on the params screen: update the hints."""
        if what & {"params", "data"}:
            self.refresh_sets()

    @on(Resize)
    def _resized(self, event: Resize) -> None:
        self.set_class(event.size.width < 100, "-narrow")
        self._draw_samples()

    # ---- state -----------------------------------------------------------------------
    def dataset(self, which: str) -> Dataset | None:
        return self.session.train_set if which == "train" else self.session.test_set

    def _why_not(self, which: str) -> str | None:
        """Why ``which`` cannot be loaded now, or None."""
        params = self.session.data_params
        if which == "train" and params.train_path is None:
            return "no train_dir in the data params: set it on the Params screen (1, then e)"
        if which == "test" and dataset_root(params, "test") is None:
            return ("no test_dir (or test_split) in the data params: set it on the Params "
                    "screen (1, then e)")
        return None

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """Grey out what cannot run: loads without a folder or during a load, and so on."""
        if action == "load_training_dataset":
            return None if self._loading or self._why_not("train") else True
        if action == "load_test_dataset":
            return None if self._loading or self._why_not("test") else True
        if action == "cancel_load":
            return True if self._loading else None
        if action == "show_skipped":
            return True if any(ds is not None and ds.skipped
                               for ds in map(self.dataset, SETS)) else None
        if action == "other_samples":
            return True if self._sample_set() is not None else None
        if action == "switch_samples":
            return True if all(self.dataset(w) is not None for w in SETS) else None
        return True

    def refresh_sets(self) -> None:
        train = self.dataset("train")
        for which in SETS:
            panel = self.query_one(f"#set-{which}", SetPanel)
            ds = self.dataset(which)
            if ds is not None:
                panel.show(ds, train.class_names if train is not None else None)
                continue
            why = self._why_not(which)
            if why is not None:
                panel.show_empty(f"Not loaded: {why}.")
            else:
                root = dataset_root(self.session.data_params, which)
                key = "t" if which == "train" else "T"
                panel.show_empty(f"Not loaded. {key} loads it from {display_path(root)}")
        self._draw_samples()
        self.refresh_bindings()

    # ---- loading -----------------------------------------------------------------------
    def _load(self, which: str) -> None:
        why = self._why_not(which)
        if why is not None or self._loading:
            self.notify(why or "A dataset is loading: wait, or cancel it with c",
                        severity="warning")
            return
        train = self.dataset("train")
        train_classes = train.class_names if which == "test" and train is not None else None
        words = SETS[which][0]
        self._loading = which
        self._started = time.monotonic()
        self.set_class(True, "-loading")
        self.query_one("#load-progress").border_title = f"Loading the {words}"
        self.query_one("#load-progress").border_subtitle = "c cancels"
        self.query_one("#load-label", Label).update("Listing the files…")
        self.query_one("#load-bar", ProgressBar).update(total=None, progress=0)
        self._handle = run_task(self, load_dataset, self.session.data_params, which,
                                seed=int(self.session.hyper_params.seed),
                                train_classes=train_classes, name=f"loading the {words}",
                                description=f"Loading the {words}")
        self.query_one("#data-body").scroll_home(animate=False)
        self.refresh_bindings()

    def action_load_training_dataset(self) -> None:
        self._load("train")

    def action_load_test_dataset(self) -> None:
        self._load("test")

    def action_cancel_load(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
            self.query_one("#load-label", Label).update("Cancelling…")

    @on(CoreEvent)
    def _core_event(self, message: CoreEvent) -> None:
        event = message.event
        if isinstance(event, LoadProgress) and self._loading:
            self._show_progress(event)
            message.stop()
        elif isinstance(event, Notice) and event.level == "warning":
            message.stop()  # dataset warnings and skips are shown on the set's panel

    def _show_progress(self, event: LoadProgress) -> None:
        elapsed = max(time.monotonic() - self._started, 1e-6)
        rate = event.done / elapsed
        text = f"{event.done:,} / {event.total:,} images"
        if event.done and event.done < event.total:
            eta = (event.total - event.done) / rate
            text += f" · {rate:,.0f} images/s · ETA {int(eta) // 60}:{int(eta) % 60:02d}"
        elif event.done:
            text += f" · {rate:,.0f} images/s"
        self.query_one("#load-label", Label).update(text)
        self.query_one("#load-bar", ProgressBar).update(total=max(event.total, 1),
                                                         progress=event.done)

    @on(TaskEnded)
    def _ended(self, message: TaskEnded) -> None:
        which = self._loading
        if which is None:
            return
        self._loading = None
        self._handle = None
        self.set_class(False, "-loading")
        words = SETS[which][0]
        if message.ok and isinstance(message.result, Dataset):
            ds = message.result
            if which == "train":
                self.session.train_set = ds
            else:
                self.session.test_set = ds
            self.app.session_changed("data")
            self._samples_of = which
            self._draw = 0
            skipped = f", {len(ds.skipped)} skipped" if ds.skipped else ""
            self.notify(f"Loaded the {words}: {len(ds):,} images in {ds.num_classes} "
                        f"classes{skipped}")
        elif message.cancelled:
            kept = ("the one loaded before is kept" if self.dataset(which) is not None
                    else "none is loaded")
            self.notify(f"Loading the {words} was cancelled; {kept}.", severity="warning")
        self.refresh_sets()

    # ---- skipped files and samples -----------------------------------------------------
    def action_show_skipped(self) -> None:
        rows: list[tuple[str, str, str]] = []
        for which in SETS:
            ds = self.dataset(which)
            if ds is None:
                continue
            for item in ds.skipped:
                path = Path(item.path)
                try:
                    name = str(path.relative_to(ds.root)) if ds.root else str(path)
                except ValueError:
                    name = str(path)
                rows.append((SETS[which][0].split()[0], name, item.reason))
        if rows:
            self.app.push_screen(SkippedDialog(rows))

    def _sample_set(self) -> Dataset | None:
        ds = self.dataset(self._samples_of)
        if ds is None:
            other = "test" if self._samples_of == "train" else "train"
            ds = self.dataset(other)
            if ds is not None:
                self._samples_of = other
        return ds

    def action_other_samples(self) -> None:
        self._draw += 1
        self._draw_samples()

    def action_switch_samples(self) -> None:
        self._samples_of = "test" if self._samples_of == "train" else "train"
        self._draw_samples()

    def _draw_samples(self) -> None:
        """Draw a seeded random pick of images that fills two rows of the grid's width."""
        grid = self.query_one("#sample-grid", ImageGrid)
        box = self.query_one("#samples")
        ds = self._sample_set()
        if ds is None or len(ds) == 0:
            box.border_title = "Samples"
            box.border_subtitle = ""
            grid.show([], [])
            return
        width = max((self.size.width or 80) - 4, 20)
        h, w, _ = ds.image_shape
        # Full size when three fit side by side, else half size (still legible digits).
        full = min(w, 28)
        cell_w = full if width >= 3 * (full + 2) - 2 else max(full // 2, 8)
        cell_h = max(cell_w * h // max(w, 1) // 2, 1)
        grid.cell_width, grid.cell_height = cell_w, cell_h
        columns = max(1, (width + 2) // (cell_w + 2))
        n = min(len(ds), columns * 2)
        # Coming back to this screen must stay instant while a training run loads the
        # cores: redraw only when the set, the pick or the layout changed.
        key = (id(ds), self._samples_of, self._draw, cell_w, cell_h, columns)
        if key == getattr(self, "_drawn_key", None):
            return
        self._drawn_key = key
        rng = np.random.default_rng(self._draw)
        picks = np.sort(rng.choice(len(ds), size=n, replace=False))
        labels = [f"{int(ds.y[i])} {ds.class_names[int(ds.y[i])]}" for i in picks]
        box.border_title = f"Samples · {SETS[self._samples_of][0]}"
        keys = "r other samples" + (" · v other set" if all(
            self.dataset(x) is not None for x in SETS) else "")
        box.border_subtitle = keys
        grid.show([np.asarray(ds.x[i]) for i in picks], labels)
