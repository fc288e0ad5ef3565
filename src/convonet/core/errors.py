"""One error hierarchy for every mistake a user can fix.

Each class carries a short ``title`` (the error dialog's heading, the kind headless names),
an ``exit_code`` for the headless commands and a default ``advice`` used when the message
itself does not say what to do (our messages say what is wrong, then "; " and what to do).

The errors of each part subclass it where they are defined (``ParamsError`` in
``core.params``, ``DataError`` in ``core.data`` ...), each with its own title and advice.
Anything that is not a ``ConvonetError`` (or an ``OSError`` naming a file) is a fault in
convonet itself: the front ends keep its traceback in the log and say so, instead of
blaming the user's input. Plain Python only: both front ends and the core import it.
"""

from __future__ import annotations

#: Exit statuses of the headless commands.
EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_STOPPED = 130  # as a shell reports Ctrl+C


class ConvonetError(Exception):
    """A mistake in the user's input, files or environment; the message is the whole story."""

    title = "Error"
    exit_code = EXIT_USAGE
    advice = "Correct what it names, then try again."


class UsageError(ConvonetError):
    """A command line that cannot run as given (a missing file, a clash of options)."""

    title = "Usage error"


def is_user_error(error: BaseException) -> bool:
    """A mistake the user can fix (no traceback shown), as opposed to a fault in convonet.

    ``OSError``s that name a file (a missing path, a full disk, a read-only folder) are the
    environment's, so they count as the user's to fix; a bare ``ValueError`` does not.
    """
    if isinstance(error, ConvonetError):
        return True
    return isinstance(error, OSError) and (error.filename is not None
                                           or error.errno is not None)


def exit_code_of(error: BaseException) -> int:
    """The headless exit status for ``error``: its class's, 2 for files, 1 for faults."""
    if isinstance(error, ConvonetError):
        return error.exit_code
    return EXIT_USAGE if is_user_error(error) else EXIT_FAILED
