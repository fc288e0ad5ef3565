"""NetTesting: evaluation, prediction metrics, save -> load -> same numbers, and
classifying a folder of new images to CSV."""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from pathlib import Path

import keras
import numpy as np
import pytest
from PIL import Image

from convonet.core.events import Event, Notice
from convonet.core.model import ModelError, NetModel, load_model, save_model
from convonet.core.params import DataParams, HyperParams
from convonet.core.testing import (
    NetTesting,
    preprocess_image,
    write_classifications_csv,
)
from convonet.core.training import NetTraining

SIZE = 12


@dataclass
class TinySet:
    x: np.ndarray
    y: np.ndarray
    class_names: list[str] = field(default_factory=list)

    @property
    def image_shape(self) -> tuple[int, int, int]:
        return tuple(self.x.shape[1:])  # type: ignore[return-value]

    @property
    def num_classes(self) -> int:
        return len(self.class_names)


def make_set(n_per_class: int = 60, seed: int = 0) -> TinySet:
    rng = np.random.default_rng(seed)
    y = np.repeat(np.arange(3), n_per_class).astype(np.int64)
    x = rng.normal(0.0, 0.3, (len(y), SIZE, SIZE, 1)).astype(np.float32)
    for i, c in enumerate(y):
        x[i, c * 4:(c + 1) * 4, :, 0] += 1.0
    return TinySet(np.clip(x, 0, 1), y, ["top", "middle", "bottom"])


@pytest.fixture(scope="module")
def trained() -> tuple[keras.Model, TinySet]:
    train = make_set()
    hp = HyperParams().edit(num_filters=4, num_units=16, epochs=4, batch_size=16,
                            init_rate=0.05, seed=3)
    model = NetModel(hp).build(train.image_shape, 3)
    NetTraining(model, hp).train(train)
    return model, make_set(n_per_class=20, seed=1)


def test_evaluate_beats_chance(trained: tuple[keras.Model, TinySet]) -> None:
    model, test = trained
    ev = NetTesting(model).evaluate(test)
    assert ev.count == 60
    assert ev.accuracy > 0.6
    assert np.isfinite(ev.loss)


def test_predict_metrics(trained: tuple[keras.Model, TinySet], tmp_path: Path) -> None:
    model, test = trained
    pred = NetTesting(model).predict(test)
    assert pred.confusion.shape == (3, 3)
    assert int(pred.confusion.sum()) == len(test.y)
    assert pred.confusion.sum(axis=1).tolist() == [20, 20, 20]
    assert pred.accuracy == pytest.approx(np.trace(pred.confusion) / 60)
    assert pred.accuracy == pytest.approx(NetTesting(model).evaluate(test).accuracy)
    assert [r.support for r in pred.per_class] == [20, 20, 20]
    assert [r.name for r in pred.report_rows()][-2:] == ["macro avg", "weighted avg"]
    assert pred.macro.f1 == pytest.approx(np.mean([r.f1 for r in pred.per_class]))
    assert pred.probabilities.shape == (60, 3)
    conf_csv, report_csv = pred.to_csv(tmp_path / "cm.csv", tmp_path / "report.csv")
    cm_rows = list(csv.reader(conf_csv.open()))
    assert cm_rows[0] == ["true \\ predicted", "0 top", "1 middle", "2 bottom"]
    assert sum(int(v) for row in cm_rows[1:] for v in row[1:]) == 60
    assert len(list(csv.reader(report_csv.open()))) == 1 + 3 + 2


def test_most_confident_wrong() -> None:
    model = keras.Sequential([keras.Input((SIZE, SIZE, 1)), keras.layers.Flatten(),
                              keras.layers.Dense(3, activation="softmax")])
    model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    test = make_set(n_per_class=10, seed=2)
    pred = NetTesting(model).predict(test)
    worst = pred.most_confident_wrong(5)
    wrong = np.flatnonzero(pred.y_true != pred.y_pred)
    assert set(worst) <= set(wrong.tolist())
    assert len(worst) == min(5, len(wrong))
    conf = pred.confidence[worst]
    assert list(conf) == sorted(conf, reverse=True)
    if len(wrong) > len(worst):
        others = np.setdiff1d(wrong, worst)
        assert pred.confidence[others].max() <= conf.min()


