"""The one comparison procedure (optimbench.compare) on hand-computed cases: paired and unpaired tests, the
failed-run rule, Holm's correction, the seeds for 80 % power, places and their words; every threshold pinned."""

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats as scipy_stats

from optimbench import compare, metrics
from optimbench.compare import BETTER, INCONCLUSIVE, WORSE


def test_the_thresholds_that_decide_a_word_are_pinned():
    assert compare.POWER == 0.8 and compare.SIGN_TEST_MIN_SEEDS == 6
    assert metrics.FAILED_FACTOR == 4.0 and metrics.DIVERGENCE_FACTOR == 1e6
    # SIGN_TEST_MIN_SEEDS is the fewest seeds whose all-wins sign test reaches 5 %: 2·0.5⁵ = 0.0625, 2·0.5⁶ = 0.031
    assert scipy_stats.binomtest(5, 5).pvalue > 0.05 > scipy_stats.binomtest(6, 6).pvalue


def test_paired_comparison_is_the_t_test_of_the_differences_by_hand():
    a, b = {0: 0.80, 1: 0.84, 2: 0.81}, {0: 0.70, 1: 0.71, 2: 0.73}
    d = np.array([0.10, 0.13, 0.08])  # seed by seed
    se = d.std(ddof=1) / math.sqrt(3)
    t = d.mean() / se
    c = compare.compare(a, b, higher_is_better=True)
    assert c.paired and c.test == "paired t" and c.n == 3
    assert c.centre == pytest.approx(d.mean()) and c.spread == pytest.approx(d.std(ddof=1))
    assert c.p == pytest.approx(2 * scipy_stats.t.sf(t, 2)) == scipy_stats.ttest_rel([0.80, 0.84, 0.81],
                                                                                       [0.70, 0.71, 0.73]).pvalue
    half = 4.302652729911275 * se  # t quantile 97.5 %, 2 degrees of freedom
    assert (c.low, c.high) == (pytest.approx(d.mean() - half), pytest.approx(d.mean() + half))
    assert c.verdict == BETTER and (c.wins, c.losses) == (3, 0) and c.seeds_needed is None
    # lower is better: the same numbers make a worse
    assert compare.compare(a, b, higher_is_better=False).verdict == WORSE


def test_unpaired_comparison_is_welch_when_the_seeds_differ():
    a, b = {0: 1.0, 1: 2.0, 2: 3.0}, {10: 5.0, 11: 7.0, 12: 6.0, 13: 8.0}
    c = compare.compare(a, b, higher_is_better=True)
    welch = scipy_stats.ttest_ind([1.0, 2.0, 3.0], [5.0, 7.0, 6.0, 8.0], equal_var=False)
    assert not c.paired and c.test == "Welch t" and c.p == pytest.approx(welch.pvalue)
    assert c.centre == pytest.approx(2.0 - 6.5) and c.verdict == WORSE
    interval = welch.confidence_interval(0.95)
    assert (c.low, c.high) == (pytest.approx(interval.low), pytest.approx(interval.high))
    assert compare.compare({0: 1.0, 1: 2.0}, {0: 1.5, 1: 2.5}, True, paired=False).test == "Welch t"


def test_the_family_level_widens_the_interval_and_sets_the_power_level():
    a, b = {0: 0.80, 1: 0.84, 2: 0.81}, {0: 0.70, 1: 0.71, 2: 0.73}
    alone, in_six = compare.compare(a, b, True), compare.compare(a, b, True, family_size=6)
    d = np.array([0.10, 0.13, 0.08])
    half = scipy_stats.t.ppf(1 - 0.05 / 6 / 2, 2) * d.std(ddof=1) / math.sqrt(3)
    assert in_six.high - in_six.low == pytest.approx(2 * half) and in_six.high - in_six.low > alone.high - alone.low
    with pytest.raises(ValueError, match="family_size"):
        compare.compare(a, b, True, family_size=0)


def test_holm_matches_a_hand_computation_and_bonferroni_holm_order():
    # sorted 0.005, 0.01, 0.03, 0.04 × 4, 3, 2, 1 = 0.02, 0.03, 0.06, 0.04 -> running max 0.02, 0.03, 0.06, 0.06
    assert compare.holm([0.01, 0.04, 0.03, 0.005]).tolist() == pytest.approx([0.03, 0.06, 0.06, 0.02])
    assert compare.holm([0.5, 0.9]).tolist() == pytest.approx([1.0, 1.0])  # capped at 1
    assert compare.holm([0.02]).tolist() == [0.02]


