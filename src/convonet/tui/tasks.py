"""Running core tasks from screens: one pattern for every long job.

Core functions take two keyword arguments, ``report`` (a ``convonet.core.events.Reporter``)
and ``cancel`` (a ``CancelToken``), and know nothing of Textual. A screen runs one like this::

    from convonet.tui.tasks import CoreEvent, TaskEnded, run_task

    class TrainingScreen(ConvonetScreen):
        def action_train(self) -> None:
            self._task = run_task(self, train, self.app.session, name="training",
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

import errno
import re
import threading
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from textual.message import Message
from textual.worker import Worker, WorkerState

from convonet.core.errors import ConvonetError, is_user_error
from convonet.core.events import (
    BatchProgress,
    Cancelled,
    CancelToken,
    Event,
    LoadProgress,
    Validating,
)

if TYPE_CHECKING:
    from textual.dom import DOMNode

#: The default worker group: one heavy core task at a time.
TASK_GROUP = "task"

_COALESCED = (BatchProgress, LoadProgress, Validating)


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


@dataclass(frozen=True)
class ErrorText:
    """A failure as the error dialog shows it: what is wrong, what to do, and for an
    internal error (a fault in convonet, not in the user's input) the traceback."""

    #: The whole message on one line, as headless prints it after "convonet: error:".
    summary: str
    #: What is wrong (the message up to its first "; ").
    problem: str
    #: What to do (the rest of the message, or a hint for that kind of error).
    advice: str
    #: Further lines of a long message.
    more: str = ""
    #: The formatted traceback; empty for the user's mistakes.
    traceback: str = ""
    #: The kind of error (``ParamsError.title`` ...; "Internal error" for a fault in convonet).
    title: str = ""

    @property
    def internal(self) -> bool:
        return bool(self.traceback)


_OS_ADVICE = {
    errno.ENOENT: "Check the path: that file or folder does not exist.",
    errno.ENOTDIR: "Check the path: a part of it is a file, not a folder.",
    errno.EISDIR: "Check the path: it names a folder where a file is needed.",
    errno.EACCES: "Choose a file or folder you may use, or change its permissions.",
    errno.EPERM: "Choose a file or folder you may use, or change its permissions.",
    errno.EROFS: "Choose a folder on a writable disk (this one is read-only).",
    errno.ENOSPC: "Free some disk space, or choose a folder on another disk, then try "
                  "again.",
}
_OS_DEFAULT_ADVICE = "Check the file or folder it names, then try again."
#: The kind of an error that is not a ``ConvonetError``: a file's, or a fault in convonet.
FILE_ERROR_TITLE = "File error"
INTERNAL_ERROR_TITLE = "Internal error"


def split_advice(text: str) -> tuple[str, str]:
    """Our messages say what is wrong, then "; " and what to do: split them there.

    Only at the top level: a "; " inside parentheses belongs to the explanation.
    """
    depth = 0
    for i, ch in enumerate(text):
        if ch in "([{":
            depth += 1
        elif ch in ")]}":
            depth = max(0, depth - 1)
        elif ch == ";" and depth == 0 and text[i + 1:i + 2] == " ":
            problem, advice = text[:i].rstrip(), text[i + 2:].strip()
            if problem and advice:
                return problem, advice[0].upper() + advice[1:]
    return text, ""


def _fallback_advice(error: BaseException) -> str:
    """What to do when the message does not say: for a file error the advice for its
    errno, else the error class's advice."""
    if isinstance(error, OSError) and error.errno in _OS_ADVICE:
        return _OS_ADVICE[error.errno]
    if isinstance(error, ConvonetError):
        return error.advice
    if isinstance(error, OSError):
        return _OS_DEFAULT_ADVICE
    return ConvonetError.advice


def _title(error: BaseException) -> str:
    """The kind of error, for the dialog: the class's title, a file error's, or internal."""
    if isinstance(error, ConvonetError):
        return error.title
    return FILE_ERROR_TITLE if is_user_error(error) else INTERNAL_ERROR_TITLE


def describe_error(error: BaseException | str) -> ErrorText:
    """What the error dialog shows for ``error``; a string is taken as a user message."""
    if isinstance(error, str):
        lines = error.strip().splitlines()
        first = lines[0].strip() if lines else ""
        problem, advice = split_advice(first)
        return ErrorText(first, problem, advice, "\n".join(lines[1:]).strip())
    text = str(error).strip()
    if not is_user_error(error):
        summary = f"{type(error).__name__}: {text}" if text else type(error).__name__
        lines = summary.splitlines()
        return ErrorText(lines[0], lines[0], "", "\n".join(lines[1:]).strip(),
                         "".join(traceback.format_exception(error)).rstrip(),
                         INTERNAL_ERROR_TITLE)
    lines = text.splitlines() or [type(error).__name__]
    first = lines[0].strip()
    shown = first
    if isinstance(error, OSError) and error.strerror:
        # "[Errno 28] No space left on device: 'x'" reads better without the number.
        shown = re.sub(r"^\[Errno -?\d+\] ", "", first)
    problem, advice = split_advice(shown)
    return ErrorText(first, problem, advice or _fallback_advice(error),
                     "\n".join(lines[1:]).strip(), title=_title(error))


def format_error(error: BaseException) -> tuple[str, str]:
    """A one-line summary and the full text of an exception (the traceback for an
    internal error, the message for the user's mistakes)."""
    text = describe_error(error)
    return text.summary, text.traceback or str(error).strip()
