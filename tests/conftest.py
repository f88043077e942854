"""Shared fixtures: tiny data in CIFAR-10's format, canonical files, the project's paths."""

from __future__ import annotations

from pathlib import Path

import pytest

from optimbench import data


@pytest.fixture(scope="session")
def synthetic_archive(tmp_path_factory) -> Path:
    """A learnable 300/100-image archive in CIFAR-10's own format."""
    path = tmp_path_factory.mktemp("archive") / data.ARCHIVE_NAME
    return data.make_synthetic_archive(path, train_size=300, test_size=100, seed=0)


@pytest.fixture(scope="session")
def synthetic_npz(tmp_path_factory, synthetic_archive) -> Path:
    """The canonical file of the synthetic archive."""
    out = tmp_path_factory.mktemp("canonical")
    data.prepare({"source": "archive", "archive": str(synthetic_archive)}, out / "synthetic.npz", out / "synthetic.json")
    return out / "synthetic.npz"


@pytest.fixture
def tiny_spec(synthetic_npz) -> dict:
    """A training spec that runs in about a second on the CPU."""
    return {"dataset": "synthetic", "data": str(synthetic_npz), "model": "resnet18_cifar", "width": 8,
            "epochs": 2, "batch_size": 64, "eval_batch_size": 100, "seed": 0, "optimizer_name": "SGD",
            "optimizer": {"class": "SGD", "kwargs": {"lr": 0.05, "momentum": 0.9}}, "train_subset": 128,
            "test_subset": 64, "device": "cpu"}

