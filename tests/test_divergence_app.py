"""The training screen shows a divergence: the notice while it trains, how it ended after."""

from __future__ import annotations

from typing import Any

from conftest import wait_for
from test_divergence import DIVERGENT
from textual.widgets import Static

from convonet.tui.screens.training import TrainingScreen
from convonet.tui.session import Session


async def test_the_training_screen_shows_the_divergence(make_app: Any, tiny_set: Any,
                                                        wait_for_tasks: Any) -> None:
    session = Session(train_set=tiny_set())
    app = make_app(session=session)
    async with app.run_test(size=(120, 40)) as pilot:
        session.hyper_params = session.hyper_params.edit(**DIVERGENT)
        await pilot.press("3", "i")
        await wait_for_tasks(pilot)
        await wait_for(pilot, lambda: session.model is not None, "the model")
        await pilot.press("4")
        screen = app.screen
        assert isinstance(screen, TrainingScreen)
        await pilot.press("t")

        def notice() -> str | None:
            return next((n.message for n in app._notifications
                         if "Training diverged" in n.message), None)

        await wait_for(pilot, notice, "the divergence notice")
        text = notice()
        assert text is not None
        assert text.startswith("Training diverged at epoch 3: training accuracy stayed at "
                               "chance")
        assert "lower the learning rate (init_rate, now 0.3) or turn on batch_norm" in text
        await wait_for(pilot, lambda: screen._job is None, "the training to end")
        line = str(screen.query_one("#progress-line", Static).render())
        assert line.startswith("Diverged at epoch 3 of 6: training accuracy stayed at chance")
        history = session.history
        assert history is not None and history.diverged_epoch == 3
