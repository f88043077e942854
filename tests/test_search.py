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


def test_an_optimizer_without_its_own_space_takes_the_default():
    tune = {"space": {"default": {"lr": {"low": 1e-3, "high": 1.0}}, "SGD": {"lr": {"low": 0.1, "high": 0.5}}}}
    assert search.search_space(tune, "SGD") == {"lr": {"low": 0.1, "high": 0.5}}
    assert search.search_space(tune, "Adam") == {"lr": {"low": 1e-3, "high": 1.0}}


@pytest.mark.parametrize("space", [
    {"anything": {"low": 0.1, "high": 1.0}},  # allowed_kwargs None: any kwarg
    {"momentum": {"low": -1.0, "high": 0.9, "log": False}},  # a linear range may touch or cross 0
    {"lr": {"low": 1e-9, "high": 1e-8}},  # a log range just above 0
    {"lr_schedule": {"choices": [None]}},
])
def test_good_spaces_pass(space):
    search.check_space(space, "w", None if "anything" in space else {"lr", "momentum"})


@pytest.mark.parametrize("space, message", [
    ({"lr": {"high": 1.0}}, r"w.lr = \{'high': 1.0\}: the range is empty; give low < high"),
    ({"lr": {"low": 0.1}}, "the range is empty"),
    ({"lr": {"low": 0.5, "high": 0.1}}, "the range is empty"),
    ({"lr": {"low": -0.1, "high": 1.0, "log": True}}, r"w.lr = .*: a log range must stay above 0 \(low > 0\)"),
    ({"lr_schedule": {"choices": []}}, r"w.lr_schedule: give `choices`"),
    ({"zzz": {"low": 0.1, "high": 1.0}}, r"w.zzz: 'zzz' is not a keyword of this optimizer; "
                                          r"valid: \['lr', 'momentum'\]$"),
])
def test_bad_spaces_are_refused_with_the_key_and_the_fix(space, message):
    with pytest.raises(ConfigError, match=message):
        search.check_space(space, "w", {"lr", "momentum"})


def test_sobol_trials_are_scipys_scrambled_seeded_sequence_drawn_to_a_power_of_two():
    from scipy.stats import qmc
    space = {"lr": {"low": 1e-4, "high": 1.0}, "momentum": {"low": 0.0, "high": 0.9, "log": False}}
    for n in (1, 3, 5):
        u = qmc.Sobol(2, scramble=True, seed=11).random(8)[:n]  # momentum < lr... sorted: lr, momentum
        expected = [{"lr": float(f"{10 ** (-4 + 4 * a):.6g}"), "momentum": float(f"{0.9 * b:.6g}")} for a, b in u]
        got = search.trial_settings(space, n, "sobol", 11)
        assert [list(t) for t in got] == [["lr", "momentum"]] * n
        assert [t["momentum"] for t in got] == [e["momentum"] for e in expected]
        np.testing.assert_allclose([t["lr"] for t in got], [e["lr"] for e in expected], rtol=1e-6)
    assert search.trial_settings(space, 0, "sobol", 11) == []


def test_a_grid_covers_each_axis_end_to_end_in_sorted_name_order():
    space = {"momentum": {"low": 0.0, "high": 0.9, "log": False}, "lr": {"low": 0.01, "high": 1.0}}
    settings = search.trial_settings(space, 9, "grid", 0)  # 3 per axis; lr (first name) varies slowest
    assert [(t["lr"], t["momentum"]) for t in settings] == [
        (lr, m) for lr in (0.01, 0.1, 1.0) for m in (0.0, 0.45, 0.9)]
    five = search.trial_settings(space, 5, "grid", 0)  # ceil(sqrt 5) = 3 per axis, the first 5 points
    assert [(t["lr"], t["momentum"]) for t in five] == [(0.01, 0.0), (0.01, 0.45), (0.01, 0.9), (0.1, 0.0),
                                                        (0.1, 0.45)]
    assert search.trial_settings({"lr": {"low": 0.01, "high": 1.0}}, 1, "grid", 0) == [{"lr": 0.01}]  # the low end


