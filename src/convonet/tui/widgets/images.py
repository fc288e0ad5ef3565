"""Images drawn in the terminal with half-block characters.

Each character cell shows two pixels: the upper one as the foreground colour of "▀" and the
lower one as the background. Rich downsamples the colours to what the terminal offers
(truecolor, 256 or 16 colours), so it works over plain SSH.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from rich.console import Group, RenderableType
from rich.style import Style
from rich.table import Table
from rich.text import Text
from textual.widgets import Static

UPPER_HALF = "▀"


def fit_image(image: np.ndarray, max_width: int, max_height: int) -> np.ndarray:
    """Shrink an (h, w, c) image by whole-pixel sampling to fit width x 2*height pixels."""
    h, w = image.shape[:2]
    step = max(1, int(np.ceil(max(w / max(max_width, 1), h / max(2 * max_height, 1)))))
    return image[::step, ::step]


def halfblock(image: np.ndarray, max_width: int = 28, max_height: int = 14) -> Text:
    """An (h, w) or (h, w, c) float image in 0..1 as rich Text, two pixel rows per line."""
    img = np.asarray(image, dtype=np.float32)
    if img.ndim == 2:
        img = img[:, :, None]
    img = fit_image(img, max_width, max_height)
    if img.shape[2] == 1:
        img = np.repeat(img, 3, axis=2)
    rgb = (np.clip(img[:, :, :3], 0.0, 1.0) * 255).astype(np.uint8)
    if rgb.shape[0] % 2:
        rgb = np.concatenate([rgb, np.zeros_like(rgb[:1])], axis=0)
    text = Text(no_wrap=True, overflow="crop")
    styles: dict[tuple[int, ...], Style] = {}
    for row in range(0, rgb.shape[0], 2):
        for col in range(rgb.shape[1]):
            top = tuple(int(v) for v in rgb[row, col])
            bottom = tuple(int(v) for v in rgb[row + 1, col])
            key = top + bottom
            style = styles.get(key)
            if style is None:
                style = Style(color=f"rgb({top[0]},{top[1]},{top[2]})",
                              bgcolor=f"rgb({bottom[0]},{bottom[1]},{bottom[2]})")
                styles[key] = style
            text.append(UPPER_HALF, style)
        if row + 2 < rgb.shape[0]:
            text.append("\n")
    return text


def image_grid(images: Sequence[np.ndarray], labels: Sequence[str], *, columns: int,
               cell_width: int = 28, cell_height: int = 14) -> RenderableType:
    """Images with a label under each, laid out in a grid of ``columns``."""
    if not images:
        return Text("No images to show.", style="dim")
    table = Table.grid(padding=(0, 2))
    for _ in range(columns):
        table.add_column(no_wrap=True)
    cells = [Group(halfblock(img, cell_width, cell_height),
                   Text(label, overflow="ellipsis", no_wrap=True))
             for img, label in zip(images, labels, strict=False)]
    for start in range(0, len(cells), columns):
        table.add_row(*cells[start:start + columns])
    return table


class ImageGrid(Static):
    """A grid of labelled images that re-flows to the width it is given."""

    DEFAULT_CSS = """
    ImageGrid { height: auto; }
    """

    def __init__(self, *, cell_width: int = 28, cell_height: int = 14, **kwargs) -> None:
        super().__init__("", **kwargs)
        self.cell_width = cell_width
        self.cell_height = cell_height
        self._images: list[np.ndarray] = []
        self._labels: list[str] = []

    def show(self, images: Sequence[np.ndarray], labels: Sequence[str]) -> None:
        self._images = list(images)
        self._labels = list(labels)
        self._redraw()

    def on_resize(self) -> None:
        self._redraw()

    def _redraw(self) -> None:
        if not self._images:
            self.update(Text("No images to show.", style="dim"))
            return
        width = self.size.width or 80
        img_w = min(self.cell_width, self._images[0].shape[1])
        columns = max(1, min(len(self._images), (width + 2) // (img_w + 2)))
        self.update(image_grid(self._images, self._labels, columns=columns,
                               cell_width=self.cell_width, cell_height=self.cell_height))
