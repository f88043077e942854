"""The article's claims judged on hand-made seeds built to agree with the article, to contradict it and to
be unable to tell, near each claim's thresholds, and only on the article's ResNet18 problems."""

import math

import pandas as pd
import pytest
from scipy import stats as scipy_stats

from optimbench import claims
from optimbench.runs import StudyProblem

from helpers import plan_problem

CLS = "digits-resnet18"
NAMES = ["Adamax", "SGD", "Adam", "AdamW", "Adagrad", "Adadelta", "ASGD"]
ARTICLE = {  # final train acc, final test acc, final test loss, lowest test loss: as the article reports
    "Adamax": (0.99, 0.900, 0.50, 0.40), "SGD": (0.98, 0.895, 0.45, 0.35), "Adam": (0.97, 0.890, 0.30, 0.30),
    "AdamW": (0.96, 0.888, 0.31, 0.31), "Adagrad": (0.70, 0.600, 1.00, 1.00), "Adadelta": (0.60, 0.500, 1.20, 1.20),
    "ASGD": (0.90, 0.800, 0.60, 0.60)}


def article_seeds(noise=0.001, **changes):
    """Per-seed final values: each optimizer's article value ± noise over 3 seeds (changes: name → tuple). The
    offsets are rotated from one optimizer to the next, so that seed by seed (the paired design) the noise does
    not cancel."""
    rows = []
    for i, (name, values) in enumerate({**ARTICLE, **changes}.items()):
        offsets = [(-noise, 0.0, noise)[(seed + i) % 3] for seed in range(3)]
        for seed, offset in enumerate(offsets):
            train, test, loss, lowest = values
            rows.append({"optimizer": name, "seed": seed, "final_train_acc": train + offset,
                         "final_test_acc": test + offset, "final_test_loss": loss + offset,
                         "best_test_loss": lowest + offset / 2})
    return pd.DataFrame(rows)


def verdicts(seeds, confidence=0.95):
    return claims.claims_table(seeds, confidence)["verdict"].tolist()


def test_every_claim_holds_on_seeds_built_to_match_the_article():
    table = claims.claims_table(article_seeds())
    assert table["verdict"].tolist() == ["holds"] * 5
    assert table["compared"][0] == "SGD, Adam, Adadelta, Adagrad, AdamW, Adamax, ASGD"


def test_claims_are_contradicted_when_the_seeds_clearly_disagree():
    seeds = article_seeds(Adamax=(0.5, 0.5, 0.5, 0.5), Adagrad=(0.7, 0.95, 1.0, 1.0))
    assert verdicts(seeds) == ["contradicted", "contradicted", "contradicted", "holds", "contradicted"]


def test_one_swapped_pair_in_the_order_contradicts_the_ordering_claim():
    seeds = article_seeds(SGD=(0.965, 0.895, 0.45, 0.35))  # SGD now trains below Adam: order broken
    assert verdicts(seeds)[0] == "contradicted"
    assert "SGD vs Adam: contradicted" in claims.claims_table(seeds)["measured"][0]


def test_claims_are_inconclusive_when_the_seeds_cannot_separate_the_optimizers():
    noisy = article_seeds(noise=0.2)  # seeds spread ±0.2: means in the article's order, tests not significant
    assert verdicts(noisy) == ["inconclusive"] * 5


def test_thresholds_decide_near_their_edges():
    # final/lowest = 1.1 for SGD and Adamax: rises by RISE = 1.05, would not by 1.2
    near = article_seeds(noise=0.0005, SGD=(0.98, 0.895, 0.44, 0.40), Adamax=(0.99, 0.900, 0.55, 0.50))
    table = claims.claims_table(near)
    assert table["verdict"][2] == "holds" and claims.RISE == 1.05
    assert "SGD mean final/lowest test loss 1.100" in table["measured"][2]
    # test accuracies 0.018 apart: similar within SIMILAR_ACC = 0.02, not within 0.015
    near = article_seeds(noise=0.0005, AdamW=(0.96, 0.882, 0.31, 0.31))
    assert verdicts(near)[1] == "holds" and claims.SIMILAR_ACC == 0.02
    apart = article_seeds(noise=0.0005, AdamW=(0.96, 0.875, 0.31, 0.31))  # 0.025 apart
    assert verdicts(apart)[1] == "contradicted"


