"""Shared fixtures: tiny data in CIFAR-10's format, canonical files, the project's paths; the skip policy."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from optimbench import formats
from optimbench.formats import cifar10

# Tests of a service (a browser, a SLURM cluster, root to add Unix users and mount files) skip where it is
# missing; in CI (CI=true, or OPTIMBENCH_STRICT_SKIPS=1, which .ci/run sets) such a skip fails instead: CI
# installs the service (and runs as root), so a skip there means a check silently did not run.
SERVICE_MARKERS = ("browser", "slurm", "root")


def strict_skips() -> bool:
    return os.environ.get("OPTIMBENCH_STRICT_SKIPS") == "1" or os.environ.get("CI", "").lower() == "true"


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    report = (yield).get_result()
    service = [m for m in SERVICE_MARKERS if item.get_closest_marker(m)]
    if report.skipped and not hasattr(report, "wasxfail") and service and strict_skips():
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        report.outcome = "failed"
        report.longrepr = (f"a {'/'.join(service)} test skipped in CI (CI=true or OPTIMBENCH_STRICT_SKIPS=1), "
                           f"where it must run: {reason}")


@pytest.fixture(scope="session")
def synthetic_archive(tmp_path_factory) -> Path:
    """A learnable 300/100-image archive in CIFAR-10's own format."""
    path = tmp_path_factory.mktemp("archive") / cifar10.ARCHIVE_NAME
    return cifar10.make_synthetic_archive(path, train_size=300, test_size=100, seed=0)


@pytest.fixture(scope="session")
def synthetic_npz(tmp_path_factory, synthetic_archive) -> Path:
    """The canonical file of the synthetic archive."""
    out = tmp_path_factory.mktemp("canonical")
    formats.prepare("cifar10", {"source": "archive", "archive": str(synthetic_archive)}, out / "synthetic.npz",
                    out / "synthetic.json")
    return out / "synthetic.npz"


@pytest.fixture
def tiny_spec(synthetic_npz) -> dict:
    """A training spec that runs in about a second on the CPU."""
    return {"problem": "cifar10-resnet18", "dataset": "synthetic", "data": str(synthetic_npz),
            "model": "resnet18_cifar", "width": 8,
            "epochs": 2, "batch_size": 64, "eval_batch_size": 100, "seed": 0, "optimizer_name": "SGD",
            "optimizer": {"class": "SGD", "kwargs": {"lr": 0.05, "momentum": 0.9}}, "train_subset": 128,
            "test_subset": 64, "device": "cpu"}

