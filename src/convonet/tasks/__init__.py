"""The task layer: one frozen spec per task and one ``execute`` for them all.

The app's screens, the headless commands and the benchmarks build a spec (what to do, with
which params, data and model, where to record it) and call ``execute(spec, report,
cancel)``; they only present its outcome. This layer owns what both front ends used to
rebuild on their own: run folders and their records, resume checks, where the model is
saved, the results folder and how a run ended (``Status``). It imports only the core,
never textual or rich, so it is usable from a script:

    from convonet.tasks import execute
    from convonet.tasks.train import TrainSpec

    outcome = execute(TrainSpec(...), report=print)

Adding a task: a module here with a frozen ``...Spec`` dataclass, an outcome dataclass and
a function registered with ``@executes(TheSpec)``; import the module in ``_TASK_MODULES``.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from enum import Enum
from typing import Any, TypeVar

from convonet.core.events import CancelToken, Notice, Reporter, no_report

__all__ = ["Status", "execute", "executes"]


class Status(str, Enum):
    """How a task's run ended, as run.json and ``--json`` spell it."""

    RUNNING = "running"
    FINISHED = "finished"
    STOPPED = "stopped"  # the user stopped it (a key, Ctrl+C): resumable
    INTERRUPTED = "interrupted"  # a signal, a crash or a full disk: resumable
    FAILED = "failed"
    #: Training diverged (NaN loss, or accuracy back at chance) and stopped: the run is
    #: over, like a finished one (not resumable); run.json says at which epoch and why.
    DIVERGED = "diverged"

    def __str__(self) -> str:
        return self.value


SpecT = TypeVar("SpecT")
Runner = Callable[..., Any]

#: spec type -> the function that executes it; filled by ``@executes`` in each task module.
_EXECUTORS: dict[type, Runner] = {}
#: Modules that register executors, imported on the first ``execute``.
_TASK_MODULES: tuple[str, ...] = (
    "convonet.tasks.load",
    "convonet.tasks.build",
    "convonet.tasks.train",
    "convonet.tasks.testing",
    "convonet.tasks.tune",
)


def executes(spec_type: type[SpecT]) -> Callable[[Runner], Runner]:
    """Register ``fn(spec, report=..., cancel=...)`` as the executor of ``spec_type``."""

    def register(fn: Runner) -> Runner:
        _EXECUTORS[spec_type] = fn
        return fn

    return register


def execute(spec: Any, report: Reporter = no_report, cancel: CancelToken | None = None
            ) -> Any:
    """Run the task ``spec`` describes, reporting core events; returns its outcome.

    On the jax backend the first task of a process turns on the compile cache (see
    ``convonet.core.compile_cache``) before anything is compiled, and keeps Keras from
    importing TensorFlow (``convonet.core.tensorflow_guard``).
    """
    from convonet.core.compile_cache import ensure_compile_cache, take_notice
    from convonet.core.tensorflow_guard import leave_tensorflow_alone

    ensure_compile_cache()
    leave_tensorflow_alone()
    notice = take_notice()
    if notice is not None:
        report(Notice(notice))
    for name in _TASK_MODULES:
        importlib.import_module(name)
    try:
        fn = _EXECUTORS[type(spec)]
    except KeyError:
        raise TypeError(f"no task executes a {type(spec).__name__}") from None
    return fn(spec, report=report, cancel=cancel if cancel is not None else CancelToken())
