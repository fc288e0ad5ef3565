"""DataPrep: every image mode, skipped files, class matching, split, shuffle, cache, cancel."""

from __future__ import annotations

import io
import os
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from convonet.core.data import (
    DataError,
    DataPrep,
    Dataset,
    estimate_bytes,
    match_classes,
    shuffle_arrays,
    stratified_split,
)
from convonet.core.data import decoding as data_decoding
from convonet.core.events import Cancelled, CancelToken, Event, LoadProgress, Notice
from convonet.core.params import DataParams


# ---- helpers -------------------------------------------------------------------------
def gray(value: int, size: tuple[int, int] = (28, 28)) -> Image.Image:
    """A uniform grayscale image; size is (height, width)."""
    return Image.new("L", (size[1], size[0]), value)


def make_tree(root: Path, classes: dict[str, int], *, start: int = 0,
              size: tuple[int, int] = (28, 28)) -> Path:
    """Class folders of uniform images whose pixel value encodes a running image id."""
    n = start
    for name, count in classes.items():
        d = root / name
        d.mkdir(parents=True, exist_ok=True)
        for _ in range(count):
            gray(n % 256, size).save(d / f"img{n:04d}.png")
            n += 1
    return root


def params(train: Path | None = None, test: Path | None = None, *, size: tuple[int, int] = (28,
           28), mode: str = "grayscale", split: float = 0.0) -> DataParams:
    return DataParams({"train_dir": str(train) if train else "",
                       "test_dir": str(test) if test else "",
                       "image_size": list(size), "color_mode": mode, "test_split": split})


def prep(p: DataParams, tmp_path: Path, **kw: object) -> DataPrep:
    return DataPrep(p, cache_dir=tmp_path / "cache", **kw)  # type: ignore[arg-type]


def ids(ds: Dataset) -> set[int]:
    """The image ids (pixel values) held by a dataset of uniform images."""
    return {int(round(float(v) * 255)) for v in ds.x[:, 0, 0, 0]}


def png_bytes(im: Image.Image, fmt: str = "PNG") -> bytes:
    buf = io.BytesIO()
    im.save(buf, fmt)
    return buf.getvalue()


# ---- the basic load ------------------------------------------------------------------
def test_loads_float_arrays_with_sorted_class_names(tmp_path: Path) -> None:
    root = make_tree(tmp_path / "train", {"b": 3, "a": 2, "c": 4})
    ds = prep(params(root), tmp_path).prep_data("train")
    assert ds.class_names == ["a", "b", "c"]
    assert ds.x.dtype == np.float32 and ds.x.shape == (9, 28, 28, 1)
    assert ds.y.dtype == np.int64 and len(ds) == 9
    assert ds.image_shape == (28, 28, 1) and ds.num_classes == 3
    assert ds.counts == [2, 3, 4]
    assert 0.0 <= ds.x.min() and ds.x.max() <= 1.0
    assert ds.root == root and ds.skipped == [] and ds.warnings == []
    assert len(ds.fingerprint) >= 16 and not ds.from_cache
    # Labels follow the folder the image came from (ids 0-2 were written into "b").
    for x, y in zip(ds.x, ds.y, strict=True):
        image_id = int(round(float(x[0, 0, 0]) * 255))
        expected = "b" if image_id < 3 else ("a" if image_id < 5 else "c")
        assert ds.class_names[y] == expected


def test_nested_folders_inside_a_class_count_for_that_class(tmp_path: Path) -> None:
    root = make_tree(tmp_path / "train", {"a": 1, "b": 1})
    (root / "a" / "more").mkdir()
    gray(9).save(root / "a" / "more" / "x.png")
    ds = prep(params(root), tmp_path).prep_data("train")
    assert ds.counts == [2, 1]


# ---- modes ---------------------------------------------------------------------------
def _rgba(r: int, g: int, b: int, a: int) -> Image.Image:
    return Image.new("RGBA", (8, 8), (r, g, b, a))


