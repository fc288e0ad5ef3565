"""Output that outlives its terminal: a killed tmux session, a dropped SSH connection.

When the terminal goes away the process gets SIGHUP, and from then on every write to it
fails: EIO on a pseudo-terminal, EPIPE on the pipe or socket of ``ssh host cmd``. A
headless command must still do what the signal asks (stop at the next batch, record the
run as interrupted, keep the model), but each of its writes - a progress bar refresh,
the epoch line, the closing table, the interpreter's last flush - would raise instead.

``guarded_output`` wraps ``sys.stdout`` and ``sys.stderr`` for the length of a command.
The first write that finds its terminal gone points that file descriptor at /dev/null,
so every later write from any layer (rich's refresh thread, ``print``, C++ libraries,
the flush at exit) succeeds and goes nowhere, and the command carries on. What the
command says from then on can go to its log instead (``terminal_gone``).
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import sys
import threading
from collections.abc import Iterator
from typing import Any, TextIO

log = logging.getLogger("convonet.hangup")

#: What a write to a terminal, pipe or socket that went away fails with.
GONE_ERRNOS = frozenset({errno.EIO, errno.EPIPE, errno.ENXIO, errno.ECONNRESET})

_lock = threading.Lock()
_dropped: set[int] = set()  # descriptors pointed at /dev/null, by this module
_terminals: dict[int, bool] = {}  # fd -> it was a terminal when the command started


def terminal_gone() -> bool:
    """True once the command's stdout or stderr went away (and now goes to /dev/null)."""
    return bool(_dropped)


def _drop(fd: int | None, why: str) -> None:
    """Point ``fd`` at /dev/null (once) and say so in the log."""
    with _lock:
        if fd is None or fd in _dropped:
            return
        try:
            null = os.open(os.devnull, os.O_WRONLY)
        except OSError:
            return
        try:
            os.dup2(null, fd)
        except OSError:
            return
        finally:
            os.close(null)
        first = not _dropped
        _dropped.add(fd)
    if first:
        log.warning("the terminal went away (%s): the rest of the output is dropped; how "
                    "this command ends is written here", why)


def check_hangup(signame: str = "SIGHUP") -> None:
    """After SIGHUP: drop the descriptors that were terminals and no longer are.

    A hung-up terminal stops being one (``isatty`` fails) before the signal arrives; a
    ``kill -HUP`` with the terminal still there leaves its output alone.
    """
    for fd, was_terminal in list(_terminals.items()):
        if was_terminal and fd not in _dropped:
            try:
                alive = os.isatty(fd)
            except OSError:
                alive = False
            if not alive:
                _drop(fd, f"{signame}: the terminal hung up")


class _GuardedStream:
    """A text stream whose writes and flushes survive the other end going away."""

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream

    @property
    def wrapped(self) -> TextIO:
        return self._stream

    def _fd(self) -> int | None:
        try:
            return self._stream.fileno()
        except (OSError, ValueError, AttributeError):
            return None  # a stream without a descriptor (a test's capture)

    def _gone(self, exc: OSError) -> bool:
        if exc.errno not in GONE_ERRNOS:
            return False
        _drop(self._fd(), f"writing failed: {os.strerror(exc.errno or 0)}")
        with contextlib.suppress(OSError, ValueError):
            self._stream.flush()  # what is still buffered now goes to /dev/null
        return True

    def write(self, text: str) -> int:
        try:
            return self._stream.write(text)
        except OSError as exc:
            if not self._gone(exc):
                raise
            return len(text)

    def writelines(self, lines: Any) -> None:
        for line in lines:
            self.write(line)

    def flush(self) -> None:
        try:
            self._stream.flush()
        except OSError as exc:
            if not self._gone(exc):
                raise

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


@contextlib.contextmanager
def guarded_output() -> Iterator[None]:
    """Wrap sys.stdout and sys.stderr so a terminal that goes away ends no command."""
    saved = sys.stdout, sys.stderr
    _dropped.clear()
    _terminals.clear()
    for stream in saved:
        try:
            fd = stream.fileno()
            _terminals[fd] = os.isatty(fd)
        except (OSError, ValueError, AttributeError):
            continue
    sys.stdout = _GuardedStream(saved[0])  # type: ignore[assignment]
    sys.stderr = _GuardedStream(saved[1])  # type: ignore[assignment]
    try:
        yield
    finally:
        # What is still buffered goes out now, or to /dev/null, never as an error at exit.
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(OSError, ValueError):
                stream.flush()
        sys.stdout, sys.stderr = saved
        _terminals.clear()


__all__ = ["GONE_ERRNOS", "check_hangup", "guarded_output", "terminal_gone"]
