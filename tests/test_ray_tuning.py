"""Tuning folds on Ray: a real local cluster (CPU only), started once for the module.

One search (``test_a_ray_search_with_killed_workers``) makes several checks: three
combinations on two single-core workers, where the test kills the
worker process running combination 0's second fold once and the one running
combination 1's first fold twice (from the progress events, mid-fold). Its scores are
compared with the in-process search's on the same data and seeds.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import make_tiny_set

from convonet.core.events import CancelToken, Event
from convonet.core.params import HyperParams
from convonet.core.runs import FOLDS_JSONL
from convonet.core.tuning import (
    CombinationFailed,
    ExecutorReady,
    FoldEnd,
    FoldProgress,
    FoldRequeued,
    FoldStart,
    Tuner,
)
from convonet.core.tuning.ray_cluster import worker_env, worker_options
from convonet.core.tuning.ray_executor import RayExecutorError
from convonet.tasks import Status, execute
from convonet.tasks.tune import TuneOutcome, TuneSpec

ray = pytest.importorskip("ray")
# The searches share one worker process's cluster: under xdist (`--dist loadgroup`, in
# pyproject.toml) every test of this group runs on the same worker, so the module's
# cluster starts once in a parallel run too.
pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("ray-cluster")]

KILL_ONCE = (0, 1)  # (combination, fold): its worker is killed once, then it runs again
KILL_ALWAYS = (1, 0)  # killed on both tries: combination 1 fails


def params(**changes: Any) -> HyperParams:
    base: dict[str, Any] = {"num_filters": "2,4,6", "num_units": 8, "epochs": 2,
                            "batch_size": 16, "kernel_size": 3, "cv_folds": 2,
                            "tuning_share": 1.0, "seed": 3, "init_rate": 0.05}
    return HyperParams().edit(**{**base, **changes})


@pytest.fixture(scope="module")
def cluster() -> Iterator[None]:
    """One local cluster of two cores for the whole module (a search joins it)."""
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False,
             logging_level=logging.ERROR)
    try:
        yield
    finally:
        ray.shutdown()


class Killer:
    """Records every event; kills the worker process running a target fold when that fold
    reports its first epoch (so the kill lands mid-fold), as many times as asked."""

    def __init__(self, kills: dict[tuple[int, int], int]) -> None:
        self.kills = dict(kills)
        self.pids: dict[str, int] = {}
        self.events: list[Event] = []
        self.killed: list[tuple[str, tuple[int, int]]] = []

    def __call__(self, event: Event) -> None:
        self.events.append(event)
        if isinstance(event, ExecutorReady):
            self.pids.update({w.name: w.pid for w in event.workers})
        if isinstance(event, FoldProgress) and event.epoch == 1:
            key = (event.combination_index, event.fold)
            if self.kills.get(key, 0) > 0:
                self.kills[key] -= 1
                self.killed.append((event.worker, key))
                os.kill(self.pids[event.worker], signal.SIGKILL)


def test_a_ray_search_with_killed_workers(cluster: None, tmp_path: Path) -> None:
    """One search, several checks (one test, so that a parallel run fits it once)."""
    killer = Killer({KILL_ONCE: 1, KILL_ALWAYS: 2})
    spec = TuneSpec(hyper_params=params(), train_set=make_tiny_set(), ray="auto",
                    results_dir=tmp_path)
    outcome = execute(spec, report=killer)
    assert isinstance(outcome, TuneOutcome)
    ray_search = (outcome, killer)
    check_ray_folds_score_exactly_as_in_process(ray_search)
    check_a_killed_worker_requeues_its_fold_once_and_the_search_finishes(ray_search)
    check_a_fold_that_loses_its_worker_twice_fails_its_combination(ray_search)
    check_progress_arrives_before_each_fold_ends(ray_search)


def fold_scores(folds: list[dict[str, Any]]) -> dict[tuple[int, int], tuple[float, float]]:
    return {(int(f["combination_index"]), int(f["fold"])): (f["accuracy"], f["loss"])
            for f in folds}


def check_ray_folds_score_exactly_as_in_process(ray_search: tuple[TuneOutcome, Killer]
                                               ) -> None:
    outcome, killer = ray_search
    data = make_tiny_set()
    local = Tuner(data.x, data.y, params(), class_names=data.class_names).search()
    ours = fold_scores(outcome.result.folds)
    theirs = fold_scores(local.folds)
    compared = [key for key in theirs if key[0] != KILL_ALWAYS[0]]
    assert len(compared) == 4 and KILL_ONCE in compared  # a re-run fold too
    assert {key: ours[key] for key in compared} == {key: theirs[key] for key in compared}
    workers = {e.worker for e in killer.events if isinstance(e, FoldEnd)}
    assert len(workers) >= 2  # the folds really ran on several workers


def check_a_killed_worker_requeues_its_fold_once_and_the_search_finishes(
        ray_search: tuple[TuneOutcome, Killer]) -> None:
    outcome, killer = ray_search
    assert outcome.status == Status.FINISHED
    requeued = [e for e in killer.events if isinstance(e, FoldRequeued)]
    assert sorted((e.combination_index, e.fold) for e in requeued) == [(0, 1), (1, 0)]
    assert all("Ray worker died" in e.reason for e in requeued)
    assert len(killer.killed) == 3
    assert {e.worker for e in requeued} <= {w for w, _ in killer.killed}
    assert outcome.run is not None
    lines = outcome.run.read_jsonl(FOLDS_JSONL)
    done = [(r["combination_index"], r["fold"]) for r in lines if r["kind"] == "fold"]
    assert len(done) == len(set(done)) and KILL_ONCE in done  # recorded once
    assert {(2, 0), (2, 1), (0, 0)} <= set(done)
    record = outcome.run.info["executor"]
    assert record["name"] == "ray" and record["address"]
    assert len(record["lost_workers"]) == 3 and record["nodes"]
    assert all(w["device"] == "CPU x1" for w in record["workers"])
    assert ray.is_initialized()  # a cluster the search did not start stays up


def check_a_fold_that_loses_its_worker_twice_fails_its_combination(
        ray_search: tuple[TuneOutcome, Killer]) -> None:
    outcome, killer = ray_search
    [failed] = [e for e in killer.events if isinstance(e, CombinationFailed)]
    assert failed.combination_index == KILL_ALWAYS[0] and not failed.diverged
    assert failed.reason == ("fold 1 lost its Ray worker twice: its Ray worker died (the "
                             "process was killed or its node was lost)")
    rows = {r["combination_index"]: r for r in outcome.result.rows}
    assert rows[1]["status"] == "failed" and rows[0]["status"] == rows[2]["status"] == "ok"
    assert outcome.result.best_params is not None
    assert outcome.result.best_params["num_filters"] in (2, 6)
    assert outcome.run is not None
    [rec] = [r for r in outcome.run.read_jsonl(FOLDS_JSONL) if r["kind"] == "failed"]
    assert rec["combination_index"] == 1 and rec["fold"] == 0
    assert "lost its Ray worker twice" in outcome.run.file(rec["traceback"]).read_text()


def check_progress_arrives_before_each_fold_ends(ray_search: tuple[TuneOutcome, Killer]
                                               ) -> None:
    _, killer = ray_search
    events = killer.events
    ends = [i for i, e in enumerate(events) if isinstance(e, FoldEnd)]
    ready = [i for i, e in enumerate(events) if isinstance(e, ExecutorReady)]
    starts = [i for i, e in enumerate(events) if isinstance(e, FoldStart)]
    assert ends and ready and ready[0] < starts[0]
    for i in ends:
        end = events[i]
        key = (end.combination_index, end.fold, end.worker)
        epochs = [e.epoch for e in events[:i] if isinstance(e, FoldProgress)
                  and (e.combination_index, e.fold, e.worker) == key]
        assert epochs == [1, 2] and end.worker
        start = [e for e in events[:i] if isinstance(e, FoldStart)
                 and (e.combination_index, e.fold, e.worker) == key]
        assert len(start) == 1


def test_stop_keeps_the_finished_folds_and_resume_runs_only_the_rest(
        cluster: None, tmp_path: Path) -> None:
    cancel = CancelToken()
    first: list[Event] = []

    def stop_at_first_fold(event: Event) -> None:
        first.append(event)
        if isinstance(event, FoldEnd):
            cancel.cancel()

    hyper = params(num_filters="2,4", epochs=2)
    spec = TuneSpec(hyper_params=hyper, train_set=make_tiny_set(), ray="auto",
                    results_dir=tmp_path)
    stopped = execute(spec, report=stop_at_first_fold, cancel=cancel)
    assert stopped.status == Status.STOPPED and stopped.run is not None
    run = stopped.run
    ended = [(e.combination_index, e.fold) for e in first if isinstance(e, FoldEnd)]
    on_disk = [(r["combination_index"], r["fold"]) for r in run.read_jsonl(FOLDS_JSONL)]
    assert 1 <= len(on_disk) < 4 and sorted(on_disk) == sorted(ended)

    again: list[Event] = []
    resumed = execute(TuneSpec(resume=run.path, train_set=make_tiny_set(), ray="auto"),
                      report=again.append)
    assert resumed.status == Status.FINISHED
    replayed = [(e.combination_index, e.fold) for e in again
                if isinstance(e, FoldEnd) and e.resumed]
    fitted = [(e.combination_index, e.fold) for e in again
              if isinstance(e, FoldEnd) and not e.resumed]
    assert sorted(replayed) == sorted(on_disk) and not set(fitted) & set(on_disk)
    lines = [(r["combination_index"], r["fold"]) for r in run.read_jsonl(FOLDS_JSONL)]
    assert sorted(lines) == [(0, 0), (0, 1), (1, 0), (1, 1)]  # no fold ran twice
    assert run.info["status"] == "finished"


def test_without_ray_installed_the_message_says_how_to_get_it(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` raises ImportError
    spec = TuneSpec(hyper_params=params(), train_set=make_tiny_set(), ray="auto",
                    results_dir=tmp_path)
    with pytest.raises(RayExecutorError) as info:
        execute(spec)
    assert str(info.value) == ("Tuning on Ray needs the ray package, which is not "
                               "installed: pip install 'convonet[ray]'")
    assert not any(tmp_path.iterdir())  # said before any run folder was made


def test_workers_take_the_backend_and_the_thread_settings_of_this_process(
        monkeypatch: pytest.MonkeyPatch) -> None:
    import keras

    monkeypatch.delenv("TF_NUM_INTRAOP_THREADS", raising=False)
    env = worker_env(1.0, {"num_cpus": 1})
    assert env["KERAS_BACKEND"] == keras.backend.backend()
    assert "TF_NUM_INTRAOP_THREADS" not in env  # TensorFlow's default, as in process
    monkeypatch.setenv("TF_NUM_INTRAOP_THREADS", "1")
    assert worker_env(1.0, {"num_cpus": 1})["TF_NUM_INTRAOP_THREADS"] == "1"
    shared = worker_env(0.25, {"num_gpus": 0.25, "num_cpus": 1})
    assert shared["TF_FORCE_GPU_ALLOW_GROWTH"] == "true"
    assert worker_options({"CPU": 8.0, "GPU": 2.0}, 0.25, 1) == (
        8, {"num_gpus": 0.25, "num_cpus": 1})
    assert worker_options({"CPU": 6.0}, 1.0, 2) == (3, {"num_cpus": 2})


DEFAULT_PATH = textwrap.dedent("""
    import json, sys
    sys.path.insert(0, sys.argv[1])
    from conftest import make_tiny_set
    from convonet.core.params import HyperParams
    from convonet.tasks import execute
    from convonet.tasks.tune import TuneSpec

    hyper = HyperParams().edit(num_filters=2, num_units=8, epochs=1, batch_size=16,
                               cv_folds=2, tuning_share=1.0)
    outcome = execute(TuneSpec(hyper_params=hyper, train_set=make_tiny_set(),
                               results_dir=sys.argv[2]))
    print(json.dumps({"ray": "ray" in sys.modules, "status": str(outcome.status),
                      "executor": outcome.run.info["executor"]["name"]}))
""")


def test_the_default_search_runs_in_process_without_importing_ray(tmp_path: Path) -> None:
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    proc = subprocess.run([sys.executable, "-c", DEFAULT_PATH, str(Path(__file__).parent),
                           str(tmp_path)], capture_output=True, text=True, env=env,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out == {"ray": False, "status": "finished", "executor": "in-process"}
