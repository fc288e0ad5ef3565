"""The testing screen: evaluation and prediction on the test set."""

from __future__ import annotations

from convonet.tui.screens.base import ConvonetScreen


class TestingScreen(ConvonetScreen):
    """Evaluates and predicts with the model on the test set and shows the results."""

    __test__ = False  # not a pytest test class, despite its name

    SCREEN_NAME = "testing"
    SCREEN_TITLE = "Testing"
    PLANNED = (
        "This screen will hold testing: evaluation (accuracy and loss table) and prediction "
        "(the confusion matrix as a coloured heatmap with class names, per-class precision, "
        "recall and F1), and classifying new images with their confidence, saved as CSV."
    )
