"""The validation split file (SPEC §2.8): a stratified, seeded split of a data set's training examples
(scikit-learn's `train_test_split`), written once with the data file's sha256 so that every trial and
final run holds out the same examples, and refuses a split made from another data file."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from optimbench.errors import ConfigError
from optimbench.formats.canonical import load_canonical
from optimbench.io import sha256, write_json


def validation_split(labels: np.ndarray, size: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(train indices, validation indices) of a stratified split of `size` validation images, both sorted.

    Raises:
        ConfigError: size not smaller than the training set, or too small to hold every class once.
    """
    n, classes = len(labels), len(np.unique(labels))
    if not classes <= size < n:
        raise ConfigError(f"tune.validation_size = {size}: must be at least the number of classes ({classes}) "
                          f"and below the training set's {n} images")
    # Imported here, not at module level: scikit-learn imports SciPy (0.7 s), and every training job with
    # a validation split imports this module for read_split only.
    from sklearn.model_selection import train_test_split

    train, val = train_test_split(np.arange(n), test_size=size, stratify=labels, random_state=seed)
    return np.sort(train), np.sort(val)


def write_split(data_npz, size: int, seed: int, out_json) -> dict:
    """Write the validation split of a canonical data file, with the data's sha256, atomically."""
    labels = load_canonical(data_npz)["y_train"]
    train, val = validation_split(labels, size, seed)
    split = {"data_sha256": sha256(data_npz), "size": size, "seed": seed,
             "train_indices": train.tolist(), "validation_indices": val.tolist()}
    write_json(out_json, split)
    return split


def read_split(path, data_npz=None) -> tuple[np.ndarray, np.ndarray]:
    """(train indices, validation indices) of a split file; with `data_npz`, checks it belongs to that data.

    Raises:
        ValueError: the split was made from another data file.
    """
    split = json.loads(Path(path).read_text())
    if data_npz is not None:
        if split["data_sha256"] != sha256(data_npz):
            raise ValueError(f"{path} was made from another data file than {data_npz}: delete it to remake it")
    return np.asarray(split["train_indices"]), np.asarray(split["validation_indices"])
