"""The app's shell under Pilot: screens, palette, dialogs, task failures, quit; and the CLI."""

from __future__ import annotations

import sys
import threading
from pathlib import Path
from typing import Any

import pytest
from conftest import wait_for as wait_until
from textual.command import CommandList, CommandPalette
from textual.pilot import Pilot
from textual.widgets import DataTable, Input, TextArea

from convonet import cli
from convonet.core.events import CancelToken, Event, Notice, Reporter, TaskDone
from convonet.tui import commands as commands_module
from convonet.tui.app import ConvonetApp
from convonet.tui.commands import NOT_YET, MenuCommand, menu_commands
from convonet.tui.dialogs import AboutDialog, ConfirmDialog, ErrorDialog, KeysDialog
from convonet.tui.screens import SCREENS
from convonet.tui.screens.training import TrainingScreen
from convonet.tui.tasks import CoreEvent, TaskEnded, run_task

# The seed's menus, by the seed's names: the palette must list every one.
SEED_MENUS = {
    "App": ["New Data Params", "Load Data Params", "Edit Data Params", "Save Data Params",
            "New Hyper Params", "Load Hyper Params", "Edit Hyper Params",
            "Save Hyper Params", "Load Training Dataset", "Load Test Dataset",
            "Load Network Model", "Save Network Model", "Quit"],
    "Tasks": ["Edit Hyper Params", "Initialize New Network Model", "Training Only",
              "Training With Validation", "Evaluation", "Prediction", "Tuning",
              "Stop Tuning"],
    "Help": ["About", "Keys"],
}
SCREEN_KEYS = {str(i): name for i, name in enumerate(SCREENS, start=1)}


async def palette_labels(pilot: Pilot[Any], query: str = "") -> list[str]:
    """Open the palette, type ``query``, and return the listed items' texts."""
    app = pilot.app
    await pilot.press("ctrl+p")
    await wait_until(pilot, lambda: isinstance(app.screen, CommandPalette), "the palette")
    palette = app.screen
    if query:
        palette.query_one(Input).value = query
        await pilot.pause()  # the palette starts its search
    commands = palette.query_one(CommandList)
    # the palette adds results in batches, from a worker: wait until it is done
    await wait_until(pilot, lambda: commands.option_count > 0 and not any(
        w.node is palette and not w.is_finished for w in app.workers), "palette items")
    return [str(commands.get_option_at_index(i).hit.text)
            for i in range(commands.option_count)]


async def run_from_palette(pilot: Pilot[Any], label: str) -> None:
    labels = await palette_labels(pilot, label)
    assert labels[0] == label, labels
    await pilot.press("enter")
    await pilot.pause()


async def test_app_starts_on_the_params_screen(make_app: Any) -> None:
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        assert app.current_mode == "params"
        assert type(app.screen).__name__ == "ParamsScreen"
        assert app.title == "convonet · tensorflow · CPU"
        assert app.sub_title == "no params files"
        assert app.screen.query_one("#panel-data")


async def test_header_names_the_params_files(make_app: Any,
                                            named_params_controller: Any) -> None:
    app = make_app(session=named_params_controller)
    async with app.run_test() as pilot:
        await pilot.pause()
        assert app.sub_title == "demo_data_params.json · demo_hyper_params.json"


async def test_number_keys_reach_every_screen_and_screens_persist(make_app: Any) -> None:
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        seen = {}
        for key, name in SCREEN_KEYS.items():
            await pilot.press(key)
            assert app.current_mode == name
            assert isinstance(app.screen, SCREENS[name])
            seen[name] = app.screen
        for key, name in SCREEN_KEYS.items():
            await pilot.press(key)
            assert app.screen is seen[name], "a screen was rebuilt instead of kept"


async def test_palette_reaches_every_screen(make_app: Any) -> None:
    app = make_app()
    async with app.run_test(size=(100, 30)) as pilot:
        for name, cls in reversed(SCREENS.items()):
            await run_from_palette(pilot, f"Screens › Go to {cls.SCREEN_TITLE}")
            assert app.current_mode == name


async def test_palette_lists_every_seed_item_by_its_seed_name(make_app: Any) -> None:
    app = make_app()
    async with app.run_test(size=(100, 40)) as pilot:
        labels = await palette_labels(pilot)
        for menu, titles in SEED_MENUS.items():
            for title in titles:
                assert f"{menu} › {title}" in labels
        for cls in SCREENS.values():
            assert f"Screens › Go to {cls.SCREEN_TITLE}" in labels
    registry = {(c.menu, c.title) for c in menu_commands()}
    assert registry >= {(m, t) for m, ts in SEED_MENUS.items() for t in ts}


#: A menu item whose screen does not define its action (a feature not built yet).
_FUTURE = MenuCommand("Tasks", "Future Task", "Not built yet", "training", "future_task")


@pytest.fixture
def future_item(monkeypatch: pytest.MonkeyPatch) -> MenuCommand:
    seed = commands_module._seed_commands
    monkeypatch.setattr(commands_module, "_seed_commands", lambda: (*seed(), _FUTURE))
    return _FUTURE


