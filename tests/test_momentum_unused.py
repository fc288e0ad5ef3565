"""``momentum`` changes nothing with adam or adamw: the params panel and form, the model
screen and tuning say so (it stays editable: another optimizer may use it again)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from conftest import make_tiny_set, wait_for

from convonet.core.events import Event, Notice
from convonet.core.params import HyperParams
from convonet.core.tuning import TuneStart
from convonet.tasks import execute
from convonet.tasks.tune import TuneSpec
from convonet.tui.model_text import config_text, stale_note

UNUSED = "unused with adam: momentum applies to optimizer sgd only"


def test_the_notes_say_when_momentum_changes_nothing() -> None:
    assert HyperParams().notes() == {}
    assert HyperParams({"optimizer": "adam"}).notes() == {"momentum": UNUSED}
    assert HyperParams({"optimizer": "adam,adamw", "momentum": "0.9,0.5"}).notes() == {
        "momentum": "unused with adam/adamw: momentum applies to optimizer sgd only; its 2 "
                    "values change nothing, so the grid trains each model 2 times alike "
                    "(give momentum one value)"}
    assert HyperParams({"optimizer": "sgd,adam", "momentum": "0.9,0.5"}).notes() == {
        "momentum": "unused with adam: the adam combinations that differ only in momentum "
                    "train alike"}
    assert HyperParams({"optimizer": "sgd,adam"}).notes() == {}  # sgd uses the one value


def test_the_model_screen_says_momentum_is_unused_and_ignores_its_changes() -> None:
    adam = HyperParams({"optimizer": "adam"})
    cfg = adam.first()
    assert config_text(cfg) == ("filters 32 · kernel 3 · units 512 · dropout 0.5 · adam · "
                                "momentum unused with adam")
    assert stale_note(cfg, adam.edit(momentum=0.5)) == ""
    assert "(momentum)" in stale_note(HyperParams().first(), HyperParams({"momentum": 0.5}))
    assert "(momentum, optimizer)" in stale_note(cfg, HyperParams({"momentum": 0.5}))


def test_a_search_over_momentum_with_adam_warns_before_it_starts(tmp_path: Path) -> None:
    ds = make_tiny_set(classes=2, per_class=6, size=8)
    hyper = HyperParams({"optimizer": "adam", "momentum": "0.9,0.5", "num_filters": 2,
                         "num_units": 4, "epochs": 1, "batch_size": 8, "cv_folds": 2,
                         "tuning_share": 1.0})
    events: list[Event] = []
    execute(TuneSpec(hyper_params=hyper, train_set=ds, results_dir=tmp_path), events.append)
    notices = [i for i, e in enumerate(events) if isinstance(e, Notice)]
    start = next(i for i, e in enumerate(events) if isinstance(e, TuneStart))
    assert notices and notices[0] < start
    notice = events[notices[0]]
    assert isinstance(notice, Notice)
    assert notice.text == (
        "Momentum 0.9,0.5 changes nothing with optimizer adam (momentum applies to sgd "
        "only): the grid trains each model 2 times alike; give momentum one value to "
        "search 2 times fewer combinations")


async def test_the_params_panel_and_form_mark_momentum_unused(make_app: Any) -> None:
    from textual.widgets import Input, Static

    from convonet.tui.screens.params import ParamsPanel
    from convonet.tui.session import Session
    from convonet.tui.widgets.params_form import FieldRow, ParamsForm

    app = make_app(session=Session(hyper_params=HyperParams({"optimizer": "adam"})))
    async with app.run_test(size=(100, 34)) as pilot:
        panel = app.screen.query_one("#panel-hyper", ParamsPanel)
        await wait_for(pilot, lambda: "momentum" in panel.plain, "the hyper params")
        assert "momentum 0.9  unused with adam" in panel.plain.splitlines()
        await pilot.press("E")
        await wait_for(pilot, lambda: isinstance(app.screen, ParamsForm), "the form")
        row = app.screen.query_one("#row-momentum", FieldRow)

        def warning() -> str:
            return str(row.query_one(".field-warning", Static).render())

        await wait_for(pilot, lambda: row.has_class("-warned"), "the momentum note")
        assert warning() == f"⚠ {UNUSED}"
        app.screen.query_one("#field-optimizer", Input).value = "sgd"
        await wait_for(pilot, lambda: not row.has_class("-warned"), "the note to go")
        assert warning() == ""
