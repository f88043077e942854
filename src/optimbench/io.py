"""Atomic file writes: a temp file in the target's folder, then os.replace, so no reader sees half a file;
and the one reader of the study's tables (`read_table`), which keeps the names of its identity columns as
the strings they are."""

from __future__ import annotations

import contextlib
import csv
import hashlib
import json
import math
import os
import pickle
import tempfile
from pathlib import Path

import pandas as pd

# Columns holding a config name (a run's or a descent's identity: optimbench.runs.RUN_KEYS/GROUP_KEYS,
# optimbench.descent.IDENTITY): a name may read like a number, a boolean or a missing value ("0.1", "1e3",
# "007", "True", "nan", "NA"), and stays that string in every table.
IDENTITY_COLUMNS = ("problem", "optimizer", "group", "function", "method", "gradient")

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


def read_table(path, **kwargs):
    """A table (.csv, or .parquet by its suffix) as a pandas DataFrame whose IDENTITY_COLUMNS hold strings:
    CSV reads them with dtype str and no missing-value parsing (pandas would read "0.1" as a float, "007" as
    7, "True" as a bool and "nan", "NA" as NaN), only an empty field being missing (None); every other
    column as pandas infers it. kwargs go to pandas.read_csv (e.g. sep).

    Raises:
        ValueError: a Parquet table whose identity column holds anything but strings (written by a reader
        that guessed types): rerun the step that wrote it.
    """
    path = Path(path)
    if path.suffix == ".parquet":
        frame = pd.read_parquet(path)
        for column in (c for c in IDENTITY_COLUMNS if c in frame):
            odd = [v for v in frame[column].dropna().unique() if not isinstance(v, str)]
            if odd:
                raise ValueError(f"{path}: column {column!r} holds non-string names {odd[:3]}; rerun the step that "
                                 "wrote it (its names must be read as strings, optimbench.io.read_table)")
        return frame
    header = pd.read_csv(path, nrows=0, **kwargs).columns
    identity = [c for c in header if c in IDENTITY_COLUMNS]
    frame = pd.read_csv(path, dtype=dict.fromkeys(identity, str), **kwargs)
    if identity:
        names = pd.read_csv(path, usecols=identity, dtype=str, keep_default_na=False, **kwargs)
        frame[identity] = names[identity].mask(names[identity] == "", None)
    return frame
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
