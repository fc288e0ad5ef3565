"""The seed's menus as a registry, and the command palette that lists them.

Every menu item of the seed (App, Tasks, Help) is one ``MenuCommand`` in ``MENU_COMMANDS``,
by its seed name, plus a "Go to <screen>" entry per screen. The palette (ctrl+p) lists them
all, grouped by menu, each with the key that runs it: read from the one binding table
(``convonet.keytable``) and the user's keymap, so a remapped key shows as remapped.

An entry names the screen its feature lives on and the action that runs it. Choosing it
switches to that screen and runs the action there (``"app.<name>"`` runs on the app). An
entry is *enabled* when that action exists, i.e. the screen class defines
``action_<name>``, and the screen's ``check_action`` allows it right now. So a screen enables
its seed items by implementing the named actions (``ParamsScreen.action_load_data_params``)
and greys them out with ``check_action`` (no model yet, say); change ``action`` here only to
point an item somewhere else. Items not built yet stay listed, marked with ``reason``, and
choosing one shows a notification instead of failing.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING, Any, cast

from textual.actions import parse as parse_action
from textual.binding import Binding
from textual.command import DiscoveryHit, Hit, Hits, Provider
from textual.content import Content

from convonet.keytable import TABLE

if TYPE_CHECKING:
    from textual.app import App
    from textual.dom import DOMNode

    from convonet.tui.app import ConvonetApp

NOT_YET = "not available yet"


@dataclass(frozen=True)
class MenuCommand:
    """One menu item: the seed's menu and name, a line of help, where it runs."""

    menu: str  # "App" | "Tasks" | "Help" | "Screens"
    title: str  # the seed's name, e.g. "Load Data Params"
    help: str
    screen: str | None = None  # the screen (mode) the feature lives on, e.g. "params"
    action: str | None = None  # an action on that screen, or "app.<action>"
    reason: str = NOT_YET  # shown while the action does not exist

    @property
    def label(self) -> str:
        """What the palette shows and matches: ``"App › Load Data Params"``."""
        return f"{self.menu} › {self.title}"


def _screens() -> list[tuple[str, str]]:
    from convonet.tui.screens import SCREENS

    return [(name, cls.SCREEN_TITLE) for name, cls in SCREENS.items()]


def _seed_commands() -> tuple[MenuCommand, ...]:
    M = MenuCommand
    return (
        M("App", "New Data Params", "Start data params from the defaults", "params",
          "new_data_params"),
        M("App", "Load Data Params", "Read data params from a JSON file", "params",
          "load_data_params"),
        M("App", "Edit Data Params", "Change data params, each value checked", "params",
          "edit_data_params"),
        M("App", "Save Data Params", "Write the data params to a JSON file", "params",
          "save_data_params"),
        M("App", "New Hyper Params", "Start hyper params from the defaults", "params",
          "new_hyper_params"),
        M("App", "Load Hyper Params", "Read hyper params from a JSON file", "params",
          "load_hyper_params"),
        M("App", "Edit Hyper Params", "Change hyper params, each value checked", "params",
          "edit_hyper_params"),
        M("App", "Save Hyper Params", "Write the hyper params to a JSON file", "params",
          "save_hyper_params"),
        M("App", "Load Training Dataset", "Load the training images of the data params",
          "data", "load_training_dataset"),
        M("App", "Load Test Dataset", "Load the test images of the data params", "data",
          "load_test_dataset"),
        M("App", "Load Network Model", "Read a .keras model file", "model",
          "load_network_model"),
        M("App", "Save Network Model", "Write the model to a .keras file", "model",
          "save_network_model"),
        M("App", "Quit", "Leave convonet (asks first while a task runs)", None, "app.quit"),
        M("Tasks", "Edit Hyper Params", "Change hyper params before the next run", "params",
          "edit_hyper_params"),
        M("Tasks", "Initialize New Network Model",
          "Build the model from the hyper params and show its summary", "model",
          "initialize_network_model"),
        M("Tasks", "Training Only", "Train on the whole training set", "training", "train"),
        M("Tasks", "Training With Validation", "Train and validate on a held-out share",
          "training", "train_with_validation"),
        M("Tasks", "Evaluation", "Accuracy and loss on the test set", "testing", "evaluate"),
        M("Tasks", "Prediction", "Confusion matrix and per-class scores on the test set",
          "testing", "predict"),
        M("Tasks", "Classify Images", "Predict the class of new images: a file or a folder",
          "testing", "classify_images"),
        M("Tasks", "Tuning", "Grid search over the hyper params with k folds", "tuning",
          "tune"),
        M("Tasks", "Stop Tuning", "Stop the search; the finished folds are kept", "tuning",
          "stop_tuning"),
        M("Tasks", "Tuning Executor",
          "Fit the folds in this process or on Ray workers (several GPUs or machines)",
          "tuning", "toggle_executor"),
        M("Tasks", "Compare Runs", "Two past runs: curves overlaid, params side by side",
          "runs", "compare_runs"),
        M("Help", "About", "Name, version and Keras backend", None, "app.show_about"),
        M("Help", "Keys", "Every key of the app and this screen", None, "app.show_keys"),
    )


