"""Storage failures said once and plainly: a full disk, a read-only folder, a used-up quota.

Writing a run's files (checkpoints, history.csv, folds.jsonl, models, run.json) can fail
for reasons the user fixes outside convonet. Python says "[Errno 28] No space left on
device", often without the file (a failed write or fsync names none, h5py hides it in its
own text). ``storage_error`` turns such an error into one ``StorageError`` whose message
names the file, says what is wrong and what to do (free space, choose another results
folder, resume the run), with no errno text. The app's error dialog and the headless
commands show that message as it is, so both front ends say the same thing.

``check_writable`` refuses a results folder that cannot be written before a task starts,
so no data is loaded and no epoch is trained into a folder that cannot keep them.
This module knows nothing of any user interface.
"""

from __future__ import annotations

import contextlib
import errno
import gc
import inspect
import logging
import os
import re
import shutil
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from types import FrameType, TracebackType

from convonet.core.errors import ConvonetError

#: Where a user chooses another results folder (the app and the headless commands).
RESULTS_OPTIONS = "--results-dir / CONVONET_RESULTS_DIR"
#: How an app user resumes an interrupted run (a headless user gets the command).
APP_RESUME = "or r on the app's Runs screen"

ENOSPC, EROFS, EACCES, EPERM = errno.ENOSPC, errno.EROFS, errno.EACCES, errno.EPERM
EDQUOT: int | None = getattr(errno, "EDQUOT", None)

#: The errors a user fixes by freeing space or choosing another folder, and what they mean.
_WHAT = {ENOSPC: "the disk is full", EROFS: "the file system is read-only",
         EACCES: "no permission to write there", EPERM: "no permission to write there"}
if EDQUOT is not None:
    _WHAT[EDQUOT] = "your disk quota is used up"
#: What to do first, before resuming (a folder that became read-only needs a remount).
_FIRST = {ENOSPC: "free some space", EROFS: "make the folder writable again",
          EACCES: "make the folder writable", EPERM: "make the folder writable"}
if EDQUOT is not None:
    _FIRST[EDQUOT] = "delete some of your files"
#: How the C libraries under Keras (h5py) and the OS word these errors in their text.
_TEXT_CODES = {"no space left on device": ENOSPC, "read-only file system": EROFS,
               "disk quota exceeded": EDQUOT or -1, "permission denied": EACCES}
#: Permission errors come from reads too: only those raised while ``writing`` count.
_WRITE_ONLY = (EACCES, EPERM)
_MARK = "_convonet_writing"
#: Set once a failed write may have left a file h5py cannot close (``files_left_open``).
_left_open = False
#: Generator and coroutine frames: clearing one would finalize it.
_SUSPENDABLE = inspect.CO_GENERATOR | inspect.CO_COROUTINE | inspect.CO_ASYNC_GENERATOR
_ERRNO_IN_TEXT = re.compile(r"errno\s*=\s*(\d+)")
_FILE_IN_TEXT = re.compile(r"filename\s*=\s*'([^']+)'")


class StorageError(ConvonetError, OSError):
    """A write failed for a reason the user fixes (disk full, read-only, quota, permission).

    An ``OSError``, so code that already treats file errors as the user's (exit status 2,
    the error dialog's summary) treats it the same; ``str()`` is the whole message.
    """

    def __init__(self, message: str, *, path: str | None = None,
                 code: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.path = path
        self.code = code

    def __str__(self) -> str:
        return self.message


def _code(exc: OSError) -> int | None:
    """The storage errno of ``exc``, also when only its text says it (h5py, Keras)."""
    if exc.errno in _WHAT:
        return int(exc.errno)
    text = str(exc)
    for match in _ERRNO_IN_TEXT.finditer(text):
        if int(match.group(1)) in _WHAT:
            return int(match.group(1))
    lower = text.lower()
    for words, code in _TEXT_CODES.items():
        if words in lower and code in _WHAT:
            return code
    return None


def storage_cause(exc: BaseException) -> OSError | None:
    """The disk-full / read-only / quota / permission error behind ``exc``, if any.

    Follows the chain of causes: Keras and our own ``ModelError`` wrap the OSError.
    """
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, StorageError):
            return current
        if isinstance(current, OSError):
            code = _code(current)
            if code is not None and (code not in _WRITE_ONLY or getattr(current, _MARK, False)):
                return current
        current = current.__cause__ or current.__context__
    return None


