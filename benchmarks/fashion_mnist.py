"""Write Fashion-MNIST (Debian's dataset-fashion-mnist IDX files) out as PNG class folders.

    apt-get install -y dataset-fashion-mnist
    python benchmarks/fashion_mnist.py datasets/fashion-mnist

gives ``train/0..9`` (60,000 PNGs) and ``test/0..9`` (10,000), MNIST's layout, plus
``data_params.json`` pointing at them. Class folders are named ``0``..``9`` (the IDX
labels); ``classes.txt`` lists the garment names.
"""

from __future__ import annotations

import argparse
import gzip
import json
import struct
from pathlib import Path

import numpy as np
from PIL import Image

IDX_DIR = Path("/usr/share/datasets/fashion-mnist")
NAMES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker",
         "Bag", "Ankle boot"]


def read_idx(path: Path) -> np.ndarray:
    with gzip.open(path, "rb") as fh:
        data = fh.read()
    _, dtype, ndim = struct.unpack(">HBB", data[:4])
    shape = struct.unpack(">" + "I" * ndim, data[4:4 + 4 * ndim])
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim).reshape(shape)


def load_split(split: str) -> tuple[np.ndarray, np.ndarray]:
    prefix = "train" if split == "train" else "t10k"
    images = read_idx(IDX_DIR / f"{prefix}-images-idx3-ubyte.gz")
    labels = read_idx(IDX_DIR / f"{prefix}-labels-idx1-ubyte.gz")
    return images, labels


def write_pngs(out: Path, limit: int | None = None) -> Path:
    """Write the PNG tree once; a marker file makes a second call free."""
    marker = out / ".complete"
    if marker.exists():
        return out
    for split in ("train", "test"):
        images, labels = load_split(split)
        if limit is not None:
            images, labels = images[:limit], labels[:limit]
        for c in range(10):
            (out / split / str(c)).mkdir(parents=True, exist_ok=True)
        for i, (img, label) in enumerate(zip(images, labels, strict=True)):
            Image.fromarray(img, mode="L").save(out / split / str(label) / f"{i:05d}.png")
    (out / "classes.txt").write_text("\n".join(f"{i} {n}" for i, n in enumerate(NAMES)) + "\n")
    (out / "data_params.json").write_text(json.dumps(
        {"train_dir": "train", "test_dir": "test", "image_size": [28, 28],
         "color_mode": "grayscale", "test_split": 0.0}, indent=2) + "\n")
    marker.write_text("ok\n")
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path, nargs="?", default=Path("datasets/fashion-mnist"))
    parser.add_argument("--limit", type=int, default=None, help="images per split (default all)")
    args = parser.parse_args()
    print(write_pngs(args.out, args.limit))


if __name__ == "__main__":
    main()
