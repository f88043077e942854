"""Performance profiles and ranks across problems, against hand computations."""

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats as scipy_stats

from optimbench import performance
from optimbench.metrics import Metric
from optimbench.problems import get
from optimbench.runs import StudyProblem

INF = math.inf
ACC, PPL, ELBO = Metric("test_acc", True, 0.0, 1.0), Metric("test_perplexity", False, 1.0, INF), Metric(
    "test_neg_elbo", False)
PRIMARY = {"P1": ACC, "P2": PPL, "P3": ELBO}


def seeds_table(rows):
    """rows: (problem, optimizer, seed, value, time_to_target or None, diverged)."""
    return pd.DataFrame([{"problem": p, "optimizer": o, "seed": s, "value": v,
                          "time_to_target": np.nan if t is None else t, "diverged": d} for p, o, s, v, t, d in rows])


# Three optimizers × three problems, one seed each. Times to target:
#   P1: A 10, B 20, C diverged          -> ratios A 1, B 2, C ∞
#   P2: A 30, B 15, C 45                -> ratios A 2, B 1, C 3
#   P3: A 8,  B missed the target, C 4  -> ratios A 2, B ∞, C 1
CASE = seeds_table([
    ("P1", "A", 0, 0.90, 10, False), ("P1", "B", 0, 0.60, 20, False), ("P1", "C", 0, np.nan, None, True),
    ("P2", "A", 0, 100., 30, False), ("P2", "B", 0, 80.0, 15, False), ("P2", "C", 0, 120.0, 45, False),
    ("P3", "A", 0, 90.0, 8, False), ("P3", "B", 0, 150., None, False), ("P3", "C", 0, 95.0, 4, False)])


def test_time_ratios_match_the_hand_computation():
    ratios = performance.performance_ratios(CASE, PRIMARY, "time").set_index(["problem", "optimizer"])["ratio"]
    expected = {("P1", "A"): 1, ("P1", "B"): 2, ("P1", "C"): INF, ("P2", "A"): 2, ("P2", "B"): 1, ("P2", "C"): 3,
                ("P3", "A"): 2, ("P3", "B"): INF, ("P3", "C"): 1}
    assert ratios.to_dict() == pytest.approx(expected)


def test_profile_matches_the_hand_computation():
    ratios = performance.performance_ratios(CASE, PRIMARY, "time")
    profile = performance.performance_profile(ratios)
    rho = profile.pivot(index="tau", columns="optimizer", values="rho")
    assert list(rho.index) == [1.0, 2.0, 3.0, 4.0]  # the breakpoints: 1, each finite ratio, and r_max 4
    # ρ_A: P1 at τ=1, P2 and P3 at τ=2. ρ_B: P2 at 1, P1 at 2, never P3. ρ_C: P3 at 1, P2 at 3, never P1.
    assert rho["A"].tolist() == pytest.approx([1 / 3, 1, 1, 1])
    assert rho["B"].tolist() == pytest.approx([1 / 3, 2 / 3, 2 / 3, 2 / 3])
    assert rho["C"].tolist() == pytest.approx([1 / 3, 1 / 3, 2 / 3, 2 / 3])


def test_profile_score_is_the_integral_of_the_step_function():
    """(1/3)∫_1^4 ρ dτ: A = (3 + 2 + 2)/9, B = (2 + 3 + 0)/9, C = (0 + 1 + 3)/9."""
    score = performance.profile_score(performance.performance_ratios(CASE, PRIMARY, "time")).set_index("optimizer")
    assert score["score"].to_dict() == pytest.approx({"A": 7 / 9, "B": 5 / 9, "C": 4 / 9})
    assert list(score.index) == ["A", "B", "C"]


def test_metric_ratios_follow_each_metric_direction():
    """Accuracy: r = best / value (diverged scores 0: r = ∞); perplexity and ELBO: r = value / best."""
    ratios = performance.performance_ratios(CASE, PRIMARY, "metric").set_index(["problem", "optimizer"])["ratio"]
    assert ratios[("P1", "A")] == 1 and ratios[("P1", "B")] == pytest.approx(1.5) and ratios[("P1", "C")] == INF
    assert ratios[("P2", "B")] == 1 and ratios[("P2", "A")] == pytest.approx(1.25)
    assert ratios[("P2", "C")] == pytest.approx(1.5)
    assert ratios[("P3", "A")] == 1 and ratios[("P3", "B")] == pytest.approx(150 / 90)


