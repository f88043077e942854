"""The tiny study every workflow test shares (run once per session)."""

import pytest

from helpers import snakemake, write_config
from workflow_study import OPTIMIZERS


@pytest.fixture(scope="session")
def study(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("study")
    config = write_config(
        workdir / "tiny.yaml", results_dir="results",
        data={"source": "synthetic", "synthetic": {"train_size": 200, "test_size": 100}},
        train={"model": "resnet18_cifar", "width": 8, "epochs": 2, "seeds": [0, 1], "optimizers": OPTIMIZERS,
               "gpus": 0, "threads": 1, "eval_batch_size": 100, "target_accuracy": 0.2},
        descent={"max_epochs": 500, "groups": [
            {"name": "article", "functions": ["ackley"], "methods": ["article-vanilla"],
             "gradients": ["as-printed", "central"]},
            {"name": "optimizers", "functions": ["ackley"], "methods": OPTIMIZERS, "gradients": ["autograd"],
             "early_stop": False, "max_epochs": 100}]})
    result = snakemake(workdir, config, "--cores", "2")
    return workdir, config, result
