"""The params screen: data params and hyper params (the seed's App and Tasks menu items)."""

from __future__ import annotations

from convonet.tui.screens.base import ConvonetScreen


class ParamsScreen(ConvonetScreen):
    """Shows and edits the data params and hyper params the controller holds."""

    SCREEN_NAME = "params"
    SCREEN_TITLE = "Params"
    PLANNED = (
        "This screen will hold the data params (training and test folders, image size, "
        "grayscale or RGB, test split) and the hyper params (batch size, epochs, learning "
        "rate and decay, filters, kernel, units, dropout, folds, ...): every field with its "
        "value, what it accepts and its help; new, load, edit (checked as you type) and save "
        "for both. Several comma-separated values form the tuning grid."
    )