def test_cost_is_the_mean_over_completed_seeds_and_half_failing_is_a_failure():
    # A: 10, 20 and a miss (1 of 3 failed): mean 15; B: 5 and a miss (half): ∞; C: 40, 40
    rows = seeds_table([("P2", "A", s, 90.0, t, False) for s, t in enumerate([10, 20, None])]
                       + [("P2", "B", s, 90.0, t, False) for s, t in enumerate([5, None])]
                       + [("P2", "C", s, 90.0, 40, False) for s in range(2)])
    costs = performance.performance_ratios(rows, PRIMARY, "time").set_index("optimizer")
    assert costs.loc["A", "cost"] == 15 and costs.loc["B", "cost"] == INF and costs.loc["C", "cost"] == 40
    assert costs.loc["A", "ratio"] == 1 and costs.loc["C", "ratio"] == pytest.approx(40 / 15)
    assert costs.loc["B", "failed"]


def test_everyone_failing_is_a_failure_for_everyone():
    rows = seeds_table([("P1", o, 0, 0.1, None, False) for o in "AB"])
    assert performance.performance_ratios(rows, PRIMARY, "time")["ratio"].tolist() == [INF, INF]


def test_bad_inputs_are_named():
    with pytest.raises(ValueError, match="no primary metric for problem.*P9"):
        performance.performance_ratios(seeds_table([("P9", "A", 0, 1.0, 1.0, False)]), PRIMARY)
    with pytest.raises(ValueError, match="measure must be"):
        performance.performance_ratios(CASE, PRIMARY, "speed")


# Lower is better: perplexity per seed. B (≈80) is best; D (mean 100, huge spread) is not separated from
# anyone; A (≈101) is worse than B and better than C (≈120), both significantly.
LOWER = seeds_table(
    [("P2", "A", s, v, 1.0, False) for s, v in enumerate([100.0, 101.0, 102.0])]
    + [("P2", "B", s, v, 1.0, False) for s, v in enumerate([80.0, 81.0, 79.0])]
    + [("P2", "C", s, v, 1.0, False) for s, v in enumerate([120.0, 119.0, 121.0])]
    + [("P2", "D", s, v, 1.0, False) for s, v in enumerate([60.0, 100.0, 140.0])])


def test_lower_is_better_problem_ranks_lowest_first_with_rank_uncertainty():
    ranks = performance.rank_table(LOWER, PRIMARY).set_index("optimizer")
    assert ranks["rank"].to_dict() == {"B": 1, "D": 2, "A": 3, "C": 4}
    assert ranks.loc["A", "mean"] == pytest.approx(101.0)
    # rank_low = 1 + significantly better; rank_high = 4 - significantly worse
    assert (ranks.loc["B", "rank_low"], ranks.loc["B", "rank_high"]) == (1, 2)   # C and A are worse; D is not
    assert (ranks.loc["D", "rank_low"], ranks.loc["D", "rank_high"]) == (1, 4)
    assert (ranks.loc["A", "rank_low"], ranks.loc["A", "rank_high"]) == (2, 3)
    assert (ranks.loc["C", "rank_low"], ranks.loc["C", "rank_high"]) == (3, 4)
    assert ranks["separated_from_best"].to_dict() == {"B": False, "D": False, "A": True, "C": True}
    assert (ranks["ci_low"] >= 1.0).all()  # clipped to perplexity's range


def test_the_same_values_as_accuracy_rank_the_other_way():
    as_accuracy = LOWER.assign(problem="P1", value=LOWER["value"] / 200)
    ranks = performance.rank_table(as_accuracy, PRIMARY).set_index("optimizer")
    assert ranks["rank"].to_dict() == {"C": 1, "A": 2, "D": 3, "B": 4}


def test_a_failed_seed_is_not_averaged_and_its_optimizer_is_ordered_after_those_without_one():
    rows = pd.concat([LOWER, seeds_table([("P2", "E", s, 50.0 if s else INF, 1.0, s == 0) for s in range(3)])])
    ranks = performance.rank_table(rows, PRIMARY).set_index("optimizer")
    assert ranks.loc["E", "mean"] == 50 and ranks.loc["E", "n"] == 2  # the two completed seeds
    assert ranks.loc["E", "rank"] == 5 and ranks.loc["E", "failed"] == 1 and ranks.loc["E", "failures"] == 1
    # The profile takes the mean of the completed seeds: E's (failed, 50, 50) -> 50, the best; B's ratio 80 / 50.
    ratios = performance.performance_ratios(rows, PRIMARY, "metric").set_index("optimizer")["ratio"]
    assert ratios["E"] == 1 and ratios["B"] == pytest.approx(1.6)


