"""DeepOBS's quadratic data set (github fsschneider/DeepOBS, deepobs/tensorflow/datasets/quadratic.py,
`quadratic._make_train_dataset` / `_make_test_dataset`): 1,000 training and 1,000 test points in 100 dimensions,
i.i.d. N(0, 0.6²), drawn with NumPy's RandomState(42) (training) and RandomState(43) (test) and cast to float32.
DeepOBS generates them; so does optimbench, exactly (its every source gives these arrays), into one `.npz`
archive (`x_train`, `x_test`) written reproducibly, so its sha256 is known (QUADRATIC_SHA256).

Canonical arrays: x_train/x_test N×100 float32 (not images), y_train/y_test int64 zeros (no labels), classes empty.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from optimbench.formats.canonical import save_npz
from optimbench.formats.common import reading, require
from optimbench.io import atomic_path, file_digest

ARCHIVE_NAME = "deepobs-quadratic.npz"
DIM, SIZE, NOISE = 100, 1000, 0.6  # quadratic(dim=100, train_size=1000, noise_level=0.6): DeepOBS's defaults
SEEDS = {"train": 42, "test": 43}
# sha256 of the archive `generate` writes (save_npz: fixed timestamps, so equal arrays give equal bytes)
QUADRATIC_SHA256 = "f8fccdfe123e1c00c17d80120d101390b4120279c539e0f7e027bc35ec45377d"


def points(split: str) -> np.ndarray:
    """The split's points (SIZE × DIM float32), as DeepOBS draws them."""
    return np.random.RandomState(SEEDS[split]).normal(0.0, NOISE, (SIZE, DIM)).astype(np.float32)


def generate(path) -> Path:
    """Write the archive (x_train, x_test) to `path` atomically and reproducibly; returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        save_npz(tmp, {"x_train": points("train"), "x_test": points("test")})
    return path


def download(download_dir) -> Path:
    """DeepOBS generates these data rather than downloading them: generated into download_dir (no network)."""
    path = Path(download_dir) / ARCHIVE_NAME
    return path if is_real(path) else generate(path)


def synthetic(path) -> Path:
    """The same data (the quadratic has no synthetic stand-in: its data are DeepOBS's generated ones)."""
    return generate(path)


def is_real(path) -> bool:
    """Whether `path` holds DeepOBS's data (its sha256 is the reproducible archive's)."""
    return Path(path).is_file() and file_digest(path) == QUADRATIC_SHA256


def read(path) -> dict:
    """The canonical arrays of an archive.

    Raises:
        DataError: naming the file, when it is not such an archive (keys, shapes, dtype).
    """
    with reading(path), np.load(path, allow_pickle=False) as npz:
        arrays = {key: npz[key] for key in ("x_train", "x_test")}
    for key, array in arrays.items():
        require(array.ndim == 2 and array.shape[1] == DIM and array.dtype == np.float32, path,
                f"{key} is {array.dtype} {array.shape}, expected float32 N×{DIM}")
    return {"x_train": arrays["x_train"], "y_train": np.zeros(len(arrays["x_train"]), np.int64),
            "x_test": arrays["x_test"], "y_test": np.zeros(len(arrays["x_test"]), np.int64),
            "classes": np.array([], dtype="<U1")}
