"""NetModel: the seed's parameter count, the summary as data, save/load and fit checks."""

from __future__ import annotations

import zipfile
from pathlib import Path

import keras
import numpy as np
import pytest

from convonet.core.model import (
    ModelError,
    NetModel,
    build_model,
    check_fits,
    classes_path,
    format_bytes,
    load_model,
    model_summary,
    read_class_names,
    save_model,
)
from convonet.core.params import HyperParams

ROOT = Path(__file__).resolve().parents[1]
SMALL = {"num_filters": 4, "num_units": 16}


@pytest.fixture(scope="module")
def small_model() -> keras.Model:
    return NetModel(HyperParams().edit(**SMALL)).build((12, 12, 1), 3)


def test_seed_mnist_model_has_818026_params() -> None:
    hp = HyperParams.load(ROOT / "app_input" / "mnist_hyper_params.json")
    net = NetModel(hp)
    model = net.build((28, 28, 1), 10)
    assert model.count_params() == 818_026
    summary = net.summary()
    assert summary.total_params == 818_026
    assert summary.trainable_params == 818_026
    assert summary.non_trainable_params == 0
    assert summary.total_bytes == 818_026 * 4
    assert summary.totals()[0] == ("Total params", 818_026, "3.12 MB")


def test_summary_rows_are_data(small_model: keras.Model) -> None:
    summary = model_summary(small_model)
    types = [row.type for row in summary.rows]
    assert types == ["Conv2D", "MaxPooling2D", "Conv2D", "MaxPooling2D", "Flatten", "Dense",
                     "Dropout", "Dense"]
    assert summary.rows[0].output_shape == "(None, 12, 12, 4)"
    assert summary.rows[0].params == 3 * 3 * 1 * 4 + 4
    assert summary.rows[4].output_shape == "(None, 36)"
    assert summary.rows[-1].output_shape == "(None, 3)"
    assert sum(row.params for row in summary.rows) == summary.total_params
    assert summary.input_shape == (12, 12, 1)
    assert summary.num_classes == 3
    assert all(row.name for row in summary.rows)


def test_format_bytes() -> None:
    assert format_bytes(512) == "512 B"
    assert format_bytes(2048) == "2.00 KB"


def test_build_is_seeded() -> None:
    hp = HyperParams().edit(**SMALL)
    a = NetModel(hp).build((8, 8, 1), 2).get_weights()
    b = NetModel(hp).build((8, 8, 1), 2).get_weights()
    assert all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))


def test_build_rejects_impossible_shapes() -> None:
    net = NetModel(HyperParams().edit(**SMALL, kernel_size=5))
    with pytest.raises(ModelError, match="kernel_size 5"):
        net.build((4, 4, 1), 2)
    with pytest.raises(ModelError, match="at least 2 classes"):
        net.build((8, 8, 1), 1)


def test_no_model_yet_is_a_clear_error() -> None:
    with pytest.raises(ModelError, match="no model yet"):
        NetModel(HyperParams()).summary()


def test_check_fits_names_both_sides(small_model: keras.Model) -> None:
    check_fits(small_model, (12, 12, 1), 3)
    with pytest.raises(ModelError) as info:
        check_fits(small_model, (28, 28, 3), 10)
    text = str(info.value)
    assert "12x12x1" in text and "28x28x3" in text
    assert "3 classes" in text and "10 classes" in text
    with pytest.raises(ModelError, match="predicts 3 classes but the data has 4"):
        check_fits(small_model, (12, 12, 1), 4)


def test_save_load_round_trip_with_class_names(small_model: keras.Model,
                                               tmp_path: Path) -> None:
    target = save_model(small_model, tmp_path / "net", class_names=["a", "b", "c"])
    assert target == tmp_path / "net.keras"
    assert read_class_names(target) == ["a", "b", "c"]
    assert [p.name for p in tmp_path.iterdir() if ".tmp" in p.name] == []
    loaded = load_model(target)
    x = np.random.default_rng(0).random((5, 12, 12, 1), dtype=np.float32)
    np.testing.assert_array_equal(small_model.predict(x, verbose=0),
                                  loaded.predict(x, verbose=0))
    net = NetModel.load(target)
    assert net.class_names == ["a", "b", "c"]
    # Saving again without names removes the stale sidecar.
    save_model(small_model, target)
    assert not classes_path(target).exists()
    assert read_class_names(target) is None


def test_failed_save_keeps_previous_file(small_model: keras.Model, tmp_path: Path,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    target = save_model(small_model, tmp_path / "keep.keras")
    before = target.read_bytes()

    def broken_save(self: keras.Model, path: str, *args: object, **kwargs: object) -> None:
        Path(path).write_bytes(b"PK\x03\x04half")
        raise OSError("disk full")

    monkeypatch.setattr(keras.Model, "save", broken_save)
    with pytest.raises(ModelError, match="disk full"):
        save_model(small_model, target)
    assert target.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["keep.keras"]


def test_save_refuses_other_suffix(small_model: keras.Model, tmp_path: Path) -> None:
    with pytest.raises(ModelError, match=r"must end in \.keras"):
        save_model(small_model, tmp_path / "net.h5")


def test_load_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="not found") as info:
        load_model(tmp_path / "nope.keras")
    assert "nope.keras" in str(info.value)


def test_load_not_a_keras_file(tmp_path: Path) -> None:
    bad = tmp_path / "notes.keras"
    bad.write_text("hello")
    with pytest.raises(ModelError, match="is not a Keras model file") as info:
        load_model(bad)
    assert str(bad) in str(info.value)
    other_zip = tmp_path / "other.keras"
    with zipfile.ZipFile(other_zip, "w") as zf:
        zf.writestr("readme.txt", "x")
    with pytest.raises(ModelError, match="no config.json"):
        load_model(other_zip)
    with pytest.raises(ModelError, match="is a folder"):
        load_model(tmp_path)


def test_load_truncated_file(small_model: keras.Model, tmp_path: Path) -> None:
    good = save_model(small_model, tmp_path / "good.keras")
    data = good.read_bytes()
    cut = tmp_path / "cut.keras"
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(ModelError, match="truncated") as info:
        load_model(cut)
    assert "cut.keras" in str(info.value)


def test_load_refuses_lambda_layer(tmp_path: Path) -> None:
    model = keras.Sequential([keras.Input((4,)), keras.layers.Lambda(lambda t: t * 2.0),
                              keras.layers.Dense(2, activation="softmax")])
    model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
    path = tmp_path / "lambda.keras"
    model.save(path)
    with pytest.raises(ModelError, match="Lambda") as info:
        load_model(path)
    assert "safe_mode" in str(info.value) and "lambda.keras" in str(info.value)


def test_build_model_signature_is_unchanged() -> None:
    cfg = HyperParams().edit(**SMALL).first()
    model = build_model(cfg, (8, 8, 1), 2)
    assert model.output_shape == (None, 2)
