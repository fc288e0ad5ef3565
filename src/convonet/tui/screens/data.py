"""The data screen: the training and test datasets."""

from __future__ import annotations

from convonet.tui.screens.base import ConvonetScreen


class DataScreen(ConvonetScreen):
    """Loads the datasets the data params point to and shows what was read."""

    SCREEN_NAME = "data"
    SCREEN_TITLE = "Data"
    PLANNED = (
        "This screen will hold the training and test datasets: load each with progress, "
        "then the class index -> name table with counts per class, image size and channels, "
        "the skipped files with their reasons, warnings on class matching, and a few sample "
        "images drawn in the terminal with their labels."
    )