def _palette(transparent: bool) -> Image.Image:
    im = Image.new("P", (8, 8), 1)
    im.putpalette([0, 0, 0, 255, 255, 255] + [0] * 762)
    if transparent:
        im.info["transparency"] = 1
    return im


# (name, image factory, file format, expected gray value, expected RGB value)
MODES = [
    ("L", lambda: Image.new("L", (8, 8), 128), "PNG", 128 / 255, (128 / 255,) * 3),
    ("RGB", lambda: Image.new("RGB", (8, 8), (255, 0, 0)), "PNG", 76 / 255, (1.0, 0.0, 0.0)),
    ("RGBA opaque", lambda: _rgba(0, 0, 255, 255), "PNG", 29 / 255, (0.0, 0.0, 1.0)),
    ("RGBA transparent", lambda: _rgba(255, 255, 255, 0), "PNG", 0.0, (0.0, 0.0, 0.0)),
    ("RGBA half", lambda: _rgba(255, 255, 255, 128), "PNG", 128 / 255, (128 / 255,) * 3),
    ("LA transparent", lambda: Image.new("LA", (8, 8), (200, 0)), "PNG", 0.0, (0.0,) * 3),
    ("P", lambda: _palette(False), "PNG", 1.0, (1.0, 1.0, 1.0)),
    ("P transparent", lambda: _palette(True), "PNG", 0.0, (0.0, 0.0, 0.0)),
    ("I;16", lambda: Image.fromarray(np.full((8, 8), 65535, np.uint16)), "PNG", 1.0,
     (1.0,) * 3),
    ("I;16 half", lambda: Image.fromarray(np.full((8, 8), 32768, np.uint16)), "PNG",
     32768 / 65535, (32768 / 65535,) * 3),
    ("I", lambda: Image.fromarray(np.full((8, 8), 65535, np.int32)), "TIFF", 1.0, (1.0,) * 3),
    ("F", lambda: Image.fromarray(np.full((8, 8), 0.25, np.float32)), "TIFF", 0.25,
     (0.25,) * 3),
    ("CMYK", lambda: Image.new("CMYK", (8, 8), (0, 0, 0, 0)), "TIFF", 1.0, (1.0, 1.0, 1.0)),
    ("1", lambda: Image.new("1", (8, 8), 1), "BMP", 1.0, (1.0, 1.0, 1.0)),
    ("L jpeg", lambda: Image.new("L", (8, 8), 200), "JPEG", 200 / 255, (200 / 255,) * 3),
    ("RGB gif", lambda: Image.new("RGB", (8, 8), (255, 255, 255)), "GIF", 1.0, (1.0,) * 3),
]


@pytest.mark.parametrize("color_mode", ["grayscale", "rgb"])
@pytest.mark.parametrize("case", MODES, ids=[m[0] for m in MODES])
def test_every_mode_converts_to_the_configured_channels(tmp_path: Path, case: tuple,
                                                        color_mode: str) -> None:
    name, factory, fmt, want_gray, want_rgb = case
    root = tmp_path / "train"
    (root / "only").mkdir(parents=True)
    ext = {"PNG": "png", "TIFF": "tif", "BMP": "bmp", "JPEG": "jpg", "GIF": "gif"}[fmt]
    factory().save(root / "only" / f"img.{ext}", fmt)
    ds = prep(params(root, size=(8, 8), mode=color_mode), tmp_path).prep_data("train")
    assert ds.skipped == [], ds.skipped
    channels = 1 if color_mode == "grayscale" else 3
    assert ds.x.shape == (1, 8, 8, channels)
    want = np.array([want_gray] if channels == 1 else want_rgb, dtype=np.float32)
    tol = 3 / 255 if fmt == "JPEG" else 1e-3
    np.testing.assert_allclose(ds.x[0, 4, 4], want, atol=tol, err_msg=name)


