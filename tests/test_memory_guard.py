"""The memory guard: a set too big for memory is refused by the core, before allocating.

One check in ``DataPrep.prep_data`` (after listing, before decoding or reading the cache)
serves headless and the app alike, so both name the same figure and the same way out.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from conftest import wait_for
from PIL import Image

import convonet.core.data.prep as data_prep
from convonet.cli import main
from convonet.core.data import (
    DataError,
    DataPrep,
    available_memory,
    check_memory,
    estimate_bytes,
    human_bytes,
)
from convonet.core.params import DataParams, HyperParams
from convonet.tui.dialogs import ErrorDialog
from convonet.tui.session import Session

SRC = Path(__file__).resolve().parents[1] / "src"
BIG = [4096, 4096]
GiB = 1 << 30


@pytest.fixture(autouse=True)
def cache_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Each test decodes into its own dataset cache, never the user's."""
    folder = tmp_path / "cache"
    monkeypatch.setenv("CONVONET_CACHE_DIR", str(folder))
    return folder


def image_tree(root: Path, per_class: int, classes: tuple[str, ...] = ("cats", "dogs")) -> Path:
    """Tiny 8x8 PNGs, one folder per class: cheap to write, huge at 4096x4096."""
    rng = np.random.default_rng(0)
    for name in classes:
        (root / name).mkdir(parents=True)
        for i in range(per_class):
            pixels = (rng.random((8, 8, 3)) * 255).astype(np.uint8)
            Image.fromarray(pixels, "RGB").save(root / name / f"{i}.png")
    return root


def params_files(folder: Path, root: Path, image_size: list[int]) -> tuple[Path, Path]:
    data = folder / "big_data_params.json"
    data.write_text(json.dumps({"train_dir": str(root), "image_size": image_size,
                                "color_mode": "rgb"}))
    hyper = HyperParams().edit(epochs=1, num_filters=4, num_units=16,
                               batch_size=8).save(folder / "tiny_hyper_params.json")
    return data, hyper


# ---- the check itself ----------------------------------------------------------------------
def test_the_message_names_the_figure_and_ways_that_fit(tmp_path: Path) -> None:
    params = DataParams({"train_dir": str(tmp_path), "image_size": BIG, "color_mode": "rgb"})
    available = 16 * GiB
    with pytest.raises(DataError) as info:
        check_memory(1_438, params, tmp_path, available)
    text = str(info.value)
    need = estimate_bytes(1_438, BIG, 3)
    assert text.startswith(f"loading 1,438 images of '{tmp_path}' at 4096x4096x3 needs about "
                           f"{human_bytes(need)} of memory, more than half of the 16.0 GB "
                           "available; use a smaller image_size in the data params (at most ")
    assert human_bytes(need) == "269.6 GB"
    assert "color_mode grayscale (a third of the memory)" in text
    # The sizes it offers do fit, and one step more would not.
    side = int(text.split("(at most ")[1].split("x")[0])
    fits = params.edit(image_size=[side, side])
    check_memory(1_438, fits, tmp_path, available)
    with pytest.raises(DataError):
        check_memory(1_438, params.edit(image_size=[side + 1, side + 1]), tmp_path, available)
    count = int(text.split("fewer images (at most ")[1].split(" ")[0].replace(",", ""))
    check_memory(count, params, tmp_path, available)
    with pytest.raises(DataError):
        check_memory(count + 1, params, tmp_path, available)


def test_grayscale_is_not_offered_when_the_set_is_grayscale(tmp_path: Path) -> None:
    params = DataParams({"train_dir": str(tmp_path), "image_size": BIG})
    with pytest.raises(DataError) as info:
        check_memory(1_438, params, tmp_path, 21 * GiB)
    text = str(info.value)
    assert "needs about 89.9 GB of memory" in text  # the figure the data screen showed
    assert "color_mode" not in text and "fewer images (at most 168 at this size)" in text


def test_unknown_memory_lets_the_load_through(tmp_path: Path) -> None:
    params = DataParams({"train_dir": str(tmp_path), "image_size": BIG})
    check_memory(10**6, params, tmp_path, None)


