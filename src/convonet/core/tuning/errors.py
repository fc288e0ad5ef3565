"""Tuning errors: a failed combination (record it, go on) vs a fatal one (stop), as
keras-tuner's errors.py separates them; and how an exception is classified."""

from __future__ import annotations

import re
from collections.abc import Sequence

from convonet.core.errors import ConvonetError


class TuningError(ConvonetError):
    """Base of the tuning errors."""

    title = "Tuning error"
    advice = "Check the tuning values in the hyper params, then tune again."


class CombinationError(TuningError):
    """This combination cannot run here: record it once with the reason and go on."""


class CombinationDiverged(CombinationError):
    """A fold of this combination diverged (NaN loss, or accuracy back at chance): the
    combination's outcome, marked "diverged" in the table; not a failure of the search,
    so it does not count towards ``TooManyFailures``."""


class FatalTuningError(TuningError):
    """The search cannot go on (bad data, a resume that does not match, a bug)."""


class InvalidGridError(FatalTuningError, ValueError):
    """Every combination of the grid is invalid for these images: nothing can be tuned.

    A ValueError too, as the params errors are: the message is the whole story.
    """


class NonFiniteLoss(ArithmeticError):
    """The training loss became NaN or infinite: the combination diverged."""



class TooManyFailures(FatalTuningError):
    """Several combinations in a row failed: the cause is likely shared (data, memory), so
    the search stops instead of failing every combination left; what finished is kept."""

    advice = ("Read the tracebacks in the run folder's failures/ folder, fix the cause, "
              "then resume the search or tune again.")


def too_many_failures(reasons: Sequence[str], run_dir: str | None) -> TooManyFailures:
    """The message naming the last reasons and where the tracebacks and finished folds are."""
    last = "; ".join(dict.fromkeys(reasons))  # the same reason once
    where = (f"The finished folds are kept in {run_dir}, and each failure's full traceback "
             f"in {run_dir}/failures/; fix the cause, then continue with `convonet tune "
             f"--resume {run_dir}`." if run_dir else
             "Nothing was recorded (no run folder); fix the cause and tune again.")
    return TooManyFailures(f"{len(reasons)} combinations in a row failed, so the search "
                           f"stopped. Last reasons: {last}. {where}")


# ---- failure classification ---------------------------------------------------------
_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_OOM_WORDS = ("out of memory", "resource_exhausted", "resourceexhausted", " oom ", "oom when")
_SHAPE_WORDS = ("negative dimension", "zero or negative", "negative output size",
                "would be negative", "filter must not be larger", "cannot fit")


def _short(exc: BaseException, limit: int = 300) -> str:
    """The informative line of an exception (Keras wraps it in call context and ANSI)."""
    text = _ANSI.sub("", str(exc))
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    lines = [ln for ln in lines if not ln.startswith(("Exception encountered when calling",
                                                      "Arguments received by", "•"))]
    line = lines[0] if lines else type(exc).__name__
    return line if len(line) <= limit else line[: limit - 1] + "…"


def failure_reason(exc: BaseException) -> str | None:
    """Why one combination failed, or None when the error is not a per-combination one."""
    if isinstance(exc, CombinationError):
        return str(exc)
    if isinstance(exc, NonFiniteLoss):
        return f"NaN loss: {exc}"
    names = " ".join(c.__name__ for c in type(exc).__mro__).lower()
    text = " " + _ANSI.sub("", str(exc)).lower() + " "
    if isinstance(exc, MemoryError) or "resourceexhausted" in names \
            or "outofmemory" in names or any(w in text for w in _OOM_WORDS):
        return f"out of memory: {_short(exc)}"
    if any(w in text for w in _SHAPE_WORDS):
        return f"layers do not fit the image size: {_short(exc)}"
    return None


