"""Data sources (download, archive, digits, synthetic), one CIFAR-10 reader, one canonical file (SPEC §2.1).

Every source ends as a `cifar-10-python.tar.gz` in CIFAR-10's own pickle format; one reader turns
that archive into the canonical `.npz` (uint8 images N×32×32×3, int64 labels, class names) whose
sha256 is recorded beside it.
"""

from __future__ import annotations

import argparse
import gzip
import io
import zipfile
import pickle
import tarfile
import tempfile
from pathlib import Path

import numpy as np

from optimbench.io import atomic_path, file_digest, sha256, write_json

ARCHIVE_NAME = "cifar-10-python.tar.gz"
ARCHIVE_FOLDER = "cifar-10-batches-py"
CIFAR10_MD5 = "c58f30108f718f92721af3b95e74349a"
TRAIN_BATCHES = [f"data_batch_{i}" for i in range(1, 6)]
CIFAR10_CLASSES = ["airplane", "automobile", "bird", "cat", "deer",
                   "dog", "frog", "horse", "ship", "truck"]
DATASET_OF_SOURCE = {"download": "cifar10", "archive": "cifar10", "digits": "digits", "synthetic": "synthetic"}


class DataError(RuntimeError):
    """The data could not be obtained or read; the message says what to do."""


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
          gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0) as gz,
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
def synthetic_images(n: int, prototypes: np.ndarray, rng: np.random.Generator):
    """Images of class prototypes plus noise and a random shift: learnable, not trivially so."""
    labels = rng.integers(0, len(prototypes), n)
    images = prototypes[labels].astype(np.float32)
    shifts = rng.integers(-3, 4, size=(n, 2))
    for i, (dy, dx) in enumerate(shifts):
        images[i] = np.roll(images[i], (dy, dx), axis=(0, 1))
    images += rng.normal(0.0, 40.0, images.shape)
    return np.clip(images, 0, 255).astype(np.uint8), labels.astype(np.int64)


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


def obtain_archive(data_cfg: dict, workdir) -> Path:
    """The CIFAR-format archive of the configured source (written into workdir when generated)."""
    source = data_cfg["source"]
    if source == "download":
        return download_cifar10(data_cfg["download_dir"])
    if source == "archive":
        path = Path(data_cfg["archive"])
        if not path.exists():
            raise DataError(f"data.archive = {str(path)!r} does not exist: copy {ARCHIVE_NAME} there "
                            "or set data.archive to its path")
        return path
    if source == "digits":
        return make_digits_archive(Path(workdir) / ARCHIVE_NAME, **data_cfg.get("digits", {}))
    if source == "synthetic":
        return make_synthetic_archive(Path(workdir) / ARCHIVE_NAME, **data_cfg.get("synthetic", {}))
    raise DataError(f"unknown data.source {source!r}: use download, archive, digits or synthetic")


# ---------------------------------------------------------------- split sizes, before any data exists
CIFAR10_SIZES = (50_000, 10_000)
DIGITS_IMAGES = 1_797  # scikit-learn's load_digits


def split_sizes(data_cfg: dict) -> tuple[int, int]:
    """(training images, test images) the configured source gives, known from the config alone.

    download, archive: CIFAR-10's 50,000 / 10,000 (an archive in its format is assumed to be CIFAR-10);
    digits: 1,797 images, round(1,797 · test_fraction) of them for testing, as make_digits_archive;
    synthetic: its train_size / test_size.
    """
    source = data_cfg["source"]
    if source in ("download", "archive"):
        return CIFAR10_SIZES
    if source == "digits":
        n_test = int(round(DIGITS_IMAGES * data_cfg.get("digits", {}).get("test_fraction", 0.25)))
        return DIGITS_IMAGES - n_test, n_test
    if source == "synthetic":
        synthetic = data_cfg.get("synthetic", {})
        return synthetic.get("train_size", 2000), synthetic.get("test_size", 500)
    raise DataError(f"unknown data.source {source!r}: use download, archive, digits or synthetic")