def test_decide_family_adjusts_every_verdict_within_its_family():
    strong = {0: 0.89, 1: 1.0, 2: 1.11}, {0: 0.0, 1: 0.0, 2: 0.0}  # differences 1 ± 0.11: t = 15.7, p = 0.004
    p = scipy_stats.ttest_rel([0.89, 1.0, 1.11], [0.0, 0.0, 0.0]).pvalue
    assert 0.05 / 20 < p < 0.05 / 10
    made = [compare.compare(*strong, True, family_size=20)] * 20
    assert all(c.verdict == INCONCLUSIVE for c in compare.decide_family(made))  # 20 × p > 0.05
    made = [compare.compare(*strong, True, family_size=10)] + [compare.compare({0: 1, 1: 2, 2: 3}, {0: 2, 1: 1, 2: 3},
                                                                               True, family_size=10)] * 9
    decided = compare.decide_family(made)
    assert decided[0].verdict == BETTER and decided[0].p_adjusted == pytest.approx(10 * p)
    with pytest.raises(ValueError, match="family_size=2"):
        compare.decide_family(made[:2])


def test_seeds_for_power_matches_the_noncentral_t_by_hand_and_the_textbook_values():
    # Cohen's d = 1, two-sided 5 %, 80 %: 10 pairs (one-sample / paired t), 17 per group (two-sample t)
    assert compare.seeds_for_power(1.0, 1.0, 0.05, paired=True) == 10
    assert compare.seeds_for_power(1.0, 1.0, 0.05, paired=False) == 17
    # by hand at n = 10 and 9 (paired): power = P(T' > t_crit) + P(T' < −t_crit), T' ~ nct(n − 1, √n)
    def power(n):
        crit = scipy_stats.t.ppf(0.975, n - 1)
        return scipy_stats.nct.sf(crit, n - 1, math.sqrt(n)) + scipy_stats.nct.cdf(-crit, n - 1, math.sqrt(n))
    assert power(9) < 0.8 <= power(10)
    assert compare.seeds_for_power(0.0, 1.0, 0.05, True) is None and compare.seeds_for_power(1.0, 0.0, 0.05, True) == 2
    assert compare.seeds_for_power(1e-6, 1.0, 0.05, True) is None  # beyond MAX_SEEDS
    assert compare.seeds_for_power(1.0, 1.0, 0.05 / 6, True) > 10  # the family's level asks more seeds


def test_an_undecided_comparison_says_how_many_seeds_would_settle_it():
    a, b = {0: 1.0, 1: 1.5, 2: 0.9}, {0: 0.8, 1: 1.0, 2: 1.0}
    c = compare.compare(a, b, True)
    d = np.array([0.2, 0.5, -0.1])
    assert c.verdict == INCONCLUSIVE and c.seeds_needed == compare.seeds_for_power(d.mean(), d.std(ddof=1), 0.05, True)


def test_the_failed_run_rule_flags_the_reported_blow_up_and_nothing_at_a_factor_below_four():
    # the reported case: SGD's VAE seed 1 ended at 266,699,372 nats; its best epoch was a few hundred
    assert metrics.failed(266_699_372.0, 596.9, higher_is_better=False)
    # the demo's worst other runs: SGD's 4412 after a best of 1620 (2.7×), Adagrad's accuracy 0.245 after 0.434
    assert not metrics.failed(4411.95, 1620.38, False) and not metrics.failed(0.245, 0.434, True)
    # the factor, inclusive of 4 (not failed) and just past it
    assert not metrics.failed(400.0, 100.0, False) and metrics.failed(400.1, 100.0, False)
    assert not metrics.failed(0.25, 1.0, True) and metrics.failed(0.2499, 1.0, True)
    assert metrics.failed(1.0, 1.0, False, diverged=True) and metrics.failed(math.inf, 1.0, False)
    assert metrics.failed(math.nan, 1.0, True) and not metrics.failed(1.0, math.nan, False)


def test_a_failed_run_counts_only_against_its_own_optimizer():
    mine = {0: 100.0, 1: 101.0, 2: 99.0, 3: 100.5, 4: 99.5}
    theirs = {0: 130.0, 1: math.inf, 2: 131.0, 3: 129.0, 4: 130.5}  # seed 1 failed (∞: the metric's worst)
    c = compare.compare(mine, theirs, higher_is_better=False)
    assert c.failed_b == (1,) and c.failed_a == () and c.n == 4 and (c.wins, c.losses) == (5, 0)
    assert c.verdict == BETTER and c.centre == pytest.approx(np.mean([-30.0, -32.0, -28.5, -31.0]))  # seeds 0, 2-4
    # the other way round: the failed side is never better, even when its completed seeds are
    flipped = compare.compare(theirs, mine, higher_is_better=True)
    assert flipped.verdict == WORSE or flipped.verdict == INCONCLUSIVE
    assert compare.compare(theirs, mine, higher_is_better=True, failed_b=()).verdict != BETTER
    # a failure listed by seed with a finite value is dropped the same way
    assert compare.compare(mine, {**theirs, 1: 5.0}, False, failed_b=[1]).centre == pytest.approx(c.centre)