def test_available_memory_reads_meminfo_and_a_container_limit(tmp_path: Path) -> None:
    meminfo = tmp_path / "meminfo"
    meminfo.write_text("MemTotal:       24683656 kB\nMemFree:         1000000 kB\n"
                       "MemAvailable:   20000000 kB\n")
    none = tmp_path / "no-cgroup"
    # MemAvailable, not MemFree: the page cache the kernel gives back counts.
    assert available_memory(meminfo, none) == 20_000_000 * 1024

    v2 = tmp_path / "v2"
    v2.mkdir()
    (v2 / "memory.max").write_text(f"{4 * GiB}\n")
    (v2 / "memory.current").write_text(f"{3 * GiB}\n")
    (v2 / "memory.stat").write_text(f"anon 123\ninactive_file {GiB}\nactive_file 5\n")
    assert available_memory(meminfo, v2) == 2 * GiB  # 4 GiB limit - (3 - 1 reclaimable)
    (v2 / "memory.max").write_text("max\n")
    assert available_memory(meminfo, v2) == 20_000_000 * 1024

    v1 = tmp_path / "v1" / "memory"
    v1.mkdir(parents=True)
    (v1 / "memory.limit_in_bytes").write_text(f"{8 * GiB}\n")
    (v1 / "memory.usage_in_bytes").write_text(f"{GiB}\n")
    (v1 / "memory.stat").write_text("total_inactive_file 0\n")
    assert available_memory(meminfo, v1.parent) == 7 * GiB
    (v1 / "memory.limit_in_bytes").write_text("9223372036854771712\n")  # v1's "no limit"
    assert available_memory(meminfo, v1.parent) == 20_000_000 * 1024

    # No /proc/meminfo: the free pages sysconf reports, still capped by the container.
    assert available_memory(tmp_path / "missing", none) == \
        os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")


