"""The article's claims (SPEC §1.2) tested on the study's seeds: each finding of the article on its
ResNet18 classification problems, with a verdict (holds / contradicted / inconclusive / not tested).

Verdicts come from one-sided tests at level 1 - confidence on the per-seed values (seed_summary rows):
Welch's test between two optimizers (optimbench.stats.welch), two one-sided tests for "similar"
(equivalence within SIMILAR_ACC), and a one-sample t-test (scipy.stats.ttest_1samp) of final / lowest
test loss against RISE. A claim holds when every comparison it makes is significant in its favour and is
contradicted when one is significant against it.
"""

from __future__ import annotations

from itertools import pairwise

import numpy as np
import pandas as pd
from scipy.stats import ttest_1samp

from optimbench.runs import StudyProblem
from optimbench.stats import welch

# The article's seven optimizers (SPEC §1.2): its claims compare these among themselves.
ARTICLE_OPTIMIZERS = ["SGD", "Adam", "Adadelta", "Adagrad", "AdamW", "Adamax", "ASGD"]
CLAIM_COLUMNS = ["claim", "compared", "measured", "verdict"]
SIMILAR_ACC = 0.02   # "end similar": final test accuracies within 2 percentage points
RISE = 1.05          # "test loss rises near the end": final loss ≥ 5% above its minimum
HOLDS, CONTRADICTED, INCONCLUSIVE, NOT_TESTED = "holds", "contradicted", "inconclusive", "not tested"


def _pair_verdict(a, b, alpha: float) -> str:
    """'holds' if the seeds show mean(a) > mean(b), 'contradicted' if they show a < b, else 'inconclusive'."""
    test = welch(a, b)
    return HOLDS if test["p_greater"] < alpha else CONTRADICTED if test["p_less"] < alpha else INCONCLUSIVE


def _combine(verdicts) -> str:
    """A claim made of several comparisons: contradicted if any is, holds if all do, else inconclusive."""
    verdicts = list(verdicts)
    return CONTRADICTED if CONTRADICTED in verdicts else HOLDS if all(v == HOLDS for v in verdicts) else INCONCLUSIVE


def _ordered(values: dict, names, alpha: float, higher=True) -> tuple[str, str]:
    """Verdict on `names[0] > names[1] > ... > every other name of values` (lower is better: higher=False)."""
    pairs = list(pairwise(names)) + [(names[-1], other) for other in values if other not in names]
    verdicts = []
    for better, worse in pairs:
        a, b = (values[better], values[worse]) if higher else (-values[better], -values[worse])
        verdicts.append(_pair_verdict(a, b, alpha))
    detail = "; ".join(f"{x} vs {y}: {v}" for (x, y), v in zip(pairs, verdicts))
    return _combine(verdicts), detail


def _means(values: dict, names, fmt="{:.4f}") -> str:
    return ", ".join(f"{n} {fmt.format(np.mean(values[n]))}" for n in names)


