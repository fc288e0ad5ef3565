"""The seven screens, in key order (1-7). Each is a mode of the app, so it persists."""

from __future__ import annotations

from convonet.tui.screens.base import ConvonetScreen
from convonet.tui.screens.data import DataScreen
from convonet.tui.screens.model import ModelScreen
from convonet.tui.screens.params import ParamsScreen
from convonet.tui.screens.runs import RunsScreen
from convonet.tui.screens.testing import TestingScreen
from convonet.tui.screens.training import TrainingScreen
from convonet.tui.screens.tuning import TuningScreen

SCREENS: dict[str, type[ConvonetScreen]] = {
    cls.SCREEN_NAME: cls
    for cls in (ParamsScreen, DataScreen, ModelScreen, TrainingScreen, TuningScreen,
                TestingScreen, RunsScreen)
}

__all__ = ["SCREENS", "ConvonetScreen", "DataScreen", "ModelScreen", "ParamsScreen",
           "RunsScreen", "TestingScreen", "TrainingScreen", "TuningScreen"]