def test_only_one_of_two_optimizers_meeting_a_claim_is_not_enough():
    seeds = article_seeds(SGD=(0.98, 0.895, 0.45, 0.44))  # SGD's loss no longer rises, Adamax's still does
    assert verdicts(seeds)[2] == "contradicted"
    seeds = article_seeds(AdamW=(0.96, 0.888, 0.55, 0.31))  # Adam still lowest, AdamW not
    assert verdicts(seeds)[3] == "contradicted"
    seeds = article_seeds(Adadelta=(0.6, 0.85, 1.2, 1.2))  # Adagrad still worst, Adadelta not
    assert verdicts(seeds)[4] == "contradicted"


def test_claims_about_the_article_compare_its_optimizers_among_themselves():
    seeds = pd.concat([article_seeds(), article_seeds(AMSGrad=(0.99, 0.95, 0.1, 0.1)).query("optimizer == 'AMSGrad'")])
    table = claims.claims_table(seeds)
    assert table["verdict"].tolist() == ["holds"] * 5  # AMSGrad (not the article's) lower loss changes nothing
    assert "AMSGrad" not in table["compared"][3]


def test_claims_with_missing_optimizers_say_so():
    table = claims.claims_table(article_seeds().query("optimizer != 'Adamax'"))
    assert table["verdict"].tolist() == ["not tested", "not tested", "not tested", "holds", "holds"]
    assert "not tested: Adamax not in this study" in table["measured"][0]


def test_claims_are_judged_only_on_resnet18_classification_problems_each_on_its_own_seeds():
    contradicting = {"Adamax": (0.5, 0.5, 0.5, 0.5), "Adagrad": (0.7, 0.95, 1.0, 1.0)}
    seeds = pd.concat([article_seeds().assign(problem=CLS),
                       article_seeds(**contradicting).assign(problem="cifar10-resnet18"),
                       article_seeds().assign(problem="cifar100-vgg16"),  # classification, not a ResNet18
                       article_seeds().assign(problem="digits-capsnet")])  # a capsule network
    entries = {name: plan_problem(name) for name in ("cifar100-vgg16", CLS, "digits-capsnet", "cifar10-resnet18")}
    entries["cifar10-resnet18"]["model"] = "resnet18_article"  # the article's own ResNet18
    problems = {name: StudyProblem.from_summary(name, entry) for name, entry in entries.items()}
    assert claims.article_problems(problems) == [CLS, "cifar10-resnet18"]
    table = claims.article_claims(seeds, problems)
    assert list(table.columns) == ["problem", "claim", "compared", "measured", "verdict"]
    assert table["problem"].tolist() == [CLS] * 5 + ["cifar10-resnet18"] * 5
    assert table["verdict"].tolist()[:5] == ["holds"] * 5
    assert table["verdict"].tolist()[5:] == ["contradicted", "contradicted", "contradicted", "holds", "contradicted"]


# Hand-computable tests: Student's t with 2 degrees of freedom has P(T > t) = (1 - t / sqrt(t² + 2)) / 2, so
# t = 3 gives p = 0.0477: significant at confidence 0.95 (alpha 0.05), not at 0.99 (alpha 0.01).
P_T3_DF2 = (1 - 3 / (11 ** 0.5)) / 2
SQRT2 = 2 ** 0.5


def _rows(name, column_values):
    """Seed rows of one optimizer: column -> per-seed values (the columns claims_table reads; unset ones 0.5)."""
    n = len(next(iter(column_values.values())))
    columns = ("final_train_acc", "final_test_acc", "final_test_loss", "best_test_loss")
    return [{"optimizer": name, "seed": i, **{c: column_values.get(c, [0.5] * n)[i] for c in columns}}
            for i in range(n)]