def test_transparency_is_reported_as_composited_on_black(tmp_path: Path) -> None:
    root = tmp_path / "train"
    (root / "a").mkdir(parents=True)
    _rgba(255, 255, 255, 0).save(root / "a" / "t.png")
    gray(5).save(root / "a" / "g.png")
    ds = prep(params(root), tmp_path).prep_data("train")
    assert any("1 image(s) with transparency were composited on black" in w
               for w in ds.warnings)


def test_sixteen_bit_keeps_its_precision(tmp_path: Path) -> None:
    root = tmp_path / "train"
    (root / "a").mkdir(parents=True)
    ramp = (np.arange(64, dtype=np.uint16).reshape(8, 8) * 1000).astype(np.uint16)
    Image.fromarray(ramp).save(root / "a" / "ramp.png")
    ds = prep(params(root, size=(8, 8)), tmp_path).prep_data("train")
    np.testing.assert_allclose(ds.x[0, :, :, 0], ramp / 65535.0, atol=1e-6)


# ---- sizes ---------------------------------------------------------------------------
def test_mixed_sizes_resize_to_the_configured_size_with_a_warning(tmp_path: Path) -> None:
    root = tmp_path / "train"
    (root / "a").mkdir(parents=True)
    gray(10, (28, 28)).save(root / "a" / "same.png")
    gray(20, (20, 20)).save(root / "a" / "small.png")
    Image.new("RGB", (30, 40), (9, 9, 9)).save(root / "a" / "wide.png")
    ds = prep(params(root), tmp_path).prep_data("train")
    assert ds.x.shape == (3, 28, 28, 1)
    warning = next(w for w in ds.warnings if "resized" in w)
    assert "2 of 3 images were not 28x28" in warning
    assert "20x20" in warning and "40x30" in warning


def test_images_over_the_pixel_limit_are_skipped_before_decoding(tmp_path: Path) -> None:
    root = make_tree(tmp_path / "train", {"a": 1})
    gray(1, (100, 100)).save(root / "a" / "huge.png")
    ds = prep(params(root), tmp_path, max_pixels=5000).prep_data("train")
    assert len(ds) == 1
    (skip,) = ds.skipped
    assert skip.path.name == "huge.png" and "Mpx limit" in skip.reason


