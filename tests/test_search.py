"""The tuning stage's search: samplers over search spaces, refused spaces, criteria, and a selection
merged into a run's spec."""

import re

import numpy as np
import pytest

from optimbench import runs, search
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
    tuned = runs.apply_selection(spec, {"trial": 3, "setting": {"lr": 0.2, "lr_schedule": "cosine"}})
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
    for n in (2, 3, 5):
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
    six = search.trial_settings(space, 6, "grid", 0)  # 3 × 2: the earlier name takes the extra levels
    assert [(t["lr"], t["momentum"]) for t in six] == [(lr, m) for lr in (0.01, 0.1, 1.0) for m in (0.0, 0.9)]
    with pytest.raises(ValueError, match="no layout of exactly 5 trials.*the smallest budget that can is 4; the "
                                         "nearest: 4 or 6$"):
        search.trial_settings(space, 5, "grid", 0)  # was: the first 5 of a 3 × 3 grid, momentum 0.9 at lr 0.01 only
    with pytest.raises(ValueError, match="the smallest budget that can is 2"):
        search.trial_settings({"lr": {"low": 0.01, "high": 1.0}}, 1, "grid", 0)  # one value covers no range


def test_values_keep_six_significant_digits_and_each_choice_is_tried_once():
    log = search.trial_settings({"lr": {"low": 1.0, "high": 3.0}}, 3, "grid", 0)
    assert [t["lr"] for t in log] == [1.0, 1.73205, 3.0]  # sqrt(3) to 6 significant digits
    linear = search.trial_settings({"m": {"low": 0.0, "high": 1.0, "log": False}}, 4, "grid", 0)
    assert [t["m"] for t in linear] == [0.0, 0.333333, 0.666667, 1.0]
    choices = search.trial_settings({"lr_schedule": {"choices": ["a", "b", "c"]}}, 3, "grid", 0)
    assert [t["lr_schedule"] for t in choices] == ["a", "b", "c"]  # each choice once, in order
    with pytest.raises(ValueError, match="exactly 4 trials.*smallest budget that can is 3"):
        search.trial_settings({"lr_schedule": {"choices": ["a", "b", "c"]}}, 4, "grid", 0)  # was: a, b, c, c


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


# ---------------------------------------------------------------- every sampler covers its space (issue 27.9)
README_SPACE = {"lr": {"low": 1e-4, "high": 1.0}, "lr_schedule": {"choices": [None, "cosine", "warmup-cosine"]}}
RANGES = {"lr": {"low": 1e-4, "high": 1.0}, "momentum": {"low": 0.0, "high": 0.9, "log": False},
          "weight_decay": {"low": 1e-6, "high": 1e-2}}
CHOICES = {"nesterov": {"choices": [False, True]}, "lr_schedule": {"choices": [None, "cosine", "warmup-cosine"]}}


def test_the_readmes_schedule_search_tries_every_lr_level_with_every_schedule_once():
    """trials 12 over lr + 3 schedules: 4 log-spaced lrs from 1e-4 to 1.0 (was: 0.001, 0.01 and 0.1 only, with
    trials 2 = 3, 6 = 7, 10 = 11)."""
    settings = search.trial_settings(README_SPACE, 12, "grid", 0)
    lrs = [float(f"{v:.6g}") for v in np.geomspace(1e-4, 1.0, 4)]
    assert [(t["lr"], t["lr_schedule"]) for t in settings] == [
        (lr, s) for lr in lrs for s in (None, "cosine", "warmup-cosine")]
    assert max(t["lr"] for t in settings) == 1.0


def _covers(space, settings, grid):
    """Independently of search.coverage_problems: distinct settings, every choice, ≥ 2 values per range (the
    grid: its low and high ends)."""
    keys = [tuple(sorted((k, repr(v)) for k, v in t.items())) for t in settings]
    if len(set(keys)) != len(keys):
        return False
    for name, factor in space.items():
        values = [t[name] for t in settings]
        if "choices" in factor:
            if any(c not in values for c in factor["choices"]):
                return False
        elif len(set(values)) < 2 or (grid and not (min(values) == pytest.approx(factor["low"])
                                                    and max(values) == pytest.approx(factor["high"]))):
            return False
    return True


SPACES = [  # 1 to 3 factors: ranges, choices and both
    {"lr": RANGES["lr"]}, {"nesterov": CHOICES["nesterov"]},
    {"lr": RANGES["lr"], "momentum": RANGES["momentum"]}, {"lr": RANGES["lr"], "nesterov": CHOICES["nesterov"]},
    README_SPACE, {"momentum": RANGES["momentum"], **CHOICES}, dict(RANGES),
    {"lr": RANGES["lr"], "weight_decay": RANGES["weight_decay"], "lr_schedule": CHOICES["lr_schedule"]},
]