def test_values_keep_six_significant_digits_and_the_last_choice_takes_the_top_of_the_unit_interval():
    log = search.trial_settings({"lr": {"low": 1.0, "high": 3.0}}, 3, "grid", 0)
    assert [t["lr"] for t in log] == [1.0, 1.73205, 3.0]  # sqrt(3) to 6 significant digits
    linear = search.trial_settings({"m": {"low": 0.0, "high": 1.0, "log": False}}, 4, "grid", 0)
    assert [t["m"] for t in linear] == [0.0, 0.333333, 0.666667, 1.0]
    choices = search.trial_settings({"lr_schedule": {"choices": ["a", "b", "c"]}}, 4, "grid", 0)
    assert [t["lr_schedule"] for t in choices] == ["a", "b", "c", "c"]  # u = 0, 1/3, 2/3 and 1 (clipped to the last)


@pytest.mark.parametrize("criterion, problem, column, reduction", [
    ("final_val", CLS, "val_acc", "last"), ("best_val", CLS, "val_acc", "best"),
    ("final_val", VAE, "val_neg_elbo", "last"), ("best_val", VAE, "val_neg_elbo", "best"),
    ("final_val_acc", CLS, "val_acc", "last"), ("best_val_acc", CLS, "val_acc", "best"),
    ("lowest_val_loss", CLS, "val_loss", "best"),
])
def test_each_criterion_reads_its_column_and_reduction(criterion, problem, column, reduction):
    metric, how = search.criterion_metric(criterion, problem)
    assert (metric.name, how) == (column, reduction) and metric is problem.metrics[column]


def test_a_criterion_the_problem_lacks_names_the_valid_ones():
    with pytest.raises(ValueError, match="^selection criterion 'final_val_acc' reads val_acc, which problem "
                                         "digits-vae does not have; valid criteria for digits-vae: "
                                         "final_val, best_val$"):
        search.criterion_metric("final_val_acc", VAE)
    with pytest.raises(ValueError, match="^unknown selection criterion 'x'; choices: final_val, best_val, "
                                         "final_val_acc, best_val_acc, lowest_val_loss$"):
        search.criterion_metric("x", CLS)


@pytest.mark.parametrize("select_by, primary, higher, expected", [
    ("final_val", "test_acc", True, ("final validation accuracy", True)),
    ("best_val", "test_neg_elbo", 0, ("best validation negative ELBO", False)),
    ("final_val_acc", "test_neg_elbo", False, ("final validation accuracy", True)),
    ("best_val_acc", "test_acc", False, ("best validation accuracy", True)),
    ("lowest_val_loss", "test_acc", True, ("lowest validation loss", False)),
])
def test_criterion_labels_and_directions(select_by, primary, higher, expected):
    label, higher_is_better = search.criterion_label(select_by, primary, higher)
    assert (label, higher_is_better) == expected and type(higher_is_better) is bool
    with pytest.raises(KeyError, match="unknown selection criterion 'x'"):
        search.criterion_label("x", primary, higher)


def test_the_fixed_criteria_are_those_reading_one_column():
    assert search.fixed_criterion_columns() == {"final_val_acc": "val_acc", "best_val_acc": "val_acc",
                                                "lowest_val_loss": "val_loss"}


def test_a_schedule_factor_does_not_end_the_check_of_the_factors_after_it():
    with pytest.raises(ConfigError, match="w.lr = .*the range is empty"):
        search.check_space({"lr_schedule": {"choices": [None]}, "lr": {"low": 0.5, "high": 0.1}}, "w", None)


def test_a_linear_range_off_zero_is_low_plus_u_times_the_width():
    settings = search.trial_settings({"m": {"low": 0.5, "high": 1.0, "log": False}}, 3, "grid", 0)
    assert [t["m"] for t in settings] == [0.5, 0.75, 1.0]
