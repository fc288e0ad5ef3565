"""Decoding one image file, and runs of files, by the conversion rules of
``convonet.core.data``.

Module level, so a process pool can pickle the functions it runs. A file that cannot be
used raises ``_Skip`` with the reason shown to the user; a run of files records it and goes
on.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from PIL import Image, UnidentifiedImageError

from convonet.core.data.arrays import to_float32

#: Our own decode limit, far below Pillow's 178 Mpx bomb error: a 40 Mpx RGB image is
#: already 480 MB as float32 before resizing.
MAX_PIXELS = 40_000_000

_HIGH_DEPTH_16 = ("I;16", "I;16L", "I;16B", "I;16N")
_ALPHA_MODES = ("RGBA", "LA", "PA", "RGBa", "La")


class _Skip(Exception):
    """One file cannot be used; the message is the reason shown to the user."""


@dataclass(frozen=True)
class _Info:
    """What decoding learned about one file, for the warnings."""

    size: tuple[int, int]  # (height, width) as stored
    alpha: bool


def extract_image(path: str | os.PathLike[str], image_size: Sequence[int], color_mode: str,
                  max_pixels: int = MAX_PIXELS, *, keep_8_bit: bool = False
                  ) -> tuple[np.ndarray, _Info]:
    """Decode one file to float32 (h, w, c) in 0..1 (the seed's extractImage).

    With ``keep_8_bit`` an 8-bit image comes back as its uint8 values 0..255 instead (the
    loader's compact form: a quarter of the bytes to move, cache and send between
    processes); 16-bit and float images are float32 either way. Raises ``_Skip`` with a
    readable reason when the file cannot be used.
    """
    try:
        with Image.open(path) as im:
            w0, h0 = im.size
            if w0 * h0 > max_pixels:
                raise _Skip(f"image is {w0}x{h0} = {w0 * h0 / 1e6:.1f} Mpx, over the "
                            f"{max_pixels / 1e6:g} Mpx limit; downscale it")
            if im.format == "JPEG" and im.mode in ("L", "RGB", "CMYK", "YCbCr"):
                # Let the JPEG decoder scale down by 1/2, 1/4 or 1/8 (never below the
                # target size) and convert to the wanted mode while decoding: a large photo
                # resized to 128x128 then decodes several times faster.
                im.draft("L" if color_mode == "grayscale" else "RGB",
                         (int(image_size[1]), int(image_size[0])))
            im.load()
            arr, alpha = _convert(im, (int(image_size[0]), int(image_size[1])), color_mode,
                                  keep_8_bit)
    except _Skip:
        raise
    except UnidentifiedImageError:
        raise _Skip("not an image Pillow can read (unknown format or corrupt header)") \
            from None
    except Image.DecompressionBombError as exc:
        raise _Skip(f"too large to decode safely: {exc}") from None
    except OSError as exc:
        text = str(exc)
        if "truncated" in text or "broken data stream" in text:
            raise _Skip(f"truncated or damaged image ({text})") from None
        raise _Skip(f"cannot be read: {text}") from None
    except Exception as exc:  # noqa: BLE001 - a decoder failure in one file must not stop the load
        raise _Skip(f"cannot be decoded: {type(exc).__name__}: {exc}") from None
    return arr, _Info((h0, w0), alpha)


def _convert(im: Image.Image, size: tuple[int, int], color_mode: str,
             keep_8_bit: bool = False) -> tuple[np.ndarray, bool]:
    """Pillow image -> float32 (h, w, c) in 0..1 (uint8 0..255 for 8-bit data when
    ``keep_8_bit``); also whether it had transparency."""
    h, w = size
    channels = 1 if color_mode == "grayscale" else 3
    mode = im.mode
    if mode in _HIGH_DEPTH_16 or mode in ("I", "F"):
        raw = np.asarray(im)
        if mode == "F":
            f = np.clip(raw.astype(np.float32), 0.0, 1.0)
        else:
            f = np.clip(raw.astype(np.float32), 0.0, 65535.0) * np.float32(1.0 / 65535.0)
        if f.ndim == 3:  # multi-band high-depth data: average the bands
            f = f.mean(axis=2, dtype=np.float32)
        if f.shape != (h, w):
            fim = Image.fromarray(np.ascontiguousarray(f, dtype=np.float32))
            f = np.asarray(fim.resize((w, h), Image.Resampling.BILINEAR), dtype=np.float32)
            f = np.clip(f, 0.0, 1.0)
        out = f.reshape(h, w, 1)
        if channels == 3:
            out = np.repeat(out, 3, axis=2)
        return out, False
    target = "L" if channels == 1 else "RGB"
    alpha = mode in _ALPHA_MODES or ("transparency" in im.info and mode in ("P", "L", "RGB"))
    if alpha:
        rgba = im.convert("RGBA")
        black = Image.new("RGBA", rgba.size, (0, 0, 0, 255))
        im = Image.alpha_composite(black, rgba).convert(target)
    elif mode != target:
        im = im.convert(target)
    if im.size != (w, h):
        im = im.resize((w, h), Image.Resampling.BILINEAR)
    values = np.asarray(im).reshape(h, w, channels)
    if keep_8_bit:
        return values, alpha
    return to_float32(values), alpha


#: What decoding a run of files gives besides the pixels: per file the skip reason (or
#: None) and the info, and the rows that are not 8-bit (16-bit, float) as float32.
_Decoded = tuple[list[str | None], list[_Info | None], dict[int, np.ndarray]]


def _decode_chunk(paths: Sequence[str], image_size: Sequence[int], color_mode: str,
                  max_pixels: int) -> tuple[np.ndarray, list[str | None], list[_Info | None],
                                            dict[int, np.ndarray]]:
    """Decode a run of files into one new uint8 array (for a process pool, which must send
    the rows back); see ``_decode_into``."""
    h, w = int(image_size[0]), int(image_size[1])
    channels = 1 if color_mode == "grayscale" else 3
    x = np.empty((len(paths), h, w, channels), dtype=np.uint8)
    reasons, infos, wide = _decode_into(x, paths, image_size, color_mode, max_pixels)
    return x, reasons, infos, wide


def _decode_into(out: np.ndarray, paths: Sequence[str], image_size: Sequence[int],
                 color_mode: str, max_pixels: int) -> _Decoded:
    """Decode a run of files straight into the uint8 rows of ``out`` (threads share the
    result array, so nothing is copied twice). Rows of skipped files are zero; images
    that are not 8-bit leave a zero row and come back as float32 rows, by index."""
    reasons: list[str | None] = []
    infos: list[_Info | None] = []
    wide: dict[int, np.ndarray] = {}
    for i, p in enumerate(paths):
        try:
            arr, info = extract_image(p, image_size, color_mode, max_pixels, keep_8_bit=True)
        except _Skip as exc:
            out[i] = 0
            reasons.append(str(exc))
            infos.append(None)
            continue
        if arr.dtype == np.uint8:
            out[i] = arr
        else:
            out[i] = 0
            wide[i] = arr
        reasons.append(None)
        infos.append(info)
    return reasons, infos, wide


def _decode_warnings(infos: list[_Info], size: tuple[int, ...]) -> list[str]:
    """What the user should know about conversions: resizes and transparency."""
    out: list[str] = []
    target = (int(size[0]), int(size[1]))
    sizes = Counter(i.size for i in infos)
    differ = sum(n for s, n in sizes.items() if s != target)
    if differ:
        seen = ", ".join(f"{h}x{w}" for (h, w), _ in sizes.most_common(4) if (h, w) != target)
        out.append(f"{differ} of {len(infos)} images were not {target[0]}x{target[1]} "
                   f"(height x width) and were resized to it (sizes seen: {seen}"
                   f"{', ...' if len(sizes) > 4 else ''})")
    n_alpha = sum(1 for i in infos if i.alpha)
    if n_alpha:
        out.append(f"{n_alpha} image(s) with transparency were composited on black")
    return out
