"""The optimizer registry and learning-rate schedules."""

import math

import pytest
import torch

from optimbench.optim import build_optimizer, lr_lambda, resolve_class


def test_short_names_are_torch_optim_classes():
    assert resolve_class("SGD") is torch.optim.SGD
    assert resolve_class("ASGD") is torch.optim.ASGD  # averaged SGD, the article's


def test_dotted_paths_reach_any_installed_package():
    import pytorch_optimizer

    assert resolve_class("pytorch_optimizer.QHM") is pytorch_optimizer.QHM
    assert resolve_class("torch.optim.Adam") is torch.optim.Adam


def test_unknown_names_raise():
    with pytest.raises(AttributeError):
        resolve_class("Sgd")
    with pytest.raises(ImportError):
        resolve_class("no_such_package.Opt")


def test_kwargs_and_overrides():
    params = [torch.nn.Parameter(torch.zeros(2))]
    opt = build_optimizer({"class": "SGD", "kwargs": {"lr": 0.01, "momentum": 0.9}}, params, {"lr": 0.5})
    assert opt.param_groups[0]["lr"] == 0.5 and opt.param_groups[0]["momentum"] == 0.9
    assert build_optimizer({"class": "Adam"}, params).param_groups[0]["lr"] == 1e-3  # PyTorch default


def test_schedules():
    assert lr_lambda(None, 10)(7) == 1.0
    assert lr_lambda("linear", 10)(5) == 0.5
    assert lr_lambda("cosine", 10)(0) == 1.0
    assert math.isclose(lr_lambda("cosine", 10)(5), 0.5)
    assert math.isclose(lr_lambda("cosine", 10)(10), 0.0, abs_tol=1e-12)
    with pytest.raises(ValueError, match="unknown lr_schedule 'step'"):
        lr_lambda("step", 10)
