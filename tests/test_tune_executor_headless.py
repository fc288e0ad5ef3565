"""``convonet tune --ray [ADDRESS] --gpus-per-fold F``: the options, their messages, the spec
they make, and how the headless progress shows folds on Ray workers (the executor's events
fed straight to the printer; no Ray cluster, nothing fitted)."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

from convonet.cli import build_parser, main
from convonet.core.tuning import (
    CombinationFailed,
    ExecutorReady,
    FoldEnd,
    FoldProgress,
    FoldRequeued,
    FoldStart,
    TuneStart,
    WorkerInfo,
)
from convonet.headless.output import Display, Output

WORKERS = (WorkerInfo("w0", "node1", "GPU 0"), WorkerInfo("w1", "node1", "GPU 1"),
           WorkerInfo("w2", "node2", "GPU 0 (1/4)"))
P0, P1 = {"init_rate": 0.02}, {"init_rate": 0.05}


def parse(*argv: str) -> Any:
    return build_parser().parse_args(["tune", *argv])


def parse_error(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    with pytest.raises(SystemExit) as exc:
        parse(*argv)
    assert exc.value.code == 2
    return capsys.readouterr().err.strip().splitlines()[-1]


# ---- the options ---------------------------------------------------------------------------
def test_ray_without_a_value_is_ray_address_else_auto(monkeypatch: pytest.MonkeyPatch
                                                      ) -> None:
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    assert parse().ray is None and parse().gpus_per_fold is None
    assert parse("--ray").ray == "auto"
    assert parse("--ray", "10.0.0.1:6379").ray == "10.0.0.1:6379"
    assert parse("--ray", "AUTO").ray == "auto"
    monkeypatch.setenv("RAY_ADDRESS", "head.lan:6380")
    assert parse("--ray").ray == "head.lan:6380"
    assert parse("--ray", "10.0.0.1:6379").ray == "10.0.0.1:6379"  # the value wins
    assert parse().ray is None  # RAY_ADDRESS alone does not turn Ray on
    args = parse("--resume", "runs/x-tuning", "--ray", "--gpus-per-fold", "0.25")
    assert (args.ray, args.gpus_per_fold, args.resume) == ("head.lan:6380", 0.25,
                                                          Path("runs/x-tuning"))


def test_bad_values_name_the_option_and_what_to_write(capsys: pytest.CaptureFixture[str],
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    line = parse_error(capsys, "--ray", "headnode")
    assert line == ("convonet tune: error: --ray: expected auto or the head node's HOST:PORT "
                    "(e.g. 10.0.0.1:6379), got 'headnode'")
    assert "Ray Client address" in parse_error(capsys, "--ray", "ray://10.0.0.1:10001")
    assert "got 'h:99999'" in parse_error(capsys, "--ray", "h:99999")
    for bad in ("0", "1.5", "-0.25", "half", "nan"):
        line = parse_error(capsys, "--ray", "--gpus-per-fold", bad)
        assert line == ("convonet tune: error: --gpus-per-fold: expected a share of one GPU "
                        "above 0 and at most 1 (1 a GPU per fold, 0.25 four folds on each "
                        f"GPU), got {bad!r}")
    monkeypatch.setenv("RAY_ADDRESS", "nowhere")
    assert parse_error(capsys, "--ray").startswith(
        "convonet tune: error: RAY_ADDRESS: expected auto or the head node's HOST:PORT")


def test_help_names_ray_address_and_packing(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["tune", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "--ray [ADDRESS]" in text and "$RAY_ADDRESS" in text and "'auto'" in text
    assert "pip install 'convonet[ray]'" in text
    assert "--gpus-per-fold F" in text and "0.25 packs four small fits on each GPU" in text


def test_the_options_reach_the_spec_and_are_checked_first(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, demo_folder: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    from convonet.core.demo import demo_params_paths
    from convonet.core.errors import UsageError
    from convonet.headless.commands import tune

    data, hyper = demo_params_paths(demo_folder)
    base = ["tune", "--data-params", str(data), "--hyper-params", str(hyper),
            "--results-dir", str(tmp_path)]
    specs: list[Any] = []

    def loaded(*args: Any, **kwargs: Any) -> Any:
        raise UsageError("loading refused by the test")

    def spec_seen(runner: Any, spec: Any, *args: Any, **kwargs: Any) -> Any:
        specs.append(spec)
        raise UsageError("seen by the test")

    monkeypatch.setattr(tune, "run_spec", spec_seen)
    assert main([*base, "--ray", "10.0.0.1:6379", "--gpus-per-fold", "0.5"]) == 2
    assert (specs[-1].ray, specs[-1].gpus_per_fold) == ("10.0.0.1:6379", 0.5)
    assert main(base) == 2
    assert (specs[-1].ray, specs[-1].gpus_per_fold) == (None, 1.0)
    capsys.readouterr()

    monkeypatch.setattr(tune, "load_set", loaded)  # refused before anything is loaded
    assert main([*base, "--gpus-per-fold", "0.5"]) == 2
    assert capsys.readouterr().err.strip() == (
        "convonet: error: --gpus-per-fold applies to folds on Ray workers: add --ray (or "
        "--ray HOST:PORT), or leave --gpus-per-fold out")
    monkeypatch.setattr("convonet.executors.ray_missing",
                        lambda: "Ray is not installed: pip install 'convonet[ray]'")
    assert main([*base, "--ray"]) == 2
    assert capsys.readouterr().err.strip() == (
        "convonet: error: --ray: Ray is not installed: pip install 'convonet[ray]', or leave "
        "--ray out to fit the folds in this process")


# ---- the progress ----------------------------------------------------------------------------
def display(json_mode: bool = False) -> tuple[Display, Output, io.StringIO]:
    output = Output(json_mode=json_mode)
    err = io.StringIO()
    output.err = Console(file=err, width=200, force_terminal=False, highlight=False)
    return Display(output, "tune"), output, err


def search_events(executor: str = "ray") -> list[Any]:
    """A 2-combination search on three workers: two folds start, one reports an epoch, one
    worker is lost, a fold ends; the executor as ``executor``."""
    workers = WORKERS if executor == "ray" else (WorkerInfo("local", "this", "CPU"),)
    names = [w.name for w in workers] * 3
    return [
        TuneStart(total_fits=4, combinations=2, folds=2, strategy="grid", samples=100,
                  searched=("init_rate",)),
        ExecutorReady(executor, workers, "10.0.0.1:6379" if executor == "ray" else ""),
        FoldStart(0, P0, 0, worker=names[0]),
        FoldStart(1, P1, 0, worker=names[1]),
        FoldProgress(0, 0, epoch=2, epochs=5, loss=0.4312, accuracy=0.881, worker=names[0]),
        FoldRequeued(1, 0, 0, worker=names[1], reason="its process died"),
        FoldStart(1, P1, 0, worker=names[2]),
        FoldEnd(0, P0, 0, accuracy=0.9, loss=0.3, seconds=2.0, fits_done=1, total_fits=4,
                worker=names[0]),
    ]


def live(d: Display) -> str:
    """The progress bars as drawn now."""
    assert d.progress is not None
    out = io.StringIO()
    Console(file=out, width=200, force_terminal=False).print(d.progress.get_renderable())
    return out.getvalue()


def test_progress_shows_the_workers_the_folds_in_flight_and_a_lost_worker() -> None:
    d, output, err = display()
    events = search_events()
    with d:
        for event in events[:5]:
            d.handle(event)
        drawn = live(d)
        assert "#1 fold 1 on w0 (node1 GPU 0)" in drawn and "2/5" in drawn
        assert "loss 0.4312  accuracy 0.8810" in drawn
        assert "#2 fold 1 on w1 (node1 GPU 1)" in drawn
        assert "2 folds in flight" in drawn
        for event in events[5:]:
            d.handle(event)
        drawn = live(d)
        assert "on w0" not in drawn and "on w1" not in drawn  # idle, lost: no bar
        assert "#2 fold 1 on w2 (node2 GPU 0 (1/4))" in drawn and "1 fold in flight" in drawn
    lines = [ln for ln in err.getvalue().splitlines() if "━" not in ln]  # not the bars
    assert lines[1] == ("folds run on Ray at 10.0.0.1:6379: 3 workers on 2 nodes (node1: "
                        "GPU 0, GPU 1; node2: GPU 0 (1/4))")
    assert lines[2] == ("warning: worker w1 (node1 GPU 1) was lost while fitting #2 fold 1 "
                        "(its process died); the fold is queued again (a second loss fails "
                        "its combination)")
    assert lines[3].startswith("[1/4] init_rate=0.02  fold 1  accuracy 0.9000") \
        and lines[3].endswith("  on w0")
    assert len(lines) == 4  # an epoch or a fold handed out prints no line
    assert output.notices == [lines[2].removeprefix("warning: ")]


def test_a_failed_combination_frees_its_worker() -> None:
    d, _, _ = display()
    with d:
        for event in search_events()[:3]:
            d.handle(event)
        assert "#1 fold 1 on w0" in live(d)
        d.handle(CombinationFailed(0, P0, "out of memory", fits_done=0, total_fits=4))
        assert "#1 fold 1" not in live(d) and "in flight" not in live(d)


def test_json_lists_the_executor_events_in_order(capsys: pytest.CaptureFixture[str]) -> None:
    d, output, _ = display(json_mode=True)
    with d:
        for event in search_events():
            d.handle(event)
    output.emit_json({"command": "tune"})
    events = json.loads(capsys.readouterr().out)["events"]
    assert [e["event"] for e in events] == ["executor", "fold_start", "fold_start",
                                            "fold_progress", "fold_requeued", "fold_start"]
    assert events[0]["address"] == "10.0.0.1:6379"
    worker = events[0]["workers"][2]
    assert {k: worker[k] for k in ("name", "node", "device")} == {
        "name": "w2", "node": "node2", "device": "GPU 0 (1/4)"}
    assert {"node_id", "pid"} <= set(worker)  # Ray's node id and the worker's process
    assert events[3] == {"event": "fold_progress", "combination_index": 0, "fold": 0,
                         "epoch": 2, "epochs": 5, "loss": 0.4312, "accuracy": 0.881,
                         "rung": 0, "worker": "w0"}
    assert events[4]["reason"] == "its process died" and events[4]["worker"] == "w1"


def test_in_process_output_is_unchanged_by_the_executor_events(
        capsys: pytest.CaptureFixture[str]) -> None:
    plain = [e for e in search_events("in-process")
             if isinstance(e, (TuneStart, FoldEnd))]
    shown = []
    for events in (plain, [e for e in search_events("in-process")
                           if not isinstance(e, FoldRequeued)]):
        d, output, err = display()
        with d:
            for event in events:
                d.handle(event)
            shown.append((err.getvalue(), live(d), output.events, output.notices))
    assert shown[0] == shown[1]
    d, output, _ = display(json_mode=True)
    for event in search_events("in-process"):
        if not isinstance(event, FoldRequeued):
            d.handle(event)
    assert output.events == []
