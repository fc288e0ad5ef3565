"""The training screen's info line while a resumed run trains: the run's own hyper params,
not the session's (which may have changed since the run started)."""

from __future__ import annotations

from convonet.core.params import HyperParams
from convonet.tui.session import Session
from convonet.tui.training_text import info_line


def test_the_info_line_of_a_resumed_run_shows_the_runs_hyper_params() -> None:
    session = Session(hyper_params=HyperParams.new().edit(epochs=1, batch_size=64,
                                                          init_rate=0.02))
    assert "1 epochs, batch 64, lr 0.02" in info_line(session, 0, running=False,
                                                      validation=False)
    run_config = HyperParams.new().edit(epochs=20, batch_size=32, init_rate=0.05).first()
    line = info_line(session, 0, running=True, validation=False, config=run_config)
    assert "20 epochs, batch 32, lr 0.05" in line and "1 epochs" not in line