def claims_table(seeds: pd.DataFrame, confidence: float = 0.95) -> pd.DataFrame:
    """The article's findings (SPEC §1.2) on one problem, judged among the article's optimizers present in
    `seeds` (seed_summary rows of one classification problem: final_train_acc, final_test_acc,
    final_test_loss, best_test_loss).

    Each claim's verdict is holds / contradicted / inconclusive from one-sided Welch tests on the per-seed
    values at level 1 - confidence (holds: every comparison the claim makes is significant in its favour;
    contradicted: one is significant against it), or "not tested" when an optimizer it names is missing.
    Columns: claim, compared (the optimizers it was judged among), measured (means and the tests), verdict.
    """
    alpha = 1 - confidence
    present = [n for n in ARTICLE_OPTIMIZERS if n in set(seeds["optimizer"])]
    by = {column: {n: seeds.loc[seeds["optimizer"] == n, column].to_numpy(float) for n in present}
          for column in ("final_train_acc", "final_test_acc", "final_test_loss", "best_test_loss")}
    claims = []

    def claim(text, needed, judge):
        missing = [n for n in needed if n not in present]
        if missing:
            claims.append({"claim": text, "compared": ", ".join(present),
                           "measured": f"not tested: {', '.join(missing)} not in this study", "verdict": NOT_TESTED})
        else:
            verdict, measured = judge()
            claims.append({"claim": text, "compared": ", ".join(present), "measured": measured, "verdict": verdict})

    top4 = ["Adamax", "SGD", "Adam", "AdamW"]

    def trains_best():
        values = by["final_train_acc"]
        verdict, detail = _ordered(values, top4, alpha)
        order = sorted(values, key=lambda n: -np.mean(values[n]))
        return verdict, f"mean final training accuracy: {_means(values, order)}. Tests: {detail}"

    def similar():
        values = by["final_test_acc"]
        verdicts, spreads = [], []
        for i, x in enumerate(top4):
            for y in top4[i + 1:]:
                # Equivalence (two one-sided tests): |mean x - mean y| < SIMILAR_ACC shown, or refuted.
                inside = (welch(values[x] - SIMILAR_ACC, values[y])["p_less"] < alpha
                          and welch(values[x] + SIMILAR_ACC, values[y])["p_greater"] < alpha)
                outside = (welch(values[x] - SIMILAR_ACC, values[y])["p_greater"] < alpha
                           or welch(values[x] + SIMILAR_ACC, values[y])["p_less"] < alpha)
                verdicts.append(HOLDS if inside else CONTRADICTED if outside else INCONCLUSIVE)
                spreads.append(abs(np.mean(values[x]) - np.mean(values[y])))
        return _combine(verdicts), (f"mean final test accuracy: {_means(values, top4)}; largest gap "
                                    f"{max(spreads):.4f} (equivalence tests at ±{SIMILAR_ACC:g})")

    def loss_rises():
        verdicts, parts = [], []
        for name in ["SGD", "Adamax"]:
            ratio = by["final_test_loss"][name] / by["best_test_loss"][name]
            finite = ratio[np.isfinite(ratio)]  # a diverged seed has no final loss to compare
            if len(finite) < 2:
                verdict = INCONCLUSIVE
            elif np.std(finite) == 0:
                verdict = HOLDS if finite.min() >= RISE else CONTRADICTED
            else:
                p_greater = ttest_1samp(finite, RISE, alternative="greater").pvalue
                p_less = 1.0 - p_greater
                verdict = HOLDS if p_greater < alpha else CONTRADICTED if p_less < alpha else INCONCLUSIVE
            verdicts.append(verdict)
            mean = np.mean(finite) if len(finite) else np.nan
            parts.append(f"{name} mean final/lowest test loss {mean:.3f} over {len(finite)} seed(s): {verdict}")
        return _combine(verdicts), "; ".join(parts)

    def lowest_loss():
        values = by["final_test_loss"]
        pairs = [(x, o) for x in ("Adam", "AdamW") for o in present if o not in ("Adam", "AdamW")]
        verdicts = [_pair_verdict(-values[x], -values[o], alpha) for x, o in pairs]
        order = sorted(values, key=lambda n: np.mean(values[n]))
        return _combine(verdicts), f"mean final test loss: {_means(values, order)}"

    def end_worst():
        values = by["final_test_acc"]
        pairs = [(o, x) for x in ("Adagrad", "Adadelta") for o in present if o not in ("Adagrad", "Adadelta")]
        verdicts = [_pair_verdict(values[o], values[x], alpha) for o, x in pairs]
        order = sorted(values, key=lambda n: np.mean(values[n]))
        return _combine(verdicts), f"mean final test accuracy, lowest first: {_means(values, order)}"

    claim("Adamax trains best, then SGD, Adam, AdamW (final training accuracy)", top4, trains_best)
    claim(f"Adamax, SGD, Adam, AdamW end with similar test accuracy (within {SIMILAR_ACC:.0%})", top4, similar)
    claim(f"SGD's and Adamax's test loss rises near the end (final ≥ {RISE:g}× lowest)", ["SGD", "Adamax"],
          loss_rises)
    claim("Adam and AdamW end with the lowest test loss", ["Adam", "AdamW"], lowest_loss)
    claim("Adagrad and Adadelta end worst (test accuracy)", ["Adagrad", "Adadelta"], end_worst)
    return pd.DataFrame(claims, columns=CLAIM_COLUMNS)


def article_problems(problems: dict[str, StudyProblem]) -> list[str]:
    """The plan's problems (Plan.problems, in order) the article's claims are about: a ResNet18 (the
    registry's resnet18_cifar, or the article's resnet18_article) trained for classification."""
    return [name for name, problem in problems.items()
            if problem.kind == "classification" and "resnet18" in problem.model.lower()]


def article_claims(seeds: pd.DataFrame, problems: dict[str, StudyProblem], confidence: float = 0.95) -> pd.DataFrame:
    """claims_table on each of the article's problems (article_problems of Plan.problems) that has runs in
    `seeds` (seed_summary rows), with a `problem` column first; other problems get no claims (an empty
    table with those columns when the study has none of the article's)."""
    frames = [claims_table(seeds[seeds["problem"] == p], confidence).assign(problem=p)
              for p in article_problems(problems) if (seeds["problem"] == p).any()]
    if not frames:
        return pd.DataFrame(columns=["problem"] + CLAIM_COLUMNS)
    return pd.concat(frames, ignore_index=True)[["problem"] + CLAIM_COLUMNS]
