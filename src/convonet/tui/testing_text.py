"""What the testing screen knows about the model it tests, and the status line it writes.

Pure functions over the session: the model's input shape and classes, the class names to
show, the data params new images are prepared with, and the line naming the model and the
test set with the reasons keys are greyed out.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.text import Text

if TYPE_CHECKING:
    from convonet.core.params import DataParams
    from convonet.tui.session import Session

#: What the keys do, shown until there is a result.
INTRO = ("e  evaluate: accuracy and loss on the test set\n"
         "p  predict: confusion heatmap, per-class precision/recall/F1 and the most "
         "confidently wrong images; CSV files go to the results folder\n"
         "c  classify new images: pick one file or a folder\n"
         "x  export the classified images as CSV")


def model_of(session: Session) -> Any:
    """The keras.Model the session holds (unwrapping a NetModel if given one)."""
    model = session.model
    if model is not None and not hasattr(model, "predict"):
        model = getattr(model, "model", None)
    return model


def model_io(model: Any) -> tuple[tuple[int, ...], int] | None:
    """The model's image shape and class count, or None without a usable model."""
    from convonet.core.model import ModelError, model_io_shape

    if model is None:
        return None
    try:
        return model_io_shape(model)
    except ModelError:
        return None


def shape_text(io: tuple[tuple[int, ...], int] | None) -> str:
    """``28x28x1, 10 classes``."""
    if io is None:
        return "no fixed input shape"
    return f"{'x'.join(str(d) for d in io[0])}, {io[1]} classes"


def model_class_names(session: Session, count: int | None) -> list[str] | None:
    """The model's classes: the names it was built or loaded with, else those saved
    beside its file, else the training set's; None when none is known (or none has
    ``count`` names). The model's own names come first: a loaded model may have been
    trained on other folders than the training set loaded now."""
    from convonet.core.model import read_class_names

    kept = session.class_names
    if kept is not None and len(kept) == count:
        return [str(name) for name in kept]
    path = session.model_path
    if path is not None:
        names = read_class_names(path)
        if names is not None and len(names) == count:
            return names
    train = session.train_set
    if train is not None and len(train.class_names) == count:
        return list(train.class_names)
    return None


def classify_params(params: DataParams, shape: tuple[int, ...]
                    ) -> tuple[DataParams, str | None]:
    """Data params whose image size and colour mode are the model's input (``shape``),
    and a note when they differ from ``params``.

    New images must be prepared as the model's training images were; the model's input
    shape says how, even when the loaded data params describe another set. Raises
    ModelError, with the reason, for a shape no image can have.
    """
    if len(shape) != 3 or shape[2] not in (1, 3) or min(shape) < 1:
        from convonet.core.model import ModelError

        raise ModelError(f"The model takes {'x'.join(str(d) for d in shape)} inputs; "
                         "convonet classifies images of height x width x 1 (grayscale) or 3 "
                         "(RGB) channels.")
    mode = "grayscale" if shape[2] == 1 else "rgb"
    size = (shape[0], shape[1])
    if tuple(params.image_size) == size and params.color_mode == mode:
        return params, None
    return (params.edit(image_size=list(size), color_mode=mode),
            f"Images are prepared as the model expects: {size[0]}x{size[1]} {mode} (the "
            "data params say otherwise).")


def status_line(session: Session, busy: str, blocked: str | None) -> Text:
    """The model and test set in use, what is running (``busy``), and why keys are greyed
    out (``blocked``: why classifying cannot run now)."""
    line = Text()
    model = model_of(session)
    io = model_io(model)
    if model is None:
        line.append("Model: none", style="bold")
    else:
        path = session.model_path
        name = Path(path).name if path is not None else "unsaved model"
        line.append(f"Model: {name}", style="bold")
        line.append(f" ({shape_text(io)})")
    test = session.test_set
    line.append("  ·  ")
    if test is None:
        line.append("Test set: none", style="bold")
    else:
        where = Path(test.root).name if test.root is not None else "loaded"
        line.append(f"Test set: {where}", style="bold")
        line.append(f" ({len(test.y)} images")
        if io is None or io != (tuple(test.image_shape), test.num_classes):
            shape = "x".join(str(d) for d in test.image_shape)
            line.append(f", {shape}, {test.num_classes} classes",
                        style="bold red" if io is not None else "")
        line.append(")")
    if busy:
        line.append(f"\n{busy}…", style="bold italic")
        return line
    reasons = []
    if model is None:
        reasons.append("No model: initialize one or load one on the Model screen (3) to "
                       "evaluate, predict or classify.")
    elif blocked is not None:  # another screen's task is running
        reasons.append(blocked[0].upper() + blocked[1:] + ".")
    if test is None:
        reasons.append("No test set: load it on the Data screen (2) to evaluate or predict.")
    if reasons:
        line.append("\n" + " ".join(reasons), style="italic")
    return line