async def test_an_item_not_built_yet_says_so(make_app: Any, future_item: MenuCommand) -> None:
    app = make_app()
    notes: list[str] = []
    async with app.run_test(size=(100, 30)) as pilot:
        app.notify = lambda message, **kw: notes.append(str(message))  # type: ignore
        labels = await palette_labels(pilot, "Tasks › Future Task")
        assert labels[0] == "Tasks › Future Task"
        palette = app.screen.query_one(CommandList)
        assert NOT_YET in str(palette.get_option_at_index(0).hit.help)
        await pilot.press("enter")
        await pilot.pause()
        assert notes == [f"Future Task: {NOT_YET}"]
        assert app.current_mode == "params"  # nothing ran, nothing moved


class _TrainingWithAction(TrainingScreen):
    calls: list[str] = []

    def action_future_task(self) -> None:
        self.calls.append("future")


class _AppWithTraining(ConvonetApp):
    MODES = {**ConvonetApp.MODES, "training": _TrainingWithAction}


def test_the_binding_table_names_the_screens_in_their_order() -> None:
    from convonet.keytable import SCREEN_TITLES

    assert SCREEN_TITLES == {name: cls.SCREEN_TITLE for name, cls in SCREENS.items()}


async def test_the_palette_names_each_items_key_after_the_keymap(
        make_app: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from convonet import keymap
    from convonet.tui.commands import command_key

    folder = tmp_path / "config"
    folder.mkdir()
    (folder / "keys.toml").write_text('"training.train" = "f9"\n')
    monkeypatch.setenv(keymap.CONFIG_ENV, str(folder))
    items = {c.title: c for c in menu_commands()}
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        assert command_key(app, items["Training Only"]) == "f9"
        assert command_key(app, items["Load Hyper Params"]) == "L"
        assert command_key(app, items["Go to Runs"]) == "7"
        assert command_key(app, items["About"]) == "f2"
        labels = await palette_labels(pilot, "Training Only")
        options = app.screen.query_one(CommandList)
        helps = {str(options.get_option_at_index(i).hit.text):
                 options.get_option_at_index(i).hit.help for i in range(len(labels))}
        assert "key f9" in str(helps["Tasks › Training Only"])


async def test_an_item_is_enabled_by_defining_its_action(make_app: Any,
                                                         future_item: MenuCommand) -> None:
    app = make_app(_AppWithTraining)
    async with app.run_test(size=(100, 30)) as pilot:
        await run_from_palette(pilot, "Tasks › Future Task")
        assert app.current_mode == "training"
        assert _TrainingWithAction.calls == ["future"]


async def test_about_and_keys_open_and_close(make_app: Any) -> None:
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("f2")
        assert isinstance(app.screen, AboutDialog)
        await pilot.press("escape")
        assert type(app.screen).__name__ == "ParamsScreen"

        await pilot.press("question_mark")
        assert isinstance(app.screen, KeysDialog)
        table = app.screen.query_one(DataTable)
        rows = [tuple(str(c) for c in table.get_row_at(i)) for i in range(table.row_count)]
        assert ("App", "q", "Quit") in rows
        assert ("App", "1", "Params") in rows
        await pilot.press("escape")
        assert type(app.screen).__name__ == "ParamsScreen"

        await run_from_palette(pilot, "Help › About")
        assert isinstance(app.screen, AboutDialog)
        await pilot.press("escape")
        await run_from_palette(pilot, "Help › Keys")
        assert isinstance(app.screen, KeysDialog)
        await pilot.press("escape")
        assert type(app.screen).__name__ == "ParamsScreen"


def _explode(*, report: Reporter, cancel: CancelToken) -> None:
    report(Notice("about to fail"))
    raise RuntimeError("the core broke: details follow")


async def test_a_failing_task_shows_the_error_dialog_and_the_app_goes_on(
        make_app: Any) -> None:
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        screen = app.screen
        app.session.class_names = ["kept"]
        run_task(screen, _explode, name="boom", description="Exploding")
        await wait_until(pilot, lambda: isinstance(app.screen, ErrorDialog), "error dialog")
        await pilot.pause()
        dialog = app.screen
        assert dialog.error_title == "Exploding failed"
        assert dialog.summary == "RuntimeError: the core broke: details follow"
        assert "Traceback" in dialog.query_one(TextArea).text
        copied: list[str] = []
        app.copy_to_clipboard = copied.append  # type: ignore[method-assign]
        await pilot.press("c")
        assert copied and "the core broke" in copied[0] and "Traceback" in copied[0]
        await pilot.press("escape")
        assert app.screen is screen
        await pilot.press("2")
        assert app.current_mode == "data"
        assert app.session.class_names == ["kept"]
        assert not app.tasks.running()


async def test_a_screens_own_worker_failure_shows_the_error_dialog(make_app: Any) -> None:
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        def fail() -> None:
            raise ValueError("bad value in a screen worker")

        app.screen.run_worker(fail, thread=True, exit_on_error=False, description="Loading")
        await wait_until(pilot, lambda: isinstance(app.screen, ErrorDialog), "error dialog")
        assert app.screen.summary == "ValueError: bad value in a screen worker"  # internal
        await pilot.press("escape")
        assert app.current_mode == "params"


def _counting(steps: int, *, report: Reporter, cancel: CancelToken) -> str:
    for i in range(steps):
        report(Notice(f"step {i}"))
    report(TaskDone("count", "finished", steps))
    return "done"


async def test_run_task_forwards_events_and_the_end(make_app: Any) -> None:
    app = make_app()
    events: list[Event] = []
    ended: list[TaskEnded] = []

    seen: dict[int, Any] = {}  # holds the messages, so their ids stay unique

    def hook(message: Any) -> None:
        if id(message) in seen:  # a bubbling message reaches the hook at each node
            return
        seen[id(message)] = message
        if isinstance(message, CoreEvent):
            events.append(message.event)
        elif isinstance(message, TaskEnded):
            ended.append(message)

    async with app.run_test(size=(80, 24), message_hook=hook) as pilot:
        screen = app.screen
        run_task(screen, _counting, 3, name="count")
        await wait_until(pilot, lambda: bool(ended), "the task's end")
        assert [e.text for e in events if isinstance(e, Notice)] == ["step 0", "step 1",
                                                                      "step 2"]
        assert ended[0].ok and ended[0].result == "done" and ended[0].task == "count"


async def test_a_notice_nobody_handles_becomes_a_notification(
        make_app: Any, wait_for_tasks: Any) -> None:
    app = make_app()
    notes: list[tuple[str, str]] = []
    async with app.run_test(size=(80, 24)) as pilot:
        app.notify = lambda text, **kw: notes.append((text, kw["severity"]))  # type: ignore
        run_task(app.screen, _counting, 1, name="count")
        await wait_for_tasks(pilot)
        assert notes == [("step 0", "warning")]


def _until_cancelled(started: threading.Event, *, report: Reporter,
                     cancel: CancelToken) -> str:
    started.set()
    while not cancel.cancelled:
        threading.Event().wait(0.01)
    return "stopped"


async def test_quit_asks_while_a_task_runs_and_stops_it(make_app: Any) -> None:
    app = make_app()
    started = threading.Event()
    async with app.run_test(size=(80, 24)) as pilot:
        handle = run_task(app.screen, _until_cancelled, started, name="training")
        await wait_until(pilot, started.is_set, "the task to start")
        await pilot.press("q")
        assert isinstance(app.screen, ConfirmDialog)
        await pilot.press("n")
        assert not isinstance(app.screen, ConfirmDialog)
        assert handle.running and not handle.token.cancelled
        await pilot.press("q")
        await pilot.press("y")
        await pilot.pause()
        assert handle.token.cancelled
    assert app.return_code == 0
    assert handle.thread_done


async def test_quit_without_a_task_exits_at_once(make_app: Any) -> None:
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("q")
        await pilot.pause()
        assert not isinstance(app.screen, ConfirmDialog)
    assert app.return_code == 0


async def test_quit_asks_about_an_unsaved_model(make_app: Any) -> None:
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        app.session.model_dirty = True
        await pilot.press("ctrl+q")
        assert isinstance(app.screen, ConfirmDialog)
        assert "saved" in app.screen.question
        await pilot.press("escape")
        assert not isinstance(app.screen, ConfirmDialog)


# ---- the command line ------------------------------------------------------------------
def test_a_bad_params_file_is_one_line_and_a_non_zero_exit(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "broken.json"
    bad.write_text('{"batch_size": 0,}')
    assert cli.main(["--hyper-params", str(bad)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("convonet: error: ") and str(bad) in err
    assert "\n" not in err and "Traceback" not in err


def test_the_options_work_before_and_after_the_tui_subcommand(tmp_path: Path) -> None:
    parser = cli.build_parser()
    a = parser.parse_args(["--data-params", "d.json", "tui", "--hyper-params", "h.json"])
    b = parser.parse_args(["--results-dir", str(tmp_path)])
    assert a.data_params == Path("d.json") and a.hyper_params == Path("h.json")
    assert a.handler is cli.run_tui and b.handler is cli.run_tui
    assert b.results_dir == tmp_path and b.demo is False


def test_without_the_demo_module_the_app_starts_with_a_notice(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "convonet.core.demo", None)
    notices: list[str] = []
    args = cli.build_parser().parse_args([])
    controller = cli.load_session(args, notices)
    assert controller.data_params.path is None
    assert notices and "demo" in notices[0]


def test_no_arguments_load_the_demo_params(tmp_path: Path,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("convonet.core.demo")
    monkeypatch.setenv("CONVONET_DATA_DIR", str(tmp_path))
    notices: list[str] = []
    controller = cli.load_session(cli.build_parser().parse_args([]), notices)
    assert notices == []
    assert controller.data_params.path is not None
    assert controller.data_params.path.name == "demo_data_params.json"
    assert controller.hyper_params.path is not None
    assert controller.hyper_params.path.name == "demo_hyper_params.json"
    assert tmp_path in controller.data_params.path.parents
