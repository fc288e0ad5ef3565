"""Running a headless command: core calls in a worker thread while the main thread draws
their events; Ctrl+C, SIGTERM and SIGHUP as a stop; the exit status and the one closing
line of a stop, an interruption or a failure."""

from __future__ import annotations

import argparse
import contextlib
import logging
import queue
import sys
import threading
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any, TypeVar

from convonet.core.errors import exit_code_of, is_user_error
from convonet.hangup import check_hangup, guarded_output
from convonet.headless.common import results_dir_of
from convonet.headless.output import (
    EXIT_STOPPED,
    PROG,
    Display,
    Output,
    one_line,
)
from convonet.noise import LOG_NAME, route_noise_to_log

if TYPE_CHECKING:
    from convonet.core.events import CancelToken, Event, Reporter
    from convonet.core.runs import RunFolder

log = logging.getLogger("convonet.headless")
T = TypeVar("T")


class Stopped(Exception):
    """Ctrl+C stopped the command; what finished is already recorded."""



# ---- running core work in a worker ------------------------------------------------------
#: Every worker started; one still alive at exit was left behind by a second Ctrl+C.
_workers: list[threading.Thread] = []


def worker_left_running() -> bool:
    """True when a core task is still running in a thread this module started.

    Interpreter shutdown with TensorFlow busy in a daemon thread aborts the process
    ("terminate called ..."), so the entry point leaves with ``os._exit`` instead.
    """
    return any(t.is_alive() for t in _workers)


class Runner:
    """Runs core calls in a worker thread while the main thread draws their events.

    Events that end a unit of work (an epoch, a fold) wait until the main thread has
    shown them, so a stop asked for while looking at "epoch 1 done" acts before epoch 2
    gets far (and tests can stop after exactly one epoch).
    """

    def __init__(self, output: Output) -> None:
        from convonet.core.events import CancelToken

        self.output = output
        self.cancel: CancelToken = CancelToken()
        self.interrupted = False
        #: SIGTERM or SIGHUP, when one of them (not Ctrl+C) stopped the command.
        self.signal: int | None = None
        self._abandoned = threading.Event()

    def signalled(self) -> bool:
        """True once SIGTERM or SIGHUP arrived: runs cut short are then "interrupted"."""
        return self.signal is not None

    def note_signal(self, run: RunFolder | None) -> None:
        """Name the signal in an interrupted run's run.json (``interrupted_by``), as the
        app does, so a look at the run says a hang-up or a kill ended it."""
        import signal

        if run is None or self.signal is None:
            return
        with contextlib.suppress(OSError, ValueError):
            if run.info.get("status") == "interrupted":
                run.update(interrupted_by=signal.Signals(self.signal).name)

    def call(self, fn: Callable[[Reporter, CancelToken], T], title: str, *,
             stoppable: bool = False) -> T:
        """``fn(report, cancel)`` in a worker; its result, or its exception re-raised.

        ``stoppable``: ``fn`` returns normally after a stop with what it finished (training,
        tuning); otherwise a stop during ``fn`` discards its result and raises Stopped.
        """
        from convonet.core.events import Cancelled, EpochEnd
        from convonet.core.tuning import CombinationFailed, FoldEnd

        if self.interrupted:
            raise Stopped()
        sync = (EpochEnd, FoldEnd, CombinationFailed)
        events: queue.Queue[tuple[Event, threading.Event | None] | None] = queue.Queue()
        outcome: dict[str, Any] = {}

        def report(event: Event) -> None:
            if not isinstance(event, sync):
                events.put((event, None))
                return
            seen = threading.Event()
            events.put((event, seen))
            while not seen.wait(0.05):
                if self.cancel.cancelled or self._abandoned.is_set():
                    return

        def work() -> None:
            try:
                outcome["result"] = fn(report, self.cancel)
            except BaseException as exc:  # handed to the main thread, which decides
                outcome["error"] = exc
            finally:
                events.put(None)

        worker = threading.Thread(target=work, name=f"convonet-{title}", daemon=True)
        _workers.append(worker)
        with Display(self.output, title) as display:
            worker.start()
            try:
                self._pump(events, display)
            except BaseException:
                self._abandoned.set()  # a second Ctrl+C: leave without waiting
                raise
        worker.join()
        error = outcome.get("error")
        if isinstance(error, Cancelled):
            raise Stopped()
        if error is not None:
            raise error
        if self.interrupted and not stoppable:
            raise Stopped()
        return outcome["result"]  # type: ignore[no-any-return]

    def _pump(self, events: queue.Queue[tuple[Event, threading.Event | None] | None],
              display: Display) -> None:
        while True:
            try:
                try:
                    item = events.get(timeout=0.2)
                except queue.Empty:
                    continue
                if item is None:
                    return
                event, seen = item
                try:
                    display.handle(event)
                finally:
                    if seen is not None:
                        seen.set()
            except KeyboardInterrupt:
                if self.interrupted:
                    raise
                self.interrupted = True
                self.cancel.cancel()
                display.stopping()


