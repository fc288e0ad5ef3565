"""What the training screen writes: how a run ended, and the line about what training will do."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from convonet.tui.widgets.train_progress import format_duration, format_metrics

if TYPE_CHECKING:
    from convonet.core.training import TrainHistory
    from convonet.tui.session import Session


def ended_text(history: TrainHistory) -> str:
    """How a run ended, in one line, for the progress line and the tests."""
    rows = history.rows
    total = history.epochs or len(rows)
    if history.stopped:
        if not rows:
            return "Stopped before the first epoch ended · model kept"
        last = rows[-1]
        where = f"Stopped at epoch {last.epoch} of {total}"
        if last.partial:
            where += " (partial)"
        return f"{where} · model and history so far kept"
    if not rows:
        return "No epochs ran"
    if history.diverged_epoch is not None:
        from convonet.core.train_history import divergence_advice

        return (f"Diverged at epoch {history.diverged_epoch} of {total}: "
                f"{history.diverged_reason} · {divergence_advice()}")
    last_full = rows[-1]
    result = history.result_row or last_full
    seconds = sum(r.seconds for r in rows)
    text = (f"Done: {len(rows)} epoch{'s' if len(rows) != 1 else ''}, "
            f"{format_duration(seconds)} · {format_metrics(_row_logs(result), 3)}")
    if history.early_stopped:
        text = (f"Early stop after epoch {last_full.epoch} of {total} (no better "
                f"{history.monitor.replace('_', ' ')})")
        if history.restored_epoch is not None:
            # The result is the restored epoch's; the last epoch's numbers are history.
            text += (f" · weights of epoch {history.restored_epoch} restored: "
                     f"{format_metrics(_row_logs(result), 3)}")
    return text


def _row_logs(row: Any) -> dict[str, float | None]:
    return {"loss": row.loss, "accuracy": row.accuracy, "val_loss": row.val_loss,
            "val_accuracy": row.val_accuracy}


def info_line(session: Session, trained: int, *, running: bool, validation: bool,
              config: Mapping[str, Any] | None = None) -> str:
    """The model, the data and the hyper params in use, then what t/v will do now.

    ``trained``: the epochs this app has run on the model so far. ``config``: the hyper
    params of the running training when they are not the session's (a resumed run's own).
    """
    c = session
    parts = []
    if c.model is not None:
        parts.append(f"{c.model.count_params():,}-param model")
    if c.train_set is not None:
        parts.append(f"{len(c.train_set):,} images, {c.train_set.num_classes} classes")
    try:
        first = config if config else c.hyper_params.first()
        parts.append(f"{first['epochs']} epochs, batch {first['batch_size']}, "
                     f"lr {first['init_rate']:g}")
    except (AttributeError, KeyError, TypeError, ValueError):
        pass
    if c.devices:
        parts.append(f"devices {c.devices}")
    line = " · ".join(parts)
    if c.model is not None and not running:
        if trained or c.history is not None or c.model_path is not None:
            line += ("\nt/v continue from these weights"
                     + (f" ({trained} epochs so far)" if trained else "")
                     + " · fresh start: 3, then i")
        else:
            line += "\nt/v train the new model · s stops a run and keeps what it learned"
    elif running:
        what = "Training with validation" if validation else "Training only"
        line += f"\n{what}… s stops at the next batch (model kept)"
    return line
