"""Atomic file writes: a temp file in the target's folder, then os.replace, so no reader sees half a file; and
the probe of a run folder's writer lock (`lock_held`). No pandas here: a training job writes through this module
(the tables' reader is optimbench.tables)."""

from __future__ import annotations

import contextlib
import csv
import fcntl
import hashlib
import json
import math
import os
import pickle
import struct
import tempfile
from pathlib import Path

_UMASK = os.umask(0)
os.umask(_UMASK)


@contextlib.contextmanager
def atomic_path(path):
    """Yield a temp path beside `path`; on success rename it onto `path`, on error delete it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # The temp name keeps the target's suffix: some writers (papermill, pandas) go by it.
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=f".tmp{path.suffix}")
    os.close(fd)
    try:
        yield Path(tmp)
        os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp makes 0600; give the file the usual permissions
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def write_text(path, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text)


def write_json(path, obj) -> None:
    write_text(path, json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n")


def write_csv(path, frame) -> None:
    """Write a pandas DataFrame as CSV, atomically."""
    with atomic_path(path) as tmp:
        frame.to_csv(tmp, index=False)


def csv_field(value) -> str:
    """One CSV field as pandas' `to_csv` writes it: NaN and None empty, floats at full precision (repr),
    booleans True/False (NumPy scalars as their Python values)."""
    if value is None:
        return ""
    if hasattr(value, "item"):  # a NumPy scalar: its Python value (np.float64's repr is not a number)
        value = value.item()
    if isinstance(value, float):
        return "" if math.isnan(value) else repr(value)
    return str(value)


def write_rows(path, rows: list[dict], columns: list[str]) -> None:
    """Write dicts as CSV rows under `columns` (a missing key: an empty field), atomically, in the format of
    pandas' `DataFrame(rows, columns=columns).to_csv(index=False)` without importing pandas: a training job
    writes its metrics.csv with this (pandas costs 0.4 s of each job's start-up)."""
    with atomic_path(path) as tmp, open(tmp, "w", newline="") as fh:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow(columns)
        writer.writerows([csv_field(row.get(c)) for c in columns] for row in rows)


def describe_load_error(exc: Exception) -> str:
    """torch.load's error in one short line: its type and first sentence (the rest is advice for other cases:
    the weights-only loader's, for one, suggests weights_only=False, which is never the fix for a damaged file)."""
    if isinstance(exc, pickle.UnpicklingError) and "Weights only load failed" in str(exc):
        return "UnpicklingError: the safe (weights-only) loader cannot unpickle it"
    first = (str(exc).strip().splitlines() or [""])[0].split(". ")[0]
    return f"{type(exc).__name__}: {first}"


def file_digest(path, algorithm: str = "sha256") -> str:
    """Hex digest of a file's bytes."""
    with open(path, "rb") as fh:
        return hashlib.file_digest(fh, algorithm).hexdigest()


def sha256(path) -> str:
    return file_digest(path, "sha256")


# ---------------------------------------------------------------- a run folder's writer lock (optimbench.checkpoints)
def lock_request(kind: int) -> bytes:
    """A struct flock of `kind` (fcntl.F_RDLCK, F_WRLCK) over the whole file (64-bit Linux layout: l_type,
    l_whence, l_start, l_len, l_pid)."""
    return struct.pack(_FLOCK, kind, os.SEEK_SET, 0, 0, 0)


_FLOCK = "hhqqixxxx"  # short, short, (pad), off_t, off_t, pid_t, (pad): sizeof(struct flock) = 32


def lock_held(path) -> bool:
    """Whether a process (on this node, or on another over NFS) holds the writer lock of `path`; False when
    the file is missing or its file system takes no locks. Asks the kernel (F_OFD_GETLK) without taking the
    lock: a trainer starting meanwhile is never refused."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return False
    try:
        kind = struct.unpack(_FLOCK, fcntl.fcntl(fd, fcntl.F_OFD_GETLK, lock_request(fcntl.F_RDLCK)))[0]
    except OSError:
        return False
    finally:
        os.close(fd)
    return kind != fcntl.F_UNLCK