def test_rank_summary_counts_wins():
    ranks = performance.rank_table(pd.concat([LOWER, LOWER.assign(problem="P3")]), PRIMARY)
    summary = performance.rank_summary(ranks).set_index("optimizer")
    # B is first by mean on both, but D (huge spread) is not separated from it: first alone nowhere
    assert summary.loc["B", "mean_rank"] == 1 and summary.loc["B", "first"] == 0
    assert summary.loc["B", "possibly_first"] == 2
    assert summary.loc["D", "possibly_first"] == 2 and summary.loc["A", "possibly_first"] == 0


def test_seed_outcome_uses_the_metric_direction():
    epochs = pd.DataFrame({"epoch": [1, 2, 3], "test_perplexity": [300.0, 140.0, 90.0],
                           "epoch_seconds": [2.0, 3.0, 4.0], "diverged": [False] * 3})
    metric = get("ptb-lstm").primary_metric
    out = performance.seed_outcome(epochs, metric, target=150.0)
    assert out == {"value": 90.0, "time_to_target": 5.0, "epochs_to_target": 2, "diverged": False}
    diverged = performance.seed_outcome(epochs.assign(diverged=[False, False, True]), metric, 150.0)
    assert diverged["value"] == INF and np.isnan(diverged["time_to_target"])


def test_seed_outcome_times_the_first_epoch_meeting_the_target_and_scores_the_last_epoch():
    # Epochs out of order; accuracy meets the target 0.8 first at epoch 2 (exactly), again at 3 and 4; the
    # best epoch is 3 (0.95), the last is 4 (0.85). Seconds per epoch 1, 2, 4, 8.
    epochs = pd.DataFrame({"epoch": [3, 1, 4, 2], "test_acc": [0.95, 0.5, 0.85, 0.8],
                           "epoch_seconds": [4.0, 1.0, 8.0, 2.0], "diverged": [False] * 4})
    out = performance.seed_outcome(epochs, ACC, target=0.8)
    assert out == {"value": 0.85, "time_to_target": 3.0, "epochs_to_target": 2, "diverged": False}
    out = performance.seed_outcome(epochs, ACC, target=0.9)  # only epoch 3 meets it: 1 + 2 + 4 seconds
    assert out == {"value": 0.85, "time_to_target": 7.0, "epochs_to_target": 3, "diverged": False}
    out = performance.seed_outcome(epochs.assign(steps=[40, 10, 80, 20]), ACC, 0.8, time_column="steps")
    assert out["time_to_target"] == 30.0
    missed = performance.seed_outcome(epochs, ACC, target=0.96)
    assert missed["value"] == 0.85 and np.isnan(missed["time_to_target"]) and np.isnan(missed["epochs_to_target"])
    # a run that met the target and diverged later: the target counts as missed, the value is the worst
    diverged = performance.seed_outcome(epochs.assign(diverged=[False, False, True, False]), ACC, 0.8)
    assert diverged["value"] == 0.0 and np.isnan(diverged["time_to_target"]) and diverged["diverged"] is True


# Ties: C is best; A and B tie (same mean), D is last. Ranks by mean, ties sharing the smaller rank:
# C 1, A 2, B 2, D 4 (not 2.5, 3 or dense 3).
TIED = seeds_table(
    [("P1", "C", s, v, 1.0, False) for s, v in enumerate([0.89, 0.90, 0.91])]
    + [("P1", "B", s, v, 1.0, False) for s, v in enumerate([0.79, 0.80, 0.81])]
    + [("P1", "A", s, v, 1.0, False) for s, v in enumerate([0.81, 0.80, 0.79])]
    + [("P1", "D", s, v, 1.0, False) for s, v in enumerate([0.69, 0.70, 0.71])])


def test_tied_means_share_the_smaller_rank_and_list_by_name():
    ranks = performance.rank_table(TIED, PRIMARY)
    assert ranks["optimizer"].tolist() == ["C", "A", "B", "D"]
    assert ranks["rank"].tolist() == [1, 2, 2, 4]
    as_perplexity = TIED.assign(problem="P2", value=TIED["value"] * 100)  # lower is better: the reverse order
    ranks = performance.rank_table(as_perplexity, PRIMARY)
    assert ranks["optimizer"].tolist() == ["D", "A", "B", "C"] and ranks["rank"].tolist() == [1, 2, 2, 4]