# ---- the core refuses before allocating ---------------------------------------------------
def no_decoding(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fail the test if the load goes on past the check (decoding or reading the cache)."""
    def refuse(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("the load went on to allocate the arrays")

    monkeypatch.setattr(DataPrep, "load_images", refuse)


def test_prep_data_refuses_before_decoding_or_reading_the_cache(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = image_tree(tmp_path / "set", per_class=3)
    params = DataParams({"train_dir": str(root), "image_size": [8, 8], "color_mode": "rgb"})
    first = DataPrep(params).prep_data("train")  # fits, and fills the cache
    assert len(first) == 6
    monkeypatch.setattr(data_prep, "available_memory", lambda: 1_000)
    no_decoding(monkeypatch)
    with pytest.raises(DataError, match=r"loading 6 images of .* at 8x8x3 needs about "
                                        r"4\.5 KB of memory, more than half of the 1000 B"):
        DataPrep(params).prep_data("train")  # a cache hit needs the same float32 arrays


def test_headless_train_refuses_in_one_line_with_exit_2(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    root = image_tree(tmp_path / "set", per_class=3)
    data, hyper = params_files(tmp_path, root, BIG)
    # 6 RGB images at 4096x4096 need 1.1 GB as float32: refused with 1 GB available.
    monkeypatch.setattr(data_prep, "available_memory", lambda: GiB)
    no_decoding(monkeypatch)
    status = main(["train", "--data-params", str(data), "--hyper-params", str(hyper),
                   "--results-dir", str(tmp_path / "results")])
    err = capsys.readouterr().err
    assert status == 2, err
    lines = [ln for ln in err.splitlines() if ln.startswith("convonet: error:")]
    assert lines == [
        f"convonet: error: loading 6 images of '{root}' at 4096x4096x3 needs about 1.1 GB of "
        "memory, more than half of the 1.0 GB available; use a smaller image_size in the data "
        "params (at most 2730x2730 fits), color_mode grayscale (a third of the memory), or "
        "fewer images (at most 2 at this size)"]
    assert "Traceback" not in err


#: ``python -m convonet`` with its address space capped at 4 GiB: a safety net, so that
#: should the guard ever be missing the child fails to allocate at once instead of pushing
#: the test machine into swap (importing Keras needs well under 2 GiB of it).
LIMITED_CONVONET = ("import resource, runpy, sys; "
                    "resource.setrlimit(resource.RLIMIT_AS, (4 << 30, 4 << 30)); "
                    "sys.argv[0] = 'convonet'; "
                    "runpy.run_module('convonet', run_name='__main__', alter_sys=True)")


def test_headless_train_at_4096_refuses_the_real_machine_before_allocating(
        tmp_path: Path) -> None:
    """Not patched: as many tiny images as the machine's own available memory would take
    at 4096x4096x3 (twice the limit), refused in a fresh process whose peak memory stays
    what importing Keras takes."""
    available = available_memory()
    if available is None:
        pytest.skip("this system does not say how much memory is available")
    per_image = estimate_bytes(1, BIG, 3)
    per_class = math.ceil(available / per_image / 2)
    root = image_tree(tmp_path / "set", per_class=per_class)
    data, hyper = params_files(tmp_path, root, BIG)
    env = {**os.environ, "PYTHONPATH": f"{SRC}{os.pathsep}{os.environ.get('PYTHONPATH', '')}",
           "TF_CPP_MIN_LOG_LEVEL": "2"}
    out, err = tmp_path / "stdout", tmp_path / "stderr"
    with open(out, "wb") as o, open(err, "wb") as e:
        proc = subprocess.Popen(
            [sys.executable, "-c", LIMITED_CONVONET, "train", "--data-params", str(data),
             "--hyper-params", str(hyper), "--results-dir", str(tmp_path / "results")],
            stdout=o, stderr=e, env=env, cwd=tmp_path)
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
    text = err.read_text()
    assert proc.returncode == 2, text
    errors = [ln for ln in text.splitlines() if "error" in ln]
    assert len(errors) == 1 and errors[0].startswith(
        f"convonet: error: loading {2 * per_class:,} images of '{root}' at 4096x4096x3 "
        "needs about "), text
    assert "more than half of the" in errors[0] and "smaller image_size" in errors[0]
    peak_mb = usage.ru_maxrss / 1024  # kB on Linux
    # Decoding would have taken the whole machine; Keras alone takes well under 2 GB.
    assert peak_mb < 2048, f"the process grew to {peak_mb:.0f} MB before refusing"


# ---- the app shows the core's message and keeps its set -----------------------------------
async def test_the_app_shows_the_same_message_and_keeps_the_loaded_set(
        make_app: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = image_tree(tmp_path / "set", per_class=3)
    params = DataParams({"train_dir": str(root), "image_size": [8, 8], "color_mode": "rgb"})
    app = make_app(session=Session(data_params=params))
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.press("2")
        screen = app.screen
        await pilot.press("t")
        await app.workers.wait_for_complete()
        await pilot.pause()
        before = app.session.train_set
        assert before is not None and len(before) == 6 and before.image_shape == (8, 8, 3)

        app.session.data_params = params.edit(image_size=BIG)
        monkeypatch.setattr(data_prep, "available_memory", lambda: GiB)
        no_decoding(monkeypatch)
        await pilot.press("t")
        await wait_for(pilot, lambda: isinstance(app.screen, ErrorDialog), "the error dialog")
        dialog = app.screen
        assert isinstance(dialog, ErrorDialog)
        expected = (f"loading 6 images of '{root}' at 4096x4096x3 needs about 1.1 GB of "
                    "memory, more than half of the 1.0 GB available; use a smaller image_size "
                    "in the data params (at most 2730x2730 fits), color_mode grayscale (a "
                    "third of the memory), or fewer images (at most 2 at this size)")
        assert dialog.summary == expected  # word for word what headless prints
        await pilot.press("escape")
        await app.workers.wait_for_complete()
        await pilot.pause()
        assert app.screen is screen
        assert app.session.train_set is before
