"""The memory guard: refuse a load whose float32 arrays would not fit, before anything is
allocated, naming the figure and what to change."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from convonet.core.data.dataset import DataError
from convonet.core.params import DataParams


def estimate_bytes(n_images: int, image_size: Sequence[int], channels: int) -> int:
    """Memory the float32 array of ``n_images`` will take, to warn before loading."""
    h, w = int(image_size[0]), int(image_size[1])
    return int(n_images) * h * w * int(channels) * 4


#: Refuse a load whose float32 arrays would take more than this share of the memory
#: available: decoding holds the 8-bit pixels and the float32 copy at once, and training
#: needs room of its own besides.
MEMORY_SHARE = 0.5

#: cgroup v1 writes "no limit" as a huge number rather than "max".
_NO_CGROUP_LIMIT = 1 << 60


def human_bytes(n: float) -> str:
    """1024-based, one decimal: "89.9 GB" (the figure the memory guard names)."""
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} GB"


def _meminfo_available(path: Path) -> int | None:
    try:
        with open(path, encoding="ascii") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


def _cgroup_room(root: Path) -> int | None:
    """What a container's memory limit still allows, or None when there is no limit.

    Usage counts page cache the kernel would reclaim first, so the inactive file pages are
    taken off it (as ``docker stats`` does).
    """
    for limit_name, usage_name, stat_name, inactive_key in (
            ("memory.max", "memory.current", "memory.stat", "inactive_file"),
            ("memory/memory.limit_in_bytes", "memory/memory.usage_in_bytes",
             "memory/memory.stat", "total_inactive_file")):
        try:
            limit_text = (root / limit_name).read_text().strip()
            usage = int((root / usage_name).read_text())
        except (OSError, ValueError):
            continue
        if limit_text == "max" or not limit_text.isdigit() \
                or int(limit_text) >= _NO_CGROUP_LIMIT:
            return None
        inactive = 0
        try:
            for line in (root / stat_name).read_text().splitlines():
                key, _, value = line.partition(" ")
                if key == inactive_key:
                    inactive = int(value)
                    break
        except (OSError, ValueError):
            pass
        return max(0, int(limit_text) - max(0, usage - inactive))
    return None


def available_memory(meminfo: str | os.PathLike[str] = "/proc/meminfo",
                     cgroup: str | os.PathLike[str] = "/sys/fs/cgroup") -> int | None:
    """Bytes a load can still take, or None where the system does not say.

    Linux's MemAvailable counts the page cache the kernel hands back (free pages alone
    would refuse loads on a machine that has just read many files); a container's memory
    limit caps it. Elsewhere, the free pages ``sysconf`` reports.
    """
    found = _meminfo_available(Path(meminfo))
    if found is None:
        try:
            found = int(os.sysconf("SC_AVPHYS_PAGES")) * int(os.sysconf("SC_PAGE_SIZE"))
        except (ValueError, OSError, AttributeError):
            found = None
    room = _cgroup_room(Path(cgroup))
    if room is not None:
        found = room if found is None else min(found, room)
    return found


def check_memory(n_images: int, params: DataParams, root: Path,
                 available: int | None) -> None:
    """Refuse a load whose float32 arrays would not fit comfortably in ``available`` bytes.

    Called after listing and before anything is allocated, so an image_size of 4096x4096
    ends with the figure and what to change instead of the kernel killing the process.
    ``available`` None (the system does not say) lets every load through.
    """
    if available is None:
        return
    need = estimate_bytes(n_images, params.image_size, params.channels)
    room = MEMORY_SHARE * available
    if need <= room:
        return
    h, w = (int(v) for v in params.image_size)
    c = int(params.channels)
    ways: list[str] = []
    scale = (room / need) ** 0.5  # the same shape, scaled down until it fits
    fit_h, fit_w = int(h * scale), int(w * scale)
    if fit_h >= 1 and fit_w >= 1:
        ways.append(f"a smaller image_size in the data params (at most {fit_h}x{fit_w} fits)")
    if c == 3:
        ways.append("color_mode grayscale (a third of the memory)")
    fit_n = int(room // estimate_bytes(1, (h, w), c))
    if fit_n >= 1:
        ways.append(f"fewer images (at most {fit_n:,} at this size)")
    if len(ways) > 2:
        advice = "use " + ", ".join(ways[:-1]) + ", or " + ways[-1]
    elif ways:
        advice = "use " + " or ".join(ways)
    else:
        advice = "close other programs to free memory, or use a machine with more"
    raise DataError(
        f"loading {n_images:,} images of '{root}' at {h}x{w}x{c} needs about "
        f"{human_bytes(need)} of memory, more than half of the {human_bytes(available)} "
        f"available; {advice}")
