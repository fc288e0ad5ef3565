"""Running core tasks from screens: one pattern for every long job.

Core functions take two keyword arguments, ``report`` (a ``convonet.core.events.Reporter``)
and ``cancel`` (a ``CancelToken``), and know nothing of Textual. A screen runs one like this::

    from convonet.tui.tasks import CoreEvent, TaskEnded, run_task

    class TrainingScreen(ConvonetScreen):
        def action_train(self) -> None:
            self._task = run_task(self, train, self.app.controller, name="training",
                                  description="Training only")

        def action_stop(self) -> None:
            if self._task is not None:
                self._task.cancel()          # cooperative: core stops at its next check

        @on(CoreEvent)
        def _core_event(self, message: CoreEvent) -> None:
            if isinstance(message.event, EpochEnd): ...   # UI thread: widgets may change here

        @on(TaskEnded)
        def _ended(self, message: TaskEnded) -> None:
            if message.ok: ...               # message.result is what the core returned

``run_task(target, fn, *args, name=..., **kwargs)`` calls ``fn(*args, report=..., cancel=...,
**kwargs)`` in a thread worker owned by the app (``thread=True, exclusive=True,
exit_on_error=False``, group ``"task"`` unless given). Each reported core event arrives at
``target`` as a ``CoreEvent`` (posted with ``post_message``, which is thread-safe; progress
events of one task replace each other in the queue, so a fast loop never floods the UI).
When the worker ends, ``target`` gets one ``TaskEnded`` (``ok`` / ``cancelled`` /
``failed``). A failure also opens the app's error dialog (``ConvonetApp.
on_worker_state_changed``); the screen needs no error handling of its own.

Stopping is cooperative: ``TaskHandle.cancel()`` sets the token, the core stops at its next
check and returns what it has (training keeps the model and the history so far). If Textual
cancels the worker (a newer exclusive task, the app closing), the token is set as well.
``TaskRegistry.running()`` lists tasks whose thread has not returned yet (quit asks first).

``CoreEvent`` bubbles: a ``Notice`` no screen stops reaches the app and is shown with
``notify``. A screen that starts a worker itself (``@work``) must pass
``exit_on_error=False``; ``ConvonetScreen`` then routes its failure to the same dialog.
"""

from __future__ import annotations

import threading
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from textual.message import Message
from textual.worker import Worker, WorkerState

from convonet.core.events import BatchProgress, Cancelled, CancelToken, Event, LoadProgress
from convonet.core.storage import StorageError

if TYPE_CHECKING:
    from textual.dom import DOMNode

#: The default worker group: one heavy core task at a time.
TASK_GROUP = "task"

_COALESCED = (BatchProgress, LoadProgress)


class CoreEvent(Message):
    """A core event forwarded from a task's thread to the screen that started the task."""

    def __init__(self, event: Event, task: str) -> None:
        super().__init__()
        self.event = event
        self.task = task

    def can_replace(self, message: Message) -> bool:
        """A newer progress event of the same kind and task replaces one not yet handled."""
        return (
            isinstance(message, CoreEvent)
            and message.task == self.task
            and isinstance(self.event, _COALESCED)
            and type(message.event) is type(self.event)
        )


class TaskEnded(Message):
    """A task's worker finished: successfully, cancelled, or with an error."""

    def __init__(self, task: str, state: WorkerState, result: Any = None,
                 error: BaseException | None = None) -> None:
        super().__init__()
        self.task = task
        self.state = state
        self.result = result
        self.error = error

    @property
    def ok(self) -> bool:
        return self.state == WorkerState.SUCCESS

    @property
    def cancelled(self) -> bool:
        return self.state == WorkerState.CANCELLED

    @property
    def failed(self) -> bool:
        return self.state == WorkerState.ERROR


@dataclass(eq=False)
class TaskHandle:
    """What ``run_task`` returns: the worker, its cancel token and where events go."""

    name: str
    target: DOMNode
    token: CancelToken = field(default_factory=CancelToken)
    worker: Worker[Any] | None = None
    #: Set by the app once it has posted this task's ``TaskEnded``; only then is the
    #: handle forgotten, so a task that ends very quickly never loses its end message.
    ended: bool = False
    _thread_done: threading.Event = field(default_factory=threading.Event)

    def cancel(self) -> None:
        """Ask the core to stop at its next check; the worker then ends by itself."""
        self.token.cancel()

    @property
    def thread_done(self) -> bool:
        """True once the core function has returned or raised (not just been cancelled)."""
        return self._thread_done.is_set()

    @property
    def running(self) -> bool:
        return not self.thread_done


class TaskRegistry:
    """The app's list of core tasks, so quit and the error handler can find them."""

    def __init__(self) -> None:
        self._handles: list[TaskHandle] = []

    def add(self, handle: TaskHandle) -> None:
        self._handles.append(handle)

    def for_worker(self, worker: Worker[Any]) -> TaskHandle | None:
        for handle in self._handles:
            if handle.worker is worker:
                return handle
        return None

    def running(self) -> list[TaskHandle]:
        """Tasks whose thread is still working (a cancelled worker may still be stopping)."""
        return [h for h in self._handles if h.running]

    def cancel_all(self) -> None:
        for handle in self._handles:
            handle.cancel()

    def prune(self) -> None:
        """Forget tasks whose end was reported and whose thread has returned."""
        self._handles = [h for h in self._handles if h.running or not h.ended]


def task_registry(node: DOMNode) -> TaskRegistry:
    """The registry of the app ``node`` belongs to (the app keeps it at ``.tasks``)."""
    registry = getattr(node.app, "tasks", None)
    if not isinstance(registry, TaskRegistry):
        raise TypeError("run_task needs an app with a TaskRegistry at .tasks (ConvonetApp)")
    return registry


def run_task(target: DOMNode, work: Callable[..., Any], *args: Any, name: str,
             description: str = "", group: str = TASK_GROUP, exclusive: bool = True,
             **kwargs: Any) -> TaskHandle:
    """Run ``work(*args, report=..., cancel=..., **kwargs)`` in a thread worker.

    Events go to ``target`` as ``CoreEvent``; the end as ``TaskEnded``. The worker runs on
    the app so that its one ``on_worker_state_changed`` handler sees every failure.
    """
    app = target.app
    registry = task_registry(target)
    handle = TaskHandle(name=name, target=target)

    def report(event: Event) -> None:
        target.post_message(CoreEvent(event, name))

    def call() -> Any:
        try:
            return work(*args, report=report, cancel=handle.token, **kwargs)
        finally:
            handle._thread_done.set()

    registry.add(handle)
    handle.worker = app.run_worker(
        call,
        name=name,
        group=group,
        description=description or name,
        exit_on_error=False,
        exclusive=exclusive,
        thread=True,
    )
    return handle


def is_cancellation(error: BaseException | None) -> bool:
    """A core ``Cancelled`` raised after a stop is an ending, not a failure."""
    return isinstance(error, Cancelled)


def format_error(error: BaseException) -> tuple[str, str]:
    """A one-line summary and the full traceback text of an exception, for the dialog."""
    text = str(error).strip()
    if isinstance(error, StorageError):  # a full disk: the message is the whole story
        return text, text
    if isinstance(error, (ValueError, OSError)) and text:
        summary = text  # our own errors already name the file and the field
    else:
        summary = f"{type(error).__name__}: {text}" if text else type(error).__name__
    details = "".join(traceback.format_exception(error)).rstrip()
    return summary, details
