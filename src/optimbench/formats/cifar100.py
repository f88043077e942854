"""CIFAR-100 (Krizhevsky 2009): `cifar-100-python.tar.gz`, folder `cifar-100-python/` with the pickles
`train` (50,000 images), `test` (10,000) and `meta`. Each image pickle holds `data` (N×3072 uint8,
channel-major rows as CIFAR-10), `fine_labels` (0..99), `coarse_labels` (0..19) and `filenames`; `meta`
holds `fine_label_names` and `coarse_label_names`.

Canonical arrays: x_train/x_test N×32×32×3 uint8, y_train/y_test the fine labels (int64), classes the 100
fine names, and coarse_train/coarse_test (int64) with coarse_classes (the 20 superclasses).
"""

from __future__ import annotations

import pickle
import tarfile
from pathlib import Path

import numpy as np

from optimbench.errors import DataError
from optimbench.formats.common import (
    add_bytes,
    check_labels,
    download_error,
    md5_matches,
    prototype_splits,
    reading,
    require,
    tar_gz_writer,
)

ARCHIVE_NAME = "cifar-100-python.tar.gz"
FOLDER = "cifar-100-python"
SPLITS = ("train", "test")


def _member(tar: tarfile.TarFile, path, name: str) -> dict:
    try:
        fh = tar.extractfile(f"{FOLDER}/{name}")
    except KeyError:
        raise DataError(f"{path}: {FOLDER}/{name} is missing: not a CIFAR-100 python archive") from None
    entry = pickle.load(fh, encoding="latin1")  # latin1, as torchvision: keys come back as str
    require(isinstance(entry, dict), path, f"{name} does not hold a dict")
    return entry


def _split(entry: dict, path, name: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    data = np.asarray(entry["data"], dtype=np.uint8)
    fine = np.asarray(entry["fine_labels"], dtype=np.int64)
    coarse = np.asarray(entry["coarse_labels"], dtype=np.int64)
    require(data.ndim == 2 and data.shape[1] == 3072 and len(fine) == len(coarse) == len(data), path,
            f"{name}: expected data N×3072 with N fine and N coarse labels, got {data.shape}, {fine.shape}, "
            f"{coarse.shape}")
    return data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1), fine, coarse


def read(path) -> dict[str, np.ndarray]:
    """The canonical arrays (module docstring) of a cifar-100-python.tar.gz.

    Raises:
        DataError: naming the file, when it is missing, damaged or not CIFAR-100.
    """
    path = Path(path)
    require(path.is_file(), path, "no such file")
    with reading(path), tarfile.open(path, "r:gz") as tar:
        meta = _member(tar, path, "meta")
        splits = {name: _split(_member(tar, path, name), path, name) for name in SPLITS}
        fine_names = np.asarray(meta["fine_label_names"], dtype=str)
        coarse_names = np.asarray(meta["coarse_label_names"], dtype=str)
    arrays = {"classes": fine_names, "coarse_classes": coarse_names}
    for name, (x, fine, coarse) in splits.items():
        check_labels(fine, len(fine_names), path, f"{name} fine")
        check_labels(coarse, len(coarse_names), path, f"{name} coarse")
        arrays.update({f"x_{name}": x, f"y_{name}": fine, f"coarse_{name}": coarse})
    return arrays


def write(path, splits: dict, fine_names, coarse_names) -> Path:
    """Write {"train": (x, fine, coarse), "test": (...)} (x N×32×32×3 uint8) as a cifar-100-python.tar.gz
    with CIFAR-100's files and keys; byte-for-byte reproducible."""
    with tar_gz_writer(path) as tar:
        for name, (x, fine, coarse) in splits.items():
            rows = np.ascontiguousarray(x.transpose(0, 3, 1, 2).reshape(len(x), 3072), dtype=np.uint8)
            add_bytes(tar, f"{FOLDER}/{name}", pickle.dumps({
                "filenames": [f"{i}.png" for i in range(len(x))], "batch_label": f"{name}ing batch 1 of 1",
                "fine_labels": [int(v) for v in fine], "coarse_labels": [int(v) for v in coarse],
                "data": rows}, protocol=2))
        add_bytes(tar, f"{FOLDER}/meta", pickle.dumps(
            {"fine_label_names": list(fine_names), "coarse_label_names": list(coarse_names)}, protocol=2))
    return Path(path)


def synthetic(path, train_size: int = 2000, test_size: int = 500, seed: int = 0) -> Path:
    """A learnable archive in CIFAR-100's format: 100 fine classes (a random pattern each), fine class f
    in coarse class f // 5 (CIFAR-100 has 5 fine classes per superclass)."""
    splits = prototype_splits({"train": train_size, "test": test_size}, 100, 32, 3, seed)
    return write(path, {name: (x, y, y // 5) for name, (x, y) in splits.items()},
                 [f"fine{i}" for i in range(100)], [f"coarse{i}" for i in range(20)])


def download(download_dir) -> Path:
    """torchvision's CIFAR-100 download (archive and files md5-checked); returns the archive."""
    from torchvision.datasets import CIFAR100

    try:
        CIFAR100(root=str(download_dir), train=True, download=True)
    except (OSError, RuntimeError) as exc:  # URLError is an OSError
        raise download_error("CIFAR-100", exc, ARCHIVE_NAME) from exc
    return Path(download_dir) / ARCHIVE_NAME


def is_real(path) -> bool:
    from torchvision.datasets import CIFAR100

    return md5_matches(path, CIFAR100.tgz_md5)
