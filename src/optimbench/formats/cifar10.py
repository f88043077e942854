"""CIFAR-10's format (SPEC §2.1): its download, one reader, a writer and the offline generators (digits,
synthetic) of `cifar-10-python.tar.gz` archives. optimbench.formats chooses the source and prepares any
data set through its format's reader into the canonical `.npz` (optimbench.formats.canonical).
"""

from __future__ import annotations

import gzip
import io
import pickle
import tarfile
from pathlib import Path

import numpy as np

from optimbench.errors import DataError
from optimbench.formats.common import GZIP_LEVEL, synthetic_images
from optimbench.io import atomic_path

ARCHIVE_NAME = "cifar-10-python.tar.gz"
ARCHIVE_FOLDER = "cifar-10-batches-py"
CIFAR10_MD5 = "c58f30108f718f92721af3b95e74349a"
TRAIN_BATCHES = [f"data_batch_{i}" for i in range(1, 6)]



# ---------------------------------------------------------------- the CIFAR-10 reader
def _load_member(tar: tarfile.TarFile, name: str) -> dict:
    member = f"{ARCHIVE_FOLDER}/{name}"
    try:
        fh = tar.extractfile(member)
    except KeyError:
        raise DataError(f"{member} is missing from the archive: not a CIFAR-10 python archive") from None
    # latin1, as torchvision's reader: keys come back as str ("data", "labels", "label_names").
    entry = pickle.load(fh, encoding="latin1")
    if not isinstance(entry, dict):
        raise DataError(f"{member} does not hold a dict")
    return entry


def _batch_arrays(entry: dict, name: str) -> tuple[np.ndarray, np.ndarray]:
    data = np.asarray(entry["data"], dtype=np.uint8)
    labels = np.asarray(entry.get("labels", entry.get("fine_labels")), dtype=np.int64)
    if data.ndim != 2 or data.shape[1] != 3072 or len(labels) != len(data):
        raise DataError(f"{name}: expected data N×3072 and N labels, got {data.shape} and {labels.shape}")
    # Rows are channel-major (1024 R, 1024 G, 1024 B): to N×32×32×3.
    return data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1), labels


def read_cifar_archive(path) -> dict[str, np.ndarray]:
    """Read a cifar-10-python.tar.gz into arrays x_train, y_train, x_test, y_test, classes."""
    path = Path(path)
    if not path.exists():
        raise DataError(f"archive {path} does not exist")
    try:
        with tarfile.open(path, "r:gz") as tar:
            meta = _load_member(tar, "batches.meta")
            train = [_batch_arrays(_load_member(tar, b), b) for b in TRAIN_BATCHES]
            x_test, y_test = _batch_arrays(_load_member(tar, "test_batch"), "test_batch")
    except (tarfile.TarError, EOFError, OSError, pickle.UnpicklingError, ValueError) as exc:
        raise DataError(f"cannot read {path}: {type(exc).__name__}: {exc}. The archive is corrupted "
                        "or truncated: delete it and obtain it again.") from exc
    classes = np.asarray(meta["label_names"], dtype=str)
    y_train = np.concatenate([y for _, y in train])
    for split, y in (("train", y_train), ("test", y_test)):
        if y.min() < 0 or y.max() >= len(classes):
            raise DataError(f"{path}: {split} labels outside 0..{len(classes) - 1}")
    return {"x_train": np.concatenate([x for x, _ in train]), "y_train": y_train,
            "x_test": x_test, "y_test": y_test, "classes": classes}


