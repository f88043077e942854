"""The tuning stage's search: samplers over search spaces, refused spaces, criteria, and a selection
merged into a run's spec."""

import numpy as np
import pytest

from optimbench import search, specs
from optimbench.errors import ConfigError
from optimbench.runs import StudyProblem

from helpers import plan_problem

CLS, VAE = (StudyProblem.from_summary(name, plan_problem(name)) for name in ("digits-resnet18", "digits-vae"))


def test_grid_is_log_spaced_and_sobol_adds_trials_without_changing_any():
    space = {"lr": {"low": 1e-4, "high": 1.0, "log": True}}
    grid = [t["lr"] for t in search.trial_settings(space, 5, "grid", 0)]
    np.testing.assert_allclose(grid, [1e-4, 1e-3, 1e-2, 1e-1, 1.0])
    four = search.trial_settings(space, 4, "sobol", 7)
    eight = search.trial_settings(space, 8, "sobol", 7)
    assert eight[:4] == four and all(1e-4 <= t["lr"] <= 1.0 for t in eight)
    assert search.trial_settings(space, 4, "sobol", 8) != four  # the seed scrambles
    linear = {"momentum": {"low": 0.0, "high": 0.9, "log": False}}
    np.testing.assert_allclose([t["momentum"] for t in search.trial_settings(linear, 4, "grid", 0)], [0, 0.3, 0.6, 0.9])


def test_a_schedule_factor_takes_its_choices():
    space = {"lr": {"low": 0.01, "high": 1.0}, "lr_schedule": {"choices": [None, "cosine"]}}
    settings = search.trial_settings(space, 4, "grid", 0)
    assert [s["lr_schedule"] for s in settings] == [None, "cosine", None, "cosine"]
    assert [s["lr"] for s in settings] == pytest.approx([0.01, 0.01, 1.0, 1.0])


@pytest.mark.parametrize("space, message", [
    ({"lrr": {"low": 0.1, "high": 1}}, "'lrr' is not a keyword of this optimizer.*Did you mean 'lr'"),
    ({"lr": {"low": 0.1, "high": 0.1}}, "the range is empty"),
    ({"lr": {"low": 0.0, "high": 1.0}}, "a log range must stay above 0"),
    ({"lr_schedule": {}}, "give `choices`"),
])
def test_bad_spaces_are_refused(space, message):
    with pytest.raises(ConfigError, match=message):
        search.check_space(space, "search.space.SGD", {"lr", "momentum", "weight_decay"})


def test_an_unknown_criterion_is_refused_and_final_val_reads_the_primary_on_validation():
    with pytest.raises(ValueError, match="unknown selection criterion 'val'"):
        search.criterion_metric("val", CLS)
    assert search.validation_primary(VAE) == "val_neg_elbo" and search.validation_primary(CLS) == "val_acc"


def test_apply_selection_merges_the_setting_into_the_spec():
    spec = {"optimizer": {"class": "SGD", "kwargs": {"lr": 0.01, "momentum": 0.9}}, "lr_schedule": None}
    tuned = specs.apply_selection(spec, {"trial": 3, "setting": {"lr": 0.2, "lr_schedule": "cosine"}})
    assert tuned["optimizer"]["kwargs"] == {"lr": 0.2, "momentum": 0.9} and tuned["lr_schedule"] == "cosine"
    assert tuned["selected_trial"] == 3 and spec["optimizer"]["kwargs"]["lr"] == 0.01  # the input is untouched