def menu_commands() -> tuple[MenuCommand, ...]:
    """The seed's items, then one "Go to" entry per screen."""
    goto = tuple(
        MenuCommand("Screens", f"Go to {title}", f"Show the {title.lower()} screen", None,
                    f"app.goto('{name}')")
        for name, title in _screens()
    )
    return _seed_commands() + goto


def _target(app: App[Any], command: MenuCommand) -> tuple[DOMNode | type | None, str, tuple]:
    """The node (or, before its screen exists, the class) that would run the action."""
    assert command.action is not None
    namespace, name, params = parse_action(command.action)
    if namespace == "app" or command.screen is None:
        return app, name, params
    try:
        return app.get_screen_stack(command.screen)[0], name, params
    except (KeyError, IndexError):
        modes: dict[str, Any] = dict(app.MODES)
        return modes.get(command.screen), name, params


def command_state(app: App[Any], command: MenuCommand) -> tuple[bool, str]:
    """Whether a menu item can run now, and if not, why (for the palette and the notice)."""
    if command.action is None:
        return False, command.reason
    target, name, params = _target(app, command)
    if target is None or not callable(getattr(target, f"action_{name}", None)):
        return False, command.reason
    if isinstance(target, type):
        return True, ""
    allowed = target.check_action(name, params)  # type: ignore[union-attr]
    if allowed is not True:
        return False, "not available now"
    return True, ""


def command_key(app: ConvonetApp, command: MenuCommand) -> str | None:
    """The key that runs ``command`` where it lives (after the user's keymap), if any."""
    if command.action is None:
        return None
    namespace, name, params = parse_action(command.action)
    owner = "app" if namespace == "app" or command.screen is None else command.screen
    if owner not in TABLE:
        return None
    for spec in TABLE[owner].keys:
        if parse_action(spec.action)[1:] == (name, params):
            key = app.user_keys.get(spec.id, spec.key).split(",")[0]
            return app.get_key_display(Binding(key, spec.action))
    return None


async def run_menu_command(app: App[Any], command: MenuCommand) -> None:
    """Switch to the item's screen and run its action; say why when it cannot run."""
    enabled, reason = command_state(app, command)
    if not enabled:
        app.notify(f"{command.title}: {reason}", title=command.menu, severity="warning")
        return
    assert command.action is not None
    if command.screen is not None:
        await app.switch_mode(command.screen)
        screen = app.get_screen_stack(command.screen)[0]
        await app.run_action(command.action, default_namespace=screen)
    else:
        await app.run_action(command.action)


class MenuCommands(Provider):
    """The palette's view of the registry: every item, greyed out with a reason if off."""

    def _hits(self) -> Iterator[tuple[MenuCommand, bool, str]]:
        for command in menu_commands():
            enabled, reason = command_state(self.app, command)
            yield command, enabled, reason

    def _help(self, command: MenuCommand, enabled: bool, reason: str) -> str:
        key = command_key(cast("ConvonetApp", self.app), command)
        text = command.help if key is None else f"{command.help} · key {key}"
        return text if enabled else f"({reason}) {text}"

    @staticmethod
    def _shown(prompt: Content, enabled: bool) -> Content:
        return prompt if enabled else prompt.stylize_before("dim")

    async def discover(self) -> Hits:
        for command, enabled, reason in self._hits():
            yield DiscoveryHit(
                self._shown(Content(command.label), enabled),
                partial(run_menu_command, self.app, command),
                text=command.label,
                help=self._help(command, enabled, reason),
            )

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for command, enabled, reason in self._hits():
            score = matcher.match(command.label)
            if score <= 0:
                continue
            if not enabled:
                score *= 0.5  # what can run now comes first
            yield Hit(
                score,
                self._shown(matcher.highlight(command.label), enabled),
                partial(run_menu_command, self.app, command),
                text=command.label,
                help=self._help(command, enabled, reason),
            )
