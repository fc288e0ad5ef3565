"""A small 4-class RGB image set of mixed sizes, built from Fashion-MNIST, for the
small-medical-set benchmark (a few hundred images, as a chest-CT folder has).

    python benchmarks/make_small_rgb_set.py datasets/small-rgb [--seed 0]
        [--train-per-class 150] [--test-per-class 40]

Writes ``train/<class>/`` and ``test/<class>/`` (class-per-folder) and
``data_params.json`` (128x128, rgb, the folders relative to it). Each image is one
Fashion-MNIST garment (training images for train/, test images for test/, so the two
never share a source), upscaled to a random size between 64 and 256 pixels a side (not
square), colourised (a random dark background and light foreground tint, per image),
with a random contrast, a slight blur on some and Gaussian noise; a third are saved as
JPEG, the rest as PNG. The same seed gives the same files, byte for byte.

The classes (``CLASSES``) are four garments a 28x28 CNN tells apart well but not
perfectly once upscaled and noised: T-shirt/top, Dress, Sandal and Bag.
"""

from __future__ import annotations

import argparse
import io
import json
from pathlib import Path

import numpy as np
from fashion_mnist import NAMES, load_split
from PIL import Image, ImageFilter

#: Fashion-MNIST label -> folder name.
CLASSES = {0: "tshirt", 3: "dress", 5: "sandal", 8: "bag"}
MIN_SIDE, MAX_SIDE = 64, 256
IMAGE_SIZE = [128, 128]


def render(garment: np.ndarray, rng: np.random.Generator) -> Image.Image:
    """One 28x28 grayscale garment as a noisy, tinted RGB image of a random size."""
    width = int(rng.integers(MIN_SIDE, MAX_SIDE + 1))
    height = int(np.clip(width * rng.uniform(0.8, 1.25), MIN_SIDE, MAX_SIDE))
    big = Image.fromarray(garment, mode="L").resize((width, height), Image.BICUBIC)
    if rng.random() < 0.3:
        big = big.filter(ImageFilter.GaussianBlur(radius=float(rng.uniform(0.5, 1.5))))
    g = np.asarray(big, dtype=np.float32)[..., None] / 255.0
    g = np.clip(g ** rng.uniform(0.7, 1.4), 0.0, 1.0)  # contrast
    background = rng.uniform(0.0, 0.25, 3)
    foreground = rng.uniform(0.55, 1.0, 3)
    rgb = background + g * (foreground - background)
    rgb = rgb + rng.normal(0.0, rng.uniform(0.02, 0.08), rgb.shape)
    return Image.fromarray((np.clip(rgb, 0.0, 1.0) * 255).round().astype(np.uint8), "RGB")


def save(image: Image.Image, path: Path, jpeg: bool) -> None:
    """PNG or JPEG bytes written in one go (no metadata that would vary between runs)."""
    buf = io.BytesIO()
    if jpeg:
        image.save(buf, format="JPEG", quality=90)
    else:
        image.save(buf, format="PNG", optimize=False)
    path.with_suffix(".jpg" if jpeg else ".png").write_bytes(buf.getvalue())


def write_split(out: Path, split: str, per_class: int, rng: np.random.Generator) -> int:
    images, labels = load_split(split)
    count = 0
    for label, name in CLASSES.items():
        folder = out / split / name
        folder.mkdir(parents=True, exist_ok=True)
        for old in folder.iterdir():
            old.unlink()
        picks = rng.choice(np.flatnonzero(labels == label), size=per_class, replace=False)
        for i, index in enumerate(np.sort(picks)):
            save(render(images[index], rng), folder / f"{name}-{i:04d}",
                 jpeg=bool(rng.random() < 1 / 3))
            count += 1
    return count


def make_set(out: Path, seed: int = 0, train_per_class: int = 150,
             test_per_class: int = 40) -> Path:
    """Write the set under ``out``; returns its data params file."""
    rng = np.random.default_rng(seed)
    out.mkdir(parents=True, exist_ok=True)
    n_train = write_split(out, "train", train_per_class, rng)
    n_test = write_split(out, "test", test_per_class, rng)
    params = out / "data_params.json"
    params.write_text(json.dumps({"train_dir": "train", "test_dir": "test",
                                  "image_size": IMAGE_SIZE, "color_mode": "rgb",
                                  "test_split": 0.0}, indent=2) + "\n")
    (out / "classes.txt").write_text("".join(
        f"{name} = Fashion-MNIST {label} {NAMES[label]}\n" for label, name in CLASSES.items()))
    print(f"{n_train} training and {n_test} test images in {out} (seed {seed}); "
          f"data params: {params}")
    return params


def main() -> None:
    parser = argparse.ArgumentParser(description="Build the small 4-class RGB set")
    parser.add_argument("out", type=Path)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--train-per-class", type=int, default=150)
    parser.add_argument("--test-per-class", type=int, default=40)
    args = parser.parse_args()
    make_set(args.out, args.seed, args.train_per_class, args.test_per_class)


if __name__ == "__main__":
    main()
