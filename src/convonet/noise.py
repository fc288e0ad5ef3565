"""Keep Python warnings and library logging off the terminal, in a log file instead.

Keras emits DeprecationWarning/UserWarning from worker threads, TensorFlow's Python logger
adds its own stderr handler, and absl logs through the standard ``logging`` module. On a
Textual screen any of them garbles the display; in a headless command they bury the
progress bars. ``route_noise_to_log`` sends all of it to ``convonet.log`` for as long as the
app or command runs, and puts everything back afterwards (tests run many commands in one
process).
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

LOG_NAME = "convonet.log"

#: Loggers that libraries under Keras write to; routed to the file, never to the terminal.
NOISY_LOGGERS = ("py.warnings", "absl", "tensorflow", "jax", "torch")


class _QuietFileHandler(logging.FileHandler):
    """A file handler that creates its folder on first use and never writes to stderr.

    The log is a side channel: when it cannot be written (read-only results folder, disk
    full), the record is dropped rather than printing logging's own error traceback onto
    the screen it exists to protect.
    """

    dropped = 0

    def _open(self):  # type: ignore[no-untyped-def]
        Path(self.baseFilename).parent.mkdir(parents=True, exist_ok=True)
        return super()._open()

    def handleError(self, record: logging.LogRecord) -> None:
        self.dropped += 1  # counted, so a test or a debugger can see records were lost


def _is_terminal_stream(handler: logging.Handler) -> bool:
    stream = getattr(handler, "stream", None)
    return (isinstance(handler, logging.StreamHandler)
            and not isinstance(handler, logging.FileHandler)
            and stream in (sys.stderr, sys.stdout, sys.__stderr__, sys.__stdout__))


def _log_unraisable(unraisable: Any) -> None:
    """h5py reports a file it could not close (a full disk) as an "Exception ignored"
    traceback on stderr, after the error itself was raised: into the log instead."""
    logging.getLogger("convonet.unraisable").warning(
        "%s: %r", unraisable.err_msg or "Exception ignored in", unraisable.object,
        exc_info=(unraisable.exc_type, unraisable.exc_value, unraisable.exc_traceback))


@contextlib.contextmanager
def route_noise_to_log(log_path: str | os.PathLike[str]) -> Iterator[Path]:
    """Send warnings and the noisy libraries' logging to ``log_path`` while inside.

    Also sets ``TF_CPP_MIN_LOG_LEVEL=2`` (unless the user set it) so TensorFlow's C++
    start-up lines stay quiet: they bypass Python and cannot be redirected without
    touching stderr, which Textual draws on.
    """
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    path = Path(log_path)
    handler = _QuietFileHandler(path, encoding="utf-8", delay=True)
    handler.setLevel(logging.WARNING)
    handler.setFormatter(logging.Formatter(
        "%(asctime)s %(levelname)s %(name)s [%(threadName)s]: %(message)s"))

    root = logging.getLogger()
    # A root handler also stops TensorFlow from adding its own stderr handler later (it
    # only does so when the root logger has none).
    root.addHandler(handler)
    saved: list[tuple[logging.Logger, bool, list[logging.Handler]]] = []
    for name in NOISY_LOGGERS:
        logger = logging.getLogger(name)
        removed = [h for h in logger.handlers if _is_terminal_stream(h)]
        for h in removed:
            logger.removeHandler(h)
        saved.append((logger, logger.propagate, removed))
        logger.addHandler(handler)
        logger.propagate = False
    unraisable_hook = sys.unraisablehook
    sys.unraisablehook = _log_unraisable
    with warnings.catch_warnings():
        # Library DeprecationWarnings are hidden by default; in the log they help explain
        # a change of behaviour after an upgrade, once per place they come from.
        warnings.simplefilter("default", DeprecationWarning)
        logging.captureWarnings(True)
        try:
            yield path
        finally:
            logging.captureWarnings(False)
            sys.unraisablehook = unraisable_hook
            for logger, propagate, removed in saved:
                logger.removeHandler(handler)
                logger.propagate = propagate
                for h in removed:
                    logger.addHandler(h)
            root.removeHandler(handler)
            handler.close()


@contextlib.contextmanager
def stderr_to_log(log_path: str | os.PathLike[str]) -> Iterator[None]:
    """Point file descriptor 2 at the log for a moment, for what C++ libraries print.

    TensorFlow 2.21 writes its start-up lines (oneDNN, CUDA drivers, cuInit) through absl
    before ``TF_CPP_MIN_LOG_LEVEL`` takes effect, straight to fd 2. Only for short, known
    steps (importing Keras, listing devices) and never while Textual draws on stderr.
    """
    path = Path(log_path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        target = open(path, "ab")  # noqa: SIM115 - closed in the finally below
    except OSError:
        try:  # a read-only results folder: the lines are noise, never the screen's
            target = open(os.devnull, "ab")  # noqa: SIM115 - closed in the finally below
        except OSError:
            yield
            return
    sys.stderr.flush()
    try:
        saved = os.dup(2)
    except OSError:
        target.close()
        yield
        return
    try:
        os.dup2(target.fileno(), 2)
        yield
    finally:
        sys.stderr.flush()
        os.dup2(saved, 2)
        os.close(saved)
        target.close()