# ---------------------------------------------------------------- writing CIFAR-format archives
def _to_rows(images: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(images.transpose(0, 3, 1, 2).reshape(len(images), 3072), dtype=np.uint8)


def _add_pickle(tar: tarfile.TarFile, name: str, obj: dict) -> None:
    payload = pickle.dumps(obj, protocol=2)
    info = tarfile.TarInfo(f"{ARCHIVE_FOLDER}/{name}")
    info.size = len(payload)
    tar.addfile(info, io.BytesIO(payload))


def write_cifar_archive(path, x_train, y_train, x_test, y_test, classes) -> Path:
    """Write images (N×32×32×3 uint8) as a cifar-10-python.tar.gz with CIFAR-10's files and keys.

    Byte-for-byte reproducible: gzip and tar timestamps are 0.
    """
    with (atomic_path(path) as tmp, open(tmp, "wb") as raw,
          gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0, compresslevel=GZIP_LEVEL) as gz,
          tarfile.open(fileobj=gz, mode="w") as tar):
        for i, chunk in enumerate(np.array_split(np.arange(len(x_train)), len(TRAIN_BATCHES))):
            _add_pickle(tar, TRAIN_BATCHES[i], {
                "batch_label": f"training batch {i + 1} of 5", "data": _to_rows(x_train[chunk]),
                "labels": [int(v) for v in y_train[chunk]], "filenames": [f"{j}.png" for j in chunk]})
        _add_pickle(tar, "test_batch", {
            "batch_label": "testing batch 1 of 1", "data": _to_rows(x_test),
            "labels": [int(v) for v in y_test], "filenames": [f"{j}.png" for j in range(len(x_test))]})
        _add_pickle(tar, "batches.meta", {"label_names": list(classes),
                                          "num_cases_per_batch": int(np.ceil(len(x_train) / 5)), "num_vis": 3072})
    return Path(path)


# ---------------------------------------------------------------- the sources
def make_synthetic_archive(path, train_size: int = 2000, test_size: int = 500, seed: int = 0) -> Path:
    """A learnable CIFAR-format archive: 10 smooth random colour patterns, one per class."""
    rng = np.random.default_rng(seed)
    coarse = rng.uniform(0, 255, size=(10, 4, 4, 3))
    prototypes = coarse.repeat(8, axis=1).repeat(8, axis=2)  # 4×4 blocks of 8×8 pixels: low frequency
    x_train, y_train = synthetic_images(train_size, prototypes, rng)
    x_test, y_test = synthetic_images(test_size, prototypes, rng)
    return write_cifar_archive(path, x_train, y_train, x_test, y_test, [f"pattern{i}" for i in range(10)])


def make_digits_archive(path, test_fraction: float = 0.25, seed: int = 0) -> Path:
    """scikit-learn's handwritten digits (1,797 real 8×8 images), resized to 32×32×3, as a CIFAR archive."""
    import torch
    import torch.nn.functional as F
    from sklearn.datasets import load_digits

    digits = load_digits()
    small = torch.from_numpy(digits.images.astype(np.float32) / 16.0)[:, None]  # N×1×8×8 in [0, 1]
    big = F.interpolate(small, size=(32, 32), mode="bilinear", align_corners=False)
    images = (big.clamp(0, 1) * 255).round().to(torch.uint8).repeat(1, 3, 1, 1).permute(0, 2, 3, 1).numpy()
    order = np.random.default_rng(seed).permutation(len(images))
    n_test = int(round(len(images) * test_fraction))
    test, train = order[:n_test], order[n_test:]
    labels = digits.target.astype(np.int64)
    return write_cifar_archive(path, images[train], labels[train], images[test], labels[test],
                               [str(d) for d in range(10)])


def download_cifar10(download_dir) -> Path:
    """torchvision's real CIFAR-10 download (md5-verified); returns the archive's path."""
    from torchvision.datasets import CIFAR10

    try:
        CIFAR10(root=str(download_dir), train=True, download=True)
    except (OSError, RuntimeError) as exc:  # URLError is an OSError
        raise DataError(f"CIFAR-10 download failed ({type(exc).__name__}: {exc}). Without internet, put "
                        f"{ARCHIVE_NAME} on disk and use `data: {{source: archive, archive: PATH}}`.") from exc
    return Path(download_dir) / ARCHIVE_NAME