# ---- skipped and ignored files -------------------------------------------------------
def test_unusable_files_are_skipped_with_reasons(tmp_path: Path) -> None:
    root = make_tree(tmp_path / "train", {"a": 2, "b": 2})
    a = root / "a"
    (a / ".DS_Store").write_bytes(b"\x00\x01junk")
    (a / "notes.txt").write_text("not an image\n")
    (a / "corrupt.png").write_bytes(b"\x89PNG\r\n\x1a\n" + os.urandom(200))
    noise = Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 64), np.uint8))
    whole = png_bytes(noise)
    (a / "truncated.png").write_bytes(whole[: len(whole) * 2 // 3])
    (a / "empty.png").write_bytes(b"")
    (a / ".cache").mkdir()
    gray(1).save(a / ".cache" / "hidden.png")
    ds = prep(params(root), tmp_path).prep_data("train")
    assert ds.counts == [2, 2]
    reasons = {s.path.name: s.reason for s in ds.skipped}
    assert set(reasons) == {".DS_Store", "notes.txt", "corrupt.png", "truncated.png",
                            "empty.png", ".cache"}
    assert "hidden file" in reasons[".DS_Store"]
    assert "hidden folder" in reasons[".cache"]
    assert "not an image" in reasons["notes.txt"]
    assert "truncated" in reasons["truncated.png"]
    assert "0 bytes" in reasons["empty.png"]
    assert all(s.path.is_absolute() for s in ds.skipped)


def test_files_beside_the_class_folders_are_ignored_with_a_warning(tmp_path: Path) -> None:
    root = make_tree(tmp_path / "train", {"a": 1, "b": 1})
    gray(3).save(root / "stray.png")
    (root / "README.txt").write_text("hello")
    (root / ".hidden").write_text("x")
    events: list[Event] = []
    ds = prep(params(root), tmp_path).prep_data("train", report=events.append)
    assert ds.class_names == ["a", "b"] and len(ds) == 2
    (warning,) = ds.warnings
    assert "ignored 2 file(s)" in warning and "stray.png" in warning
    assert ".hidden" not in warning
    assert any(isinstance(e, Notice) and e.text == warning for e in events)


# ---- errors that name the folder -----------------------------------------------------
def test_missing_root_names_the_folder(tmp_path: Path) -> None:
    missing = tmp_path / "nope"
    with pytest.raises(DataError, match="nope.*does not exist"):
        prep(params(missing), tmp_path).prep_data("train")


def test_root_that_is_a_file_is_an_error(tmp_path: Path) -> None:
    f = tmp_path / "file.png"
    gray(1).save(f)
    with pytest.raises(DataError, match="is a file"):
        prep(params(f), tmp_path).prep_data("train")


def test_no_class_folders_is_an_error(tmp_path: Path) -> None:
    root = tmp_path / "flat"
    root.mkdir()
    gray(1).save(root / "x.png")
    with pytest.raises(DataError, match=r"flat.*no class sub-folders.*only loose files"):
        prep(params(root), tmp_path).prep_data("train")


def test_empty_class_folder_names_it(tmp_path: Path) -> None:
    root = make_tree(tmp_path / "train", {"a": 1})
    (root / "empty_class").mkdir()
    with pytest.raises(DataError, match=r"empty_class.*no files"):
        prep(params(root), tmp_path).prep_data("train")


def test_class_folder_without_readable_images_names_it(tmp_path: Path) -> None:
    root = make_tree(tmp_path / "train", {"a": 1})
    (root / "junk").mkdir()
    (root / "junk" / "x.txt").write_text("text")
    with pytest.raises(DataError, match=r"junk.*no readable images.*1 file\(s\) skipped"):
        prep(params(root), tmp_path).prep_data("train")


def test_unset_folders_say_which_field_to_set(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="train_dir"):
        prep(params(), tmp_path).prep_data("train")
    root = make_tree(tmp_path / "train", {"a": 1})
    with pytest.raises(DataError, match="test_dir.*test_split"):
        prep(params(root), tmp_path).prep_data("test")


# ---- test classes matched by index ---------------------------------------------------
def test_test_classes_with_other_names_match_by_index_with_a_warning(tmp_path: Path) -> None:
    train = make_tree(tmp_path / "train", {"adenocarcinoma_left.lower.lobe": 2, "normal": 2,
                                           "squamous_cell_carcinoma_left": 2})
    test = make_tree(tmp_path / "test", {"adenocarcinoma": 1, "normal": 1,
                                         "squamous.cell.carcinoma": 1})
    dp = prep(params(train, test), tmp_path)
    tr = dp.prep_data("train")
    te = dp.prep_data("test", train_classes=tr.class_names)
    assert te.class_matching == [("adenocarcinoma_left.lower.lobe", "adenocarcinoma"),
                                 ("squamous_cell_carcinoma_left", "squamous.cell.carcinoma")]
    warning = next(w for w in te.warnings if "matched by sorted order" in w)
    assert "0: adenocarcinoma_left.lower.lobe <- adenocarcinoma" in warning
    assert "2: squamous_cell_carcinoma_left <- squamous.cell.carcinoma" in warning
    assert "normal" not in warning
    # The same names need no warning.
    same = dp.prep_data("test", train_classes=["adenocarcinoma", "normal",
                                               "squamous.cell.carcinoma"])
    assert same.class_matching == [] and same.warnings == []


def test_a_different_class_count_is_an_error_naming_both_lists(tmp_path: Path) -> None:
    train = make_tree(tmp_path / "train", {"a": 1, "b": 1, "c": 1})
    test = make_tree(tmp_path / "test", {"x": 1, "y": 1})
    with pytest.raises(DataError, match=r"2 class folders.*\(x, y\).*has 3.*\(a, b, c\)"):
        prep(params(train, test), tmp_path).prep_data("test", train_classes=["a", "b", "c"])
    with pytest.raises(DataError, match="same number of class folders"):
        match_classes(["a"], ["a", "b"])
    assert match_classes(["a", "b"], ["a", "c"]) == [("b", "c")]


# ---- single-folder split, shuffle ----------------------------------------------------
def test_one_folder_splits_into_disjoint_stratified_sets(tmp_path: Path) -> None:
    root = make_tree(tmp_path / "all", {"a": 8, "b": 8, "c": 8, "d": 8})
    dp = prep(params(root, split=0.25), tmp_path)
    tr = dp.prep_data("train")
    te = dp.prep_data("test", train_classes=tr.class_names)
    assert tr.counts == [6, 6, 6, 6] and te.counts == [2, 2, 2, 2]
    assert ids(tr).isdisjoint(ids(te)) and ids(tr) | ids(te) == set(range(32))
    assert te.from_cache  # the same folder, decoded once
    assert tr.fingerprint != te.fingerprint
    # Seeded: the same seed gives the same split, another seed another one.
    assert ids(dp.prep_data("test")) == ids(te)
    assert ids(dp.prep_data("test", seed=7)) != ids(te)


def test_stratified_split_keeps_every_class_on_both_sides() -> None:
    y = np.array([0] * 2 + [1] * 10 + [2])
    train_idx, test_idx = stratified_split(y, 0.1, seed=1)
    assert sorted(set(y[test_idx])) == [0, 1]  # class 2 has one image: training only
    assert sorted(set(y[train_idx])) == [0, 1, 2]
    assert len(np.intersect1d(train_idx, test_idx)) == 0
    assert len(train_idx) + len(test_idx) == len(y)


def test_shuffle_is_deterministic_with_the_seed(tmp_path: Path) -> None:
    root = make_tree(tmp_path / "train", {"a": 10, "b": 10, "c": 10})
    dp = prep(params(root), tmp_path, use_cache=False)
    one, two = dp.prep_data("train", seed=3), dp.prep_data("train", seed=3)
    other = dp.prep_data("train", seed=4)
    np.testing.assert_array_equal(one.x, two.x)
    np.testing.assert_array_equal(one.y, two.y)
    assert not np.array_equal(one.y, other.y)
    assert not np.array_equal(one.y, np.sort(one.y))  # really shuffled
    x, y = shuffle_arrays(np.arange(5), np.arange(5), seed=0)
    np.testing.assert_array_equal(x, y)
    # moving rows within the array gives the order a copy gives
    rows = np.arange(60, dtype=np.float32).reshape(20, 3)
    copied, _ = shuffle_arrays(rows, np.arange(20), seed=5)
    moved, _ = shuffle_arrays(rows, np.arange(20), seed=5, in_place=True)
    assert moved is rows
    np.testing.assert_array_equal(moved, copied)


# ---- parallel decoding ---------------------------------------------------------------
@pytest.mark.parametrize("workers", ["threads", "processes"])
def test_parallel_decoding_gives_the_serial_result(tmp_path: Path, workers: str) -> None:
    root = make_tree(tmp_path / "train", {"a": 40, "b": 40})
    (root / "a" / "bad.png").write_bytes(b"nope")
    serial = prep(params(root), tmp_path, use_cache=False, workers="serial")
    parallel = prep(params(root), tmp_path, use_cache=False, workers=workers)
    s, p = serial.prep_data("train"), parallel.prep_data("train")
    assert parallel.last_strategy == workers
    np.testing.assert_array_equal(s.x, p.x)
    np.testing.assert_array_equal(s.y, p.y)
    assert [(k.path, k.reason) for k in s.skipped] == [(k.path, k.reason) for k in p.skipped]


# ---- the cache -----------------------------------------------------------------------
def test_second_load_comes_from_the_cache_without_decoding(tmp_path: Path,
                                                           monkeypatch: pytest.MonkeyPatch
                                                           ) -> None:
    root = make_tree(tmp_path / "train", {"a": 3, "b": 3})
    (root / "a" / "bad.txt").write_text("x")
    first = prep(params(root), tmp_path)
    cold = first.prep_data("train")
    assert not cold.from_cache and first.decoded == 7

    def no_decode(*args: object, **kwargs: object) -> None:
        raise AssertionError("decoded although the cache holds this folder")

    monkeypatch.setattr(data_decoding, "extract_image", no_decode)
    second = prep(params(root), tmp_path)  # a new instance: nothing kept in memory
    warm = second.prep_data("train")
    assert warm.from_cache and second.decoded == 0 and second.last_strategy == "cache"
    np.testing.assert_array_equal(cold.x, warm.x)
    np.testing.assert_array_equal(cold.y, warm.y)
    assert warm.fingerprint == cold.fingerprint
    assert [(s.path, s.reason) for s in warm.skipped] == [(s.path, s.reason)
                                                          for s in cold.skipped]
    assert isinstance(warm.x, np.ndarray) and not isinstance(warm.x, np.memmap)
    # Other image settings are another cache entry.
    rgb = prep(params(root, mode="rgb"), tmp_path)
    monkeypatch.undo()
    assert not rgb.prep_data("train").from_cache


def test_the_cache_keeps_8_bit_images_as_uint8_and_others_as_float32(tmp_path: Path
                                                                      ) -> None:
    """8-bit values are exactly k/255: a quarter of the bytes, read back bit for bit."""
    eight = make_tree(tmp_path / "eight", {"a": 5, "b": 5})
    sixteen = tmp_path / "sixteen"
    for name in ("a", "b"):
        (sixteen / name).mkdir(parents=True)
        for i in range(3):
            ramp = (np.arange(64, dtype=np.uint16).reshape(8, 8) * 1000 + i).astype(np.uint16)
            Image.fromarray(ramp).save(sixteen / name / f"r{i}.png")
    for root, size, dtype in ((eight, (28, 28), np.uint8), (sixteen, (8, 8), np.float32)):
        cache = tmp_path / f"cache-{root.name}"
        cold = DataPrep(params(root, size=size), cache_dir=cache).prep_data("train", seed=1)
        (stored,) = cache.glob("*/x.npy")
        assert np.load(stored, mmap_mode="r").dtype == dtype
        warm = DataPrep(params(root, size=size), cache_dir=cache).prep_data("train", seed=1)
        assert warm.from_cache and warm.x.dtype == np.float32
        np.testing.assert_array_equal(warm.x, cold.x)  # bit for bit
        np.testing.assert_array_equal(warm.y, cold.y)


def test_a_changed_file_invalidates_the_cache(tmp_path: Path) -> None:
    root = make_tree(tmp_path / "train", {"a": 3, "b": 3})
    dp = prep(params(root), tmp_path)
    before = dp.prep_data("train")
    target = root / "a" / "img0000.png"
    gray(250).save(target)
    st = target.stat()
    os.utime(target, ns=(st.st_atime_ns, st.st_mtime_ns + 5_000_000_000))
    after = dp.prep_data("train")
    assert not after.from_cache and dp.decoded == 6
    assert after.fingerprint != before.fingerprint
    assert 250 in ids(after) and 0 not in ids(after)
    # The stale entry of the same folder and settings is dropped.
    entries = [e for e in (tmp_path / "cache").iterdir() if not e.name.startswith(".")]
    assert [e.name for e in entries] == [after.fingerprint]
    # A mere touch (same bytes, new mtime) also counts as a change.
    st = target.stat()
    os.utime(target, ns=(st.st_atime_ns, st.st_mtime_ns + 5_000_000_000))
    assert not dp.prep_data("train").from_cache
    # So does a new file.
    gray(77).save(root / "b" / "new.png")
    again = dp.prep_data("train")
    assert not again.from_cache and len(again) == 7


def test_a_damaged_cache_entry_is_decoded_again(tmp_path: Path) -> None:
    root = make_tree(tmp_path / "train", {"a": 2})
    dp = prep(params(root), tmp_path)
    ds = dp.prep_data("train")
    (tmp_path / "cache" / ds.fingerprint / "x.npy").write_bytes(b"garbage")
    again = dp.prep_data("train")
    assert not again.from_cache and len(again) == 2
    assert dp.prep_data("train").from_cache


def test_an_unwritable_cache_does_not_fail_the_load(tmp_path: Path) -> None:
    root = make_tree(tmp_path / "train", {"a": 2})
    blocker = tmp_path / "cache"
    blocker.write_text("a file where the cache folder should be")
    events: list[Event] = []
    ds = DataPrep(params(root), cache_dir=blocker).prep_data("train", report=events.append)
    assert len(ds) == 2
    assert any(isinstance(e, Notice) and "cache not written" in e.text for e in events)


def test_default_cache_dir_follows_the_environment(tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CONVONET_CACHE_DIR", str(tmp_path / "c"))
    assert DataPrep(params()).cache_dir == tmp_path / "c"


# ---- progress and cancel -------------------------------------------------------------
def test_progress_events_arrive_in_order(tmp_path: Path) -> None:
    root = make_tree(tmp_path / "train", {"a": 5, "b": 5})
    events: list[Event] = []
    prep(params(root), tmp_path).prep_data("train", report=events.append)
    progress = [e for e in events if isinstance(e, LoadProgress)]
    assert progress[0] == LoadProgress(0, 10, "training")
    assert progress[-1] == LoadProgress(10, 10, "training")
    assert [e.done for e in progress] == sorted(e.done for e in progress)
    # A cache hit still ends with a final progress event.
    events.clear()
    prep(params(root), tmp_path).prep_data("train", report=events.append)
    assert [e for e in events if isinstance(e, LoadProgress)] == [
        LoadProgress(10, 10, "training")]


@pytest.mark.parametrize("workers", ["serial", "threads"])
def test_cancel_mid_load_raises_cancelled(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                          workers: str) -> None:
    root = make_tree(tmp_path / "train", {"a": 100, "b": 100})
    token = CancelToken()
    calls = 0
    real = data_decoding.extract_image

    def counting(*args: object, **kwargs: object) -> object:
        nonlocal calls
        calls += 1
        if calls == 5:
            token.cancel()
        time.sleep(0.003)  # slow enough that the whole set cannot finish before the poll
        return real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(data_decoding, "extract_image", counting)
    dp = prep(params(root), tmp_path, workers=workers)
    with pytest.raises(Cancelled):
        dp.prep_data("train", cancel=token)
    assert calls < 200
    assert not (tmp_path / "cache").exists() or not any((tmp_path / "cache").iterdir())


def test_an_already_cancelled_token_stops_before_decoding(tmp_path: Path) -> None:
    root = make_tree(tmp_path / "train", {"a": 2})
    token = CancelToken()
    token.cancel()
    with pytest.raises(Cancelled):
        prep(params(root), tmp_path).prep_data("train", cancel=token)


# ---- small helpers -------------------------------------------------------------------
def test_estimate_bytes() -> None:
    assert estimate_bytes(60000, (28, 28), 1) == 60000 * 28 * 28 * 4
    assert estimate_bytes(10, [224, 224], 3) == 10 * 224 * 224 * 3 * 4


def test_relative_paths_resolve_against_the_params_file(tmp_path: Path) -> None:
    make_tree(tmp_path / "sets" / "train", {"a": 1, "b": 1})
    dp = DataParams({"train_dir": "train"}, path=tmp_path / "sets" / "p.json")
    ds = DataPrep(dp, cache_dir=tmp_path / "cache").prep_data("train")
    assert ds.root == (tmp_path / "sets" / "train").resolve() and len(ds) == 2
