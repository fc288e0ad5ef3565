"""Joining or starting the Ray cluster of a search, and its workers' resources and
environment (``ray_executor``). Ray is imported only when a Ray search starts."""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Mapping
from typing import Any

from convonet.core.tuning.errors import FatalTuningError, _short

__all__ = ["INSTALL_HINT", "RayExecutorError", "connect", "import_ray",
           "quiet_error_printer", "worker_env", "worker_options"]

INSTALL_HINT = "pip install 'convonet[ray]'"
log = logging.getLogger(__name__)


class RayExecutorError(FatalTuningError):
    """Ray is missing, or its cluster cannot be reached or cannot start our workers."""

    title = "Ray error"
    advice = ("Install Ray with pip install 'convonet[ray]' on every node, with the same "
              "Python and convonet versions, or tune without --ray.")


def import_ray() -> Any:
    """The ray module, or a message saying how to install it."""
    try:
        import ray
    except ImportError as exc:
        raise RayExecutorError(f"Tuning on Ray needs the ray package, which is not "
                               f"installed: {INSTALL_HINT}") from exc
    return ray


# ---- the cluster -----------------------------------------------------------------------
def connect(ray: Any, address: str) -> tuple[bool, bool, str]:
    """Join or start the cluster ``address`` names (see ``RayExecutor``); returns
    (whether this call connected, whether it started a local cluster, its address)."""
    if ray.is_initialized():
        return False, False, _gcs_address(ray)
    # "auto" is always a private local cluster: the front ends turn RAY_ADDRESS into an
    # address themselves, and "local" keeps ray.init from reading it a second time.
    target = "local" if address == "auto" else address
    kwargs: dict[str, Any] = {"log_to_driver": False, "logging_level": logging.ERROR}
    if target == "local":
        kwargs["include_dashboard"] = False
        os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")  # no prompt, no message
    try:
        with _real_std_streams():
            ray.init(address=target, **kwargs)
    except Exception as exc:  # noqa: BLE001 - Ray raises many kinds; each means the same
        if target == "local":
            raise RayExecutorError(
                f"cannot start a local Ray cluster: {_short(exc)}; start one with "
                f"`ray start --head`, then tune with --ray HOST:6379 from this machine"
            ) from exc
        raise RayExecutorError(
            f"cannot join the Ray cluster at {target}: {_short(exc)}; start it with "
            f"`ray start --head` (and `ray start --address HOST:6379` on each other "
            f"node) and tune from one of its nodes, or choose a local cluster (auto)"
        ) from exc
    return True, target == "local", _gcs_address(ray)


@contextlib.contextmanager
def _real_std_streams() -> Any:
    """Ray hands ``sys.stdout``/``sys.stderr``'s file descriptors to the processes it
    starts; a terminal UI (Textual) replaces them with objects that have none, and
    ``ray.init`` then fails (faulthandler: "file.fileno() is not a valid file
    descriptor"). Those children's output goes to the null device instead."""
    import sys

    def has_fd(stream: Any) -> bool:
        try:
            return int(stream.fileno()) >= 0  # Textual's stand-ins answer -1
        except Exception:  # noqa: BLE001 - io.UnsupportedOperation, AttributeError...
            return False

    if has_fd(sys.stdout) and has_fd(sys.stderr):
        yield
        return
    with open(os.devnull, "w") as null, contextlib.redirect_stdout(null), \
            contextlib.redirect_stderr(null):
        yield


def _gcs_address(ray: Any) -> str:
    with contextlib.suppress(Exception):
        return str(ray.get_runtime_context().gcs_address)
    return ""


def worker_options(resources: Mapping[str, float], gpus_per_fold: float,
                   cpus_per_worker: int) -> tuple[int, dict[str, Any]]:
    """How many workers the cluster holds and each one's Ray resources: a share of a GPU
    each where it has GPUs (and a core each while there are enough), else
    ``cpus_per_worker`` cores each."""
    gpus = float(resources.get("GPU", 0))
    cpus = float(resources.get("CPU", 0))
    if gpus > 0:
        count = max(1, int(gpus / gpus_per_fold + 1e-9))
        return count, {"num_gpus": gpus_per_fold, "num_cpus": 1 if cpus >= count else 0}
    count = max(1, int(cpus // cpus_per_worker))
    return count, {"num_cpus": cpus_per_worker}


def worker_env(gpus_per_fold: float, options: Mapping[str, Any]) -> dict[str, str]:
    """The workers' environment: this process's Keras backend, its thread settings and
    quiet TensorFlow; a worker sharing a GPU takes its memory as it needs it, not all of
    it up front.

    TensorFlow's CPU thread count changes a fold's loss in the last digits (its sums are
    split per thread): on the benchmark grid, one thread against two moved 5 of 12 fold
    losses by up to 4e-5 (accuracies equal). So a worker keeps TensorFlow's default
    threads, as this process does, and its scores equal the in-process search's on the
    same machine, though several single-core workers then share the cores; to bound them,
    set ``TF_NUM_INTRAOP_THREADS`` here: the workers take it too."""
    import keras

    env = {"KERAS_BACKEND": keras.backend.backend(),
           "TF_CPP_MIN_LOG_LEVEL": os.environ.get("TF_CPP_MIN_LOG_LEVEL", "2")}
    for name in ("TF_ENABLE_ONEDNN_OPTS", "XLA_FLAGS", "CONVONET_DEVICE_LOOP",
                 "TF_NUM_INTRAOP_THREADS", "TF_NUM_INTEROP_THREADS", "OMP_NUM_THREADS"):
        if name in os.environ:
            env[name] = os.environ[name]
    if options.get("num_gpus") and gpus_per_fold < 1:
        env["TF_FORCE_GPU_ALLOW_GROWTH"] = "true"
        env["XLA_PYTHON_CLIENT_PREALLOCATE"] = "false"
    return env


def quiet_error_printer() -> Any:
    """Ray's driver prints every worker death it hears of to stdout (a thread of its own,
    even with ``log_to_driver=False``), which would garble a terminal UI; the search
    reports them as ``FoldRequeued``. This sends them to the log instead; returns the
    function that puts Ray's printer back."""
    try:
        from ray._private import worker as ray_worker
    except ImportError:  # another Ray layout: leave it
        return lambda: None
    original = getattr(ray_worker, "print_to_stdstream", None)
    if original is None:
        return lambda: None

    def to_log(data: Mapping[str, Any], ignore_prefix: bool = False) -> None:
        for line in data.get("lines", []):
            log.info("ray: %s", line)

    ray_worker.print_to_stdstream = to_log

    def restore() -> None:
        ray_worker.print_to_stdstream = original

    return restore