def test_save_load_evaluate_identical(trained: tuple[keras.Model, TinySet],
                                      tmp_path: Path) -> None:
    model, test = trained
    before = NetTesting(model).evaluate(test)
    path = save_model(model, tmp_path / "trained.keras", class_names=test.class_names)
    again = NetTesting(load_model(path)).evaluate(test)
    assert again == before
    np.testing.assert_array_equal(NetTesting(model).predict(test).probabilities,
                                  NetTesting(load_model(path)).predict(test).probabilities)


def test_mismatched_model_and_data(trained: tuple[keras.Model, TinySet]) -> None:
    model, test = trained
    four = TinySet(test.x, test.y, ["a", "b", "c", "d"])
    with pytest.raises(ModelError, match="3 classes.*4 classes"):
        NetTesting(model).evaluate(four)
    rgb = TinySet(np.repeat(test.x, 3, axis=3), test.y, test.class_names)
    with pytest.raises(ModelError, match="12x12x1.*12x12x3"):
        NetTesting(model).predict(rgb)


def _write_png(path: Path, band: int, mode: str = "L", size: int = 24) -> None:
    arr = np.zeros((size, size), dtype=np.uint8)
    step = size // 3
    arr[band * step:(band + 1) * step, :] = 255
    img = Image.fromarray(arr, mode="L")
    if mode != "L":
        img = img.convert(mode)
    img.save(path)


def test_preprocess_image_shapes(tmp_path: Path) -> None:
    p = tmp_path / "x.png"
    _write_png(p, 0, mode="RGBA")
    gray = preprocess_image(p, (SIZE, SIZE), "grayscale")
    assert gray.shape == (SIZE, SIZE, 1) and gray.dtype == np.float32
    assert 0.0 <= gray.min() and gray.max() <= 1.0
    assert preprocess_image(p, (6, 8), "rgb").shape == (6, 8, 3)
    wide = tmp_path / "wide.png"
    Image.fromarray(np.arange(20 * 30, dtype=np.uint16).reshape(20, 30) * 100).save(wide)
    assert preprocess_image(wide, (SIZE, SIZE), "grayscale").max() <= 1.0


def test_classify_folder_writes_one_row_per_image(trained: tuple[keras.Model, TinySet],
                                                  tmp_path: Path) -> None:
    model, test = trained
    folder = tmp_path / "new"
    folder.mkdir()
    for i in range(6):
        _write_png(folder / f"img{i}.png", i % 3, mode="RGB" if i == 4 else "L")
    (folder / "notes.txt").write_text("not an image")
    (folder / "broken.png").write_bytes(b"\x89PNG not really")
    dp = DataParams().edit(image_size=[SIZE, SIZE], color_mode="grayscale")
    notices: list[Event] = []
    rows = NetTesting(model).classify(folder, dp, test.class_names, report=notices.append)
    assert [r.path.name for r in rows] == [f"img{i}.png" for i in range(6)]
    assert any(isinstance(n, Notice) and "broken.png" in n.text for n in notices)
    for r in rows:
        assert r.name == test.class_names[r.index]
        assert len(r.top3) == 3 and r.top3[0] == (r.index, r.name, r.confidence)
        assert 0.0 <= r.confidence <= 1.0
    assert sum(r.index == i % 3 for i, r in enumerate(rows)) >= 4
    out = write_classifications_csv(rows, tmp_path / "out" / "classes.csv")
    lines = list(csv.DictReader(out.open()))
    assert len(lines) == 6
    assert lines[0]["file"].endswith("img0.png") and lines[0]["class"] == rows[0].name
    one = NetTesting(model).classify(folder / "img1.png", dp, test.class_names)
    assert len(one) == 1 and one[0].index == rows[1].index


def test_classify_refuses_wrong_image_settings(trained: tuple[keras.Model, TinySet],
                                               tmp_path: Path) -> None:
    model, _ = trained
    dp = DataParams().edit(image_size=[28, 28], color_mode="rgb")
    with pytest.raises(ModelError, match="12x12x1.*28x28x3"):
        NetTesting(model).classify(tmp_path, dp, ["a", "b", "c"])
