"""MNIST (LeCun et al. 1998) and Fashion-MNIST (Xiao, Rasul & Vollgraf 2017) in the IDX format: a folder
with `train-images-idx3-ubyte.gz`, `train-labels-idx1-ubyte.gz`, `t10k-images-idx3-ubyte.gz` and
`t10k-labels-idx1-ubyte.gz` (torchvision leaves them in `ROOT/MNIST/raw/` and `ROOT/FashionMNIST/raw/`;
the un-gzipped files are read when the .gz ones are absent).

IDX (http://yann.lecun.com/exdb/mnist/): two zero bytes, a type byte (0x08: uint8), a byte with the
number of dimensions d, then d big-endian uint32 sizes, then the values in row-major order.

Canonical arrays: x_train/x_test N×28×28×1 uint8, y_train/y_test int64 0..9, classes.
"""

from __future__ import annotations

import gzip
import struct
from pathlib import Path

import numpy as np

from optimbench.formats.common import (
    check_labels,
    download_error,
    md5_matches,
    prototype_splits,
    reading,
    require,
    write_gzip,
)

FILES = {"train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
         "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")}
MNIST_CLASSES = [str(d) for d in range(10)]
FASHION_CLASSES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag",
                   "Ankle boot"]
UINT8 = 0x08


def parse_idx(payload: bytes, path) -> np.ndarray:
    """The uint8 array of one IDX file's bytes.

    Raises:
        DataError: naming `path`, for a bad magic number, a type other than uint8 or a size mismatch.
    """
    require(len(payload) >= 4 and payload[:2] == b"\0\0", path, "no IDX magic number")
    require(payload[2] == UINT8, path, f"IDX type 0x{payload[2]:02x}, expected 0x08 (uint8)")
    ndim = payload[3]
    header = 4 + 4 * ndim
    require(len(payload) >= header, path, "truncated IDX header")
    shape = struct.unpack(f">{ndim}I", payload[4:header])
    require(len(payload) - header == int(np.prod(shape)), path,
            f"IDX header says {shape} ({int(np.prod(shape))} values), the file holds {len(payload) - header}")
    return np.frombuffer(payload, dtype=np.uint8, offset=header).reshape(shape)


def encode_idx(array: np.ndarray) -> bytes:
    """The IDX bytes of a uint8 array."""
    array = np.ascontiguousarray(array, dtype=np.uint8)
    return bytes([0, 0, UINT8, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape) + array.tobytes()


def _load(folder: Path, stem: str) -> np.ndarray:
    gz, raw = folder / f"{stem}.gz", folder / stem
    path = gz if gz.exists() else raw
    require(path.exists(), gz, "missing (neither the .gz nor the un-gzipped file is in the folder)")
    with reading(path):
        payload = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
        return parse_idx(payload, path)


def read(folder, classes=MNIST_CLASSES) -> dict[str, np.ndarray]:
    """The canonical arrays (module docstring) of a folder of the four IDX files.

    Raises:
        DataError: naming the file that is missing, damaged or not IDX images/labels.
    """
    folder = Path(folder)
    require(folder.is_dir(), folder, "not a folder holding the four IDX files")
    arrays = {"classes": np.asarray(classes, dtype=str)}
    for split, (images_stem, labels_stem) in FILES.items():
        x, y = _load(folder, images_stem), _load(folder, labels_stem)
        require(x.ndim == 3, folder / images_stem, f"expected N×rows×columns images, got shape {x.shape}")
        require(y.ndim == 1 and len(y) == len(x), folder / labels_stem, f"{len(y)} labels for {len(x)} images")
        y = y.astype(np.int64)
        check_labels(y, len(classes), folder / labels_stem, split)
        arrays.update({f"x_{split}": x[..., None], f"y_{split}": y})
    return arrays


def write(folder, splits: dict) -> Path:
    """Write {"train": (x N×H×W uint8, y), "test": (...)} as the four gzipped IDX files (mtime 0)."""
    folder = Path(folder)
    for split, (images_stem, labels_stem) in FILES.items():
        x, y = splits[split]
        write_gzip(folder / f"{images_stem}.gz", encode_idx(x))
        write_gzip(folder / f"{labels_stem}.gz", encode_idx(np.asarray(y, dtype=np.uint8)))
    return folder


def synthetic(folder, train_size: int = 2000, test_size: int = 500, seed: int = 0) -> Path:
    """A learnable folder in IDX format: 10 classes, a random 28×28 grey pattern each."""
    splits = prototype_splits({"train": train_size, "test": test_size}, 10, 28, 1, seed)
    return write(folder, {name: (x[..., 0], y) for name, (x, y) in splits.items()})


def digits(folder, test_fraction: float = 0.25, seed: int = 0) -> Path:
    """scikit-learn's handwritten digits (1,797 real 8×8 images), resized to 28×28, as IDX files: real data,
    offline, shaped like MNIST (as optimbench.formats.cifar10's digits source for CIFAR-10's format)."""
    import torch
    import torch.nn.functional as F
    from sklearn.datasets import load_digits

    bunch = load_digits()
    small = torch.from_numpy(bunch.images.astype(np.float32) / 16.0)[:, None]
    big = F.interpolate(small, size=(28, 28), mode="bilinear", align_corners=False)
    images = (big.clamp(0, 1) * 255).round().to(torch.uint8)[:, 0].numpy()
    order = np.random.default_rng(seed).permutation(len(images))
    n_test = int(round(len(images) * test_fraction))
    labels = bunch.target.astype(np.uint8)
    return write(folder, {"train": (images[order[n_test:]], labels[order[n_test:]]),
                          "test": (images[order[:n_test]], labels[order[:n_test]])})


def _torchvision_class(dataset: str):
    from torchvision.datasets import MNIST, FashionMNIST

    return {"mnist": MNIST, "fashion_mnist": FashionMNIST}[dataset]


def download(download_dir, dataset: str = "mnist") -> Path:
    """torchvision's MNIST or FashionMNIST download (each file md5-checked); returns the raw folder."""
    cls = _torchvision_class(dataset)
    try:
        data = cls(root=str(download_dir), train=True, download=True)
    except (OSError, RuntimeError) as exc:
        raise download_error(cls.__name__, exc, "a folder with the four *-idx?-ubyte.gz files") from exc
    return Path(data.raw_folder)


def is_real(folder, dataset: str = "mnist") -> bool:
    return all(md5_matches(Path(folder) / name, md5) for name, md5 in _torchvision_class(dataset).resources)