def test_a_tie_for_best_is_broken_by_name_for_separated_from_best():
    # A and B tie for best (mean 0.9); A's seeds agree, B's spread widely. C (0.8) is significantly worse
    # than A, not than B: separated_from_best is judged against A, the first by name.
    rows = seeds_table(
        [("P1", "B", s, v, 1.0, False) for s, v in enumerate([0.6, 0.9, 1.0, 1.0, 1.0])]
        + [("P1", "A", s, v, 1.0, False) for s, v in enumerate([0.89, 0.9, 0.91, 0.9, 0.9])]
        + [("P1", "C", s, v, 1.0, False) for s, v in enumerate([0.79, 0.8, 0.81, 0.8, 0.8])])
    ranks = performance.rank_table(rows, PRIMARY).set_index("optimizer")
    assert ranks["rank"].to_dict() == {"A": 1, "B": 1, "C": 3}
    assert ranks["separated_from_best"].to_dict() == {"A": False, "B": False, "C": True}
    assert ranks.loc["C", "rank_low"] == 2 and ranks.loc["C", "rank_high"] == 3  # A beats C; B does not
    assert ranks.loc["B", "rank_low"] == 1 and ranks.loc["B", "rank_high"] == 3


def test_rank_summary_breaks_a_mean_rank_tie_by_name_and_counts_shared_first_places():
    ranks = performance.rank_table(pd.concat([TIED, TIED.assign(problem="P3")]), PRIMARY)
    summary = performance.rank_summary(ranks)
    # P1 (accuracy): C 1, A 2, B 2, D 4; P3 (ELBO, lower is better, the same values): D 1, A 2, B 2, C 4
    assert summary["optimizer"].tolist() == ["A", "B", "C", "D"]
    assert summary["mean_rank"].tolist() == [2.0, 2.0, 2.5, 2.5]
    # C's lead over A on P1 (paired differences 0.08, 0.10, 0.12: p = 0.013, scipy's ttest_rel) is not below
    # Holm's first threshold 0.05 / 12 (6 pairs × 2 problems): no one is first alone
    assert scipy_stats.ttest_rel([0.89, 0.90, 0.91], [0.81, 0.80, 0.79]).pvalue == pytest.approx(0.0131, abs=1e-4)
    # B's seeds are C's minus exactly 0.1 (no spread: every seed says the same, p = 0): decided below C on P1 and
    # below D on P3; A's seeds run the other way, so A can be first on both
    assert summary["first"].tolist() == [0, 0, 0, 0] and summary["possibly_first"].tolist() == [2, 0, 1, 1]
    assert summary["problems"].tolist() == [2] * 4


def test_profile_grid_extends_past_r_max_and_counts_a_ratio_equal_to_tau():
    # P1: A 1, B 6; P2: A 1.5, B 1. The grid: 1, each finite ratio, and max(4, 6) = 6 (not 4)
    ratios = pd.DataFrame({"problem": ["P1", "P1", "P2", "P2"], "optimizer": ["A", "B", "A", "B"],
                           "ratio": [1.0, 6.0, 1.5, 1.0]})
    rho = performance.performance_profile(ratios).pivot(index="tau", columns="optimizer", values="rho")
    assert list(rho.index) == [1.0, 1.5, 6.0]
    assert rho["A"].tolist() == [0.5, 1.0, 1.0] and rho["B"].tolist() == [0.5, 0.5, 1.0]
    rho = performance.performance_profile(ratios, taus=[5.99, 6.0]).pivot(index="tau", columns="optimizer",
                                                                          values="rho")
    assert rho["B"].tolist() == [0.5, 1.0]
    only_failures = pd.DataFrame({"problem": ["P1"], "optimizer": ["A"], "ratio": [INF]})
    profile = performance.performance_profile(only_failures)
    assert profile["tau"].tolist() == [1.0, 4.0] and profile["rho"].tolist() == [0.0, 0.0]


