"""The article's claims (SPEC §1.2) tested on the study's seeds: each finding of the article on its
ResNet18 classification problems, with a verdict (holds / contradicted / inconclusive / not tested).

Every "x beats y" of a claim is the study's one comparison procedure (optimbench.compare: paired t-test on
the seeds both completed, two-sided, failed runs named and counted against their own optimizer), with each
claim's comparisons one family (Holm within the claim). On the problem's primary metric (the final test
accuracy of "Adagrad and Adadelta end worst") a claim reads the study's comparison table itself, so its word
for a pair is the one every other sentence of the report uses. Two claims test other hypotheses, stated in
their row: "similar" (equivalence within SIMILAR_ACC: two one-sided Welch tests, optimbench.stats.welch) and
"the test loss rises" (a one-sample t-test, scipy.stats.ttest_1samp, of final / lowest test loss against
RISE). A claim holds when every comparison it makes is decided in its favour and is contradicted when one
is decided against it.
"""

from __future__ import annotations

from itertools import pairwise

import numpy as np
import pandas as pd
from scipy.stats import ttest_1samp

from optimbench.compare import BETTER, WORSE, compare, decide_family, lookup, with_failed
from optimbench.labels import number
from optimbench.runs import StudyProblem
from optimbench.stats import welch

# The article's seven optimizers (SPEC §1.2): its claims compare these among themselves.
ARTICLE_OPTIMIZERS = ["SGD", "Adam", "Adadelta", "Adagrad", "AdamW", "Adamax", "ASGD"]
CLAIM_COLUMNS = ["claim", "compared", "measured", "verdict"]
SIMILAR_ACC = 0.02   # "end similar": final test accuracies within 2 percentage points
RISE = 1.05          # "test loss rises near the end": final loss ≥ 5% above its minimum
HOLDS, CONTRADICTED, INCONCLUSIVE, NOT_TESTED = "holds", "contradicted", "inconclusive", "not tested"


WORDS = {BETTER: HOLDS, WORSE: CONTRADICTED}


def _pair_verdicts(values: dict, failed: dict, pairs, confidence: float, higher: bool = True) -> list[str]:
    """Per (x, y) of `pairs`, 'holds' if the procedure decides x better than y, 'contradicted' if worse, else
    'inconclusive' (optimbench.compare; the pairs one family, Holm). values: {name: {seed: value}}."""
    made = [compare(values[x], values[y], higher, failed_a=failed[x], failed_b=failed[y], confidence=confidence,
                    family_size=len(pairs)) for x, y in pairs]
    return [WORDS.get(c.verdict, INCONCLUSIVE) for c in decide_family(made)]


def _combine(verdicts) -> str:
    """A claim made of several comparisons: contradicted if any is, holds if all do, else inconclusive."""
    verdicts = list(verdicts)
    return CONTRADICTED if CONTRADICTED in verdicts else HOLDS if all(v == HOLDS for v in verdicts) else INCONCLUSIVE


def _ordered(values: dict, failed: dict, names, confidence: float) -> tuple[str, str]:
    """Verdict on `names[0] > names[1] > ... > every other name of values` (higher is better)."""
    pairs = list(pairwise(names)) + [(names[-1], other) for other in values if other not in names]
    verdicts = _pair_verdicts(values, failed, pairs, confidence)
    detail = "; ".join(f"{x} vs {y}: {v}" for (x, y), v in zip(pairs, verdicts))
    return _combine(verdicts), detail + f" (a family of {len(pairs)}, Holm)"


def _mean(values: dict, failed: list) -> float:
    kept = [v for s, v in values.items() if s not in failed and np.isfinite(v)]
    return float(np.mean(kept)) if kept else np.nan


def _means(values: dict, failed: dict, names) -> str:
    return ", ".join(f"{n} {number(_mean(values[n], failed[n]))}" for n in names)