def _is_temp(name: str) -> bool:
    """A temp file of an atomic write (``.run.json.x1y2.tmp``): the user knows the target."""
    base = os.path.basename(name)
    return base.startswith(".") and ".tmp" in base


def _named_file(exc: OSError) -> str | None:
    """The file ``exc`` names itself: h5py's text first (it has the real one), then
    ``filename``; temp names of atomic writes do not count."""
    match = _FILE_IN_TEXT.search(str(exc))
    for name in (match.group(1) if match else None, exc.filename):
        if name and not _is_temp(os.fspath(name)):
            return os.fspath(name)
    return None


@contextlib.contextmanager
def writing(path: str | os.PathLike[str]) -> Iterator[None]:
    """Name ``path`` in a storage error raised inside that does not name its own file.

    A failed write, flush or fsync says only "No space left on device"; wrapped around
    each write of a run's files, this keeps the message about the file the user sees.
    """
    try:
        yield
    except Exception as exc:
        current: BaseException | None = exc
        seen: set[int] = set()
        while current is not None and id(current) not in seen:
            seen.add(id(current))
            if isinstance(current, OSError) and not isinstance(current, StorageError) \
                    and _code(current) is not None:
                setattr(current, _MARK, True)  # a write failed: a permission error counts
                if _named_file(current) is None:
                    current.filename = os.fspath(path)
                break
            current = current.__cause__ or current.__context__
        raise


def free_space(path: str | os.PathLike[str]) -> int | None:
    """Bytes free on the file system that holds ``path`` (its nearest existing folder)."""
    p = Path(path)
    for candidate in (p, *p.parents):
        try:
            return shutil.disk_usage(candidate).free
        except OSError:
            continue
    return None


def size_text(n: int) -> str:
    """``0 B``, ``812 KB``, ``1.2 MB``, ``3.4 GB``."""
    size = float(n)
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{size:.0f} {unit}" if unit in ("B", "KB") else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} GB"  # unreachable; keeps type checkers calm


def _what(code: int, where: str | None) -> str:
    what = _WHAT[code]
    if code == ENOSPC and where is not None:
        free = free_space(where)
        if free is not None:
            what += f" ({size_text(free)} free)"
    return what


def _fix(code: int, in_results: bool = True) -> str:
    """What to do when there is no run to resume; a file of the user's own choosing (a
    params file, --save-best) goes elsewhere, anything else to another results folder."""
    other = (f"choose another results folder with {RESULTS_OPTIONS}" if in_results
             else "write it somewhere else")
    if code == ENOSPC:
        return f"free some space or {other}"
    if code == EDQUOT:
        return f"delete some of your files or {other}"
    if code == EROFS:
        return other
    return f"make the folder writable or {other}"


def _cap(text: str) -> str:
    """The first letter up, the rest as it is (``str.capitalize`` lowers CONVONET_...)."""
    return text[:1].upper() + text[1:]


def _inside(path: str, folder: str | os.PathLike[str]) -> bool:
    try:
        return Path(path).resolve().is_relative_to(Path(folder).resolve())
    except (OSError, ValueError):
        return False


def storage_error(exc: BaseException, path: str | os.PathLike[str] | None = None, *,
                  outcome: str | None = None, resume: str | None = None,
                  then: str = "run it again",
                  results_dir: str | os.PathLike[str] | None = None) -> StorageError | None:
    """The one message for a write that failed for a reason the user fixes, or None.

    ``path``: the file being written, when the error does not say (it usually does not).
    ``outcome``: what became of the run ("the run is marked interrupted with its 2
    finished epochs kept"). ``resume``: the command that continues it; without one the
    message says what to do ``then`` (run the task again). ``results_dir``: when given,
    a file outside it (a params file, say) is not advised to go to another results
    folder. Both front ends show the message as it is.
    """
    cause = storage_cause(exc)
    if cause is None:
        return None
    if isinstance(cause, StorageError):
        return cause
    code = _code(cause)
    assert code is not None  # storage_cause only returns errors with a storage code
    named = _named_file(cause)
    known = named or (os.fspath(path) if path is not None else None)
    where = known or "the results folder"
    message = f"{where}: {_what(code, known)}"
    in_results = results_dir is None or named is None and path is None \
        or _inside(where, results_dir)
    if outcome is None:
        message += f"; {_fix(code, in_results)}"
    elif resume is not None:
        message += (f"; {outcome}. {_cap(_FIRST[code])}, then resume with "
                    f"`{resume}` ({APP_RESUME}); new runs can also go to another results "
                    f"folder with {RESULTS_OPTIONS}")
    else:
        message += f"; {outcome}. {_cap(_fix(code, in_results))}, then {then}"
    return StorageError(message, path=where, code=code)


