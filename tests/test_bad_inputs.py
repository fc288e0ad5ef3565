"""Bad inputs, all of them: one table per layer (params, dataset, model, tuning, saving).

Each case checks that the message names the file, field or folder and says what to do;
a representative few run in the app and check that an error dialog or notice appears while
the controller keeps what it had (params, dataset, model).
"""

from __future__ import annotations

import errno
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from conftest import wait_for
from PIL import Image

import convonet.core.data.prep as data_prep
from convonet.core.data import DataError, DataPrep, check_memory, estimate_bytes, human_bytes
from convonet.core.params import DataParams, HyperParams, ParamsError
from convonet.tui.dialogs import ErrorDialog
from convonet.tui.session import Session


@pytest.fixture(autouse=True)
def cache_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Each test decodes into its own dataset cache, never the user's."""
    folder = tmp_path / "cache"
    monkeypatch.setenv("CONVONET_CACHE_DIR", str(folder))
    return folder


def png(path: Path, size: tuple[int, int] = (8, 8), mode: str = "L", seed: int = 0) -> Path:
    """A small random image (size is width, height)."""
    rng = np.random.default_rng(seed)
    w, h = size
    path.parent.mkdir(parents=True, exist_ok=True)
    bands = {"L": 1, "RGB": 3, "RGBA": 4, "CMYK": 4}[mode]
    pixels = (rng.random((h, w, bands)) * 255).astype(np.uint8)
    im = Image.fromarray(pixels[..., 0] if bands == 1 else pixels,
                         "L" if bands == 1 else ("RGBA" if mode == "CMYK" else mode))
    if mode == "CMYK":
        im = im.convert("RGB").convert("CMYK")
    im.save(path)
    return path


def good_set(root: Path, classes: tuple[str, ...] = ("cats", "dogs"), per_class: int = 3,
             size: tuple[int, int] = (8, 8)) -> Path:
    for c, name in enumerate(classes):
        for i in range(per_class):
            png(root / name / f"{i}.png", size, seed=10 * c + i)
    return root


def prep(root: Path, cache: Path, **kwargs: Any) -> DataPrep:
    params = DataParams({"train_dir": str(root), "image_size": [8, 8]})
    return DataPrep(params, cache_dir=cache, workers="serial", **kwargs)


# =========================================================================================
# params files
# =========================================================================================
def _write(text: str) -> Callable[[Path], Path]:
    def make(folder: Path) -> Path:
        path = folder / "bad.json"
        path.write_text(text)
        return path
    return make


def _missing(folder: Path) -> Path:
    return folder / "nowhere.json"


def _a_folder(folder: Path) -> Path:
    (folder / "params.json").mkdir()
    return folder / "params.json"


#: (case id, params kind, make the file, field named or None, words of the message)
PARAMS_CASES: list[tuple[str, str, Callable[[Path], Path], str | None, list[str]]] = [
    ("malformed", "hyper", _write('{"batch_size": 32,'), None,
     ["is not valid JSON", "line 1"]),
    ("empty", "hyper", _write(""), None, ["is empty", "expected a JSON object"]),
    ("whitespace", "data", _write("  \n\t"), None, ["is empty", "expected a JSON object"]),
    ("a list", "hyper", _write("[1, 2, 3]"), None, ["expected a JSON object", "a list"]),
    ("a number", "data", _write("42"), None, ["expected a JSON object"]),
    ("wrong type: text", "hyper", _write('{"epochs": "ten"}'), "epochs",
     ["'ten' is not a number", "expected a whole number"]),
    ("wrong type: bool", "hyper", _write('{"batch_size": true}'), "batch_size",
     ["expected a whole number", "true"]),
    ("wrong type: object", "hyper", _write('{"dropout": {"a": 1}}'), "dropout",
     ["expected a number", "an object"]),
    ("wrong type: float for int", "hyper", _write('{"num_units": 12.5}'), "num_units",
     ["not a whole number"]),
    ("wrong type: number for text", "data", _write('{"color_mode": 3}'), "color_mode",
     ["expected text", "grayscale / rgb"]),
    ("wrong type: image_size", "data", _write('{"image_size": "big"}'), "image_size",
     ["height,width"]),
    ("unknown key", "hyper", _write('{"bacth_size": 32}'), "bacth_size",
     ["unknown field", "did you mean 'batch_size'"]),
    ("unknown key, no match", "data", _write('{"colour": "rgb"}'), "colour",
     ["unknown field", "known fields: train_dir"]),
    ("out of range: zero", "hyper", _write('{"batch_size": 0}'), "batch_size",
     ["out of range", "expected a whole number >= 1"]),
    ("out of range: rate", "hyper", _write('{"momentum": 1.0}'), "momentum",
     ["out of range", "< 1.0"]),
    ("out of range: in a grid", "hyper", _write('{"dropout": "0.2,1.5"}'), "dropout",
     ["out of range"]),
    ("out of range: folds", "hyper", _write('{"cv_folds": 1}'), "cv_folds",
     ["out of range", ">= 2"]),
    ("out of range: image_size", "data", _write('{"image_size": [0, 28]}'), "image_size",
     ["out of range", "1..4096"]),
    ("not a finite number", "hyper", _write('{"init_rate": "nan"}'), "init_rate",
     ["not a finite number"]),
    ("choice misspelt", "data", _write('{"color_mode": "rbg"}'), "color_mode",
     ["did you mean 'rgb'"]),
    ("empty grid item", "hyper", _write('{"num_filters": "16,,32"}'), "num_filters",
     ["empty item", "separated by single commas"]),
    ("path missing", "data", _write('{"train_dir": "no/such/folder"}'), "train_dir",
     ["does not exist", "fix the path"]),
    ("path is a file", "data", _write('{"test_dir": "bad.json"}'), "test_dir",
     ["is a file, not a folder"]),
    ("file missing", "hyper", _missing, None, ["file not found", "create new hyper params"]),
    ("file is a folder", "data", _a_folder, None, ["is a folder, not a JSON file"]),
]