def test_a_claims_family_is_holm_adjusted_holds_at_95_and_is_inconclusive_at_99():
    # Adam and AdamW: loss 1 on every seed; SGD: 1 + Δ + e·(−1, 0, 1). Seed by seed (paired) each of the claim's
    # two comparisons has differences −Δ − e·(−1, 0, 1): t = √3·Δ / e = 7 on 2 degrees of freedom, p = 0.0198
    # (scipy's ttest_rel); Holm over the family of 2: both adjusted to 2p = 0.0396 < 0.05, not < 0.01.
    e = 0.01
    delta = 7 * e / math.sqrt(3)
    higher = [1 + delta - e, 1 + delta, 1 + delta + e]
    p = scipy_stats.ttest_rel([1.0] * 3, higher).pvalue
    assert p == pytest.approx(2 * scipy_stats.t.sf(7, 2)) and 0.01 < 2 * p < 0.05
    seeds = pd.DataFrame(_rows("Adam", {"final_test_loss": [1.0] * 3}) + _rows("AdamW", {"final_test_loss": [1.0] * 3})
                         + _rows("SGD", {"final_test_loss": higher}))
    nt = "not tested"
    assert verdicts(seeds, 0.95) == [nt, nt, nt, "holds", nt]
    assert verdicts(seeds, 0.99) == [nt, nt, nt, "inconclusive", nt]
    assert verdicts(seeds.assign(final_test_loss=-seeds["final_test_loss"]), 0.95)[3] == "contradicted"
    assert verdicts(seeds.assign(final_test_loss=-seeds["final_test_loss"]), 0.99)[3] == "inconclusive"
    # article_claims passes its confidence on
    problems = {CLS: StudyProblem.from_summary(CLS, plan_problem(CLS))}
    assert claims.article_claims(seeds.assign(problem=CLS), problems, 0.99)["verdict"][3] == "inconclusive"
    assert claims.article_claims(seeds.assign(problem=CLS), problems)["verdict"][3] == "holds"  # default 0.95


def _rise_seeds(sgd_ratios, adamax_ratios):
    """SGD and Adamax with these final / lowest test-loss ratios (lowest loss 1, so final = ratio)."""
    return pd.DataFrame(_rows("SGD", {"final_test_loss": sgd_ratios, "best_test_loss": [1.0] * len(sgd_ratios)})
                        + _rows("Adamax", {"final_test_loss": adamax_ratios,
                                           "best_test_loss": [1.0] * len(adamax_ratios)}))


def test_loss_rise_without_spread_is_decided_by_rise_inclusive():
    assert claims.RISE == 1.05
    # every seed exactly at RISE: "final ≥ 1.05 × lowest" holds; 1.04 does not
    assert verdicts(_rise_seeds([1.05] * 3, [1.05] * 3))[2] == "holds"
    assert verdicts(_rise_seeds([1.04] * 3, [1.05] * 3))[2] == "contradicted"
    assert verdicts(_rise_seeds([1.06] * 3, [1.04] * 3))[2] == "contradicted"
    assert verdicts(_rise_seeds([1.06] * 3, [1.06] * 3))[2] == "holds"


def test_loss_rise_with_spread_is_a_one_sided_one_sample_t_test_against_rise():
    # ratios RISE + c + (-e, 0, e), c = √3·e: t = c / (e / √3) = 3 on 2 df, p = 0.0477
    e = 0.01
    c = 3 ** 0.5 * e
    above = [1.05 + c - e, 1.05 + c, 1.05 + c + e]
    below = [1.05 - c - e, 1.05 - c, 1.05 - c + e]
    table = claims.claims_table(_rise_seeds(above, above), 0.95)
    assert table["verdict"][2] == "holds"
    assert f"SGD mean final/lowest test loss {1.05 + c:.3f} over 3 seed(s): holds" in table["measured"][2]
    assert verdicts(_rise_seeds(above, above), 0.99)[2] == "inconclusive"
    assert verdicts(_rise_seeds(below, above), 0.95)[2] == "contradicted"
    assert verdicts(_rise_seeds(above, below), 0.99)[2] == "inconclusive"
    # around 1.10 ± e the test is clearly significant; shifted to RISE it is not
    assert verdicts(_rise_seeds([1.09, 1.10, 1.11], [1.09, 1.10, 1.11]))[2] == "holds"
    assert verdicts(_rise_seeds([1.04, 1.05, 1.06], [1.09, 1.10, 1.11]))[2] == "inconclusive"


def test_loss_rise_needs_two_finite_seeds_a_diverged_seed_is_left_out():
    inf = float("inf")
    # two finite seeds left (1.10, 1.10: no spread, above RISE) -> judged; one finite -> cannot tell
    table = claims.claims_table(_rise_seeds([1.10, 1.10, inf], [1.10, 1.10, 1.10]))
    assert table["verdict"][2] == "holds"
    assert "SGD mean final/lowest test loss 1.100 over 2 seed(s): holds" in table["measured"][2]
    table = claims.claims_table(_rise_seeds([1.10, inf, inf], [1.10, 1.10, 1.10]))
    assert table["verdict"][2] == "inconclusive"
    assert "SGD mean final/lowest test loss 1.100 over 1 seed(s): inconclusive" in table["measured"][2]
    table = claims.claims_table(_rise_seeds([inf, inf, inf], [1.10, 1.10, 1.10]))
    assert "SGD mean final/lowest test loss – over 0 seed(s): inconclusive" in table["measured"][2]


