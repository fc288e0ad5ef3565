"""One default model file for the app, headless ``train``, a resumed run and the commands
that read it back; ``train`` never replaces a model silently; same-named params files in
different folders keep separate models. Real tiny trainings on the demo set."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path
from typing import Any

import pytest
from conftest import wait_for
from task_helpers import train
from textual.widgets import Input

from convonet.cli import main
from convonet.core import records
from convonet.core.demo import demo_params_paths
from convonet.core.events import CancelToken, EpochEnd, Event
from convonet.core.model_files import default_model_path, model_name, similar_models
from convonet.core.params import DataParams, HyperParams
from convonet.core.runs import RunFolder
from convonet.tui.session import Session
from convonet.tui.widgets.file_picker import FilePicker

TINY = {"epochs": 1, "num_filters": 2, "num_units": 8, "batch_size": 64}


@pytest.fixture
def demo(demo_folder: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
         ) -> tuple[Path, Path]:
    """The demo's data params and a tiny model's hyper params; caches in tmp_path."""
    monkeypatch.setenv("CONVONET_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("CONVONET_RESULTS_DIR", str(tmp_path / "elsewhere"))
    data, hyper = demo_params_paths(demo_folder)
    return data, HyperParams.load(hyper).edit(**TINY).save(tmp_path / "tiny_hyper.json")


def run_json(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, dict[str, Any]]:
    status = main([*argv, "--json"])
    return status, json.loads(capsys.readouterr().out)


def params_copy(data_json: Path, folder: Path) -> Path:
    """The demo's data params under the same file name in another folder (absolute dirs)."""
    params = DataParams.load(data_json)
    copy = params.edit(train_dir=str(params.train_path), test_dir=str(params.test_path))
    return copy.save(folder / data_json.name)


# ---- the rule, in the core --------------------------------------------------------------
def test_the_default_name_is_readable_and_names_the_params_folder(tmp_path: Path) -> None:
    a = tmp_path / "a" / "mnist_data_params.json"
    b = tmp_path / "b" / "mnist_data_params.json"
    name_a, name_b = model_name(a), model_name(b)
    assert re.fullmatch(r"mnist-[0-9a-f]{6}\.keras", name_a), name_a
    assert name_a != name_b, "same-named params files in two folders share one model"
    # Stable: the same file by a relative path, a DataParams or another run gives one name.
    rel = Path("a") / "mnist_data_params.json"
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(tmp_path)
        assert model_name(rel) == name_a
    assert model_name(DataParams(path=a)) == name_a == model_name(str(a))
    assert default_model_path(tmp_path / "r", a) == tmp_path / "r" / name_a
    # Unsaved params, or none, keep the plain name; "data_params.json" alone names nothing.
    assert model_name(None) == model_name(DataParams()) == "model.keras"
    assert model_name(tmp_path / "data_params.json").startswith("model-")


