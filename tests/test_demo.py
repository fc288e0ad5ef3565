"""The bundled demo set: written once, complete, loadable with its own params."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from convonet.core import demo
from convonet.core.data import DataPrep
from convonet.core.params import DataParams, HyperParams


@pytest.fixture(scope="module")
def demo_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return demo.ensure_demo(tmp_path_factory.mktemp("demo"))


def _count(folder: Path) -> dict[str, int]:
    return {d.name: len(list(d.glob("*.png"))) for d in sorted(folder.iterdir())}


def test_demo_writes_ten_class_folders_split_80_20(demo_dir: Path) -> None:
    train, test = _count(demo_dir / "train"), _count(demo_dir / "test")
    assert list(train) == [str(c) for c in range(10)] == list(test)
    assert sum(train.values()) + sum(test.values()) == 1797  # scikit-learn's digits
    assert 350 <= sum(test.values()) <= 370
    for c in train:
        share = test[c] / (train[c] + test[c])
        assert 0.17 <= share <= 0.23, (c, share)
    im = Image.open(next((demo_dir / "train" / "3").glob("*.png")))
    assert im.mode == "L" and im.size == (28, 28)
    pixels = np.asarray(im)
    assert pixels.max() > 200 and pixels.min() == 0  # scaled to 0..255, strokes on black


def test_demo_params_load_and_point_at_the_folders(demo_dir: Path) -> None:
    data_json, hyper_json = demo.demo_params_paths(demo_dir)
    raw = json.loads(data_json.read_text())
    assert raw["train_dir"] == "train" and raw["test_dir"] == "test"
    dp = DataParams.load(data_json)
    assert dp.train_path == (demo_dir / "train").resolve()
    assert dp.test_path == (demo_dir / "test").resolve()
    assert tuple(dp.image_size) == (28, 28) and dp.color_mode == "grayscale"
    hp = HyperParams.load(hyper_json)
    first = hp.first()
    assert first["epochs"] <= 10 and first["batch_size"] == 32
    assert 2 <= hp.grid_size() <= 8  # a small tuning grid


def test_demo_loads_as_a_dataset(demo_dir: Path, tmp_path: Path) -> None:
    dp = DataParams.load(demo.demo_params_paths(demo_dir)[0])
    prep = DataPrep(dp, cache_dir=tmp_path / "cache")
    train = prep.prep_data("train")
    test = prep.prep_data("test", train_classes=train.class_names)
    assert train.num_classes == 10 and train.image_shape == (28, 28, 1)
    assert len(train) + len(test) == 1797
    assert train.skipped == [] and train.warnings == [] and test.warnings == []


def test_demo_is_written_once(demo_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    marker = demo_dir / demo._MARKER
    stamp = marker.stat().st_mtime_ns

    def no_write(*args: object, **kwargs: object) -> None:
        raise AssertionError("the demo was written again")

    monkeypatch.setattr("sklearn.datasets.load_digits", no_write)
    assert demo.ensure_demo(demo_dir) == demo_dir
    assert marker.stat().st_mtime_ns == stamp


def test_a_half_written_demo_is_written_again(tmp_path: Path) -> None:
    folder = tmp_path / "demo"
    (folder / "train" / "0").mkdir(parents=True)
    (folder / "train" / "0" / "partial.png").write_bytes(b"half")
    (folder / "keep.txt").write_text("the user's own file")
    assert not demo.is_complete(folder)
    demo.ensure_demo(folder)
    assert demo.is_complete(folder)
    assert not (folder / "train" / "0" / "partial.png").exists()
    assert (folder / "keep.txt").read_text() == "the user's own file"


def test_default_folder_follows_the_environment(tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CONVONET_DATA_DIR", str(tmp_path / "data"))
    assert demo.default_demo_dir() == tmp_path / "data" / "demo"
