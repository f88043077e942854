"""STL-10 (Coates, Lee & Ng 2011): `stl10_binary.tar.gz`, folder `stl10_binary/` with raw binaries
`train_X.bin` (5,000 images), `test_X.bin` (8,000), `unlabeled_X.bin` (100,000), each image 3×96×96
uint8 stored channel by channel in column-major order; `train_y.bin`/`test_y.bin` one uint8 label
1..10 per image; `class_names.txt` (one name a line) and `fold_indices.txt` (10 lines of indices).

Canonical arrays: x_train/x_test N×96×96×3 uint8, y_train/y_test int64 0..9, classes. The unlabeled
images are not read (the Demon paper's problem is supervised).
"""

from __future__ import annotations

import gzip
import tarfile
from pathlib import Path

import numpy as np

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

ARCHIVE_NAME = "stl10_binary.tar.gz"
FOLDER = "stl10_binary"
SIDE = 96
NEEDED = ("train_X.bin", "train_y.bin", "test_X.bin", "test_y.bin", "class_names.txt")


def _images(payload: bytes, path, name: str) -> np.ndarray:
    size = 3 * SIDE * SIDE
    require(len(payload) % size == 0, path, f"{name} holds {len(payload)} bytes, not a multiple of 3×96×96")
    # Stored as N×channel×column×row: to N×row×column×channel.
    return np.frombuffer(payload, dtype=np.uint8).reshape(-1, 3, SIDE, SIDE).transpose(0, 3, 2, 1)


def _members(path) -> dict[str, bytes]:
    """The NEEDED files, read in one streaming pass over the whole archive: gzip checks its CRC only at
    the end of the stream, so the pass goes on to the end even after the files are found (for the real
    archive that means decompressing the 2.6 GB once; a damaged file must not pass as data)."""
    found = {}
    with gzip.open(path, "rb") as gz:
        with tarfile.open(fileobj=gz, mode="r|") as tar:
            for member in tar:
                name = member.name.removeprefix("./").removeprefix(f"{FOLDER}/")
                if name in NEEDED and member.isfile():
                    found[name] = tar.extractfile(member).read()
        while gz.read(1 << 20):  # to the end of the gzip stream: its CRC and length are checked there
            pass
    missing = [n for n in NEEDED if n not in found]
    require(not missing, path, f"{', '.join(f'{FOLDER}/{n}' for n in missing)} missing")
    return found


def read(path) -> dict[str, np.ndarray]:
    """The canonical arrays (module docstring) of an stl10_binary.tar.gz.

    Raises:
        DataError: naming the file, when it is missing, damaged or not STL-10.
    """
    path = Path(path)
    require(path.is_file(), path, "no such file")
    with reading(path):
        files = _members(path)
        classes = np.asarray(files["class_names.txt"].decode().split(), dtype=str)
        arrays = {"classes": classes}
        for split in ("train", "test"):
            x = _images(files[f"{split}_X.bin"], path, f"{split}_X.bin")
            y = np.frombuffer(files[f"{split}_y.bin"], dtype=np.uint8).astype(np.int64) - 1
            require(len(x) == len(y), path, f"{split}: {len(x)} images but {len(y)} labels")
            check_labels(y, len(classes), path, split)
            arrays.update({f"x_{split}": x, f"y_{split}": y})
    return arrays


def write(path, splits: dict, classes, unlabeled: np.ndarray | None = None, folds: int = 10) -> Path:
    """Write {"train": (x, y), "test": (x, y)} (x N×96×96×3 uint8, y 0-based) as an stl10_binary.tar.gz
    with STL-10's files (labels stored 1-based, fold_indices.txt splitting the training images into
    `folds` folds); byte-for-byte reproducible."""
    with tar_gz_writer(path) as tar:
        add_bytes(tar, f"{FOLDER}/class_names.txt", "".join(f"{c}\n" for c in classes).encode())
        n_train = len(splits["train"][0])
        fold_lines = [" ".join(str(i) for i in chunk) for chunk in np.array_split(np.arange(n_train), folds)]
        add_bytes(tar, f"{FOLDER}/fold_indices.txt", "".join(f"{line}\n" for line in fold_lines).encode())
        for split, (x, y) in sorted(splits.items(), reverse=True):  # test before train, as the real archive
            add_bytes(tar, f"{FOLDER}/{split}_X.bin", np.ascontiguousarray(x.transpose(0, 3, 2, 1)).tobytes())
            add_bytes(tar, f"{FOLDER}/{split}_y.bin", (np.asarray(y) + 1).astype(np.uint8).tobytes())
        if unlabeled is not None:
            add_bytes(tar, f"{FOLDER}/unlabeled_X.bin", np.ascontiguousarray(unlabeled.transpose(0, 3, 2, 1)).tobytes())
    return Path(path)


def synthetic(path, train_size: int = 500, test_size: int = 200, unlabeled_size: int = 10, seed: int = 0) -> Path:
    """A learnable archive in STL-10's format: 10 classes (a random 96×96 colour pattern each)."""
    splits = prototype_splits({"train": train_size, "test": test_size, "unlabeled": unlabeled_size}, 10, SIDE, 3,
                              seed)
    unlabeled = splits.pop("unlabeled")[0]
    return write(path, splits, ["airplane", "bird", "car", "cat", "deer", "dog", "horse", "monkey", "ship",
                                "truck"], unlabeled)


def download(download_dir) -> Path:
    """torchvision's STL-10 download (archive md5-checked, ≈2.6 GB); returns the archive."""
    from torchvision.datasets import STL10

    try:
        STL10(root=str(download_dir), split="train", download=True)
    except (OSError, RuntimeError) as exc:
        raise download_error("STL-10", exc, ARCHIVE_NAME) from exc
    return Path(download_dir) / ARCHIVE_NAME


def is_real(path) -> bool:
    from torchvision.datasets import STL10

    return md5_matches(path, STL10.tgz_md5)
