"""The model screen: build, load, save and summarise the network."""

from __future__ import annotations

from convonet.tui.screens.base import ConvonetScreen


class ModelScreen(ConvonetScreen):
    """The network model: its summary table and where it was loaded from or saved to."""

    SCREEN_NAME = "model"
    SCREEN_TITLE = "Model"
    PLANNED = (
        "This screen will hold the network model: initialize a new one from the hyper "
        "params, load and save .keras files, and its summary table (layer, output shape, "
        "params, totals) with the file it came from and whether it is saved."
    )
