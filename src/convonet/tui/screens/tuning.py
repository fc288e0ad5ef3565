"""The tuning screen: grid search over the hyper params, cancellable."""

from __future__ import annotations

from convonet.tui.screens.base import ConvonetScreen


class TuningScreen(ConvonetScreen):
    """Runs the grid search in a worker and fills its results table as folds finish."""

    SCREEN_NAME = "tuning"
    SCREEN_TITLE = "Tuning"
    PLANNED = (
        "This screen will hold tuning: a grid search over every combination of the hyper "
        "params' several values with k folds, a progress bar (combinations, folds, ETA), a "
        "results table that fills as each fold finishes, best first, a stop key that keeps "
        "the partial table, and applying the best combination to the hyper params."
    )
