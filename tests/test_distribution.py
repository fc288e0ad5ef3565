"""Data-parallel training over several devices (``core.distribution``, ``--devices``).

The suite runs on TensorFlow with one CPU, so the multi-device checks run in two child
processes (``tests/distribution_checks.py``) that print JSON: jax with two virtual CPU
devices (``XLA_FLAGS=--xla_force_host_platform_device_count=2``), and TensorFlow with two
logical CPU devices (MirroredStrategy). The tiny set is 90 8x8 images, batch 16: 72
training and 18 validation rows, both even, so no row sits out.

Tolerance on jax: the two devices run the same batches in the same order and only sum the
gradients across devices, so the history matches one device's to float32 rounding: losses
at rel 1e-4, accuracies within one image of the 72 (as tests/test_device_loop.py).
TensorFlow's MirroredStrategy feeds the replicas through tf.data with its own dropout
streams, so there the history has the same shape and the losses agree within rel 0.15.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from headless_helpers import jax_test_cache, write_tiny_folder

from convonet.cli import main
from convonet.core.distribution import (
    DevicesError,
    batch_size_problem,
    choose_devices,
    data_parallelism,
)
from convonet.core.events import Notice
from convonet.core.params import HyperParams

HERE = Path(__file__).resolve().parent
LOSS = {"rel": 1e-4}
ACCURACY = {"abs": 1.01 / 72}


def run_checks(results: Path, *args: str, **env: str) -> dict[str, Any]:
    full = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3",
            "CONVONET_RESULTS_DIR": str(results / "results"),
            "CONVONET_CACHE_DIR": str(results / "cache"),
            "CONVONET_CONFIG_DIR": str(results / "config"),
            "PYTHONPATH": os.pathsep.join([str(HERE.parent / "src"),
                                           os.environ.get("PYTHONPATH", "")]), **env}
    full.pop("CONVONET_DEVICES", None)
    done = subprocess.run([sys.executable, str(HERE / "distribution_checks.py"), *args,
                           str(results)], env=full, cwd=HERE, capture_output=True,
                          text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    out: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return out


@pytest.fixture(scope="module")
def checks(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    out = run_checks(tmp_path_factory.mktemp("distribution"), KERAS_BACKEND="jax",
                     JAX_PLATFORMS="cpu",
                     XLA_FLAGS="--xla_force_host_platform_device_count=2",
                     CONVONET_TEST_JAX_CACHE=str(jax_test_cache()))
    assert out["backend"] == "jax" and len(out["devices"]) == 2
    return out


def test_two_jax_devices_train_as_one_does(checks: dict[str, Any]) -> None:
    one, two = checks["one"]["history"], checks["two"]["history"]
    assert [r["epoch"] for r in two] == [r["epoch"] for r in one] == [1, 2, 3]
    for a, b in zip(two, one, strict=True):
        assert a["batches"] == b["batches"] == 5
        for name in ("loss", "val_loss"):
            assert a[name] == pytest.approx(b[name], **LOSS), (b["epoch"], name)
        for name in ("accuracy", "val_accuracy"):
            assert a[name] == pytest.approx(b[name], **ACCURACY), (b["epoch"], name)
    assert checks["two"]["trained_on"] == 2 and checks["one"]["trained_on"] == 1
    assert checks["two"]["run_devices"] == ["cpu:0", "cpu:1"]
    assert checks["one"]["run_devices"] == ["cpu:0"]
    assert ("data-parallel training on 2 devices (cpu:0, cpu:1): each batch of 16 split 8 "
            "per device") in checks["two"]["notices"]
    assert checks["one"]["notices"] == []


def test_the_trained_model_comes_back_on_one_device_and_saves(
        checks: dict[str, Any]) -> None:
    """The model given is the one trained (a copy ran on the devices), on one device:
    evaluation as after one device's training, and the saved file reloads the same."""
    two = checks["two"]
    assert two["same_model"] is True and two["model_devices"] == 1
    assert two["evaluate"]["loss"] == pytest.approx(checks["one"]["evaluate"]["loss"],
                                                    **LOSS)
    assert two["reload_devices"] == 1
    assert two["reload_diff"] < 1e-6


