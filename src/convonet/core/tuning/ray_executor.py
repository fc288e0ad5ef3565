"""Folds on Ray actors: the executor for every GPU of a box, or several boxes.

The search loop stays in this process (``executor``); this module only runs its fold jobs.
Each worker is a long-lived Ray actor (``FoldWorker``) holding a ``FoldRunner`` over the
tuning share, which is put once in Ray's object store: its ``ModelReuse`` keeps the
compiled model of an architecture warm across folds, and resets the weights, optimizer
state and seed before every fit, so a fold's scores do not depend on which worker ran
it or in which order (the tests compare them with the in-process search's).

- One worker per GPU share (``gpus_per_fold``: 0.25 packs four fits on one GPU); on a
  cluster without GPUs, one per ``cpus_per_worker`` cores.
- A fold streams its epochs back while it runs (a generator actor method read with
  ``ray.wait``), then its scores.
- A stop (the search's cancel token) asks every worker to end its fit at the next batch.
- A worker that dies (its process killed, its node lost) is replaced by a fresh actor
  and its fold is queued again once; a second loss fails that combination.

Ray is imported only here (and in ``ray_worker``, inside the actor), only when a Ray
search starts (``pip install
'convonet[ray]'``). Ray Tune and KerasTuner's distributed mode are not used: they would
take over our loop and its ledger.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from convonet.core.events import CancelToken, Reporter, no_report
from convonet.core.tuning.errors import (
    CombinationDiverged,
    CombinationError,
    FatalTuningError,
    _short,
)
from convonet.core.tuning.events import ExecutorReady, WorkerInfo
from convonet.core.tuning.executor import FoldJob, FoldSink
from convonet.core.tuning.folds import FoldRunner
from convonet.core.tuning.ray_cluster import (
    INSTALL_HINT,
    RayExecutorError,
    connect,
    import_ray,
    quiet_error_printer,
    worker_env,
    worker_options,
)
from convonet.core.tuning.ray_worker import FoldWorker

log = logging.getLogger(__name__)

__all__ = ["INSTALL_HINT", "RayExecutor", "RayExecutorError", "import_ray"]

# ---- the driver's side -----------------------------------------------------------------
@dataclass
class _Worker:
    name: str
    actor: Any
    ready: Any  # the ObjectRef of its info() while it starts
    info: WorkerInfo | None = None
    busy: bool = False
    started: float = field(default_factory=time.monotonic)


@dataclass
class _Flight:
    job: FoldJob
    job_id: int
    worker: _Worker


class RayExecutor:
    """Runs fold jobs on Ray actors (see the module doc).

    ``address``: ``"auto"`` starts a private local cluster over this machine (no dashboard,
    worker output kept out of the terminal) and shuts it down at the end (the front ends
    turn ``$RAY_ADDRESS`` into an address before this); ``"HOST:PORT"`` joins that existing
    cluster (this process must run on a node of it, as Ray advises, not through Ray Client).
    A process that already called ``ray.init`` keeps its own connection and cluster.
    ``gpus_per_fold``: each worker's share of a GPU; ``cpus_per_worker``: each worker's
    cores where the cluster has no GPU (``max_workers`` caps how many start). Workers run
    with this process's ``KERAS_BACKEND``.
    """

    name = "ray"

    def __init__(self, address: str = "auto", *, gpus_per_fold: float = 1.0,
                 cpus_per_worker: int = 1, max_workers: int | None = None,
                 start_timeout: float = 300.0, stop_timeout: float = 60.0) -> None:
        self.ray = import_ray()
        if gpus_per_fold <= 0 or (gpus_per_fold > 1 and not float(gpus_per_fold).is_integer()):
            raise RayExecutorError(f"gpus_per_fold must be a share of one GPU (0.25, 0.5) "
                                   f"or a whole number of GPUs; got {gpus_per_fold}")
        self.address = address or "auto"
        self.gpus_per_fold = float(gpus_per_fold)
        self.cpus_per_worker = max(1, int(cpus_per_worker))
        self.max_workers = max_workers
        self.start_timeout = start_timeout
        self.stop_timeout = stop_timeout
        self.cancel = CancelToken()
        self.report: Reporter = no_report
        self.workers: list[_Worker] = []
        self.lost: list[str] = []
        self.connected = False  # this executor called ray.init (and will disconnect)
        self.started_cluster = False  # ... and that started a local cluster
        self.cluster_address = ""
        self._actor_class: Any = None
        self._share: tuple[Any, ...] = ()
        self._count = 0
        self._job_ids = 0
        self._attempts: dict[tuple[int, int, int], int] = {}
        self._restore_printer: Any = None

    # ---- the cluster and its workers -----------------------------------------------
    def open(self, runner: FoldRunner, cancel: CancelToken, report: Reporter = no_report,
             jobs_hint: int = 0) -> None:
        self.cancel, self.report = cancel, report
        self.connected, self.started_cluster, self.cluster_address = connect(
            self.ray, self.address)
        self._restore_printer = quiet_error_printer()
        resources = self.ray.cluster_resources()
        count, options = worker_options(resources, self.gpus_per_fold,
                                        self.cpus_per_worker)
        count = max(1, min(count, jobs_hint or count, self.max_workers or count))
        self._actor_class = self.ray.remote(FoldWorker).options(
            max_concurrency=4, runtime_env={"env_vars": worker_env(self.gpus_per_fold,
                                                                   options)}, **options)
        X, y = self.ray.put(runner.X), self.ray.put(runner.y)
        self._share = (X, y, runner.image_shape, runner.seed, runner.reuse.build)
        for _ in range(count):
            self._start_worker()
        self._await_ready(lambda: all(w.info is not None for w in self.workers))
        self._report_ready()

    def _start_worker(self) -> _Worker:
        actor = self._actor_class.remote(*self._share)
        worker = _Worker(f"w{self._count}", actor, actor.info.remote())
        self._count += 1
        self.workers.append(worker)
        return worker

    def _await_ready(self, done: Any) -> None:
        """Wait until ``done()`` (workers started), the search is stopped, or the start
        timeout passes (then the cluster lacks the resources or our package)."""
        deadline = time.monotonic() + self.start_timeout
        while not done() and not self.cancel.cancelled:
            pending = [w.ready for w in self.workers if w.info is None]
            ready, _ = self.ray.wait(pending, num_returns=1, timeout=0.2)
            for ref in ready:
                self._take_ready(ref)
            if time.monotonic() > deadline:
                raise RayExecutorError(
                    f"the Ray workers did not start within {self.start_timeout:g} s: the "
                    f"cluster at {self.cluster_address} has no free "
                    f"{'GPU' if self.gpus_per_fold and self._wants_gpus() else 'CPU'} "
                    f"for them, or its nodes lack convonet")

    def _wants_gpus(self) -> bool:
        return bool(self.ray.cluster_resources().get("GPU"))

    def _take_ready(self, ref: Any) -> None:
        worker = next(w for w in self.workers if w.ready == ref)
        try:
            info = self.ray.get(ref)
        except self.ray.exceptions.RayError as exc:
            raise RayExecutorError(
                f"a Ray worker could not start: {_short(exc)}; every node needs the same "
                f"Python, convonet and Keras backend as this one") from exc
        device = _device(info, self.gpus_per_fold, self.cpus_per_worker)
        worker.info = WorkerInfo(worker.name, str(info["node"]), device,
                                 node_id=str(info["node_id"]), pid=int(info["pid"]))

    def _report_ready(self) -> None:
        infos = tuple(w.info for w in self.workers if w.info is not None)
        self.report(ExecutorReady(self.name, infos, address=self.cluster_address))

    # ---- the jobs ----------------------------------------------------------------------
    def run(self, jobs: Sequence[FoldJob], sink: FoldSink) -> None:
        todo: deque[FoldJob] = deque(jobs)
        flights: dict[Any, _Flight] = {}  # fold generator -> its job and worker
        stop_sent: float | None = None
        try:
            while True:
                if self.cancel.cancelled:
                    if stop_sent is None:
                        stop_sent = self._stop_all()
                    elif time.monotonic() - stop_sent > self.stop_timeout:
                        self._abandon(flights)
                else:
                    self._assign(todo, flights, sink)
                waiting = [w.ready for w in self.workers if w.info is None]
                if not flights and (self.cancel.cancelled or not todo):
                    return
                if not flights and not waiting:
                    raise RayExecutorError("no Ray worker is left to run the folds")
                ready, _ = self.ray.wait([*flights, *waiting], num_returns=1, timeout=0.2)
                for ref in ready:
                    if ref in flights:
                        self._take(ref, flights, todo, sink)
                    else:
                        self._take_ready(ref)
                        self._report_ready()
        finally:
            for flight in flights.values():  # a fatal error or failure limit: stop them
                flight.worker.actor.cancel.remote(flight.job_id)

    def _assign(self, todo: deque[FoldJob], flights: dict[Any, _Flight],
                sink: FoldSink) -> None:
        """Hand queued jobs to the idle workers, in queue order."""
        for worker in self.workers:
            if worker.busy or worker.info is None:
                continue
            while todo and not sink.wanted(todo[0]):
                todo.popleft()
            if not todo:
                return
            job = todo.popleft()
            self._job_ids += 1
            generator = worker.actor.fit.remote(self._job_ids, job.config, job.train,
                                                job.test)
            flights[generator] = _Flight(job, self._job_ids, worker)
            worker.busy = True
            sink.started(job, worker.name)

    def _take(self, generator: Any, flights: dict[Any, _Flight], todo: deque[FoldJob],
              sink: FoldSink) -> None:
        """The next item of a fold in flight: an epoch, its end, or its worker's loss."""
        flight = flights[generator]
        job, worker = flight.job, flight.worker
        try:
            item = self.ray.get(next(generator))
        except StopIteration:
            item = ("stopped",)
        except self.ray.exceptions.RayActorError as exc:
            del flights[generator]
            self._lost(flight, exc, todo, flights, sink)
            return
        kind = item[0]
        if kind == "progress":
            sink.progress(job, int(item[1]), int(item[2]),
                          {"loss": item[3], "accuracy": item[4]}, worker.name)
            return
        del flights[generator]
        worker.busy = False
        if kind == "done":
            sink.finished(job, dict(item[1]), worker.name)
        elif kind == "failed":
            error = CombinationDiverged(item[1]) if item[2] else CombinationError(item[1])
            sink.failed(job, error, worker.name, item[3])
            self._drop_combination(job, flights)
        elif kind == "fatal":
            log.error("fold failed on Ray worker %s:\n%s", worker.name, item[2])
            raise FatalTuningError(f"{item[1]} (on Ray worker {worker.name})")

    def _drop_combination(self, job: FoldJob, flights: dict[Any, _Flight]) -> None:
        """A combination failed: end its other folds in flight (their results are
        dropped anyway)."""
        for flight in flights.values():
            if flight.job.combination_index == job.combination_index and \
                    flight.job.rung == job.rung:
                flight.worker.actor.cancel.remote(flight.job_id)

    def _lost(self, flight: _Flight, exc: BaseException, todo: deque[FoldJob],
              flights: dict[Any, _Flight], sink: FoldSink) -> None:
        """A worker died with a fold in flight: replace it, queue the fold again once."""
        job, worker = flight.job, flight.worker
        self._retire(worker)
        if not self.cancel.cancelled:
            self._start_worker()
        attempts = self._attempts[job.key] = self._attempts.get(job.key, 0) + 1
        what = "its Ray worker died (the process was killed or its node was lost)"
        log.warning("Ray worker %s lost running combination %d fold %d: %s", worker.name,
                    job.combination_index, job.fold, _short(exc))
        if attempts == 1:
            sink.requeued(job, worker.name, what)
            todo.appendleft(job)
        else:
            sink.failed(job, CombinationError(
                f"fold {job.fold + 1} lost its Ray worker twice: {what}"), worker.name)
            self._drop_combination(job, flights)

    def _retire(self, worker: _Worker) -> None:
        if worker in self.workers:
            self.workers.remove(worker)
            self.lost.append(worker.name)
        try:
            self.ray.kill(worker.actor)
        except Exception as exc:  # noqa: BLE001 - already gone is fine
            log.debug("ray.kill(%s): %s", worker.name, exc)

    def _stop_all(self) -> float:
        """Every worker ends its fit at the next batch and starts no other."""
        for worker in self.workers:
            worker.actor.cancel.remote(None)
        return time.monotonic()

    def _abandon(self, flights: dict[Any, _Flight]) -> None:
        """Workers that did not stop in time are killed (their folds are discarded)."""
        for flight in flights.values():
            self._retire(flight.worker)
        flights.clear()

    # ---- the record and the end ------------------------------------------------------
    def record(self) -> dict[str, Any]:
        infos = [w.info for w in self.workers if w.info is not None]
        return {"name": self.name, "address": self.cluster_address,
                "started_cluster": self.started_cluster,
                "nodes": sorted({i.node_id or i.node for i in infos}),
                "workers": [{"name": i.name, "node": i.node, "node_id": i.node_id,
                             "device": i.device} for i in infos],
                "gpus_per_fold": self.gpus_per_fold, "lost_workers": list(self.lost)}

    def close(self) -> None:
        try:
            for worker in list(self.workers):
                self._retire(worker)
            self.workers.clear()
            if self.connected:  # a local cluster stops; one joined stays up
                self.ray.shutdown()
                self.connected = False
        finally:
            if self._restore_printer is not None:
                self._restore_printer()
                self._restore_printer = None


def _device(info: Mapping[str, Any], gpus_per_fold: float, cpus: int) -> str:
    """"GPU 0", "GPU 1 (1/4)", "CPU x2": what one worker computes on."""
    gpus = list(info.get("gpus") or [])
    if not gpus:
        return f"CPU x{cpus}"
    share = "" if gpus_per_fold >= 1 else f" (1/{round(1 / gpus_per_fold)})"
    return f"GPU {','.join(gpus)}{share}"

