"""The validation split file: disjoint, stratified, the same in every process, and refusing other data
and impossible sizes."""

import json
import subprocess
import sys

import numpy as np
import pytest

from optimbench import split
from optimbench.errors import ConfigError
from optimbench.formats.canonical import load_canonical


def test_the_split_is_disjoint_stratified_and_the_same_in_every_process(synthetic_npz, tmp_path):
    labels = load_canonical(synthetic_npz)["y_train"]
    train_idx, val_idx = split.validation_split(labels, 100, seed=3)
    assert len(val_idx) == 100 and len(train_idx) == len(labels) - 100
    assert set(train_idx).isdisjoint(val_idx) and set(train_idx) | set(val_idx) == set(range(len(labels)))
    for label, count in zip(*np.unique(labels, return_counts=True)):  # each class in proportion, ±1 image
        assert abs((labels[val_idx] == label).sum() - count * 100 / len(labels)) <= 1
    written = split.write_split(synthetic_npz, 100, 3, tmp_path / "split.json")
    code = ("import json, sys; from optimbench import split; "
            f"print(json.dumps(split.write_split({str(synthetic_npz)!r}, 100, 3, sys.argv[1])))")
    other = subprocess.run([sys.executable, "-c", code, str(tmp_path / "again.json")], capture_output=True, text=True,
                           check=True)
    assert json.loads(other.stdout) == written and written["validation_indices"] == val_idx.tolist()
    assert split.validation_split(labels, 100, seed=4)[1].tolist() != val_idx.tolist()


def test_a_split_refuses_other_data_and_impossible_sizes(synthetic_npz, tmp_path):
    labels = load_canonical(synthetic_npz)["y_train"]
    with pytest.raises(ConfigError, match="tune.validation_size = 300"):
        split.validation_split(labels, len(labels), 0)
    with pytest.raises(ConfigError, match="number of classes"):
        split.validation_split(labels, 3, 0)
    path = tmp_path / "split.json"
    split.write_split(synthetic_npz, 50, 0, path)
    (tmp_path / "other.npz").write_bytes(synthetic_npz.read_bytes() + b"x")
    with pytest.raises(ValueError, match="made from another data file"):
        split.read_split(path, tmp_path / "other.npz")