def test_the_device_loop_trains_data_parallel_as_fit_does(checks: dict[str, Any]) -> None:
    """CONVONET_DEVICE_LOOP=on: the data set on both devices, each batch split over them."""
    loop = checks["loop"]
    assert loop["trained_on"] == 2 and loop["run_devices"] == ["cpu:0", "cpu:1"]
    assert not [n for n in loop["notices"] if "fit" in n]
    for a, b in zip(loop["history"], checks["two"]["history"], strict=True):
        assert a["batches"] == b["batches"]
        for name in ("loss", "val_loss"):
            assert a[name] == pytest.approx(b[name], **LOSS), (b["epoch"], name)
        for name in ("accuracy", "val_accuracy"):
            assert a[name] == pytest.approx(b[name], **ACCURACY), (b["epoch"], name)
    assert loop["same_model"] is True and loop["model_devices"] == 1
    assert loop["reload_diff"] < 1e-6


def test_a_set_that_does_not_split_evenly_leaves_out_fewer_rows_than_devices(
        checks: dict[str, Any]) -> None:
    odd = checks["odd"]
    assert odd["status"] == "finished" and odd["trained_on"] == 2
    assert odd["notices"][0] == ("leaving out 1 of 73 training images so that every batch "
                                 "splits evenly over the 2 devices")


def test_refusals_name_the_field_and_what_works_before_a_run_is_recorded(
        checks: dict[str, Any]) -> None:
    refused = checks["refusals"]
    assert refused["batch"] == {
        "type": "ParamsError", "runs": [],
        "text": "batch_size 15 in the hyper params must be divisible by the number of "
                "devices (2) to split each batch evenly over them; use batch_size 16 (or "
                "14), or train on fewer devices with --devices"}
    assert refused["too_many"] == {
        "type": "DevicesError", "runs": [],
        "text": "--devices 3 asks for 3 devices, but this machine has 2 (cpu:0, cpu:1); "
                "give at most 2, or all"}
    assert refused["unknown"]["type"] == "DevicesError"
    assert "there is no device '5'" in refused["unknown"]["text"]


def test_a_stopped_data_parallel_training_resumes_to_the_same_history(
        checks: dict[str, Any]) -> None:
    resumed = checks["resume"]
    assert (resumed["first_status"], resumed["status"]) == ("stopped", "finished")
    assert resumed["epochs"] == [1, 2, 3]
    for a, b in zip(resumed["history"], checks["two"]["history"], strict=True):
        assert a["loss"] == pytest.approx(b["loss"], **LOSS)


def test_mirrored_strategy_on_two_tensorflow_devices(tmp_path: Path) -> None:
    out = run_checks(tmp_path, "tensorflow", KERAS_BACKEND="tensorflow")
    one, two = out["one"], out["two"]
    assert two["trained_on"] == 2 and two["run_devices"] == ["cpu:0", "cpu:1"]
    assert [r["batches"] for r in two["history"]] == [r["batches"] for r in one["history"]]
    losses = [r["loss"] for r in two["history"]]
    assert losses == pytest.approx([r["loss"] for r in one["history"]], rel=0.15)
    assert losses[-1] < losses[0]
    assert two["same_model"] is True and two["model_devices"] == 1
    assert two["reload_diff"] < 1e-6


# ---- in this process: TensorFlow on one CPU ---------------------------------------------
AVAILABLE = ["gpu:0", "gpu:1", "gpu:2"]


def test_choose_devices_reads_all_a_count_or_a_list() -> None:
    assert choose_devices("all", AVAILABLE) == AVAILABLE
    assert choose_devices("2", AVAILABLE) == ["gpu:0", "gpu:1"]
    assert choose_devices("0,2", AVAILABLE) == ["gpu:0", "gpu:2"]
    assert choose_devices(" gpu:1 , 2", AVAILABLE) == ["gpu:1", "gpu:2"]


@pytest.mark.parametrize(("value", "message"), [
    ("4", "--devices 4 asks for 4 devices, but this machine has 3 (gpu:0, gpu:1, gpu:2); "
          "give at most 3, or all"),
    ("0", "--devices 0: give all, a device count such as 2, or device numbers such as 0,1 "
          "(the devices: gpu:0, gpu:1, gpu:2)"),
    ("1,1", "--devices 1,1 names gpu:1 twice; name each device once"),
    ("many", "--devices many: there is no device 'many'; give all, a device count such as "
             "2, or device numbers such as 0,1 (the devices: gpu:0, gpu:1, gpu:2)"),
])
def test_devices_that_do_not_exist_are_refused_naming_what_exists(
        value: str, message: str) -> None:
    with pytest.raises(DevicesError) as caught:
        choose_devices(value, AVAILABLE)
    assert str(caught.value) == message