def claims_table(seeds: pd.DataFrame, confidence: float = 0.95, comparisons: pd.DataFrame | None = None,
                 problem: str | None = None) -> pd.DataFrame:
    """The article's findings (SPEC §1.2) on one problem, judged among the article's optimizers present in
    `seeds` (seed_summary rows of one classification problem: seed, final_train_acc, final_test_acc,
    final_test_loss, best_test_loss; `failed` when known).

    Each claim's verdict is holds / contradicted / inconclusive (module docstring: the comparison procedure,
    each claim's comparisons one family; with the study's `comparisons` and its `problem`, the primary
    metric's pairs are read from it), or "not tested" when an optimizer it names is missing. Columns: claim,
    compared (the optimizers it was judged among), measured (means over completed seeds and the tests), verdict.
    """
    alpha = 1 - confidence
    seeds = with_failed(seeds.assign(final=seeds["final_test_acc"]) if "final" not in seeds else seeds)
    present = [n for n in ARTICLE_OPTIMIZERS if n in set(seeds["optimizer"])]
    rows = {n: seeds[seeds["optimizer"] == n] for n in present}
    failed = {n: list(r.loc[r["failed"].astype(bool), "seed"]) for n, r in rows.items()}
    by = {column: {n: dict(zip(r["seed"], r[column].astype(float))) for n, r in rows.items()}
          for column in ("final_train_acc", "final_test_acc", "final_test_loss", "best_test_loss")}
    kept = {column: {n: np.array([v for s, v in values[n].items() if s not in failed[n] and np.isfinite(v)])
                     for n in present} for column, values in by.items()}
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

    def order(column, reverse=True):
        return sorted(present, key=lambda n: (-1 if reverse else 1) * np.nan_to_num(_mean(by[column][n], failed[n])))

    def trains_best():
        verdict, detail = _ordered(by["final_train_acc"], failed, top4, confidence)
        means = _means(by["final_train_acc"], failed, order("final_train_acc"))
        return verdict, f"mean final training accuracy: {means}. Tests: {detail}"

    def similar():
        values, verdicts, spreads = kept["final_test_acc"], [], []
        pairs = [(x, y) for i, x in enumerate(top4) for y in top4[i + 1:]]
        if comparisons is not None and problem is not None:  # the primary metric: the study's own comparisons
            decided = [lookup(comparisons, problem, x, y) for x, y in pairs]
            apart = [c["verdict"] != "inconclusive" and abs(c["centre"]) > SIMILAR_ACC for c in decided]
        else:
            made = decide_family([compare(by["final_test_acc"][x], by["final_test_acc"][y], True, failed_a=failed[x],
                                          failed_b=failed[y], confidence=confidence, family_size=len(pairs))
                                  for x, y in pairs])
            apart = [c.decided and abs(c.centre) > SIMILAR_ACC for c in made]
        for (x, y), outside in zip(pairs, apart):
            # Equivalence (two one-sided Welch tests): |mean x - mean y| < SIMILAR_ACC shown; refuted only when
            # the study's procedure orders the pair and the difference exceeds SIMILAR_ACC (never a second word
            # about a pair the report calls undecided)
            inside = (welch(values[x] - SIMILAR_ACC, values[y])["p_less"] < alpha
                      and welch(values[x] + SIMILAR_ACC, values[y])["p_greater"] < alpha)
            verdicts.append(HOLDS if inside else CONTRADICTED if outside else INCONCLUSIVE)
            spreads.append(abs(np.mean(values[x]) - np.mean(values[y])))
        return _combine(verdicts), (f"mean final test accuracy: {_means(by['final_test_acc'], failed, top4)}; largest "
                                    f"gap {number(max(spreads))} (equivalence: two one-sided Welch tests at "
                                    f"±{SIMILAR_ACC:g}; apart: the pair ordered by the comparisons, {len(pairs)} "
                                    "pairs, Holm)")

    def loss_rises():
        verdicts, parts = [], []
        for name in ["SGD", "Adamax"]:
            final, lowest = by["final_test_loss"][name], by["best_test_loss"][name]
            ratio = np.array([final[s] / lowest[s] for s in final if s not in failed[name]], dtype=float)
            finite = ratio[np.isfinite(ratio)]  # a failed seed has no final loss to compare
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
            parts.append(f"{name} mean final/lowest test loss {number(mean)} over {len(finite)} seed(s): {verdict}")
        return _combine(verdicts), "; ".join(parts) + f" (one-sample t-tests against {RISE:g})"

    def lowest_loss():
        pairs = [(x, o) for x in ("Adam", "AdamW") for o in present if o not in ("Adam", "AdamW")]
        verdicts = _pair_verdicts(by["final_test_loss"], failed, pairs, confidence, higher=False)
        return _combine(verdicts), (f"mean final test loss: "
                                    f"{_means(by['final_test_loss'], failed, order('final_test_loss', False))} "
                                    f"(a family of {len(pairs)}, Holm)")

    def end_worst():
        pairs = [(o, x) for x in ("Adagrad", "Adadelta") for o in present if o not in ("Adagrad", "Adadelta")]
        if comparisons is not None and problem is not None:  # the primary metric: the study's own words
            verdicts = [WORDS.get(lookup(comparisons, problem, o, x)["verdict"], INCONCLUSIVE) for o, x in pairs]
            family = "the study's comparisons"
        else:
            verdicts = _pair_verdicts(by["final_test_acc"], failed, pairs, confidence)
            family = f"a family of {len(pairs)}"
        return _combine(verdicts), (f"mean final test accuracy, lowest first: "
                                    f"{_means(by['final_test_acc'], failed, order('final_test_acc', False))} "
                                    f"({family}, Holm)")

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


def article_claims(seeds: pd.DataFrame, problems: dict[str, StudyProblem], confidence: float = 0.95,
                   comparisons: pd.DataFrame | None = None) -> pd.DataFrame:
    """claims_table on each of the article's problems (article_problems of Plan.problems) that has runs in
    `seeds` (seed_summary rows), with a `problem` column first; other problems get no claims (an empty
    table with those columns when the study has none of the article's)."""
    frames = [claims_table(seeds[seeds["problem"] == p], confidence, comparisons, p).assign(problem=p)
              for p in article_problems(problems) if (seeds["problem"] == p).any()]
    if not frames:
        return pd.DataFrame(columns=["problem"] + CLAIM_COLUMNS)
    return pd.concat(frames, ignore_index=True)[["problem"] + CLAIM_COLUMNS]
