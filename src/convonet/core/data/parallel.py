"""Decoding a listing's files serially, with threads or with a process pool, and the
process pool that also starts inside a running Textual app."""

from __future__ import annotations

import concurrent.futures as cf
import multiprocessing as mp
import os
import sys
import threading
import time
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np

from convonet.core.data.arrays import _with_wide_rows
from convonet.core.data.decoding import _decode_chunk, _decode_into, _Info
from convonet.core.events import Cancelled, CancelToken, LoadProgress, Reporter, no_report

_PROGRESS_EVERY_S = 0.25


def _stderr_has_descriptor() -> bool:
    try:
        return sys.stderr is not None and sys.stderr.fileno() >= 0
    except (AttributeError, OSError, ValueError):
        return False


def _quiet_decoder(silence_stderr: bool) -> None:
    """Pool initializer: a decoding process never writes to the terminal when the parent
    draws on it (the app); skip reasons come back as values, not as printed warnings."""
    warnings.simplefilter("ignore")
    if silence_stderr:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, 2)
        os.close(devnull)


_pool_start_lock = threading.Lock()


def decoding_process_pool(workers: int) -> cf.ProcessPoolExecutor:
    """A process pool for decoding that also starts inside a running Textual app.

    multiprocessing hands ``sys.stderr``'s file descriptor to the helper processes it
    starts (the resource tracker, the fork server). Textual replaces ``sys.stderr`` with an
    object whose ``fileno()`` is -1, and the start then fails with "bad value(s) in
    fds_to_keep". So the helpers are started here, with ``sys.stderr`` pointing at the
    null device for that moment (a print from another thread during those milliseconds
    is dropped rather than drawn over the app), and the decoding processes themselves
    write nothing to the terminal. Not fork: the app has Keras's threads running, and
    forking them can deadlock.
    """
    ctx_name = "forkserver" if "forkserver" in mp.get_all_start_methods() else "spawn"
    ctx = mp.get_context(ctx_name)
    in_app = not _stderr_has_descriptor()
    if in_app:
        from multiprocessing import resource_tracker

        with _pool_start_lock, open(os.devnull, "w") as devnull:
            saved = sys.stderr
            sys.stderr = devnull
            try:
                resource_tracker.ensure_running()
                if ctx_name == "forkserver":
                    from multiprocessing import forkserver

                    forkserver.ensure_running()
            finally:
                sys.stderr = saved
    return cf.ProcessPoolExecutor(max_workers=workers, mp_context=ctx,
                                  initializer=_quiet_decoder, initargs=(in_app,))


class _Throttle:
    """Reports load progress at most every ``_PROGRESS_EVERY_S`` seconds."""

    def __init__(self, report: Reporter, total: int, label: str) -> None:
        self.report, self.total, self.label = report, total, label
        self.last = time.monotonic()

    def __call__(self, done: int) -> None:
        now = time.monotonic()
        if now - self.last >= _PROGRESS_EVERY_S:
            self.last = now
            self.report(LoadProgress(done, self.total, self.label))


def decode_files(paths: list[str], strategy: str, image_size: Sequence[int], color_mode: str,
                 channels: int, max_pixels: int, report: Reporter = no_report,
                 cancel: CancelToken | None = None, label: str = ""
                 ) -> tuple[np.ndarray, list[str | None], list[_Info | None]]:
    """Every file's pixels in listing order: uint8 when all images are 8-bit (the
    usual case), else float32 in 0..1 (see ``extract_image``).

    ``strategy`` is "serial", "threads" or "processes"; a process pool that cannot start
    raises ``BrokenProcessPool``, and the caller decodes again with threads.
    """
    size = tuple(image_size)
    h, w = size
    total = len(paths)
    x = np.empty((total, h, w, channels), dtype=np.uint8)
    reasons: list[str | None] = [None] * total
    infos: list[_Info | None] = [None] * total
    wide: dict[int, np.ndarray] = {}
    tick = _Throttle(report, total, label)
    if strategy == "serial":
        for i, path in enumerate(paths):
            if cancel is not None and cancel.cancelled:
                raise Cancelled()
            rs, fs, ws = _decode_into(x[i:i + 1], [path], size, color_mode, max_pixels)
            reasons[i], infos[i] = rs[0], fs[0]
            if ws:
                wide[i] = ws[0]
            tick(i + 1)
        return _with_wide_rows(x, wide), reasons, infos
    _decode_pooled(x, paths, strategy == "processes", size, color_mode, max_pixels,
                   (reasons, infos, wide), tick, cancel)
    return _with_wide_rows(x, wide), reasons, infos


def _decode_pooled(x: np.ndarray, paths: list[str], processes: bool, size: tuple[int, ...],
                   color_mode: str, max_pixels: int,
                   into: tuple[list[str | None], list[_Info | None], dict[int, np.ndarray]],
                   tick: _Throttle, cancel: CancelToken | None) -> None:
    """Decode in chunks on a pool, filling ``x`` and the per-file lists of ``into``.

    Threads write their rows into ``x`` in place; processes send theirs back.
    """
    reasons, infos, wide = into
    total = len(paths)
    cores = os.cpu_count() or 1
    if processes:
        chunk = 512
        executor: cf.Executor = decoding_process_pool(cores)
    else:
        chunk = 32
        executor = cf.ThreadPoolExecutor(max_workers=cores,
                                         thread_name_prefix="convonet-decode")
    done = 0
    try:
        pending: dict[cf.Future[Any], int] = {}
        for start in range(0, total, chunk):
            part = paths[start:start + chunk]
            fut: cf.Future[Any]
            if processes:
                fut = executor.submit(_decode_chunk, part, size, color_mode, max_pixels)
            else:  # threads write their rows in place
                fut = executor.submit(_decode_into, x[start:start + len(part)], part,
                                      size, color_mode, max_pixels)
            pending[fut] = start
        while pending:
            if cancel is not None and cancel.cancelled:
                raise Cancelled()
            finished, _ = cf.wait(pending, timeout=0.1, return_when=cf.FIRST_COMPLETED)
            for fut in finished:
                start = pending.pop(fut)
                if processes:
                    xs, rs, fs, ws = fut.result()
                    x[start:start + len(rs)] = xs
                else:
                    rs, fs, ws = fut.result()
                end = start + len(rs)
                reasons[start:end] = rs
                infos[start:end] = fs
                wide.update({start + i: arr for i, arr in ws.items()})
                done += len(rs)
            tick(done)
    finally:
        executor.shutdown(wait=False, cancel_futures=True)
