"""Data params and hyper params: defaults, round trips and every bad input named."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from convonet.core.params import DataParams, HyperParams, ParamsError

ROOT = Path(__file__).resolve().parents[1]


def write(path: Path, data: object) -> Path:
    path.write_text(json.dumps(data) if not isinstance(data, str) else data)
    return path


# ---- defaults and the samples ----------------------------------------------------------
def test_new_hyper_params_have_every_seed_field() -> None:
    hp = HyperParams.new()
    for name in ("batch_size", "epochs", "init_rate", "decay", "momentum", "num_filters",
                 "kernel_size", "num_units", "dropout", "validation_split", "cv_folds",
                 "tuning_share", "patience", "class_weight", "seed"):
        assert name in hp.first()
    assert hp.first()["batch_size"] == 64
    assert hp.grid_size() == 1


def test_sample_mnist_hyper_params_give_the_seeds_32_combinations() -> None:
    hp = HyperParams.load(ROOT / "app_input" / "mnist_hyper_params.json")
    assert hp.grid_size() == 32
    assert hp.searched() == {"batch_size": [64, 80], "epochs": [5, 10],
                             "init_rate": [0.02, 0.01], "num_filters": [32, 50],
                             "num_units": [512, 700]}
    first = hp.first()
    assert (first["num_filters"], first["kernel_size"], first["num_units"]) == (32, 3, 512)
    assert hp.cv_folds == 3
    assert first["decay"] > 0


@pytest.mark.parametrize("name", ["mnist_hyper_params.json", "lung-hyper-params-1.json"])
def test_every_sample_hyper_params_file_loads(name: str) -> None:
    HyperParams.load(ROOT / "app_input" / name)


def test_lung_data_params_are_rgb_and_larger() -> None:
    # The sample points at a folder the user downloads, so only the content is checked.
    data = json.loads((ROOT / "app_input" / "lung-data-params-1.json").read_text())
    dp = DataParams(data)
    assert dp.color_mode == "rgb" and dp.channels == 3
    assert dp.image_size[0] > 28


# ---- round trips -------------------------------------------------------------------------
def test_hyper_params_round_trip(tmp_path: Path) -> None:
    hp = HyperParams.new().edit(batch_size="64,80", epochs=[5, 10], init_rate="0.02, 0.01",
                                class_weight="balanced", patience=3)
    path = hp.save(tmp_path / "hp.json")
    raw = json.loads(path.read_text())
    assert raw["batch_size"] == "64,80"  # the seed's csv style for several values
    assert raw["patience"] == 3
    again = HyperParams.load(path)
    assert again == hp
    assert again.grid_size() == 8


def test_data_params_relative_paths_resolve_against_the_json_folder(tmp_path: Path) -> None:
    (tmp_path / "sets" / "train").mkdir(parents=True)
    (tmp_path / "sets" / "test").mkdir()
    (tmp_path / "params").mkdir()
    path = write(tmp_path / "params" / "dp.json",
                 {"train_dir": "../sets/train", "test_dir": "../sets/test",
                  "image_size": [32, 32], "color_mode": "rgb"})
    dp = DataParams.load(path)
    assert dp.train_path == (tmp_path / "sets" / "train").resolve()
    # Saved elsewhere, relative paths are rewritten so they still point at the same folders.
    other = tmp_path / "elsewhere" / "dp.json"
    dp.save(other)
    assert DataParams.load(other).train_path == dp.train_path
    assert DataParams.load(other).image_size == (32, 32)


def test_save_is_atomic_when_writing_fails(tmp_path: Path, monkeypatch) -> None:
    path = HyperParams.new().save(tmp_path / "hp.json")
    before = path.read_text()

    def broken_fsync(fd: int) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("os.fsync", broken_fsync)
    with pytest.raises(OSError):
        HyperParams.new().edit(epochs=99).save(path)
    assert path.read_text() == before
    assert [p.name for p in tmp_path.iterdir()] == ["hp.json"]  # no temp file left behind


def test_apply_moves_the_chosen_combination_first() -> None:
    hp = HyperParams.new().edit(batch_size="64,80", num_units="512,700")
    best = hp.apply({"batch_size": 80, "num_units": 700})
    assert best.first()["batch_size"] == 80 and best.first()["num_units"] == 700
    assert best.grid_size() == hp.grid_size()


# ---- every bad input names the file, the field and what is expected --------------------
@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ('{"batch_size": 64,', "not valid JSON"),
        ('{"batch_size": 64 "epochs": 5}', "line 1, column"),
        ("", "is empty"),
        ("[1, 2]", "expected a JSON object"),
    ],
)
def test_malformed_files(tmp_path: Path, content: str, expected: str) -> None:
    path = write(tmp_path / "hp.json", content)
    with pytest.raises(ParamsError) as err:
        HyperParams.load(path)
    assert expected in str(err.value)
    assert str(path) in str(err.value)


def test_malformed_json_gives_line_and_column(tmp_path: Path) -> None:
    path = write(tmp_path / "hp.json", '{\n  "batch_size": 64,\n  "epochs": ,\n}')
    with pytest.raises(ParamsError, match=r"line 3, column 13"):
        HyperParams.load(path)


@pytest.mark.parametrize(
    ("field", "value", "expected"),
    [
        ("batch_size", 0, "out of range"),
        ("dropout", 1.5, "out of range"),
        ("epochs", -3, "out of range"),
        ("batch_size", "64,,80", "empty item"),
        ("batch_size", "sixty", "not a number"),
        ("batch_size", 64.5, "not a whole number"),
        ("batch_size", True, "true/false"),
        ("batch_size", None, "null"),
        ("batch_size", [], "empty list"),
        ("init_rate", 0, "out of range"),
        ("init_rate", "nan", "finite"),
        ("momentum", 1.0, "out of range"),
        ("cv_folds", 1, "out of range"),
        ("cv_folds", "3,5", "takes one value"),
        ("seed", [1, 2], "takes one value"),
        ("validation_split", 0, "out of range"),
        ("class_weight", "balance", "did you mean 'balanced'"),
        ("search", 3, "expected text"),
    ],
)
def test_bad_hyper_values_name_file_and_field(tmp_path: Path, field: str, value: object,
                                              expected: str) -> None:
    path = write(tmp_path / "hp.json", {field: value})
    with pytest.raises(ParamsError) as err:
        HyperParams.load(path)
    message = str(err.value)
    assert expected in message
    assert str(path) in message and f"'{field}'" in message
    assert err.value.field == field


def test_unknown_field_suggests_the_right_one(tmp_path: Path) -> None:
    path = write(tmp_path / "hp.json", {"num_unit": 512})
    with pytest.raises(ParamsError, match="did you mean 'num_units'") as err:
        HyperParams.load(path)
    assert err.value.field == "num_unit"


def test_edit_rejects_bad_values_and_keeps_the_original() -> None:
    hp = HyperParams.new()
    with pytest.raises(ParamsError, match="dropout"):
        hp.edit(dropout=1.5)
    assert hp.first()["dropout"] == 0.5


@pytest.mark.parametrize(
    ("data", "field", "expected"),
    [
        ({"train_dir": "nowhere"}, "train_dir", "does not exist"),
        ({"test_dir": "nowhere"}, "test_dir", "does not exist"),
        ({"image_size": [28]}, "image_size", "height,width"),
        ({"image_size": [0, 28]}, "image_size", "out of range"),
        ({"image_size": "big"}, "image_size", "got 'big'"),
        ({"color_mode": "grey"}, "color_mode", "grayscale / rgb"),
        ({"test_split": 1.5}, "test_split", "out of range"),
    ],
)
def test_bad_data_params(tmp_path: Path, data: dict, field: str, expected: str) -> None:
    path = write(tmp_path / "dp.json", data)
    with pytest.raises(ParamsError) as err:
        DataParams.load(path)
    assert expected in str(err.value)
    assert err.value.field == field and str(path) in str(err.value)


def test_data_params_path_pointing_at_a_file(tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_text("x")
    path = write(tmp_path / "dp.json", {"train_dir": "a.txt"})
    with pytest.raises(ParamsError, match="is a file, not a folder"):
        DataParams.load(path)


def test_missing_file_and_folder_instead_of_file(tmp_path: Path) -> None:
    with pytest.raises(ParamsError, match="file not found"):
        HyperParams.load(tmp_path / "none.json")
    with pytest.raises(ParamsError, match="is a folder"):
        DataParams.load(tmp_path)


def test_missing_fields_take_defaults(tmp_path: Path) -> None:
    path = write(tmp_path / "hp.json", {"epochs": "3,4"})
    hp = HyperParams.load(path)
    assert hp.epochs == (3, 4) and hp.batch_size == (64,)


def test_image_size_accepts_common_spellings() -> None:
    assert DataParams({"image_size": "64x48"}).image_size == (64, 48)
    assert DataParams({"image_size": 32}).image_size == (32, 32)
    assert DataParams({"image_size": "128,128"}).image_size == (128, 128)


def test_lenient_load_reports_missing_folders_per_field(tmp_path: Path) -> None:
    path = write(tmp_path / "dp.json", {"train_dir": "gone/train", "test_dir": "gone/test"})
    dp = DataParams.load(path, check=False)
    assert [p.field for p in dp.problems()] == ["train_dir", "test_dir"]
    assert all("does not exist" in str(p) and str(path) in str(p) for p in dp.problems())
    (tmp_path / "gone" / "train").mkdir(parents=True)
    (tmp_path / "gone" / "test").mkdir()
    assert dp.problems() == []
