"""What the model screen says about the model: its summary, where it came from, the hyper
params that shaped it, its classes, and whether the hyper params now ask for another one."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from convonet.core.model_choices import momentum_unused

if TYPE_CHECKING:
    from convonet.core.model import ModelSummary
    from convonet.core.params import HyperParams
    from convonet.tui.session import Session


def model_summary_of(session: Session) -> ModelSummary | None:
    """The session's model summarised, or None when there is no model."""
    if session.model is None:
        return None
    from convonet.core.model import model_summary

    return model_summary(session.model)


def model_origin(session: Session) -> str:
    """Where the model came from and whether its latest training is saved."""
    path = session.model_path
    if path is None:
        state = "Trained model" if session.model_dirty else "New model"
        return f"{state}, not saved (s saves it)"
    if session.model_dirty:
        return f"Trained since it was saved as {path}: not saved (s saves it)"
    return f"Model file {path}"


def config_text(config: dict[str, Any] | None) -> str:
    """The hyper params that shaped a model, as one line: the seed's four, then each
    model option not at the seed's value (batch norm, augmentation, optimizer ...)."""
    if not config:
        return "architecture read from the file"
    from convonet.core.model_options import options_text

    head = f"units {config['num_units']} · dropout {config['dropout']}"
    if config.get("backbone", "none") == "none":
        head = f"filters {config['num_filters']} · kernel {config['kernel_size']} · {head}"
    options = options_text(config)
    unused = momentum_unused([config.get("optimizer", "sgd")])
    if unused:
        options += f" · momentum unused with {unused}"
    return f"{head} · {options}" if options else head


def class_names_text(names: list[str] | None, count: int) -> str:
    """``0 name · 1 name ...``, or just the count when the names are unknown."""
    if not names:
        return f"{count} classes (names not saved with the model: shown by index)"
    return " · ".join(str(i) if name == str(i) else f"{i} {name}"
                      for i, name in enumerate(names))


def stale_note(config: dict[str, Any] | None, hyper_params: HyperParams) -> str:
    """Say so when the hyper params now ask for a different network: any field the core
    builds into the model (``ARCHITECTURE_FIELDS``, momentum included unless both use an
    optimizer without it)."""
    from convonet.core.model import ARCHITECTURE_FIELDS

    if not config:
        return ""
    try:
        now = hyper_params.first()
    except (AttributeError, KeyError, TypeError, ValueError):
        return ""
    # Momentum changes nothing while both use an optimizer without it (adam, adamw).
    ignored = {"momentum"} if momentum_unused([str(now.get("optimizer", "sgd")),
                                               str(config.get("optimizer", "sgd"))]) \
        else set()
    changed = [f for f in ARCHITECTURE_FIELDS
               if f not in ignored and now.get(f) != config.get(f)]
    if changed:
        return (f" · the hyper params changed since it was built ({', '.join(changed)}): "
                "i rebuilds")
    return ""