@pytest.mark.parametrize(("kind", "make", "field", "words"),
                         [c[1:] for c in PARAMS_CASES], ids=[c[0] for c in PARAMS_CASES])
def test_bad_params_files_name_the_file_and_field(tmp_path: Path, kind: str,
                                                  make: Callable[[Path], Path],
                                                  field: str | None, words: list[str]) -> None:
    path = make(tmp_path)
    cls = DataParams if kind == "data" else HyperParams
    with pytest.raises(ParamsError) as info:
        cls.load(path)
    err = info.value
    text = str(err)
    assert err.file is not None and Path(err.file).name == path.name and path.name in text
    if field is not None:
        assert err.field == field and f"field '{field}'" in text
    for word in words:
        assert word in text, text


def test_unreadable_params_file_names_it(tmp_path: Path,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "locked.json"
    path.write_text("{}")
    real = Path.read_text

    def locked(self: Path, *args: Any, **kwargs: Any) -> str:
        if self.name == "locked.json":
            raise PermissionError(errno.EACCES, "Permission denied", str(self))
        return real(self, *args, **kwargs)

    monkeypatch.setattr(Path, "read_text", locked)
    with pytest.raises(ParamsError, match="cannot be read: .*Permission denied") as info:
        HyperParams.load(path)
    assert "locked.json" in str(info.value)


def test_a_lenient_load_lists_the_missing_folders_per_field(tmp_path: Path) -> None:
    """The editor opens a file whose dataset is elsewhere and marks the fields."""
    path = tmp_path / "data.json"
    path.write_text(json.dumps({"train_dir": "gone", "test_dir": "data.json"}))
    params = DataParams.load(path, check=False)
    problems = {p.field: str(p) for p in params.problems()}
    assert set(problems) == {"train_dir", "test_dir"}
    assert "does not exist" in problems["train_dir"] and "data.json" in problems["train_dir"]
    assert "is a file" in problems["test_dir"]


PARAMS_APP_CASES = [c for c in PARAMS_CASES if c[0] in (
    "malformed", "a list", "wrong type: text", "unknown key", "out of range: zero",
    "file is a folder")]


@pytest.mark.parametrize(("kind", "make", "field", "words"),
                         [c[1:] for c in PARAMS_APP_CASES],
                         ids=[c[0] for c in PARAMS_APP_CASES])
async def test_the_app_shows_a_bad_params_file_and_keeps_its_params(
        make_app: Any, tmp_path: Path, kind: str, make: Callable[[Path], Path],
        field: str | None, words: list[str]) -> None:
    from convonet.tui.screens.params import ParamsScreen

    data = DataParams({"image_size": [8, 8]}, path=tmp_path / "mine_data.json")
    hyper = HyperParams({"batch_size": 16}, path=tmp_path / "mine_hyper.json")
    app = make_app(session=Session(data_params=data, hyper_params=hyper))
    path = make(tmp_path)
    async with app.run_test(size=(100, 34)) as pilot:
        await pilot.press("1")
        screen = app.screen
        assert isinstance(screen, ParamsScreen)
        screen._read(kind, path)  # what the file picker hands back
        await wait_for(pilot, lambda: isinstance(app.screen, ErrorDialog), "the error")
        assert path.name in app.screen.summary
        for word in words:
            assert word in app.screen.summary
        await pilot.press("escape")
        assert app.screen is screen
        assert app.session.data_params is data and app.session.hyper_params is hyper
        assert hyper.batch_size == (16,) and data.image_size == (8, 8)


# =========================================================================================
# datasets: errors that refuse the load
# =========================================================================================
def _root_missing(root: Path) -> None:
    pass


def _root_empty(root: Path) -> None:
    root.mkdir()


def _root_loose_files(root: Path) -> None:
    png(root / "a.png")
    png(root / "b.png")


def _empty_class(root: Path) -> None:
    good_set(root)
    (root / "birds").mkdir()


def _only_non_images(root: Path) -> None:
    good_set(root)
    (root / "notes").mkdir()
    (root / "notes" / "readme.txt").write_text("not an image")
    (root / "notes" / "data.csv").write_text("a,b\n1,2\n")


def _only_hidden(root: Path) -> None:
    good_set(root)
    (root / "fish").mkdir()
    (root / "fish" / ".DS_Store").write_bytes(b"\0\1")


#: (case id, build the folder, the folder the message names (relative), words)
DATASET_ERRORS: list[tuple[str, Callable[[Path], None], str, list[str]]] = [
    ("root missing", _root_missing, "", ["does not exist", "fix the path"]),
    ("root empty", _root_empty, "", ["has no class sub-folders",
                                      "put each class's images in a sub-folder"]),
    ("no class folders", _root_loose_files, "", ["has no class sub-folders",
                                                  "only loose files", "sub-folder"]),
    ("an empty class folder", _empty_class, "birds", ["has no files",
                                                       "put its images in it or remove"]),
    ("only non-images", _only_non_images, "notes", ["has no readable images",
                                                     "2 file(s) skipped", "not an image",
                                                     "add images Pillow can read"]),
    ("only hidden files", _only_hidden, "fish", ["has no files", "remove the folder"]),
]


@pytest.mark.parametrize(("make", "names", "words"), [c[1:] for c in DATASET_ERRORS],
                         ids=[c[0] for c in DATASET_ERRORS])
def test_unusable_dataset_folders_are_refused_naming_the_folder(
        tmp_path: Path, cache_dir: Path, make: Callable[[Path], None], names: str,
        words: list[str]) -> None:
    root = tmp_path / "set"
    make(root)
    with pytest.raises(DataError) as info:
        prep(root, cache_dir).prep_data("train")
    text = str(info.value)
    assert f"'{root / names}'" in text if names else f"'{root}'" in text
    for word in words:
        assert word in text, text


def test_a_root_that_is_a_file_is_refused(tmp_path: Path, cache_dir: Path) -> None:
    png(tmp_path / "one.png")
    with pytest.raises(DataError, match="is a file, not a folder of class sub-folders") as e:
        prep(tmp_path / "one.png", cache_dir).prep_data("train")
    assert "one.png" in str(e.value) and "point the data params" in str(e.value)


def test_one_class_only_loads_with_a_warning_and_the_model_refuses_it(
        tmp_path: Path, cache_dir: Path) -> None:
    from convonet.core.model import ModelError, NetModel

    root = good_set(tmp_path / "set", classes=("cats",))
    ds = prep(root, cache_dir).prep_data("train")
    assert ds.num_classes == 1 and len(ds) == 3
    assert any("only one class folder" in w and "cats" in w and "at least 2" in w
               for w in ds.warnings), ds.warnings
    net = NetModel(HyperParams().edit(num_filters=2, num_units=4))
    with pytest.raises(ModelError, match="at least 2 classes, got 1") as built:
        net.build(ds.image_shape, ds.num_classes, ds.class_names)
    assert "class folder" in str(built.value)


# =========================================================================================
# datasets: single files, skipped with a reason or loaded
# =========================================================================================
def _corrupt(path: Path) -> None:
    path.write_bytes(b"\x89PNG\r\n\x1a\n this is not really a png")


def _truncated(path: Path) -> None:
    png(path.with_suffix(".tmp.png"), (16, 16), seed=5)
    data = path.with_suffix(".tmp.png").read_bytes()
    path.with_suffix(".tmp.png").unlink()
    path.write_bytes(data[: len(data) // 2])


def _text(path: Path) -> None:
    path.write_text("hello")


def _zero_bytes(path: Path) -> None:
    path.write_bytes(b"")


def _hidden(path: Path) -> None:
    (path.parent / ".hidden.png").write_bytes(png(path).read_bytes())
    path.unlink()


def _over_the_limit(path: Path) -> None:
    png(path, (40, 40))  # 1,600 px, over the max_pixels=1000 the test passes


#: (case id, write the bad file, the file the reason names, words of the reason)
SKIPPED_FILES: list[tuple[str, Callable[[Path], None], str, list[str]]] = [
    ("corrupt", _corrupt, "bad.png", ["not an image Pillow can read"]),
    ("truncated", _truncated, "bad.png", ["truncated or damaged"]),
    ("not an image", _text, "bad.png", ["not an image Pillow can read"]),
    ("empty file", _zero_bytes, "bad.png", ["empty file (0 bytes)"]),
    ("hidden file", _hidden, ".hidden.png", ["hidden file"]),
    ("over the pixel limit", _over_the_limit, "bad.png",
     ["40x40", "over the 0.001 Mpx limit", "downscale it"]),
]


@pytest.mark.parametrize(("make", "name", "words"), [c[1:] for c in SKIPPED_FILES],
                         ids=[c[0] for c in SKIPPED_FILES])
def test_unusable_files_are_skipped_with_their_path_and_a_reason(
        tmp_path: Path, cache_dir: Path, make: Callable[[Path], None], name: str,
        words: list[str]) -> None:
    root = good_set(tmp_path / "set")
    make(root / "dogs" / "bad.png")
    ds = prep(root, cache_dir, max_pixels=1000).prep_data("train")
    assert ds.counts == [3, 3]  # the good images all load
    (skip,) = ds.skipped
    assert Path(skip.path) == root / "dogs" / name
    for word in words:
        assert word in skip.reason, skip.reason


def test_an_unreadable_file_is_skipped_and_the_rest_load(
        tmp_path: Path, cache_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = good_set(tmp_path / "set")
    locked = png(root / "cats" / "locked.png", seed=99)
    real = Image.open

    def open_(fp: Any, *args: Any, **kwargs: Any) -> Any:
        if str(fp) == str(locked):
            raise PermissionError(errno.EACCES, "Permission denied", str(fp))
        return real(fp, *args, **kwargs)

    monkeypatch.setattr(Image, "open", open_)
    ds = prep(root, cache_dir).prep_data("train")
    assert ds.counts == [3, 3]
    (skip,) = ds.skipped
    assert Path(skip.path) == locked and "cannot be read" in skip.reason
    assert "Permission denied" in skip.reason


def test_an_unreadable_class_folder_is_skipped_with_its_path(
        tmp_path: Path, cache_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = good_set(tmp_path / "set")
    good_set(root / "dogs" / "more", classes=("inner",))
    locked = str(root / "dogs" / "more")
    real = os.scandir

    def scandir(path: Any = ".") -> Any:
        if str(path) == locked:
            raise PermissionError(errno.EACCES, "Permission denied", str(path))
        return real(path)

    monkeypatch.setattr(os, "scandir", scandir)
    ds = prep(root, cache_dir).prep_data("train")
    assert ds.counts == [3, 3]
    (skip,) = ds.skipped
    assert str(skip.path) == locked and "folder cannot be read" in skip.reason


def test_a_symlink_loop_is_listed_once_without_hanging(tmp_path: Path,
                                                       cache_dir: Path) -> None:
    root = good_set(tmp_path / "set")
    os.symlink(root / "cats", root / "cats" / "again")  # cats/again -> cats
    os.symlink(root, root / "dogs" / "up")  # dogs/up -> the root: every class again
    ds = prep(root, cache_dir).prep_data("train")
    assert ds.counts == [3, 3]  # no image counted twice
    reasons = {Path(s.path).name: s.reason for s in ds.skipped}
    assert set(reasons) == {"again", "up"}
    assert all("symbolic link loop" in r for r in reasons.values()), reasons


def _sixteen_bit(path: Path) -> None:
    Image.fromarray(np.arange(64, dtype=np.uint16).reshape(8, 8) * 1000).save(path)


def _palette(path: Path) -> None:
    with Image.open(png(path, mode="RGB")) as im:
        paletted = im.convert("P", palette=Image.Palette.ADAPTIVE, colors=8)
    paletted.save(path)


def _cmyk(path: Path) -> None:
    png(path.with_suffix(".jpg"), mode="CMYK")
    path.with_suffix(".jpg").rename(path)


def _alpha(path: Path) -> None:
    png(path, mode="RGBA")


def _one_pixel(path: Path) -> None:
    png(path, (1, 1))


def _wide(path: Path) -> None:
    png(path, (40, 3))


#: (case id, write the file, the Pillow mode it has, warning words or "")
LOADABLE_FILES: list[tuple[str, Callable[[Path], None], str, str]] = [
    ("16-bit", _sixteen_bit, "I;16", ""),
    ("palette", _palette, "P", ""),
    ("CMYK", _cmyk, "CMYK", ""),
    ("alpha", _alpha, "RGBA", "composited on black"),
    ("1x1", _one_pixel, "L", "resized"),
    ("40x3", _wide, "L", "resized"),
]


@pytest.mark.parametrize(("make", "mode", "warning"), [c[1:] for c in LOADABLE_FILES],
                         ids=[c[0] for c in LOADABLE_FILES])
@pytest.mark.parametrize("color_mode", ["grayscale", "rgb"])
def test_unusual_images_load_in_range(tmp_path: Path, cache_dir: Path,
                                      make: Callable[[Path], None], mode: str, warning: str,
                                      color_mode: str) -> None:
    root = good_set(tmp_path / "set")
    odd = root / "dogs" / "odd.png"
    make(odd)
    with Image.open(odd) as im:
        assert im.mode == mode
    params = DataParams({"train_dir": str(root), "image_size": [8, 8],
                         "color_mode": color_mode})
    ds = DataPrep(params, cache_dir=cache_dir, workers="serial").prep_data("train")
    assert ds.skipped == [] and ds.counts == [3, 4]
    assert ds.x.shape == (7, 8, 8, 1 if color_mode == "grayscale" else 3)
    assert ds.x.dtype == np.float32 and 0.0 <= ds.x.min() and ds.x.max() <= 1.0
    if warning:
        assert any(warning in w for w in ds.warnings), ds.warnings


# =========================================================================================
# datasets: too large for memory
# =========================================================================================
def test_a_set_too_large_for_memory_is_refused_with_the_figures(tmp_path: Path) -> None:
    root = good_set(tmp_path / "set")
    params = DataParams({"train_dir": str(root), "image_size": [64, 64],
                         "color_mode": "rgb"})
    with pytest.raises(DataError) as info:
        check_memory(6, params, root, available=100_000)
    text = str(info.value)
    assert "6 images" in text and str(root) in text and "64x64x3" in text
    need = human_bytes(estimate_bytes(6, (64, 64), 3))
    assert f"needs about {need}" in text and "more than half of the 97.7 KB" in text
    assert "smaller image_size" in text and "grayscale" in text and "fewer images" in text
    check_memory(6, params, root, available=10_000_000)  # fits: no error


async def test_the_data_screen_refuses_it_and_keeps_the_loaded_set(
        make_app: Any, tmp_path: Path, tiny_set: Any,
        monkeypatch: pytest.MonkeyPatch) -> None:
    root = good_set(tmp_path / "set")
    before = tiny_set(classes=2, per_class=4, size=8)
    params = DataParams({"train_dir": str(root), "image_size": [8, 8]})
    app = make_app(session=Session(data_params=params, train_set=before))
    monkeypatch.setattr(data_prep, "available_memory", lambda: 1_000)
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.press("2")
        screen = app.screen
        await pilot.press("t")
        await wait_for(pilot, lambda: isinstance(app.screen, ErrorDialog), "the error")
        assert "more than half" in app.screen.summary and str(root) in app.screen.summary
        await pilot.press("escape")
        await app.workers.wait_for_complete()
        await pilot.pause()
        assert app.screen is screen and app.session.train_set is before
        assert app.session.data_params is params


DATA_APP_CASES = [c for c in DATASET_ERRORS if c[0] in ("root empty", "only non-images")]


@pytest.mark.parametrize(("make", "names", "words"), [c[1:] for c in DATA_APP_CASES],
                         ids=[c[0] for c in DATA_APP_CASES])
async def test_the_data_screen_shows_a_bad_folder_and_keeps_the_loaded_set(
        make_app: Any, tmp_path: Path, tiny_set: Any, make: Callable[[Path], None],
        names: str, words: list[str]) -> None:
    root = tmp_path / "set"
    make(root)
    before = tiny_set(classes=2, per_class=4, size=8)
    params = DataParams({"train_dir": str(root), "image_size": [8, 8]})
    app = make_app(session=Session(data_params=params, train_set=before))
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.press("2")
        screen = app.screen
        await pilot.press("t")
        await wait_for(pilot, lambda: isinstance(app.screen, ErrorDialog), "the error")
        assert str(root / names) in app.screen.summary
        for word in words:
            assert word in app.screen.summary
        await pilot.press("escape")
        await app.workers.wait_for_complete()
        await pilot.pause()
        assert app.screen is screen and app.session.train_set is before


# =========================================================================================
# models
# =========================================================================================
@pytest.fixture(scope="module")
def small_model_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny saved network for 8x8 grayscale images of 2 classes."""
    from convonet.core.model import NetModel, save_model

    net = NetModel(HyperParams().edit(num_filters=2, num_units=4))
    model = net.build((8, 8, 1), 2, ["cats", "dogs"])
    return save_model(model, tmp_path_factory.mktemp("model") / "small.keras",
                      class_names=["cats", "dogs"])


def _model_missing(folder: Path, good: Path) -> Path:
    return folder / "gone.keras"


def _model_truncated(folder: Path, good: Path) -> Path:
    data = good.read_bytes()
    (folder / "cut.keras").write_bytes(data[: len(data) // 2])
    return folder / "cut.keras"


def _model_text(folder: Path, good: Path) -> Path:
    (folder / "notes.keras").write_text("these are notes")
    return folder / "notes.keras"


def _model_other_zip(folder: Path, good: Path) -> Path:
    import zipfile

    with zipfile.ZipFile(folder / "photos.keras", "w") as zf:
        zf.writestr("a.txt", "x")
    return folder / "photos.keras"


def _model_empty(folder: Path, good: Path) -> Path:
    (folder / "empty.keras").write_bytes(b"")
    return folder / "empty.keras"


def _model_lambda(folder: Path, good: Path) -> Path:
    import keras

    model = keras.Sequential([keras.Input((8, 8, 1)), keras.layers.Flatten(),
                              keras.layers.Lambda(lambda t: t * 2.0),
                              keras.layers.Dense(2, activation="softmax")])
    model.save(folder / "lambda.keras")
    return folder / "lambda.keras"


def _model_folder(folder: Path, good: Path) -> Path:
    (folder / "dir.keras").mkdir()
    return folder / "dir.keras"


#: (case id, make the file, words of the message)
MODEL_CASES: list[tuple[str, Callable[[Path, Path], Path], list[str]]] = [
    ("missing", _model_missing, ["file not found"]),
    ("truncated", _model_truncated, ["truncated or damaged"]),
    ("not a Keras file", _model_text, ["is not a Keras model file"]),
    ("a zip but not Keras", _model_other_zip, ["not a Keras model file"]),
    ("empty", _model_empty, ["Keras model file"]),
    ("a folder", _model_folder, ["is a folder, not a .keras model file"]),
    ("Lambda layer", _model_lambda, ["refused", "Lambda", "safe_mode"]),
]


@pytest.mark.parametrize(("make", "words"), [c[1:] for c in MODEL_CASES],
                         ids=[c[0] for c in MODEL_CASES])
def test_bad_model_files_name_the_file(tmp_path: Path, small_model_file: Path,
                                       make: Callable[[Path, Path], Path],
                                       words: list[str]) -> None:
    from convonet.core.model import ModelError, load_model

    path = make(tmp_path, small_model_file)
    with pytest.raises(ModelError) as info:
        load_model(path)
    text = str(info.value)
    assert str(path) in text
    for word in words:
        assert word in text, text


#: (case id, image shape of the data, classes of the data, words of the message)
FIT_CASES = [
    ("another image size", (12, 12, 1), 2, ["12x12", "8x8"]),
    ("another channel count", (8, 8, 3), 2, ["8x8x1", "8x8x3", "colour mode"]),
    ("another class count", (8, 8, 1), 5, ["5 classes", "2 classes"]),
]


@pytest.mark.parametrize(("shape", "classes", "words"), [c[1:] for c in FIT_CASES],
                         ids=[c[0] for c in FIT_CASES])
def test_a_model_trained_on_other_data_names_both_sides(
        small_model_file: Path, shape: tuple[int, int, int], classes: int,
        words: list[str]) -> None:
    from convonet.core.model import ModelError, check_fits, load_model

    model = load_model(small_model_file)
    with pytest.raises(ModelError, match="does not fit the data") as info:
        check_fits(model, shape, classes)
    text = str(info.value)
    for word in words:
        assert word in text, text


MODEL_APP_CASES = [("truncated", _model_truncated, None, ["truncated"]),
                   ("Lambda layer", _model_lambda, None, ["Lambda", "safe_mode"]),
                   ("another class count", None, 3, ["does not fit the loaded training set",
                                                     "3 classes"])]


@pytest.mark.parametrize(("make", "classes", "words"), [c[1:] for c in MODEL_APP_CASES],
                         ids=[c[0] for c in MODEL_APP_CASES])
async def test_the_model_screen_shows_a_bad_model_and_keeps_the_current_one(
        make_app: Any, tmp_path: Path, tiny_set: Any, small_model_file: Path,
        make: Callable[[Path, Path], Path] | None, classes: int | None,
        words: list[str]) -> None:
    from convonet.core.model import load_model
    from convonet.tui.screens.model import load_network

    path = make(tmp_path, small_model_file) if make else small_model_file
    current = load_model(small_model_file)
    train = tiny_set(classes=classes or 2, per_class=4, size=8)
    controller = Session(train_set=train)
    controller.model = current
    app = make_app(session=controller)
    async with app.run_test(size=(110, 34)) as pilot:
        await pilot.press("3")
        screen = app.screen
        # What the file picker's answer starts (ModelScreen._pick_to_load).
        screen._loading = path
        screen._start(f"Loading {path.name}", load_network, path, train, None,
                      name="load_model", description="Loading the network model")
        await wait_for(pilot, lambda: isinstance(app.screen, ErrorDialog), "the error")
        assert path.name in app.screen.summary
        for word in words:
            assert word in app.screen.summary
        await pilot.press("escape")
        await app.workers.wait_for_complete()
        await pilot.pause()
        assert app.screen is screen
        assert app.session.model is current and app.session.train_set is train


# =========================================================================================
# tuning
# =========================================================================================
def test_a_class_with_fewer_images_than_folds_is_refused_naming_it() -> None:
    from convonet.core.tuning import FatalTuningError, tune

    x = np.zeros((13, 4, 4, 1), dtype=np.float32)
    y = np.array([0] * 5 + [1] * 5 + [2] * 3, dtype=np.int64)
    hyper = HyperParams().edit(cv_folds=4, tuning_share=1.0, epochs=1)
    with pytest.raises(FatalTuningError) as info:
        tune(x, y, hyper, class_names=["cats", "dogs", "newts"])
    text = str(info.value)
    assert "only 3 images of class 'newts'" in text and "fewer than cv_folds=4" in text
    assert "raise tuning_share, lower cv_folds or add images to that class" in text


def test_combinations_whose_layers_cannot_fit_the_image_are_refused_before_any_fit(
        tmp_path: Path) -> None:
    """3x3 images cannot take the network's two 2x2 poolings: the check training makes
    refuses the whole grid before any fit, naming the size and what to do, and writes no
    run folder (combinations that only some images break: tests/test_tuning_invalid.py)."""
    from convonet.core.tuning import InvalidGridError, tune

    rng = np.random.default_rng(0)
    x = rng.random((12, 3, 3, 1), dtype=np.float32)
    y = np.repeat(np.arange(2), 6).astype(np.int64)
    hyper = HyperParams().edit(num_filters="2,3", num_units=4, epochs=1, batch_size=8,
                               cv_folds=3, tuning_share=1.0)
    events: list[Any] = []
    with pytest.raises(InvalidGridError, match=r"3x3 is too small .* use at least 4x4"):
        tune(x, y, hyper, report=events.append, results_dir=tmp_path)
    assert not list(tmp_path.glob("runs/*"))


# =========================================================================================
# saving: a full disk or an unwritable results folder
# =========================================================================================
def _disk_full(*args: Any, **kwargs: Any) -> None:
    raise OSError(errno.ENOSPC, "No space left on device")


def _save_hyper(path: Path) -> None:
    HyperParams().edit(batch_size=99).save(path)


def _save_data(path: Path) -> None:
    DataParams({"image_size": [9, 9]}).save(path)


def _save_model(path: Path) -> None:
    from convonet.core.model import load_model, save_model

    save_model(load_model(path.parent / "source.keras"), path, class_names=["a", "b"])


def _save_run_record(path: Path) -> None:
    from convonet.core.runs import RunFolder

    RunFolder(path.parent).finish("finished", metrics={"accuracy": 1.0})


#: (case id, file name, make the previous file, save over it, patched name)
SAVE_CASES = [
    ("hyper params, os.replace", "hyper.json", _save_hyper, "replace"),
    ("hyper params, os.fsync", "hyper.json", _save_hyper, "fsync"),
    ("data params, os.replace", "data.json", _save_data, "replace"),
    ("run record, os.fsync", "run.json", _save_run_record, "fsync"),
]


@pytest.mark.parametrize(("name", "save", "patched"), [c[1:] for c in SAVE_CASES],
                         ids=[c[0] for c in SAVE_CASES])
def test_a_full_disk_keeps_the_previous_file_and_names_it(
        tmp_path: Path, small_model_file: Path, monkeypatch: pytest.MonkeyPatch, name: str,
        save: Callable[[Path], None], patched: str) -> None:
    import shutil

    shutil.copy(small_model_file, tmp_path / "source.keras")
    target = tmp_path / name
    if name == "run.json":
        target.write_text(json.dumps({"task": "training", "status": "running"}))
    else:
        save(target)
    before = target.read_bytes()
    listing = sorted(p.name for p in tmp_path.iterdir())
    monkeypatch.setattr(os, patched, _disk_full)
    with pytest.raises(OSError) as info:  # ModelError is a ValueError: see below
        save(target)
    text = str(info.value)
    assert "No space left on device" in text, text
    if name != "run.json":  # runs.atomic_write_text does not add the file name yet
        assert name in text, text
    monkeypatch.undo()
    assert target.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == listing  # no temp file left


def test_a_full_disk_while_saving_a_model_is_a_model_error(
        tmp_path: Path, small_model_file: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from convonet.core.model import ModelError, load_model, save_model

    model = load_model(small_model_file)
    target = save_model(model, tmp_path / "net.keras")
    before = target.read_bytes()
    monkeypatch.setattr(os, "replace", _disk_full)
    with pytest.raises(ModelError) as info:
        save_model(model, target)
    assert "net.keras: cannot be saved" in str(info.value)
    assert "No space left on device" in str(info.value)
    monkeypatch.undo()
    assert target.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["net.keras"]


def test_an_unwritable_results_folder_is_refused_not_a_crash(tmp_path: Path) -> None:
    from convonet.core.records import start_run
    from convonet.core.storage import StorageError

    not_a_folder = tmp_path / "app_results"
    not_a_folder.write_text("a file where the results folder should be")
    with pytest.raises(StorageError) as info:
        start_run(not_a_folder, "training")
    assert str(info.value) == (
        f"cannot write the results folder {not_a_folder}: it is a file, not a folder; "
        "choose another results folder with --results-dir / CONVONET_RESULTS_DIR")


async def test_the_params_screen_shows_a_full_disk_and_keeps_the_file(
        make_app: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from convonet.tui.screens.params import ParamsScreen

    target = tmp_path / "hyper.json"
    HyperParams().edit(batch_size=8).save(target)
    before = target.read_bytes()
    hyper = HyperParams.load(target).edit(batch_size=99)
    app = make_app(session=Session(hyper_params=hyper))
    async with app.run_test(size=(100, 34)) as pilot:
        await pilot.press("1")
        screen = app.screen
        assert isinstance(screen, ParamsScreen)
        monkeypatch.setattr(os, "replace", _disk_full)
        screen._write("hyper", target)  # what the save picker's answer does
        await wait_for(pilot, lambda: isinstance(app.screen, ErrorDialog), "the error")
        assert "No space left on device" in app.screen.summary
        assert "hyper.json" in app.screen.summary
        monkeypatch.undo()
        await pilot.press("escape")
        assert app.screen is screen and app.session.hyper_params is hyper
        assert hyper.batch_size == (99,)
    assert target.read_bytes() == before