def _similar_seeds(adamw_gap):
    """Adamax, SGD, Adam at test accuracy 0.9 ± d, AdamW at 0.9 + adamw_gap ± d, two seeds each, √2·d = 0.005:
    each equivalence test (Welch, df 2) has t = (gap ± SIMILAR_ACC) / 0.005."""
    d = 0.005 / SQRT2
    rows = []
    for name in ("Adamax", "SGD", "Adam", "AdamW"):
        m = 0.9 + (adamw_gap if name == "AdamW" else 0.0)
        rows += _rows(name, {"final_test_acc": [m - d, m + d]})
    return pd.DataFrame(rows)


def test_similar_accuracy_is_two_one_sided_tests_at_plus_and_minus_similar_acc():
    assert claims.SIMILAR_ACC == 0.02
    # gap 0: t = ±0.02 / 0.005 = ±4 on 2 df, p = (1 - 4/√18) / 2 = 0.029 each way: similar at 0.95, not at 0.99
    assert verdicts(_similar_seeds(0.0), 0.95)[1] == "holds"
    assert verdicts(_similar_seeds(0.0), 0.99)[1] == "inconclusive"
    # gap ∓0.015 (AdamW below / above the others): one side t = 7, the other t = 1: neither similar nor apart
    assert verdicts(_similar_seeds(-0.015))[1] == "inconclusive"
    assert verdicts(_similar_seeds(0.015))[1] == "inconclusive"
    # gap ∓0.035: apart by more than SIMILAR_ACC, and the comparison procedure orders the pair (seed by seed
    # AdamW is 0.035 off on both seeds: no spread, decided at any level): contradicted
    assert verdicts(_similar_seeds(-0.035), 0.95)[1] == "contradicted"
    assert verdicts(_similar_seeds(0.035), 0.99)[1] == "contradicted"
    # the same gap with spread seed by seed (AdamW's seeds the other way round): not ordered, so not "apart"
    noisy = _similar_seeds(-0.035)
    noisy.loc[noisy["optimizer"] == "AdamW", "final_test_acc"] = noisy.loc[
        noisy["optimizer"] == "AdamW", "final_test_acc"].to_numpy()[::-1]
    assert verdicts(noisy, 0.99)[1] == "inconclusive"
    table = claims.claims_table(_similar_seeds(-0.035))
    assert ("largest gap 0.03500 (equivalence: two one-sided Welch tests at ±0.02; apart: the pair ordered by the "
            "comparisons, 6 pairs, Holm)") in table["measured"][1]
    assert "within 2%" in table["claim"][1]