# ---------------------------------------------------------------- the canonical file
def save_npz(path, arrays: dict) -> None:
    """np.savez's format with fixed timestamps, so equal arrays give an equal file (and sha256)."""
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_STORED, allowZip64=True) as archive:
        for key, value in arrays.items():
            with archive.open(zipfile.ZipInfo(f"{key}.npy", date_time=(1980, 1, 1, 0, 0, 0)), "w",
                              force_zip64=True) as fh:
                np.lib.format.write_array(fh, np.asanyarray(value), allow_pickle=False)


def write_canonical(arrays: dict, out_npz, out_json, provenance: dict) -> dict:
    """Save the arrays as one .npz (atomically) and its sha256 and summary as JSON."""
    with atomic_path(out_npz) as tmp:
        save_npz(tmp, arrays)
    summary = {**provenance, "sha256": sha256(out_npz), "classes": [str(c) for c in arrays["classes"]],
               "n_train": int(len(arrays["y_train"])), "n_test": int(len(arrays["y_test"])),
               "image_shape": list(arrays["x_train"].shape[1:])}
    write_json(out_json, summary)
    return summary


def load_canonical(path) -> dict[str, np.ndarray]:
    """The canonical arrays (x_train, y_train, x_test, y_test, classes)."""
    with np.load(path, allow_pickle=False) as npz:
        return {key: npz[key] for key in npz.files}


def prepare(data_cfg: dict, out_npz, out_json) -> dict:
    """Obtain the configured source and write its canonical file; returns the summary."""
    Path(out_npz).parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=Path(out_npz).parent) as work:
        archive = obtain_archive(data_cfg, work)
        arrays = read_cifar_archive(archive)
        provenance = {"source": data_cfg["source"], "archive": str(archive) if data_cfg["source"] in
                      ("download", "archive") else None, "archive_sha256": sha256(archive),
                      "archive_is_real_cifar10": file_digest(archive, "md5") == CIFAR10_MD5}
        return write_canonical(arrays, out_npz, out_json, provenance)


# prepare_data's --spec: config.yaml's `data` section (see config/schema.yaml).
SPEC_REQUIRED = {"source": "download | archive | digits | synthetic"}
SOURCE_REQUIRED = {"download": {"download_dir": "where torchvision's CIFAR-10 download goes"},
                   "archive": {"archive": "path of a local cifar-10-python.tar.gz"}}
SPEC_OPTIONAL = {
    "download_dir": "source download: where torchvision's CIFAR-10 download goes",
    "archive": "source archive: path of a local cifar-10-python.tar.gz",
    "digits": "source digits: {test_fraction (0.25), seed (0)}",
    "synthetic": "source synthetic: {train_size (2000), test_size (500), seed (0)}",
}


def read_data_spec(value: str, download_dir: str | None = None) -> dict:
    """The `data` section (download_dir overridden when given) with every key its source needs
    (SystemExit naming the missing ones)."""
    from optimbench.cli import check_spec, read_spec

    spec = read_spec(value, SPEC_REQUIRED, SPEC_OPTIONAL)
    if download_dir:
        spec["download_dir"] = download_dir
    if spec["source"] not in DATASET_OF_SOURCE:
        raise SystemExit(f"--spec source = {spec['source']!r}: use one of {list(DATASET_OF_SOURCE)}")
    return check_spec(spec, SOURCE_REQUIRED.get(spec["source"], {}), {})


def main(argv=None) -> None:
    from optimbench.cli import spec_help

    parser = argparse.ArgumentParser(description="Prepare the canonical data file from a configured source.",
                                     epilog=spec_help(SPEC_REQUIRED, SPEC_OPTIONAL),
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--spec", required=True, help="the `data` section as JSON (or a path to a JSON/YAML file)")
    parser.add_argument("--out", required=True, help="canonical .npz to write")
    parser.add_argument("--summary", required=True, help="JSON summary (sha256, counts) to write")
    parser.add_argument("--download-dir", help="where source `download` puts torchvision's files "
                                               "(overrides the spec's download_dir)")
    args = parser.parse_args(argv)

    summary = prepare(read_data_spec(args.spec, args.download_dir), args.out, args.summary)
    print(f"wrote {args.out}: {summary['n_train']} train / {summary['n_test']} test images, sha256 {summary['sha256']}")


if __name__ == "__main__":
    main()