def test_profile_score_counts_a_ratio_just_inside_tau_max_and_nothing_past_it():
    # one problem; r = 3.7 adds (4 - 3.7) / 3 = 0.1; r = 4.3 adds 0; r = 1 adds 1. tau_max = 7: (7 - 4.3) / 6
    ratios = pd.DataFrame({"problem": ["P1"] * 3, "optimizer": ["A", "B", "C"], "ratio": [3.7, 4.3, 1.0]})
    score = performance.profile_score(ratios).set_index("optimizer")["score"]
    assert score.to_dict() == pytest.approx({"A": 0.1, "B": 0.0, "C": 1.0})
    score = performance.profile_score(ratios, tau_max=7.0).set_index("optimizer")["score"]
    assert score.to_dict() == pytest.approx({"A": 0.55, "B": 0.45, "C": 1.0})


def test_the_tables_have_exactly_their_columns_integer_ranks_and_score_ties_listed_by_name():
    ranks = performance.rank_table(TIED, PRIMARY)
    assert list(ranks.columns) == ["problem", "metric", "higher_is_better", "optimizer", "n", "mean", "std",
                                   "ci_low", "ci_high", "failed", "failures", "rank", "rank_low", "rank_high",
                                   "shares_with", "separated_from_best"]
    assert ranks["metric"].tolist() == ["test_acc"] * 4 and ranks["higher_is_better"].tolist() == [True] * 4
    assert pd.api.types.is_integer_dtype(ranks["rank"])
    summary = performance.rank_summary(ranks)
    assert list(summary.columns) == ["optimizer", "mean_rank", "first", "possibly_first", "problems"]
    assert summary.index.tolist() == [0, 1, 2, 3]
    # B and A tie on score (ratio 2 on both problems: (4 - 2) / 3 = 2/3), listed by name: A before B
    ratios = pd.DataFrame({"problem": ["P1", "P1", "P1", "P2", "P2", "P2"], "optimizer": ["B", "A", "C"] * 2,
                           "ratio": [2.0, 2.0, 1.0, 2.0, 2.0, 1.0]})
    score = performance.profile_score(ratios)
    assert list(score.columns) == ["optimizer", "score"] and score.index.tolist() == [0, 1, 2]
    assert score["optimizer"].tolist() == ["C", "A", "B"]
    assert score["score"].tolist() == pytest.approx([1.0, 2 / 3, 2 / 3])


def test_three_tied_means_all_take_the_smallest_rank():
    # B, C, D tie behind A: min ranks 1, 2, 2, 2 (average would give 3, max 4)
    shifts = {"A": 0.1, "B": 0.0, "C": 0.0, "D": 0.0}
    rows = seeds_table([("P1", o, s, v + shift, 1.0, False) for o, shift in shifts.items()
                        for s, v in enumerate([0.79, 0.80, 0.81])])
    ranks = performance.rank_table(rows, PRIMARY)
    assert ranks["optimizer"].tolist() == ["A", "B", "C", "D"] and ranks["rank"].tolist() == [1, 2, 2, 2]


def test_a_run_without_timings_has_no_time_to_target_and_stays_out_of_the_time_measure_only():
    # a published run (optimbench.published) has epochs and metrics but no seconds
    epochs = pd.DataFrame({"epoch": [1, 2, 3], "test_perplexity": [300.0, 140.0, 90.0],
                           "epoch_seconds": [np.nan] * 3, "diverged": [False] * 3})
    out = performance.seed_outcome(epochs, get("ptb-lstm").primary_metric, target=150.0)
    assert np.isnan(out["time_to_target"]) and out["epochs_to_target"] == 2
    problem = StudyProblem.from_summary("P", {"primary": "test_loss", "target": 1.0, "metrics": [
        {"name": "test_loss", "higher_is_better": False, "low": 0.0, "high": None}]})
    seeds = pd.DataFrame([{"problem": "P", "optimizer": o, "seed": s, "final": v, "seconds_to_target": t,
                           "epochs_to_target": e, "diverged": False, "mean_epoch_seconds": m}
                          for o, t, e, m, v in (("own", 4.0, 2, 2.0, 0.5),
                                                ("Adam [deepobs-v1.1]", np.nan, 4, np.nan, 0.4)) for s in (0, 1)])
    ratios = performance.performance_tables(seeds, {"P": problem})["performance_ratios"]
    assert set(ratios.loc[ratios["measure"] == "time", "optimizer"]) == {"own"}
    epochs_ratios = ratios[ratios["measure"] == "epochs"].set_index("optimizer")["ratio"]
    assert epochs_ratios.to_dict() == {"Adam [deepobs-v1.1]": 2.0, "own": 1.0}
