"""``convonet classify``: the predicted class of new, unlabelled images (a
``ClassifySpec`` for the task layer, which writes classifications.csv into the run
folder)."""

from __future__ import annotations

import argparse
import time

from rich.table import Table

from convonet.headless.common import (
    SHOWN_CLASSIFICATIONS,
    UsageError,
    load_params,
    load_trained_model,
    results_dir_of,
    run_path,
    start_keras,
)
from convonet.headless.output import EXIT_OK, Output
from convonet.headless.runner import Runner
from convonet.headless.tasks import run_spec


def cmd_classify(args: argparse.Namespace, output: Output, runner: Runner) -> int:
    """Predicted class and confidence of new, unlabelled images; a CSV of them all."""
    from convonet.core.params import DataParams

    folder = results_dir_of(args)
    missing = [str(p) for p in args.paths if not p.exists()]
    if missing:
        raise UsageError(f"no such file or folder: {', '.join(missing)}")
    data_params: DataParams | None = None
    if args.data_params is not None:
        data_params = DataParams.load(args.data_params, check=False)
    elif args.model is None:  # neither: the demo's model, as evaluate and predict
        data_params, _ = load_params(args, output, need_hyper=False)
    start_keras(output)
    from convonet.core.model import model_io_shape
    from convonet.core.testing import list_images, write_classifications_csv
    from convonet.tasks.testing import ClassifySpec

    files = list_images(list(args.paths))
    if not files:
        raise UsageError("no image files found in " + ", ".join(str(p) for p in args.paths))
    model, names, model_path = load_trained_model(args, folder, data_params)
    if data_params is None:  # the model knows the image size and channels it takes
        (h, w, c), _ = model_io_shape(model)
        data_params = DataParams({"image_size": [h, w],
                                  "color_mode": "grayscale" if c == 1 else "rgb"})
    started = time.monotonic()
    spec = ClassifySpec(model=model, paths=tuple(args.paths), data_params=data_params,
                        class_names=tuple(names) if names is not None else None,
                        model_path=model_path, results_dir=folder)
    outcome = run_spec(runner, spec, "classify")
    seconds = time.monotonic() - started
    rows, run = outcome.rows, outcome.run
    if not rows:
        raise UsageError(f"none of the {len(files)} file(s) is a readable image")
    csv_path = outcome.csv
    if args.csv is not None:
        csv_path = write_classifications_csv(rows, args.csv)
    table = Table(title=f"Classified {len(rows)} image(s)", title_justify="left")
    for name, justify in (("file", "left"), ("class", "left"), ("confidence", "right"),
                          ("2nd", "left"), ("3rd", "left")):
        table.add_column(name, justify=justify)  # type: ignore[arg-type]
    for r in rows[:SHOWN_CLASSIFICATIONS]:
        others = [f"{name} {p:.3f}" for _, name, p in r.top3[1:3]] + ["", ""]
        table.add_row(str(r.path), r.name, f"{r.confidence:.3f}", *others[:2])
    output.print(table)
    if len(rows) > SHOWN_CLASSIFICATIONS:
        output.line(f"... and {len(rows) - SHOWN_CLASSIFICATIONS} more in {csv_path}")
    output.line(f"csv: {csv_path}   run folder: {run_path(run)}   {seconds:.1f} s")
    output.emit_json({
        "command": "classify", "status": str(outcome.status), "run_dir": run_path(run),
        "model": str(model_path), "csv": str(csv_path), "count": len(rows),
        "skipped": len(files) - len(rows),
        "classifications": [{"file": str(r.path), "index": r.index, "class": r.name,
                             "confidence": r.confidence,
                             "top3": [{"index": i, "class": n, "probability": p}
                                      for i, n, p in r.top3]} for r in rows],
        "seconds": seconds})
    return EXIT_OK