@pytest.mark.parametrize("sampler", ["grid", "sobol"])
@pytest.mark.parametrize("space", SPACES, ids=lambda s: "+".join(s))
def test_every_sampler_covers_every_factor_with_distinct_trials_or_names_the_smallest_budget(space, sampler):
    for n in (1, 2, 3, 4, 5, 6, 7, 8, 9, 12, 16, 27):
        try:
            settings = search.trial_settings(space, n, sampler, 3)
        except ValueError as exc:
            smallest = int(re.search(r"the smallest budget that can is (\d+)", str(exc)).group(1)) \
                if "smallest budget" in str(exc) else None
            if smallest is not None:  # that budget does cover; for the grid none below it can
                assert _covers(space, search.trial_settings(space, smallest, sampler, 3), sampler == "grid")
                if sampler == "grid":
                    assert smallest == np.prod([len(f["choices"]) if "choices" in f else 2 for f in space.values()])
            else:  # only a space of choices can run out of distinct Sobol settings
                assert sampler == "sobol" and all("choices" in f for f in space.values()) and "grid" in str(exc)
            continue
        assert len(settings) == n and _covers(space, settings, sampler == "grid"), (n, settings)


def test_two_trials_over_lr_and_a_boolean_or_a_second_range_are_refused_not_wasted():
    """Was: with 2 trials over {lr, nesterov} the lr never varied; over {lr, beta} beta never varied."""
    for space in ({"lr": RANGES["lr"], "nesterov": CHOICES["nesterov"]},
                  {"lr": RANGES["lr"], "momentum": RANGES["momentum"]}):
        with pytest.raises(ValueError, match="smallest budget that can is 4"):
            search.trial_settings(space, 2, "grid", 0)
        four = search.trial_settings(space, 4, "grid", 0)
        assert {t["lr"] for t in four} == {1e-4, 1.0} and len({repr(t) for t in four}) == 4


def test_a_boolean_keyword_searched_as_a_range_is_refused_with_the_categorical_form():
    from optimbench.plan import _optimizer_kwargs

    sgd = _optimizer_kwargs({"class": "SGD", "kwargs": {"momentum": 0.9}})
    with pytest.raises(ConfigError, match=r"tune.space.SGD.nesterov = .*'nesterov' is a boolean keyword \(default "
                                          r"False\).*`nesterov: \{choices: \[false, true\]\}`"):
        search.check_space({"nesterov": {"low": 0.0, "high": 1.0, "log": False}}, "tune.space.SGD", sgd)
    adam = _optimizer_kwargs({"class": "Adam"})
    with pytest.raises(ConfigError, match="'betas' is a tuple keyword"):
        search.check_space({"betas": {"low": 0.5, "high": 0.9}}, "tune.space.Adam", adam)
    with pytest.raises(ConfigError, match="'amsgrad' is a boolean keyword"):
        search.check_space({"amsgrad": {"low": 0.1, "high": 1.0}}, "tune.space.Adam", adam)
    # the categorical form passes; a range over SGD's momentum (int default 0, a real keyword) too
    search.check_space({"nesterov": {"choices": [False, True]}, "momentum": RANGES["momentum"]}, "w", sgd)
    for bad, message in [({"nesterov": {"choices": [True, True]}}, "a choice is repeated"),
                         ({"nesterov": {"choices": [True], "low": 0}}, "either a range .* or `choices`"),
                         ({"lr_schedule": {"choices": ["cosin"]}}, "schedules are")]:
        with pytest.raises(ConfigError, match=message):
            search.check_space(bad, "w", sgd)


def test_an_empty_space_has_one_setting():
    assert search.trial_settings({}, 1, "grid", 0) == [{}] == search.trial_settings({}, 1, "sobol", 0)
    assert search.trial_settings({}, 0, "grid", 0) == []
    with pytest.raises(ValueError, match="an empty search space has one setting.*3 trials would repeat it"):
        search.trial_settings({}, 3, "sobol", 0)


def test_a_budget_the_sampler_cannot_cover_is_refused_naming_tune_trials():
    with pytest.raises(ConfigError, match=r"tune.trials = 10 with tune.sampler = grid over tune.space.SGD: .*"
                                          r"the nearest: 9 or 12"):
        search.check_budget(README_SPACE, "tune.space.SGD", 10, "grid", 0)
    search.check_budget(README_SPACE, "tune.space.SGD", 12, "grid", 0)
