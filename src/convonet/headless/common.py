"""What the headless commands share: the results folder, the params, the model and the
data they load, and the one-line descriptions of what was loaded."""

from __future__ import annotations

import argparse
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from rich.text import Text

from convonet.core.errors import UsageError
from convonet.noise import stderr_to_log

if TYPE_CHECKING:
    import keras

    from convonet.core.data import Dataset
    from convonet.core.events import CancelToken, Reporter
    from convonet.core.params import DataParams, HyperParams
    from convonet.core.runs import RunFolder
    from convonet.headless.output import Output

HISTORY_CSV = "history.csv"
CONFUSION_CSV = "confusion.csv"
REPORT_CSV = "report.csv"
CLASSIFICATIONS_CSV = "classifications.csv"
RUN_MODEL = "model.keras"
#: Rows of a classification table drawn in the terminal; the CSV holds them all.
SHOWN_CLASSIFICATIONS = 40


def results_dir_of(args: argparse.Namespace) -> Path:
    """--results-dir, else $CONVONET_RESULTS_DIR, else ./app_results (as the app)."""
    from convonet.core.storage import resolve_results_dir

    return resolve_results_dir(getattr(args, "results_dir", None))




# ---- loading inputs ---------------------------------------------------------------------
def load_params(args: argparse.Namespace, output: Output, *, need_hyper: bool = True
                ) -> tuple[DataParams, HyperParams]:
    """The params files given, or the demo's when neither is given (as the app does)."""
    from convonet.core.params import DataParams, HyperParams

    data_path: Path | None = getattr(args, "data_params", None)
    hyper_path: Path | None = getattr(args, "hyper_params", None)
    # The files given are read first, so their errors come before any about what is missing.
    hyper = HyperParams.load(hyper_path) if need_hyper and hyper_path is not None else None
    if data_path is None and (hyper_path is None or not need_hyper):
        from convonet.core.demo import demo_params_paths, ensure_demo

        folder = ensure_demo()
        demo_data, demo_hyper = demo_params_paths(folder)
        data_path = demo_data
        if need_hyper and hyper_path is None:
            hyper_path = demo_hyper
        output.notice(f"no --data-params given: using the demo set in {folder}",
                      level="information")
    if data_path is None:
        raise UsageError("no data params: give --data-params FILE (or neither params option "
                         "to use the demo set)")
    data = DataParams.load(data_path)
    if hyper is None:
        hyper = HyperParams.load(hyper_path) if hyper_path is not None else HyperParams()
    epochs = getattr(args, "epochs", None)
    if epochs is not None:
        hyper = hyper.edit(epochs=epochs)
    return data, hyper


def load_trained_model(args: argparse.Namespace, results_dir: Path,
                       data_params: DataParams | None
                       ) -> tuple[keras.Model, list[str] | None, Path]:
    """--model, or the model ``convonet train`` saved for these data params."""
    from convonet.core.model import ModelError, load_model, read_class_names
    from convonet.core.model_files import default_model_path, similar_models

    given: Path | None = args.model
    path = given if given is not None else default_model_path(results_dir, data_params)
    if given is None and not path.exists():
        others = similar_models(results_dir, data_params)
        hint = (f" ({others[0]} is there, saved for a same-named params file in another "
                f"folder or by an older version: --model {others[0]} uses it)"
                if others else "")
        raise ModelError(f"{path}: no model there yet; train one with 'convonet train' or "
                         f"name a model file with --model{hint}")
    model = load_model(path)
    return model, read_class_names(path), path


def prep(data_params: DataParams, which: str, *, seed: int = 42,
         train_classes: Sequence[str] | None = None, classes_of: str = "training"
         ) -> Callable[[Reporter, CancelToken], Dataset]:
    from convonet.core.data import DataPrep

    def load(report: Reporter, cancel: CancelToken) -> Dataset:
        return DataPrep(data_params).prep_data(which, report, cancel, seed=seed,
                                               train_classes=train_classes,
                                               classes_of=classes_of)

    return load


def run_path(run: RunFolder | None) -> str | None:
    """The run folder as text for the output (None when it could not be written)."""
    return str(run.path) if run is not None else None


def dataset_line(ds: Dataset, what: str) -> str:
    h, w, c = ds.image_shape
    skipped = f", {len(ds.skipped)} skipped" if ds.skipped else ""
    return (f"{what}: {len(ds)} images in {ds.num_classes} classes, {h}x{w}x{c}"
            f"{skipped}{' (from cache)' if ds.from_cache else ''}")


def refuse_overwrite(model_path: Path, args: argparse.Namespace) -> None:
    """A model already at ``model_path`` is kept unless --force: said before training."""
    if getattr(args, "force", False) or not model_path.exists():
        return
    raise UsageError(f"{model_path} already exists; give --model PATH to save this model "
                     "elsewhere, or --force to replace it")


def start_keras(output: Output) -> None:
    """Import Keras now, its C++ start-up lines into the log unless --verbose.

    Called once the params are read, so a bad params file fails at once, not after the
    seconds TensorFlow takes to import. Also names the backend and device
    (``tensorflow · CPU``) for the output.
    """
    from convonet.core.backend import describe_backend

    if output.backend:
        return
    if output.verbose or output.log_path is None:
        output.backend = describe_backend()
    else:
        with stderr_to_log(output.log_path):
            output.backend = describe_backend()
    if not output.json_mode:
        output.err.print(Text(f"keras: {output.backend}", style="dim"))
