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


def test_the_size_bounds_are_inclusive_of_one_per_class_and_exclusive_of_the_whole_set():
    labels = np.repeat([0, 1, 2], 4)  # 12 images, 3 classes
    for size in (3, 9):  # the smallest accepted size, and one leaving a training image per class
        train_idx, val_idx = split.validation_split(labels, size, seed=0)
        assert len(val_idx) == size and len(train_idx) == 12 - size
    assert sorted(labels[split.validation_split(labels, 3, seed=0)[1]].tolist()) == [0, 1, 2]  # one of each class
    for size in (2, 12):  # one below, and the whole set
        with pytest.raises(ConfigError, match=f"tune.validation_size = {size}"):
            split.validation_split(labels, size, seed=0)


def test_the_split_is_sklearns_stratified_split_sorted(synthetic_npz):
    from sklearn.model_selection import train_test_split
    labels = load_canonical(synthetic_npz)["y_train"]
    train_idx, val_idx = split.validation_split(labels, 60, seed=5)
    train_ref, val_ref = train_test_split(np.arange(len(labels)), test_size=60, stratify=labels, random_state=5)
    assert train_idx.tolist() == sorted(train_ref.tolist()) and val_idx.tolist() == sorted(val_ref.tolist())


def test_the_split_file_records_exactly_the_data_hash_size_seed_and_both_index_lists(synthetic_npz, tmp_path):
    import hashlib
    labels = load_canonical(synthetic_npz)["y_train"]
    path = tmp_path / "split.json"
    returned = split.write_split(synthetic_npz, 40, 7, path)
    train_idx, val_idx = split.validation_split(labels, 40, seed=7)
    expected = {"data_sha256": hashlib.sha256(synthetic_npz.read_bytes()).hexdigest(), "size": 40, "seed": 7,
                "train_indices": train_idx.tolist(), "validation_indices": val_idx.tolist()}
    assert returned == expected and json.loads(path.read_text()) == expected
    for data in (None, synthetic_npz):  # unchecked, and checked against its own data
        train_read, val_read = split.read_split(path, data)
        assert train_read.tolist() == expected["train_indices"] and val_read.tolist() == expected["validation_indices"]
