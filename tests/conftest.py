"""Shared fixtures of the TUI tests: an app with fixed labels and no demo set needed."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from convonet.core.params import DataParams, HyperParams
from convonet.core.state import Controller

#: A fixed header label, so tests never import Keras to find the device.
BACKEND_LABEL = "tensorflow · CPU"


@pytest.fixture
def make_app(tmp_path: Path) -> Callable[..., Any]:
    """Build a ``ConvonetApp`` on a fresh controller, its results in ``tmp_path``."""
    from convonet.tui.app import ConvonetApp

    def make(app_class: type[ConvonetApp] = ConvonetApp,
             controller: Controller | None = None, **kwargs: Any) -> ConvonetApp:
        kwargs.setdefault("backend_label", BACKEND_LABEL)
        kwargs.setdefault("results_dir", tmp_path / "results")
        return app_class(controller=controller or Controller(), **kwargs)

    return make


@pytest.fixture
def named_params_controller() -> Controller:
    """Default params that carry the demo's file names (nothing is read from disk)."""
    return Controller(
        data_params=DataParams(path="demo_data_params.json"),
        hyper_params=HyperParams(path="demo_hyper_params.json"),
    )


@pytest.fixture
def wait_for_tasks() -> Callable[..., Any]:
    """``await wait_for_tasks(pilot)``: every worker done and its messages handled."""

    async def wait(pilot: Any) -> None:
        await pilot.app.workers.wait_for_complete()
        await pilot.pause()

    return wait


@pytest.fixture(scope="session")
def demo_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The bundled demo set (train/, test/, its params JSON), written once per test run."""
    from convonet.core.demo import ensure_demo

    return ensure_demo(tmp_path_factory.mktemp("demo"))
