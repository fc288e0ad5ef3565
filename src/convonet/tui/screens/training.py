"""The training screen: train with or without validation, live charts, stop."""

from __future__ import annotations

from convonet.tui.screens.base import ConvonetScreen


class TrainingScreen(ConvonetScreen):
    """Runs training in a worker and shows its progress and history."""

    SCREEN_NAME = "training"
    SCREEN_TITLE = "Training"
    PLANNED = (
        "This screen will hold training: training only or with validation, progress "
        "(epoch, batch, ETA), live loss and accuracy charts with validation curves, and a "
        "stop key that keeps the model and the history so far."
    )