def test_fewer_than_two_completed_pairs_fall_back_to_the_exact_sign_test():
    a = {s: 1.0 for s in range(6)}
    b = {s: math.inf for s in range(6)}  # every seed of b failed: 6 wins of 6 for a (lower is better)
    c = compare.compare(a, b, higher_is_better=False)
    assert c.test == "sign" and c.p == pytest.approx(2 * 0.5 ** 6) and c.verdict == BETTER
    three = compare.compare({s: 1.0 for s in range(3)}, {s: math.inf for s in range(3)}, False)
    assert three.verdict == INCONCLUSIVE and three.p == pytest.approx(0.25) and three.seeds_needed == 6


def test_no_spread_decides_by_the_values():
    c = compare.compare({0: 2.0, 1: 3.0}, {0: 1.0, 1: 2.0}, True)  # every seed +1
    assert c.p == 0.0 and c.verdict == BETTER and c.low == c.high == 1.0
    same = compare.compare({0: 2.0, 1: 3.0}, {0: 2.0, 1: 3.0}, True)
    assert same.p == 1.0 and same.verdict == INCONCLUSIVE


def test_places_share_what_the_procedure_cannot_order_and_say_who_shares():
    better = {("A", "C"), ("B", "C"), ("A", "D"), ("B", "D"), ("C", "D")}
    ranges = compare.places(["A", "B", "C", "D"], lambda x, y: (x, y) in better)
    assert ranges == {"A": (1, 2), "B": (1, 2), "C": (3, 3), "D": (4, 4)}
    assert compare.sharing("A", ranges) == ["B"] and compare.sharing("C", ranges) == []
    assert compare.place_words(*ranges["A"], compare.sharing("A", ranges)) == "1–2 (with B)"
    assert compare.place_words(3, 3) == "3"


def test_study_comparisons_mirror_each_pair_and_name_its_family():
    seeds = pd.DataFrame([{"problem": "p", "optimizer": o, "seed": s, "final": v, "failed": False}
                          for o, values in {"F": [1.0, 1.1, 1.2], "A": [0.5, 0.52, 0.49], "B": [0.9, 1.3, 0.8]}.items()
                          for s, v in enumerate(values)])
    table = compare.study_comparisons(seeds, {"p": True}, 0.95, focus="F")
    assert len(table) == 6  # 3 pairs, both ways
    fa, af = compare.lookup(table, "p", "F", "A"), compare.lookup(table, "p", "A", "F")
    assert fa["family"] == "focus" and fa["family_size"] == 2 and fa["verdict"] == BETTER and af["verdict"] == WORSE
    assert af["centre"] == pytest.approx(-fa["centre"]) and af["low"] == pytest.approx(-fa["high"])
    assert compare.lookup(table, "p", "A", "B")["family"] == "field"
    with pytest.raises(KeyError, match="no comparison of A against Z on p"):
        compare.lookup(table, "p", "A", "Z")


def test_the_field_excludes_focus_variants_and_follows_report_baselines():
    names = ["AdaBelief", "AdaBelief-eps1e-8", "SGD", "Adam"]
    assert compare.field(names, ["AdaBelief", "AdaBelief-eps1e-8"]) == (["AdaBelief", "AdaBelief-eps1e-8"],
                                                                       ["SGD", "Adam"])
    assert compare.field(names, "AdaBelief", ["Adam"]) == (["AdaBelief"], ["Adam"])
    assert compare.field(names, None) == ([], names)


def test_one_seed_gives_every_optimizer_the_same_initial_weights_and_batch_order(tiny_spec):
    """The paired design (issue 36.5): the trainer seeds torch before it builds the model and seeds the batch
    generator with the run's seed, so SGD and Adam with one seed start from the same weights and see the same
    batches in the same order; another seed changes both. compare therefore pairs seed by seed."""
    import torch

    from optimbench import device_data, train
    from optimbench.problems import get

    cpu, problem = torch.device("cpu"), get(tiny_spec["problem"])

    def start(optimizer: str, seed: int):
        spec = {**tiny_spec, "seed": seed, "optimizer": {"class": optimizer, "kwargs": {}}}
        data = device_data.load_data(spec, problem, cpu)
        training = train.build_training(spec, cpu, data, total_steps=4)
        weights = torch.cat([p.detach().flatten() for p in training.model.parameters()])
        first = next(device_data.batches(problem, data.train, training.normalize, 8, training.gen))
        return weights, first[1]

    sgd, adam, other = start("SGD", 3), start("Adam", 3), start("SGD", 4)
    assert torch.equal(sgd[0], adam[0]) and torch.equal(sgd[1], adam[1])  # weights; the first batch's labels
    assert not torch.equal(sgd[0], other[0])