def run_command(args: argparse.Namespace) -> int:
    """Run one headless command with warnings kept in the log; returns the exit status."""
    output = Output(json_mode=bool(args.json), verbose=bool(args.verbose))
    log_path = results_dir_of(args) / LOG_NAME
    output.log_path = log_path
    noise = contextlib.nullcontext(log_path) if args.verbose else route_noise_to_log(log_path)
    with noise, guarded_output():
        return _run(args, output)


@contextlib.contextmanager
def signals_as_interrupt(runner: Runner) -> Iterator[None]:
    """SIGTERM and SIGHUP (a shutdown, a dropped SSH connection) act as Ctrl+C does:
    the running task stops at its next batch or fold and what finished is kept; the
    runner remembers the signal so the run is recorded as interrupted, not stopped."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    import signal

    def handler(signum: int, frame: Any) -> None:
        if signum == getattr(signal, "SIGHUP", None):
            check_hangup()  # a terminal that hung up takes no more output
            if runner.signal is not None:
                return  # the hang-up comes again (from the kernel, tmux, sshd): no hurry
        if runner.signal is None:
            runner.signal = signum
        raise KeyboardInterrupt

    wanted = [getattr(signal, name) for name in ("SIGTERM", "SIGHUP") if hasattr(signal, name)]
    previous = {sig: signal.signal(sig, handler) for sig in wanted}
    try:
        yield
    finally:
        hung_up = runner.signal == getattr(signal, "SIGHUP", None)
        for sig, old in previous.items():
            # After a hang-up more SIGHUPs come (the kernel's, then tmux's or sshd's), maybe
            # while the closing lines are written: with the default action restored, one
            # would kill the process before it says how the run ended.
            signal.signal(sig, signal.SIG_IGN if hung_up and sig == signal.SIGHUP else old)


def _run(args: argparse.Namespace, output: Output) -> int:
    command = args.command
    runner = Runner(output)
    from convonet.core.storage import check_writable
    from convonet.headless.commands import COMMANDS  # the commands import this module

    try:
        with signals_as_interrupt(runner):
            if command != "demo" or getattr(args, "train", False):
                check_writable(results_dir_of(args))  # refused before anything is loaded
            return COMMANDS[command](args, output, runner)
    except (Stopped, KeyboardInterrupt):
        if runner.signal is not None:
            return _interrupted(args, output, runner)
        # A stop is not an error: say so without the "error:" prefix scripts grep for.
        output.last_line(f"{PROG}: stopped; what finished is recorded")
        output.emit_json({"command": command, "status": "stopped"})
        return EXIT_STOPPED
    except Exception as error:
        return _failed(args, output, error)


def _failed(args: argparse.Namespace, output: Output, error: Exception) -> int:
    """One closing line for a failure; returns the exit status.

    A user's mistake (a ``ConvonetError``, an ``OSError`` naming a file) says what is wrong
    and exits with its class's status, without a traceback. Anything else is a fault in
    convonet: its traceback always goes to the log, and the line says so and where.
    """
    from convonet.core.storage import storage_error

    # A full disk or a read-only folder: one message naming the file and what to do.
    exc = storage_error(error, results_dir=results_dir_of(args)) or error
    where = f"the log {output.log_path}" if output.log_path is not None else "the log"
    if is_user_error(exc):
        message = one_line(exc)
        if message != str(exc).strip():  # the rest of a long message: in the log
            log.warning("%s failed: %s", args.command, str(exc).strip())
            message += f" (details in {where})"
    else:
        log.error("%s failed with an internal error", args.command, exc_info=exc)
        message = (f"internal error in convonet: {type(exc).__name__}: {one_line(exc)} "
                   f"(the traceback is in {where}; please report it)")
    if output.verbose:
        import traceback

        traceback.print_exception(exc, file=sys.stderr)
    output.error(message)
    output.emit_json({"command": args.command, "status": "failed", "error": message})
    return exit_code_of(exc)


def _interrupted(args: argparse.Namespace, output: Output, runner: Runner) -> int:
    """A signal ended the command: runs still open are recorded as interrupted."""
    import signal

    from convonet.core.records import active_runs, mark_interrupted

    name = signal.Signals(runner.signal or signal.SIGTERM).name
    marked = mark_interrupted(active_runs(results_dir_of(args)), name)
    with contextlib.suppress(OSError):  # the terminal may be gone with the connection
        output.last_line(f"{PROG}: interrupted by {name}; what finished is recorded")
        output.emit_json({"command": args.command, "status": "interrupted", "signal": name,
                          "run_dir": str(marked[0].path) if marked else None})
    return 128 + int(runner.signal or signal.SIGTERM)


