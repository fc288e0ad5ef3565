"""Class names: numbered folders that sort as text warn with the index -> folder table (the
order stays Keras's), headless confusion matrices are labelled by class name, and a model
whose classes differ from the data's is called "the model's classes"."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from conftest import wait_for
from PIL import Image
from textual.widgets import Static

from convonet.cli import main
from convonet.core.data import DataError, DataPrep, text_order_warning
from convonet.core.events import Event, Notice
from convonet.core.params import DataParams, HyperParams
from convonet.tui.session import Session

#: Folders 0..11: as text they sort 0, 1, 10, 11, 2, ..., 9.
NUMBERED = [str(k) for k in range(12)]
TEXT_ORDER = sorted(NUMBERED)
TINY = {"epochs": 1, "num_filters": 2, "num_units": 8, "batch_size": 32,
        "init_rate": 0.05}


def make_tree(root: Path, names: list[str], per_class: int, size: int = 12,
              seed: int = 0) -> Path:
    """One folder per class; class k (in ``names``' order) lights pixel row k."""
    rng = np.random.default_rng(seed)
    for k, name in enumerate(names):
        folder = root / name
        folder.mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            pixels = rng.random((size, size)) * 60
            pixels[k % size, :] = 255
            Image.fromarray(pixels.astype(np.uint8), "L").save(folder / f"{i}.png")
    return root


def numbered_params(tmp_path: Path, test_names: list[str] | None = None) -> Path:
    make_tree(tmp_path / "digits" / "train", NUMBERED, per_class=6)
    make_tree(tmp_path / "digits" / "test", test_names or NUMBERED, per_class=2, seed=1)
    return DataParams({"train_dir": "train", "test_dir": "test", "image_size": [12, 12],
                       "color_mode": "grayscale"}).save(
        tmp_path / "digits" / "digits_data_params.json")


@pytest.fixture(autouse=True)
def cache_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CONVONET_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("CONVONET_RESULTS_DIR", str(tmp_path / "results"))


# ---- the warning, in the core ------------------------------------------------------------
def test_numbered_folders_in_text_order_warn_with_the_index_table(tmp_path: Path) -> None:
    data = DataParams.load(numbered_params(tmp_path))
    events: list[Event] = []
    ds = DataPrep(data).prep_data("train", events.append)
    assert ds.class_names == TEXT_ORDER  # Keras's order, unchanged
    notices = [e.text for e in events if isinstance(e, Notice) and "numbered" in e.text]
    assert len(notices) == 1, [e for e in events if isinstance(e, Notice)]
    text = notices[0]
    assert "ordered as text" in text and str(data.train_path) in text
    table = ", ".join(f"{i} -> {name}" for i, name in enumerate(TEXT_ORDER))
    assert f"index -> folder: {table}." in text
    assert "2 -> 10" in text and "leading zeros" in text
    # A cached load warns again: the warning comes from the folder names, not the decode.
    again: list[Event] = []
    assert DataPrep(data).prep_data("train", again.append).from_cache
    assert any(isinstance(e, Notice) and e.text == text for e in again)


@pytest.mark.parametrize(("names", "warns"), [
    (["0", "1", "2", "3"], False),
    ([f"{k:02d}" for k in range(12)], False),  # leading zeros: both orders agree
    (["cat", "dog", "zebra"], False),
    (["1", "10", "2"], True),
    (["img1", "img10", "img2"], True),
])
def test_which_names_warn(names: list[str], warns: bool) -> None:
    assert (text_order_warning(sorted(names)) is not None) == warns


def test_headless_shows_the_warning_on_stderr_and_in_json(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    params = numbered_params(tmp_path)
    hyper = HyperParams().edit(**TINY).save(tmp_path / "tiny.json")
    assert main(["train", "--data-params", str(params), "--hyper-params", str(hyper),
                 "--no-validation", "--json"]) == 0
    captured = capsys.readouterr()
    err = " ".join(captured.err.split())  # rich wraps long lines at the terminal's width
    assert "warning: the class folders in" in err
    assert "0 -> 0, 1 -> 1, 2 -> 10, 3 -> 11, 4 -> 2" in err
    out = json.loads(captured.out)
    assert out["class_names"] == TEXT_ORDER
    assert any("2 -> 10" in notice for notice in out["notices"])


async def test_the_data_screen_shows_the_warning(make_app: Any, tmp_path: Path) -> None:
    params = DataParams.load(numbered_params(tmp_path))
    app = make_app(session=Session(data_params=params))
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("2", "t")
        await app.workers.wait_for_complete()
        await pilot.pause()
        assert app.session.train_set is not None
        text = str(app.screen.query_one("#set-train .set-warnings", Static).render())
        assert "ordered as text" in text and "2 -> 10" in text


# ---- headless predict: rows and columns named ------------------------------------------
@pytest.fixture
def trained_numbered(tmp_path: Path, capsys: pytest.CaptureFixture[str]
                     ) -> tuple[Path, Path, Path]:
    """A model trained on the numbered folders: (data params, results folder, model)."""
    params = numbered_params(tmp_path)
    hyper = HyperParams().edit(**TINY).save(tmp_path / "tiny.json")
    results = tmp_path / "results"
    assert main(["train", "--data-params", str(params), "--hyper-params", str(hyper),
                 "--no-validation", "--results-dir", str(results), "--json"]) == 0
    model = Path(json.loads(capsys.readouterr().out)["model"])
    return params, results, model


def test_predict_names_rows_and_columns_by_class(
        trained_numbered: tuple[Path, Path, Path], capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    params, results, _ = trained_numbered
    monkeypatch.setenv("COLUMNS", "250")  # long tmp paths stay on one line
    assert main(["predict", "--data-params", str(params), "--results-dir", str(results)]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    header = next(line for line in lines if line.startswith("true \\ pred"))
    assert header.split()[3:] == [*TEXT_ORDER, "n"]  # columns: the class names
    start = lines.index(header) + 1
    rows = [line.split()[0] for line in lines[start:start + len(TEXT_ORDER)]]
    assert rows == TEXT_ORDER  # rows: the class names
    # The per-class report keeps index and name in columns of their own.
    report = [[cell.strip() for cell in line.split("│")[1:3]] for line in lines
              if line.startswith("│")]
    assert report[:len(TEXT_ORDER)] == [[str(i), name] for i, name in enumerate(TEXT_ORDER)]

    status = main(["predict", "--data-params", str(params), "--results-dir", str(results),
                   "--json"])
    data = json.loads(capsys.readouterr().out)
    assert status == 0 and data["class_names"] == TEXT_ORDER
    by_name = data["confusion_by_name"]
    assert list(by_name) == TEXT_ORDER and all(list(r) == TEXT_ORDER for r in by_name.values())
    for i, true in enumerate(TEXT_ORDER):
        for j, pred in enumerate(TEXT_ORDER):
            assert by_name[true][pred] == data["confusion"][i][j]
    assert sum(by_name["10"].values()) == 2  # folder "10" (index 2) holds two test images

    # classify names the classes too (no "2 10" for index 2, folder 10).
    folder = params.parent / "test" / "10"
    assert main(["classify", str(folder), "--data-params", str(params),
                 "--results-dir", str(results)]) == 0
    lines = capsys.readouterr().out.splitlines()
    cells = [[c.strip() for c in line.split("│")[1:3]] for line in lines
             if line.startswith("│")]
    assert len(cells) == 2 and all(c[1] in TEXT_ORDER for c in cells), cells


# ---- the model's classes, not the training set's ----------------------------------------
def test_headless_names_the_models_classes(
        trained_numbered: tuple[Path, Path, Path], tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    _, _, model = trained_numbered
    renamed = [f"n{k:02d}" for k in range(12)]
    other = tmp_path / "other"
    make_tree(other / "test", renamed, per_class=1)
    make_tree(other / "train", renamed, per_class=1)
    other_params = DataParams({"train_dir": "train", "test_dir": "test",
                               "image_size": [12, 12]}).save(other / "other_data_params.json")
    assert main(["evaluate", "--data-params", str(other_params), "--model", str(model)]) == 0
    err = " ".join(capsys.readouterr().err.split())
    assert "test class names differ from the model's classes" in err
    assert "0: 0 <- n00" in err and "2: 10 <- n02" in err
    assert "training" not in err

    fewer = tmp_path / "fewer"
    make_tree(fewer / "test", ["a", "b", "c"], per_class=1)
    fewer_params = DataParams({"test_dir": "test", "image_size": [12, 12]}).save(
        fewer / "fewer_data_params.json")
    assert main(["predict", "--data-params", str(fewer_params), "--model", str(model)]) == 2
    err = " ".join(capsys.readouterr().err.split())
    assert "the test set has 3 class folders" in err
    assert f"but the model's classes are 12 ({', '.join(TEXT_ORDER)})" in err
    assert "training set" not in err


def test_the_core_message_still_names_the_training_set_for_a_training_set(
        tmp_path: Path) -> None:
    data = DataParams.load(numbered_params(tmp_path, test_names=["a", "b"]))
    with pytest.raises(DataError, match="but the training set has 12"):
        DataPrep(data).prep_data("test", train_classes=TEXT_ORDER)


async def test_the_testing_screen_names_the_models_classes(make_app: Any,
                                                           tmp_path: Path) -> None:
    """A loaded model trained on other folders than the training set loaded now: the
    prediction is named with the model's classes, and the note says so."""
    from convonet.core.model import NetModel
    from convonet.core.training import NetTraining

    data = DataParams.load(numbered_params(tmp_path))
    train = DataPrep(data).prep_data("train")
    test = DataPrep(data).prep_data("test", train_classes=train.class_names)
    hyper = HyperParams().edit(**TINY)
    model = NetModel(hyper).build(train.image_shape, train.num_classes, train.class_names)
    NetTraining(model, hyper).train(train)
    model_names = [f"class {name}" for name in train.class_names]
    controller = Session(train_set=train, test_set=test, model=model,
                         class_names=model_names)
    app = make_app(session=controller)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("6", "p")
        await wait_for(pilot, lambda: controller.prediction is not None
                       and not getattr(app.screen, "_busy", ""), "the prediction")
        assert controller.prediction is not None
        assert controller.prediction.class_names == model_names
        note = str(app.screen.query_one("#matching-note", Static).render())
        assert "the model's classes" in note and "training" not in note
        assert "2 class 10 ← 10" in note
