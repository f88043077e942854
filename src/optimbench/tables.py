"""The one reader of the study's tables (`read_table`), which keeps the names in its identity columns as the
strings they are (a module of its own: it needs pandas, which a training job never imports)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

# Columns holding a config name (a run's or a descent's identity: optimbench.runs.RUN_KEYS/GROUP_KEYS,
# optimbench.files.DESCENT_IDENTITY): a name may read like a number, a boolean or a missing value ("0.1", "1e3",
# "007", "True", "nan", "NA"), and stays that string in every table.
IDENTITY_COLUMNS = ("problem", "optimizer", "group", "function", "method", "gradient")


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
