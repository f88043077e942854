"""Settings of the tiny study the workflow tests run."""

OPTIMIZERS = ["SGD", "Adam"]