def test_the_batch_size_check_says_a_value_that_works() -> None:
    assert batch_size_problem(64, 4) is None
    assert batch_size_problem(30, 1) is None
    assert batch_size_problem(30, 4) == (
        "batch_size 30 in the hyper params must be divisible by the number of devices (4) "
        "to split each batch evenly over them; use batch_size 32 (or 28), or train on "
        "fewer devices with --devices")
    assert "use batch_size 4, or" in (batch_size_problem(3, 4) or "")


def test_one_device_keeps_todays_training(tmp_path: Path, tiny_set: Any,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """On one CPU ``all`` and ``1`` are one device: no distribution, the model trains in
    place, and run.json names the device."""
    from task_helpers import train

    from convonet.core.model import NetModel

    monkeypatch.delenv("CONVONET_DEVICES", raising=False)
    assert data_parallelism(None, 15) is None
    assert data_parallelism("1", 15) is None
    assert data_parallelism("all", 15) is None
    ds = tiny_set()
    hyper = HyperParams().edit(num_filters=4, num_units=16, epochs=1, batch_size=15)
    model = NetModel(hyper).build(ds.image_shape, ds.num_classes, ds.class_names)
    events: list[Any] = []
    outcome = train(model, hyper, ds, False, tmp_path, report=events.append, devices="all")
    assert outcome.model is model and str(outcome.status) == "finished"
    assert outcome.run is not None and outcome.run.info["devices"] == ["cpu:0"]
    assert not [e for e in events if isinstance(e, Notice) and "data-parallel" in e.text]


def params_files(tmp_path: Path) -> list[str]:
    data = write_tiny_folder(tmp_path / "data", per_class=4)
    hyper = tmp_path / "hyper.json"
    hyper.write_text(json.dumps({"epochs": 1, "batch_size": 15}), encoding="utf-8")
    return ["--data-params", str(data), "--hyper-params", str(hyper),
            "--results-dir", str(tmp_path / "results")]


def test_train_refuses_more_devices_than_exist_in_one_line(
        tmp_path: Path, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CONVONET_DEVICES", raising=False)
    assert main(["train", *params_files(tmp_path), "--devices", "2"]) == 2
    err = capsys.readouterr().err
    assert ("convonet: error: --devices 2 asks for 2 devices, but this machine has 1 "
            "(cpu:0); give at most 1, or all") in err
    assert "Traceback" not in err
    assert not (tmp_path / "results" / "runs").exists()
    monkeypatch.setenv("CONVONET_DEVICES", "0,1")
    assert main(["train", *params_files(tmp_path / "env")]) == 2
    assert "CONVONET_DEVICES 0,1: there is no device '1'" in capsys.readouterr().err


def test_the_app_refuses_devices_at_start_and_shows_its_setting(
        tmp_path: Path, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    from convonet import serve
    from convonet.cli import build_parser
    from convonet.tui.session import Session
    from convonet.tui.training_text import info_line

    monkeypatch.delenv("CONVONET_DEVICES", raising=False)
    assert main([*params_files(tmp_path), "--devices", "3"]) == 2
    assert "--devices 3 asks for 3 devices, but this machine has 1" in capsys.readouterr().err
    args = build_parser().parse_args(["serve", "--devices", "all"])
    assert serve.app_command(args, python="python3").endswith("tui --devices all")
    line = info_line(Session(devices="2"), 0, running=False, validation=False)
    assert "devices 2" in line
    assert "devices" not in info_line(Session(), 0, running=False, validation=False)


async def test_the_training_screen_trains_on_the_apps_devices(
        make_app: Any, tiny_set: Any, wait_for_tasks: Any,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The app's --devices reaches the training: here, on one CPU, asking for two shows
    the error dialog with the devices there are, and records no run."""
    from conftest import wait_for

    from convonet.tui.dialogs import ErrorDialog
    from convonet.tui.session import Session

    monkeypatch.delenv("CONVONET_DEVICES", raising=False)
    session = Session(train_set=tiny_set(), devices="2",
                      hyper_params=HyperParams().edit(num_filters=4, num_units=16,
                                                      epochs=1, batch_size=16))
    app = make_app(session=session)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("3", "i")
        await wait_for_tasks(pilot)
        await wait_for(pilot, lambda: session.model is not None, "the model")
        await pilot.press("4", "t")
        await wait_for(pilot, lambda: isinstance(app.screen, ErrorDialog), "the error")
        dialog = app.screen
        assert isinstance(dialog, ErrorDialog)
        assert dialog.error_title.startswith("Training")
        assert ("--devices 2 asks for 2 devices, but this machine has 1 (cpu:0)"
                in str(dialog.query_one("#summary").render()))
        assert not list((app.results_dir / "runs").glob("*"))
