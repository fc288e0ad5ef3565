"""Datasets: class-per-folder image trees loaded into float32 arrays (the seed's DataPrep).

CONTRACT (other modules rely on it; the implementation is being written):

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
"""
