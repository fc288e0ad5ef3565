"""Datasets: class-per-folder image trees loaded into float32 arrays (the seed's DataPrep).

A dataset root holds one sub-folder per class. Class index = Python's ``sorted()`` order of the
folder names (as ``keras.utils.image_dataset_from_directory`` does); numbered folders whose
text order is not their number order (0, 1, 10, 2 ...) keep it, with a warning that lists
the index -> folder table (``text_order_warning``). Every image is decoded
with Pillow, converted to the configured colour mode, resized to the configured size and
scaled to 0..1. Files that cannot be used are skipped with a reason, never fatal.

CONTRACT (other modules rely on it):

    @dataclass
    class SkippedFile:
        path: Path
        reason: str

    @dataclass
    class Dataset:
        x: np.ndarray            # float32, shape (n, height, width, channels), values 0..1
        y: np.ndarray            # int64, shape (n,), class index = sorted() folder order
        class_names: list[str]   # index -> folder name
        root: Path | None
        skipped: list[SkippedFile]
        warnings: list[str]
        fingerprint: str         # hash of file names, sizes, mtimes and image settings
        @property image_shape -> tuple[int, int, int]
        @property num_classes -> int
        @property counts -> list[int]   # images per class index
        def __len__ -> int

    class DataPrep:
        def __init__(self, data_params: DataParams, *, cache_dir: Path | None = None): ...
        def prep_data(self, which: str = "train", report=no_report, cancel=None) -> Dataset
            # which = "train" | "test"; raises DataError (a ValueError naming the folder)

Image conversion rules (one place, so the UI's help can quote them):

- 8-bit modes (1, L, P, RGB, CMYK, YCbCr, HSV ...) convert with Pillow; colour to grayscale
  uses Pillow's ITU-R 601-2 luma, grayscale to RGB repeats the channel.
- Transparency (RGBA, LA, PA, a palette or tRNS transparent colour) is composited on black,
  so a transparent pixel reads 0 whatever colour it happens to store (MNIST-style strokes on
  black stay as they are).
- 16-bit modes (I;16, I;16B ...) scale 0..65535 to 0..1. Mode I (32-bit integer, what some
  readers give for 16-bit data) is taken as 16-bit and clipped to 0..65535. Mode F (float)
  is taken as 0..1 data and clipped.
- Every image is resized (bilinear, antialiased when shrinking) to ``image_size``; a warning
  says how many differed from it.
- Images over ``MAX_PIXELS`` are skipped before decoding (Pillow alone only warns up to
  178 Mpx); animated files use their first frame.

Test sets are matched to training classes by index: ``match_classes`` (called by
``prep_data("test", train_classes=...)``) warns and lists the pairs when names differ, and
raises ``DataError`` naming both lists when the counts differ.

The decoded, unshuffled arrays of a folder are cached on disk (one folder of ``.npy`` files
per key, written atomically) keyed by the relative names, sizes and mtimes of its files and
the image settings, so a reload skips decoding; any changed file changes the key.

The package's modules: ``dataset`` (Dataset, SkippedFile, DataError, class matching),
``listing`` (class folders and their files), ``decoding`` (one image, runs of images),
``parallel`` (serial, thread and process-pool decoding), ``cache`` (the on-disk cache),
``memory`` (the memory guard), ``arrays`` (conversion, shuffles, splits) and ``prep``
(DataPrep, which ties them together). Every name importers use is re-exported here.
"""

from __future__ import annotations

from convonet.core.data.arrays import (
    gather_float32,
    permute_rows,
    shuffle_arrays,
    stratified_split,
    to_float32,
)
from convonet.core.data.cache import CACHE_VERSION, content_key, default_cache_dir
from convonet.core.data.dataset import DataError, Dataset, SkippedFile, match_classes
from convonet.core.data.decoding import MAX_PIXELS, extract_image
from convonet.core.data.listing import list_folder, text_order_warning
from convonet.core.data.memory import (
    MEMORY_SHARE,
    available_memory,
    check_memory,
    estimate_bytes,
    human_bytes,
)
from convonet.core.data.parallel import decode_files, decoding_process_pool
from convonet.core.data.prep import DataPrep

__all__ = [
    "CACHE_VERSION", "MAX_PIXELS", "MEMORY_SHARE", "DataError", "DataPrep", "Dataset",
    "SkippedFile", "available_memory", "check_memory", "content_key", "decode_files",
    "decoding_process_pool", "default_cache_dir", "estimate_bytes", "extract_image",
    "gather_float32", "human_bytes", "list_folder", "match_classes", "permute_rows",
    "shuffle_arrays", "stratified_split", "text_order_warning", "to_float32",
]
