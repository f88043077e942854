"""What every data-set format shares: clean read errors, reproducible archives, download errors, checks."""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import io
import pickle
import tarfile
import zlib
from pathlib import Path

import numpy as np

from optimbench.errors import DataError
from optimbench.io import atomic_path, file_digest

# Everything a damaged or foreign file can raise while it is parsed.
READ_ERRORS = (tarfile.TarError, EOFError, OSError, pickle.UnpicklingError, ValueError, KeyError, IndexError,
               TypeError, AttributeError, zlib.error, UnicodeDecodeError)


@contextlib.contextmanager
def reading(path):
    """Turn any failure while parsing `path` into a DataError that names it and says what to do."""
    try:
        yield
    except DataError:
        raise
    except READ_ERRORS as exc:
        raise DataError(f"cannot read {path}: {type(exc).__name__}: {exc}. The file is corrupted, truncated "
                        "or not in this data set's format: delete it and obtain it again.") from exc


def require(condition: bool, path, what: str) -> None:
    """Raise a DataError naming the file when a format check fails."""
    if not condition:
        raise DataError(f"{path}: {what}: not in this data set's format (delete it and obtain it again)")


def check_labels(labels: np.ndarray, n_classes: int, path, split: str) -> None:
    require(len(labels) == 0 or (labels.min() >= 0 and labels.max() < n_classes), path,
            f"{split} labels outside 0..{n_classes - 1}")


# gzip level of the archives optimbench writes (generated sources): 1, as its noisy images barely compress and
# level 9 (gzip's default) took a minute for a published-size CIFAR archive; any level reads the same.
GZIP_LEVEL = 1


@contextlib.contextmanager
def tar_gz_writer(path):
    """A .tar.gz written atomically with gzip and tar timestamps 0, so equal content gives equal bytes."""
    with (atomic_path(path) as tmp, open(tmp, "wb") as raw,
          gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0, compresslevel=GZIP_LEVEL) as gz,
          tarfile.open(fileobj=gz, mode="w") as tar):
        yield tar


def add_bytes(tar: tarfile.TarFile, name: str, payload: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(payload)
    tar.addfile(info, io.BytesIO(payload))


def write_gzip(path, payload: bytes) -> Path:
    """A .gz file written atomically, with mtime 0."""
    with atomic_path(path) as tmp, gzip.GzipFile(tmp, "wb", mtime=0, compresslevel=GZIP_LEVEL) as gz:
        gz.write(payload)
    return Path(path)


def tree_digest(path) -> str:
    """sha256 of a file, or of a folder's relative file names and their sha256s."""
    path = Path(path)
    if path.is_file():
        return file_digest(path)
    digest = hashlib.sha256()
    for item in sorted(p for p in path.rglob("*") if p.is_file()):
        digest.update(f"{item.relative_to(path)}\0{file_digest(item)}\n".encode())
    return digest.hexdigest()


def md5_matches(path, md5: str) -> bool:
    return Path(path).is_file() and file_digest(path, "md5") == md5


def download_error(name: str, exc: Exception, archive_hint: str) -> DataError:
    """The error of a failed download: what failed and the offline options."""
    return DataError(f"{name} download failed ({type(exc).__name__}: {exc}). Without internet: put "
                     f"{archive_hint} on disk and use `data: {{source: archive, archives: {{DATA_SET: PATH}}}}` "
                     "(CIFAR-10: `data.archive`), or use `source: synthetic` (generated data in the same file "
                     "format, for tests).")


CHUNK = 1024  # images generated at once (synthetic_images)


def synthetic_images(n: int, prototypes: np.ndarray, rng: np.random.Generator):
    """Images of class prototypes plus noise and a random shift: learnable, not trivially so."""
    labels = rng.integers(0, len(prototypes), n)
    shifts = rng.integers(-3, 4, size=(n, 2))
    out = np.empty((n, *prototypes.shape[1:]), dtype=np.uint8)
    # In chunks: a published-size set (STL-10's 8,000 test images at 96×96) would need a float64 noise array
    # of 1.8 GB at once. The chunks draw the same noise, in the same order, as one draw would.
    for start in range(0, n, CHUNK):
        stop = min(start + CHUNK, n)
        images = prototypes[labels[start:stop]].astype(np.float32)
        for i, (dy, dx) in enumerate(shifts[start:stop]):
            images[i] = np.roll(images[i], (dy, dx), axis=(0, 1))
        images += rng.normal(0.0, 40.0, images.shape)
        out[start:stop] = np.clip(images, 0, 255).astype(np.uint8)
    return out, labels.astype(np.int64)


def prototype_splits(sizes: dict, n_classes: int, side: int, channels: int, seed: int) -> dict:
    """Learnable images per split ({split: (N×side×side×channels uint8, int64 labels)}): per class one
    smooth random pattern (4×4 blocks) shared by the splits, shifted and noised per image
    (synthetic_images)."""
    rng = np.random.default_rng(seed)
    coarse = rng.uniform(0, 255, size=(n_classes, 4, 4, channels))
    prototypes = coarse.repeat(side // 4, axis=1).repeat(side // 4, axis=2)
    return {split: synthetic_images(n, prototypes, rng) for split, n in sizes.items()}
