"""The headless commands, one module each, by name."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import TYPE_CHECKING

from convonet.headless.commands.classify import cmd_classify
from convonet.headless.commands.demo import cmd_demo
from convonet.headless.commands.evaluate import cmd_evaluate
from convonet.headless.commands.predict import cmd_predict
from convonet.headless.commands.train import cmd_train
from convonet.headless.commands.tune import cmd_tune

if TYPE_CHECKING:
    from convonet.headless.output import Output
    from convonet.headless.runner import Runner

COMMANDS: dict[str, Callable[[argparse.Namespace, Output, Runner], int]] = {
    "train": cmd_train, "tune": cmd_tune, "evaluate": cmd_evaluate, "predict": cmd_predict,
    "classify": cmd_classify, "demo": cmd_demo,
}


__all__ = ["COMMANDS", "cmd_classify", "cmd_demo", "cmd_evaluate", "cmd_predict", "cmd_train",
           "cmd_tune"]