# ---- headless train: the default file, never replaced silently ----------------------------
def test_train_refuses_an_existing_model_before_loading_anything(
        demo: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    data, hyper = demo
    results = tmp_path / "results"
    common = ["--data-params", str(data), "--hyper-params", str(hyper),
              "--results-dir", str(results), "--no-validation"]
    status, out = run_json(capsys, "train", *common)
    assert status == 0
    model = Path(out["model"])
    assert model == default_model_path(results, data) and model.is_file()
    before = model.read_bytes()
    runs = RunFolder.find(results, "training")

    # The second train stops before any image is loaded, let alone an epoch trained.
    from convonet.core.data import DataPrep

    def no_loading(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("the training set was loaded before the refusal")

    with monkeypatch.context() as mp:
        mp.setattr(DataPrep, "prep_data", no_loading)
        assert main(["train", *common]) == 2
    err = capsys.readouterr().err.strip()
    assert err == (f"convonet: error: {model} already exists; give --model PATH to save this "
                   "model elsewhere, or --force to replace it")
    assert model.read_bytes() == before and RunFolder.find(results, "training") == runs

    # --force replaces it.
    status, out = run_json(capsys, "train", *common, "--force")
    assert status == 0 and Path(out["model"]) == model and model.read_bytes() != before
    # evaluate, with the same params and no --model, reads the default file.
    status, out = run_json(capsys, "evaluate", "--data-params", str(data),
                           "--results-dir", str(results))
    assert status == 0 and Path(out["model"]) == model


def test_same_named_params_in_two_folders_keep_two_models(
        demo: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data, hyper = demo
    results = tmp_path / "results"
    first = params_copy(data, tmp_path / "project-a")
    second = params_copy(data, tmp_path / "project-b")
    assert first.name == second.name
    models = []
    for params in (first, second):
        status, out = run_json(capsys, "train", "--data-params", str(params), "--hyper-params",
                               str(hyper), "--results-dir", str(results), "--no-validation")
        assert status == 0, "the second params file's model is not the first one's"
        models.append(Path(out["model"]))
    assert models[0] != models[1] and all(m.is_file() for m in models)
    for params, model in zip((first, second), models, strict=True):
        status, out = run_json(capsys, "predict", "--data-params", str(params),
                               "--results-dir", str(results))
        assert status == 0 and Path(out["model"]) == model
    # A third folder has no model yet: the error points at the ones there are.
    third = params_copy(data, tmp_path / "project-c")
    assert main(["evaluate", "--data-params", str(third), "--results-dir", str(results)]) == 2
    err = capsys.readouterr().err
    assert "no model there yet" in err and "--model" in err
    assert str(similar_models(results, third)[0]) in err


def test_demo_train_saves_to_the_same_default_and_refuses_to_replace_it(
        demo_folder: Path, demo: tuple[Path, Path], tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    data, _ = demo
    results = tmp_path / "results"
    argv = ["demo", "--train", "--epochs", "1", "--data-dir", str(demo_folder),
            "--results-dir", str(results)]
    status, out = run_json(capsys, *argv)
    assert status == 0 and Path(out["model"]) == default_model_path(results, data)
    assert main(argv) == 2  # refused before the demo's hyper params train again
    err = capsys.readouterr().err
    assert "already exists" in err and "--force" in err and "--model" in err


def stopped_train(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    """Headless train stopped by Ctrl+C right after its first epoch: its run folder."""
    from convonet import headless

    original = headless.Display.handle
    fired: list[bool] = []

    def handle(self: Any, event: Any) -> None:
        original(self, event)
        if isinstance(event, EpochEnd) and not fired:
            fired.append(True)
            raise KeyboardInterrupt

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(headless.Display, "handle", handle)
        status, out = run_json(capsys, "train", *argv)
    assert status == 130 and out["status"] == "stopped"
    return str(out["run_dir"])


def test_train_resume_saves_where_train_would_have_and_evaluate_finds_it(
        demo: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    data, hyper = demo
    hyper3 = HyperParams.load(hyper).edit(epochs=3).save(tmp_path / "three.json")
    results = tmp_path / "results"
    expected = default_model_path(results, data)
    argv = ("--data-params", str(data), "--hyper-params", str(hyper3),
            "--results-dir", str(results))
    run_dir = stopped_train(capsys, *argv)
    assert not expected.exists(), "a stopped training keeps its model in the run folder"

    # Resumed from another folder, without --results-dir: the run's own record decides.
    monkeypatch.chdir(tmp_path)
    status, out = run_json(capsys, "train", "--resume", run_dir)
    assert status == 0 and out["status"] == "finished"
    assert Path(out["model"]).resolve() == expected.resolve() and expected.is_file()
    status, out = run_json(capsys, "evaluate", "--data-params", str(data),
                           "--results-dir", str(results))
    assert status == 0 and Path(out["model"]).resolve() == expected.resolve()

    # Another stopped run of the same params: resuming it would replace that model, so it
    # is refused first, and the run stays resumable.
    second = stopped_train(capsys, *argv, "--force")
    assert main(["train", "--resume", second]) == 2
    err = capsys.readouterr().err
    assert "already exists" in err and "--force" in err and "--model" in err
    assert records.resume_problem(RunFolder.open(second)) is None


# ---- the app proposes the same file ------------------------------------------------------
async def picker_path(pilot: Any) -> Path:
    """Press s on the model screen and read the file the Save dialog proposes."""
    await pilot.press("3", "s")
    await wait_for(pilot, lambda: isinstance(pilot.app.screen, FilePicker), "the Save dialog")
    assert isinstance(pilot.app.screen, FilePicker)
    return Path(pilot.app.screen.query_one("#picker-path", Input).value)


async def test_the_app_saves_where_headless_train_does(
        make_app: Any, demo: tuple[Path, Path], tmp_path: Path, wait_for_tasks: Any) -> None:
    from convonet.core.data import DataPrep

    data, hyper = demo
    params = DataParams.load(data)
    train = DataPrep(params).prep_data("train")
    app = make_app(session=Session(data_params=params,
                                         hyper_params=HyperParams.load(hyper),
                                         train_set=train))
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.press("3", "i")
        await wait_for_tasks(pilot)
        proposed = await picker_path(pilot)
        assert proposed == default_model_path(app.results_dir, data).resolve()
        await pilot.press("enter")
        await wait_for_tasks(pilot)
        assert proposed.is_file()
    # ... and headless evaluate, with the same params, finds that file.
    assert main(["evaluate", "--data-params", str(data), "--results-dir",
                 str(app.results_dir)]) == 0


async def test_a_run_resumed_in_the_app_proposes_the_runs_model_file(
        make_app: Any, demo: tuple[Path, Path], tmp_path: Path, wait_for_tasks: Any) -> None:
    """The runs screen's resume hook: the model then belongs where its first training
    would have saved it, whatever data params the app holds now."""
    from convonet.core.data import DataPrep
    from convonet.core.model import NetModel

    data, hyper = demo
    params = DataParams.load(data)
    hp = HyperParams.load(hyper).edit(epochs=2)
    ds = DataPrep(params).prep_data("train", seed=hp.seed)
    cancel = CancelToken()

    def stop_after_one(event: Event) -> None:
        if isinstance(event, EpochEnd):
            cancel.cancel()

    results = tmp_path / "results"
    model = NetModel(hp).build(ds.image_shape, ds.num_classes, ds.class_names)
    run = train(model, hp, ds, False, results, params, report=stop_after_one,
                cancel=cancel).run
    assert run is not None and run.status == "stopped"
    other = params_copy(data, tmp_path / "another-project")  # what the app has loaded now
    app = make_app(session=Session(data_params=DataParams.load(other)),
                   results_dir=results)
    async with app.run_test(size=(100, 30)) as pilot:
        await app.resume_run(run.path)
        await wait_for(pilot,
                       lambda: app.session.history is not None and not app.tasks.running(),
                       "the resumed training to finish", timeout=120)
        assert app.session.history is not None and run.status == "finished"
        proposed = await picker_path(pilot)
        assert proposed.resolve() == default_model_path(results, data).resolve()
        assert proposed.resolve() != default_model_path(results, other).resolve()
        await pilot.press("escape")
        shutil.rmtree(run.path)  # the proposal no longer needs the run folder
        assert (await picker_path(pilot)).resolve() == proposed.resolve()
