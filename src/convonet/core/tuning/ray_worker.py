"""The body of a Ray worker of a search (``ray_executor``): runs inside a Ray actor."""

from __future__ import annotations

import os
import queue
import socket
import threading
import traceback
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from convonet.core.events import CancelToken
from convonet.core.tuning.errors import CombinationDiverged, CombinationError, _short
from convonet.core.tuning.estimator import BuildFn
from convonet.core.tuning.folds import FoldRunner

__all__ = ["FoldWorker"]


class FoldWorker:
    """A Ray actor's body: one ``FoldRunner`` over the tuning share for the whole search.

    Run as a threaded actor (``max_concurrency`` > 1) so that ``cancel`` arrives while a
    fit runs; the fit itself runs on a thread of its own, whose epochs ``fit`` yields.
    """

    def __init__(self, X: np.ndarray, y: np.ndarray, image_shape: Sequence[int], seed: int,
                 build: BuildFn) -> None:
        from convonet.core.tuning.search import quiet_tensorflow_logger

        self._quiet = quiet_tensorflow_logger()
        self._quiet.__enter__()  # the actor's whole life: nothing the user can act on
        self.lock = threading.Lock()
        self.stopped = False
        self.current: int | None = None
        self.token = CancelToken()
        shape = (int(image_shape[0]), int(image_shape[1]), int(image_shape[2]))
        self.runner = FoldRunner(X, y, shape, int(seed), build, self.token)

    def info(self) -> dict[str, Any]:
        """Where this worker runs (the node, the GPUs Ray gave it, its process)."""
        import ray

        context = ray.get_runtime_context()
        return {"node": socket.gethostname(), "ip": ray.util.get_node_ip_address(),
                "node_id": context.get_node_id(), "pid": os.getpid(),
                "gpus": [str(g) for g in ray.get_gpu_ids()],
                "backend": os.environ.get("KERAS_BACKEND", "")}

    def fit(self, job_id: int, config: dict[str, Any], train: np.ndarray,
            test: np.ndarray) -> Any:
        """Fit and score one fold: yields ("progress", epoch, epochs, loss, accuracy)
        per epoch, then one of ("done", rec), ("stopped",), ("failed", reason, diverged,
        traceback) or ("fatal", message, traceback)."""
        with self.lock:
            self.token = CancelToken()
            if self.stopped:
                self.token.cancel()
            self.runner.cancel = self.token
            self.current = job_id
        items: queue.SimpleQueue[tuple[Any, ...]] = queue.SimpleQueue()

        def on_epoch(epoch: int, epochs: int, logs: Mapping[str, Any]) -> None:
            items.put(("progress", epoch, epochs, float(logs.get("loss", np.nan)),
                       float(logs.get("accuracy", np.nan))))

        def work() -> None:
            runner = self.runner
            try:
                rec = runner.fit_fold(runner.estimator(config), config, train, test,
                                      on_epoch)
                items.put(("stopped",) if rec is None else ("done", rec))
            except CombinationError as exc:
                items.put(("failed", str(exc), isinstance(exc, CombinationDiverged),
                           "".join(traceback.format_exception(exc))))
            except BaseException as exc:  # noqa: BLE001 - sent to the driver, which stops
                items.put(("fatal", f"{type(exc).__name__}: {_short(exc)}",
                           "".join(traceback.format_exception(exc))))

        thread = threading.Thread(target=work, name=f"fold-{job_id}", daemon=True)
        thread.start()
        while True:
            item = items.get()
            yield item
            if item[0] != "progress":
                break
        thread.join()
        with self.lock:
            self.current = None

    def cancel(self, job_id: int | None = None) -> None:
        """End the fit of ``job_id`` at its next batch; None: this one and every later
        one (the search was stopped)."""
        with self.lock:
            if job_id is None:
                self.stopped = True
                self.token.cancel()
            elif self.current == job_id:
                self.token.cancel()