def release(exc: BaseException) -> None:
    """Let go now of what a failed write left open.

    Keras leaves the h5py file of a failed checkpoint to the finished frames behind the
    traceback (Keras trims its own frames from the traceback, but h5py's frame keeps its
    callers alive). Freed at exit, h5py prints "Exception ignored" tracebacks and crashes
    the interpreter (measured on a full tmpfs: a segmentation fault right after the
    message). Cleared here, the file closes while the log still takes h5py's complaint.
    Frames still running (our callers) and generators are left alone.
    """
    global _left_open
    seen: set[int] = set()
    current: BaseException | None = exc
    frames: list[FrameType] = []
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if _FILE_IN_TEXT.search(str(current)):  # h5py's words: its file may stay open
            _left_open = True
        tb = current.__traceback__
        while tb is not None:
            frames.append(tb.tb_frame)
            tb = tb.tb_next
        current = current.__cause__ or current.__context__
    hook = sys.excepthook
    sys.excepthook = _log_close_failure  # h5py prints its failed close through it
    try:
        for frame in frames:
            walk: FrameType | None = frame
            while walk is not None:
                parent = walk.f_back
                if not walk.f_code.co_flags & _SUSPENDABLE:
                    try:
                        walk.clear()
                    except RuntimeError:  # still running: our own callers from here up
                        break
                walk = parent
        gc.collect()
    finally:
        sys.excepthook = hook


def _log_close_failure(kind: type[BaseException], value: BaseException,
                       tb: TracebackType | None) -> None:
    logging.getLogger("convonet.storage").warning(
        "a file left open by a failed write could not be closed",
        exc_info=(kind, value, tb))


def files_left_open() -> bool:
    """True once a failed write left a file that h5py could not close (a full disk).

    HDF5 tries to close it again when the interpreter shuts down and crashes the process
    (measured: a segmentation fault, exit status 139, after the message); the entry
    point then leaves with ``os._exit`` instead, its streams flushed.
    """
    return _left_open


def check_writable(folder: str | os.PathLike[str]) -> None:
    """Refuse a results folder that cannot be written, before a task starts.

    Makes the folder when missing and writes (then removes) a small file in it, so a
    read-only folder, a full disk or a file in the folder's place is refused with a
    ``StorageError`` naming the folder, before any data is loaded or any epoch trained.
    """
    where = Path(folder)
    try:
        where.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix=".convonet-write-check.", dir=where)
        try:
            os.write(fd, b"convonet\n")
        finally:
            os.close(fd)
            Path(probe).unlink(missing_ok=True)
    except OSError as exc:
        code = _code(exc)
        if code is not None:
            why = _what(code, os.fspath(where))
            fix = _fix(code)
        elif isinstance(exc, (FileExistsError, NotADirectoryError)) or where.is_file():
            why = "it is a file, not a folder" if where.is_file() else \
                "part of its path is a file, not a folder"
            fix = f"choose another results folder with {RESULTS_OPTIONS}"
        else:
            why = (exc.strerror or type(exc).__name__).lower()
            fix = f"choose another results folder with {RESULTS_OPTIONS}"
        raise StorageError(f"cannot write the results folder {where}: {why}; {fix}",
                           path=os.fspath(where), code=code) from exc


__all__ = ["RESULTS_OPTIONS", "StorageError", "check_writable", "files_left_open",
           "free_space", "release", "size_text", "storage_cause", "storage_error", "writing"]


#: Where results go when neither --results-dir nor CONVONET_RESULTS_DIR says otherwise.
DEFAULT_RESULTS_DIR = "app_results"


def resolve_results_dir(given: str | os.PathLike[str] | None = None) -> Path:
    """The results folder: ``given`` (--results-dir), else $CONVONET_RESULTS_DIR, else
    ./app_results. The one place that decides it, for the app, headless and the tasks."""
    if given is not None and str(given) != "":
        return Path(given)
    return Path(os.environ.get("CONVONET_RESULTS_DIR") or DEFAULT_RESULTS_DIR)