def test_the_claims_table_reads_exactly_as_the_report_shows_it():
    table = claims.claims_table(article_seeds())
    compared = "SGD, Adam, Adadelta, Adagrad, AdamW, Adamax, ASGD"
    assert list(table.columns) == ["claim", "compared", "measured", "verdict"]
    assert table["claim"].tolist() == [
        "Adamax trains best, then SGD, Adam, AdamW (final training accuracy)",
        "Adamax, SGD, Adam, AdamW end with similar test accuracy (within 2%)",
        "SGD's and Adamax's test loss rises near the end (final ≥ 1.05× lowest)",
        "Adam and AdamW end with the lowest test loss",
        "Adagrad and Adadelta end worst (test accuracy)"]
    assert table["compared"].tolist() == [compared] * 5
    # SGD's ratios 0.449/0.3495, 0.45/0.35, 0.451/0.3505: mean 1.2857; Adamax's 0.499/0.3995, 0.5/0.4, ...: 1.2500
    assert table["measured"].tolist() == [
        "mean final training accuracy: Adamax 0.9900, SGD 0.9800, Adam 0.9700, AdamW 0.9600, ASGD 0.9000, "
        "Adagrad 0.7000, Adadelta 0.6000. Tests: Adamax vs SGD: holds; SGD vs Adam: holds; Adam vs AdamW: holds; "
        "AdamW vs Adadelta: holds; AdamW vs Adagrad: holds; AdamW vs ASGD: holds (a family of 6, Holm)",
        "mean final test accuracy: Adamax 0.9000, SGD 0.8950, Adam 0.8900, AdamW 0.8880; largest gap 0.01200 "
        "(equivalence: two one-sided Welch tests at ±0.02; apart: the pair ordered by the comparisons, 6 pairs, "
        "Holm)",
        "SGD mean final/lowest test loss 1.286 over 3 seed(s): holds; "
        "Adamax mean final/lowest test loss 1.250 over 3 seed(s): holds (one-sample t-tests against 1.05)",
        "mean final test loss: Adam 0.3000, AdamW 0.3100, SGD 0.4500, Adamax 0.5000, ASGD 0.6000, Adagrad 1.000, "
        "Adadelta 1.200 (a family of 10, Holm)",
        "mean final test accuracy, lowest first: Adadelta 0.5000, Adagrad 0.6000, ASGD 0.8000, AdamW 0.8880, "
        "Adam 0.8900, SGD 0.8950, Adamax 0.9000 (a family of 10, Holm)"]
    missing = claims.claims_table(article_seeds().query("optimizer not in ['Adamax', 'SGD']"))
    assert missing.iloc[0].tolist() == ["Adamax trains best, then SGD, Adam, AdamW (final training accuracy)",
                                        "Adam, Adadelta, Adagrad, AdamW, ASGD",
                                        "not tested: Adamax, SGD not in this study", "not tested"]
    assert missing["claim"][2] == "SGD's and Adamax's test loss rises near the end (final ≥ 1.05× lowest)"
    # a failed seed (diverged: ∞) is named by the failed-run rule and never averaged: Adadelta's mean is over 2
    diverged = article_seeds().assign(failed=False)
    diverged.loc[diverged["optimizer"] == "Adadelta", "final_test_loss"] = [1.2, float("inf"), 1.2]
    diverged.loc[(diverged["optimizer"] == "Adadelta") & (diverged["seed"] == 1), "failed"] = True
    assert claims.claims_table(diverged)["measured"][3].endswith("Adagrad 1.000, Adadelta 1.200 (a family of 10, Holm)")


def test_the_ordering_claim_compares_the_last_named_optimizer_with_every_other():
    # ASGD trains below SGD and Adam but above AdamW, the last of the claimed order: contradicted
    seeds = article_seeds(ASGD=(0.965, 0.8, 0.6, 0.6))
    table = claims.claims_table(seeds)
    assert table["verdict"][0] == "contradicted" and "AdamW vs ASGD: contradicted" in table["measured"][0]


@pytest.mark.parametrize("accuracies", [
    {"Adamax": 0.88, "SGD": 0.90, "Adam": 0.92, "AdamW": 0.90},  # only Adamax vs Adam are 0.04 apart
    {"Adamax": 0.90, "SGD": 0.90, "Adam": 0.92, "AdamW": 0.88},  # only Adam vs AdamW
    {"Adamax": 0.92, "SGD": 0.88, "Adam": 0.90, "AdamW": 0.90},  # only Adamax vs SGD
    {"Adamax": 0.90, "SGD": 0.88, "Adam": 0.92, "AdamW": 0.90},  # only SGD vs Adam
])
def test_similar_accuracy_compares_every_pair_of_the_four(accuracies):
    # √2·d = 0.005: a pair 0.02 apart is neither similar nor apart (t = 0 and 8), a pair 0.04 apart is apart
    # (t = (0.04 - 0.02) / 0.005 = 4, p = 0.029): one such pair contradicts the claim, whichever it is
    d = 0.005 / SQRT2
    seeds = pd.DataFrame([row for name, m in accuracies.items()
                          for row in _rows(name, {"final_test_acc": [m - d, m + d]})])
    table = claims.claims_table(seeds)
    assert table["verdict"][1] == "contradicted" and "largest gap 0.0400" in table["measured"][1]


def test_article_claims_number_their_rows_in_order():
    seeds = pd.concat([article_seeds().assign(problem=CLS), article_seeds().assign(problem="cifar10-resnet18")])
    problems = {name: StudyProblem.from_summary(name, plan_problem(name)) for name in (CLS, "cifar10-resnet18")}
    assert claims.article_claims(seeds, problems).index.tolist() == list(range(10))
