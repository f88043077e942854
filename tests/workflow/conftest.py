"""The tiny study every workflow test shares (run once per session)."""

import pytest

from helpers import snakemake, write_config
from workflow_study import (
    ARTICLE_METHODS,
    EPOCHS,
    GRADIENTS,
    OPTIMIZERS,
    PROBLEM,
    PROBLEMS,
    SEEDS,
    TARGET,
    TRIALS,
    TUNED,
    VAE,
    VAE_TARGET,
    VAE_WIDTH,
)


def tiny_config(**changes) -> dict:
    """The shared tiny study's config sections, with `changes` merged one level deep."""
    sections = {
        "results_dir": "results",
        "problems": PROBLEMS,
        "problem_settings": {PROBLEM: {"target": TARGET}, VAE: {"width": VAE_WIDTH, "target": VAE_TARGET}},
        "data": {"source": "digits"},
        "train": {"model": "resnet18_cifar", "width": 8, "epochs": EPOCHS, "seeds": SEEDS, "optimizers": OPTIMIZERS,
                  "gpus": 0, "threads": 1, "eval_batch_size": 500},
        "descent": {"max_epochs": 500, "groups": [
            {"name": "article", "functions": ["ackley"], "methods": ARTICLE_METHODS, "gradients": GRADIENTS},
            {"name": "optimizers", "functions": ["ackley"], "methods": OPTIMIZERS, "gradients": ["autograd"],
             "early_stop": False, "max_epochs": 100}]},
        "tune": {"enabled": True, "optimizers": TUNED, "trials": TRIALS, "sampler": "sobol", "epochs": 1,
                 "validation_size": 200, "space": {"Adam": {"lr": {"low": 1e-4, "high": 1e-1}}}}}
    for key, value in changes.items():
        sections[key] = {**sections.get(key, {}), **value} if isinstance(value, dict) else value
    return sections


@pytest.fixture(scope="session")
def study(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("study")
    config = write_config(workdir / "tiny.yaml", **tiny_config())
    result = snakemake(workdir, config, "--cores", "2")
    return workdir, config, result
