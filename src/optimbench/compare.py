"""The one comparison procedure: every "better / worse / inconclusive", "the seeds cannot separate it from the
best", rank range, place and claim of the report is decided here, by the same test, sidedness, centre and level.

The procedure (stated once in the report by `procedure_words`):
- **Unit.** One value per seed: an optimizer's final primary metric on one problem. A *failed* run
  (optimbench.metrics.failed: diverged, not finite, or ending far worse than its own best epoch) is named by
  seed and never enters a mean, an interval or a t statistic: a 10⁸ blow-up would otherwise be the mean.
- **Paired when the design is.** One seed gives every optimizer the same initial weights and the same batch
  order (tests/test_train.py shows it: the model is built after `torch.manual_seed(seed)`, the shuffling
  generator is seeded with the seed), so two optimizers with the same seeds are compared seed by seed: the
  paired t-test (scipy.stats.ttest_rel) on the differences of the seeds both completed. Other seeds on the
  two sides (a published baseline, issue 39): Welch's t-test (scipy.stats.ttest_ind, equal_var=False) on
  each side's completed seeds.
- **Centre**: the mean difference a − b in the metric's unit (the t-test's estimand; the median of 3
  seeds moves with any one of them, and failed runs, which made means useless, are out of it).
- **Two-sided**, at the study's level α = 1 − confidence.
- **A family.** The comparisons the report states form families (`families`): the focus optimizer(s)
  against each baseline on each problem is one; every other pair of optimizers on each problem is the
  other. Holm's step-down correction (Holm 1979, Scand. J. Statist. 6) adjusts each p within its family;
  a comparison is decided when its adjusted p < α. Its interval is at the family's simultaneous level
  1 − α/m (Bonferroni, whose rejections Holm's contain).
- **A failed run counts only against its own optimizer**: a is called better than b only if a failed on no
  more seeds than b (and worse only if b failed on no more than a); a failed seed against a completed one
  is a loss in the seed-by-seed count (`wins` / `losses`). With fewer than 2 seeds both completed there
  is no t statistic: the exact sign test on wins and losses (scipy.stats.binomtest) decides, which with
  n seeds cannot go below p = 2 · 0.5ⁿ (n ≥ 6 to reach 5 %: `SIGN_TEST_MIN_SEEDS`).
- **How many seeds would settle it** (`seeds_for_power`): per optimizer, for 80 % power (POWER) to
  detect the observed mean difference at α/m with the observed spread (noncentral t, scipy.stats.nct).

Why a t-test and not a rank test: an exact rank test (signed-rank, Mann–Whitney, sign) cannot reach
p < 0.05 with 3 seeds (its smallest two-sided p is 0.25 paired, 0.1 unpaired), so every comparison of a
3-seed study would read "inconclusive" whatever the data; the t-test can, and the failed-run rule removes
the one input it cannot take (an infinite or astronomically large value).

Public API (for every stage and for optimbench's published baselines):
`compare(a, b, higher_is_better, ...) -> Comparison` (per-seed values keyed by seed);
`holm(p_values)`; `decide_family(comparisons, confidence)`; `seeds_for_power(...)`;
`places(names, separates)`; `place_words(low, high)`; `procedure_words(confidence)`.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Iterable, Mapping, Sequence

import numpy as np
import pandas as pd
from scipy import stats

from optimbench.metrics import FAILED_FACTOR

BETTER, WORSE, INCONCLUSIVE = "better", "worse", "inconclusive"
POWER = 0.8  # the power "seeds needed" is computed for
MAX_SEEDS = 1000  # seeds_for_power's search stops here (None beyond: no seed count settles it)
SIGN_TEST_MIN_SEEDS = 6  # the fewest seeds for which the exact two-sided sign test can give p < 0.05


@dataclasses.dataclass(frozen=True)
class Comparison:
    """One comparison a − b of two optimizers' per-seed values on one problem, in the metric's direction.

    verdict: BETTER / WORSE / INCONCLUSIVE (a against b); paired: seed by seed (else Welch); n: the pairs
    compared (paired) or the fewer completed seeds of the two sides (Welch); centre: the mean difference
    a − b over the compared seeds (metric's unit; NaN without any); low, high: its interval at the family's
    simultaneous level 1 − α/m (NaN without a t statistic); p: the two-sided p of this comparison alone;
    p_adjusted: Holm's within its family (p until decide_family); alpha: the level α; family_size: m;
    seeds_needed: seeds per optimizer for POWER at α/m (None when decided, or when no count would do);
    wins, losses: seeds where a is better / worse (a failed seed loses to a completed one; both failed: a
    tie); failed_a, failed_b: the failed seeds of each side; spread: the sd of the differences (paired) or
    the pooled sd (Welch); test: "paired t", "Welch t" or "sign" (fewer than 2 seeds both completed).
    """

    verdict: str
    paired: bool
    n: int
    centre: float
    low: float
    high: float
    p: float
    p_adjusted: float
    alpha: float
    family_size: int
    seeds_needed: int | None
    wins: int
    losses: int
    failed_a: tuple
    failed_b: tuple
    spread: float
    test: str
    higher_is_better: bool = True

    @property
    def decided(self) -> bool:
        return self.verdict != INCONCLUSIVE


def _completed(values: Mapping, failed: Iterable) -> dict:
    """{seed: value} of the completed runs: not listed as failed, and finite."""
    failed = set(failed)
    return {s: float(v) for s, v in values.items() if s not in failed and math.isfinite(float(v))}


def _wins(a: Mapping, b: Mapping, ok_a: dict, ok_b: dict, sign: float) -> tuple[int, int]:
    """Seed-by-seed wins and losses of a over the seeds both sides have (a failed seed loses)."""
    wins = losses = 0
    for seed in set(a) & set(b):
        if seed in ok_a and seed in ok_b:
            d = sign * (ok_a[seed] - ok_b[seed])
            wins, losses = wins + (d > 0), losses + (d < 0)
        else:
            wins, losses = wins + (seed in ok_a), losses + (seed in ok_b)
    return wins, losses


def _t_test(x: np.ndarray, y: np.ndarray | None) -> tuple[float, float, float, float, float]:
    """(centre, p two-sided, spread, degrees of freedom, standard error) of the paired (y None: x are the
    differences) or Welch test; no spread: p 0 when the centre is not 0, else 1 (every seed says the same)."""
    if y is None:
        centre, spread, df = float(np.mean(x)), float(np.std(x, ddof=1)), len(x) - 1
        se = spread / math.sqrt(len(x))
    else:
        centre = float(np.mean(x) - np.mean(y))
        va, vb = np.var(x, ddof=1) / len(x), np.var(y, ddof=1) / len(y)
        se = math.sqrt(va + vb)
        spread = math.sqrt((np.var(x, ddof=1) + np.var(y, ddof=1)) / 2)
        df = (va + vb) ** 2 / (va**2 / (len(x) - 1) + vb**2 / (len(y) - 1)) if se > 0 else len(x) + len(y) - 2
    if se == 0:
        return centre, (0.0 if centre != 0 else 1.0), spread, df, se
    p = float(2 * stats.t.sf(abs(centre) / se, df))
    return centre, p, spread, df, se


def _interval(centre: float, se: float, df: float, level: float) -> tuple[float, float]:
    """The t interval of the centre at `level` (two-sided)."""
    half = float(stats.t.ppf(1 - (1 - level) / 2, df)) * se
    return centre - half, centre + half


def seeds_for_power(difference: float, spread: float, alpha: float, paired: bool, power: float = POWER) -> int | None:
    """The seeds per optimizer that give `power` to detect a true mean difference `difference` with a
    standard deviation `spread` (of the per-seed differences when paired, of each optimizer's values when
    not), two-sided at `alpha`: the smallest n with P(|T| > t_{1−α/2}) ≥ power, T noncentral t
    (scipy.stats.nct) with df n − 1 and noncentrality d·√n (paired) or df 2n − 2 and d·√(n/2) (Welch with
    equal n and spread), d = |difference| / spread. Returns None for no difference, no spread estimate, or
    more than MAX_SEEDS; 2 when the spread is 0 (any two seeds show it)."""
    if not (math.isfinite(difference) and math.isfinite(spread)) or difference == 0:
        return None
    if spread == 0:
        return 2
    d = abs(difference) / spread
    for n in range(2, MAX_SEEDS + 1):
        df, nc = (n - 1, d * math.sqrt(n)) if paired else (2 * n - 2, d * math.sqrt(n / 2))
        crit = stats.t.ppf(1 - alpha / 2, df)
        if stats.nct.sf(crit, df, nc) + stats.nct.cdf(-crit, df, nc) >= power:
            return n
    return None


def compare(a: Mapping, b: Mapping, higher_is_better: bool, *, failed_a: Iterable = (), failed_b: Iterable = (),
            confidence: float = 0.95, family_size: int = 1, paired: bool | None = None) -> Comparison:
    """Compare optimizer a with optimizer b on one problem (module docstring: the procedure).

    Args:
        a, b: per-seed final values {seed: value}; a non-finite value is a failed run.
        higher_is_better: the metric's direction (better means higher when True).
        failed_a, failed_b: seeds of runs that failed (optimbench.metrics.failed), whatever their value.
        confidence: the study's level (α = 1 − confidence).
        family_size: m, the comparisons of its family (interval at 1 − α/m; seeds needed at α/m). The verdict
            uses p itself until decide_family adjusts it within the family.
        paired: None: paired exactly when both have the same seeds; False forces Welch.
    Returns: a Comparison.
    Raises: ValueError: family_size < 1, or confidence outside (0, 1).
    """
    if family_size < 1 or not 0 < confidence < 1:
        raise ValueError(f"family_size must be >= 1 and confidence in (0, 1), not {family_size}, {confidence}")
    alpha, sign = round(1 - confidence, 12), 1.0 if higher_is_better else -1.0
    failed_a = tuple(sorted(set(failed_a) | {s for s, v in a.items() if not math.isfinite(float(v))}))
    failed_b = tuple(sorted(set(failed_b) | {s for s, v in b.items() if not math.isfinite(float(v))}))
    ok_a, ok_b = _completed(a, failed_a), _completed(b, failed_b)
    paired = set(a) == set(b) if paired is None else paired
    wins, losses = _wins(a, b, ok_a, ok_b, sign) if paired else (0, 0)
    both = sorted(set(ok_a) & set(ok_b))
    nan = math.nan
    if paired and len(both) >= 2:
        x = np.array([ok_a[s] - ok_b[s] for s in both])
        centre, p, spread, df, se = _t_test(x, None)
        n, test = len(both), "paired t"
    elif not paired and len(ok_a) >= 2 and len(ok_b) >= 2:
        x, y = np.array(list(ok_a.values())), np.array(list(ok_b.values()))
        centre, p, spread, df, se = _t_test(x, y)
        n, test = min(len(x), len(y)), "Welch t"
    else:  # no t statistic: the exact sign test on the seeds (paired), else nothing to test
        x = np.array([ok_a[s] - ok_b[s] for s in both])
        centre = float(np.mean(x)) if len(x) else nan
        p = float(stats.binomtest(wins, wins + losses).pvalue) if wins + losses else 1.0
        spread, df, se, n, test = nan, nan, nan, len(both), "sign"
    low, high = _interval(centre, se, df, 1 - alpha / family_size) if test != "sign" and se > 0 else (nan, nan)
    if test != "sign" and se == 0:
        low = high = centre
    comparison = Comparison(INCONCLUSIVE, paired, n, centre, low, high, p, p, alpha, family_size, None, wins,
                            losses, failed_a, failed_b, spread, test, higher_is_better)
    return _decide(comparison, p)


def _decide(c: Comparison, p_adjusted: float) -> Comparison:
    """The verdict from the adjusted p, the centre's sign and the failed-run rule; seeds needed when undecided."""
    sign = 1.0 if c.higher_is_better else -1.0
    favours_a = (sign * c.centre > 0) if c.test != "sign" else c.wins > c.losses
    favours_b = (sign * c.centre < 0) if c.test != "sign" else c.losses > c.wins
    verdict = INCONCLUSIVE
    if p_adjusted < c.alpha:
        if favours_a and len(c.failed_a) <= len(c.failed_b):
            verdict = BETTER
        elif favours_b and len(c.failed_b) <= len(c.failed_a):
            verdict = WORSE
    needed = None
    if verdict == INCONCLUSIVE:
        needed = (seeds_for_power(c.centre, c.spread, c.alpha / c.family_size, c.paired) if c.test != "sign"
                  else SIGN_TEST_MIN_SEEDS)
    return dataclasses.replace(c, p_adjusted=p_adjusted, verdict=verdict, seeds_needed=needed)


def holm(p_values: Sequence[float]) -> np.ndarray:
    """Holm's step-down adjusted p-values (Holm 1979): sort p ascending, p̃_(k) = max_{j ≤ k} min(1, (m − j + 1)
    p_(j)), returned in the input's order. Rejecting p̃ < α is Holm's procedure at family-wise level α."""
    p = np.asarray(p_values, dtype=float)
    m = len(p)
    order = np.argsort(p, kind="stable")
    adjusted = np.minimum(1.0, np.maximum.accumulate((m - np.arange(m)) * p[order]))
    out = np.empty(m)
    out[order] = adjusted
    return out


def decide_family(comparisons: Sequence[Comparison]) -> list[Comparison]:
    """The comparisons of one family decided together: each p Holm-adjusted within the family (m = its
    size, which every comparison must have been made with), its verdict from the adjusted p."""
    m = len(comparisons)
    if any(c.family_size != m for c in comparisons):
        raise ValueError(f"every comparison of a family of {m} must be made with family_size={m}")
    adjusted = holm([c.p for c in comparisons]) if m else []
    return [_decide(c, float(p)) for c, p in zip(comparisons, adjusted)]


def places(names: Sequence[str], separates: Callable[[str, str], bool]) -> dict[str, tuple[int, int]]:
    """The places the procedure allows each of `names`: (1 + those decided better than it, n − those decided
    worse than it); `separates(x, y)`: x decided better than y. Two with overlapping ranges are not ordered."""
    n = len(names)
    return {o: (1 + sum(separates(q, o) for q in names if q != o), n - sum(separates(o, q) for q in names if q != o))
            for o in names}


def place_words(low: int, high: int, sharing: Sequence[str] = ()) -> str:
    """"1" or "1–3" (shared), with who shares: "1–3 (with Adam, AdamW)"."""
    text = f"{low}" if low == high else f"{low}–{high}"
    return text + (f" (with {', '.join(sharing)})" if sharing and low != high else "")


def sharing(name: str, ranges: Mapping[str, tuple[int, int]], shares: Mapping[str, str] | None = None) -> list[str]:
    """Who shares `name`'s places: from `shares` ({name: "A, B"}, `unordered`'s words: those the procedure does
    not order against it) when given, else the others whose place range overlaps."""
    if shares is not None and name in shares:
        return [o for o in str(shares[name]).split(", ") if o]
    low, high = ranges[name]
    return [o for o, (lo, hi) in ranges.items() if o != name and lo <= high and low <= hi]


def unordered(names: Sequence[str], separates: Callable[[str, str], bool]) -> dict[str, str]:
    """{name: "A, B"}: the others the procedure orders neither above nor below it (who shares its places; one
    decided below it is never listed, even where their place ranges touch)."""
    return {o: ", ".join(q for q in names if q != o and not separates(o, q) and not separates(q, o)) for o in names}


def procedure_words(confidence: float) -> str:
    """The procedure in one paragraph, as the report states it once."""
    alpha = 1 - confidence
    return (f"**How comparisons are decided** (every verdict, place and rank below): two optimizers are compared "
            f"seed by seed — one seed gives every optimizer the same initial weights and batch order — by the "
            f"paired t-test on the seeds both completed (Welch's t-test when their seeds differ), two-sided, at "
            f"{alpha:.0%} after Holm's correction within the family of comparisons the report states (named where "
            f"used); the centre is the mean difference, its interval at the family's simultaneous level. A failed "
            f"run (diverged, or ending more than {FAILED_FACTOR:g}× worse than its own best epoch) is listed by seed, "
            f"never averaged, and counts only against its own optimizer. An undecided comparison says how many "
            f"seeds per optimizer would give {POWER:.0%} power for the difference seen.")


# ---------------------------------------------------------------- the study's comparisons, in one table
FOCUS_FAMILY, FIELD_FAMILY = "focus", "field"
COMPARISON_COLUMNS = ["problem", "a", "b", "family", "family_size", "verdict", "centre", "low", "high", "p",
                      "p_adjusted", "test", "paired", "n", "wins", "losses", "failed_a", "failed_b", "spread",
                      "seeds_needed", "confidence"]


def as_list(names) -> list[str]:
    """report.focus / report.baselines as a list: None -> [], a name -> [name]."""
    return [] if names is None else [names] if isinstance(names, str) else list(names)


def field(optimizers: Sequence[str], focus=None, baselines=None) -> tuple[list[str], list[str]]:
    """(focus optimizers, baselines): report.focus (a name or a list: variants of one's own optimizer) and
    report.baselines (None: every optimizer of `optimizers` that is not a focus one), in `optimizers`' order."""
    mine = as_list(focus)
    theirs = [o for o in optimizers if o not in mine] if baselines is None else as_list(baselines)
    return [o for o in optimizers if o in mine], [o for o in optimizers if o in theirs and o not in mine]


def families(seeds: pd.DataFrame, focus=None, baselines=None) -> dict[tuple, str]:
    """{(problem, a, b): family} for every pair the report can state (a before b in the optimizers' sorted
    order): FOCUS_FAMILY for a focus optimizer against a baseline on a problem, FIELD_FAMILY for every other
    pair. `seeds`: rows problem, optimizer."""
    out = {}
    for problem, group in seeds.groupby("problem", sort=True):
        names = sorted(group["optimizer"].unique())
        mine, theirs = field(names, focus, baselines)
        for i, a in enumerate(names):
            for b in names[i + 1:]:
                in_focus = (a in mine and b in theirs) or (b in mine and a in theirs)
                out[problem, a, b] = FOCUS_FAMILY if in_focus else FIELD_FAMILY
    return out


def with_failed(seeds: pd.DataFrame) -> pd.DataFrame:
    """seed_summary rows with a `failed` column (a table without one: the diverged or non-finite runs)."""
    if "failed" in seeds:
        return seeds
    lost = ~np.isfinite(seeds["final"].astype(float))
    return seeds.assign(failed=lost | (seeds["diverged"].astype(bool) if "diverged" in seeds else False))


def _per_seed(group: pd.DataFrame, optimizer: str) -> tuple[dict, list]:
    rows = group[group["optimizer"] == optimizer]
    return dict(zip(rows["seed"], rows["final"].astype(float))), list(rows.loc[rows["failed"].astype(bool), "seed"])


def _row(problem: str, a: str, b: str, family: str, c: Comparison, confidence: float) -> dict:
    seeds = lambda f: ", ".join(str(s) for s in f)  # noqa: E731
    return {"problem": problem, "a": a, "b": b, "family": family, "family_size": c.family_size, "verdict": c.verdict,
            "centre": c.centre, "low": c.low, "high": c.high, "p": c.p, "p_adjusted": c.p_adjusted, "test": c.test,
            "paired": c.paired, "n": c.n, "wins": c.wins, "losses": c.losses, "failed_a": seeds(c.failed_a),
            "failed_b": seeds(c.failed_b), "spread": c.spread, "seeds_needed": c.seeds_needed,
            "confidence": confidence}


MIRROR = {BETTER: WORSE, WORSE: BETTER, INCONCLUSIVE: INCONCLUSIVE}


def study_comparisons(seeds: pd.DataFrame, higher_is_better: Mapping[str, bool], confidence: float = 0.95,
                      focus=None, baselines=None) -> pd.DataFrame:
    """Every pair of optimizers on every problem compared once (`compare`), each family (`families`) decided
    together (`decide_family`), as a table with both orientations: the row (problem, a, b) states a against b
    (centre = a − b, verdict in the metric's direction), the row (problem, b, a) the same comparison mirrored.
    Every sentence of the report about a pair reads its row (`lookup`), so no two disagree.

    Args: seeds: seed_summary rows (problem, optimizer, seed, final, failed; `published`, if present, marks the
        runs of a published field, whose seeds are not this study's: a pair with one is never paired, Welch);
        higher_is_better: {problem: the primary metric's direction}; confidence; focus, baselines: report.focus
        and report.baselines.
    Returns: COMPARISON_COLUMNS (failed_a / failed_b: the failed seeds, "1, 2").
    """
    seeds = with_failed(seeds[seeds["problem"].isin(list(higher_is_better))])
    theirs = set(seeds.loc[seeds["published"].astype(bool), "optimizer"]) if "published" in seeds else set()
    fams = families(seeds, focus, baselines)
    sizes = pd.Series(list(fams.values())).value_counts().to_dict()
    made = {}
    for (problem, a, b), family in fams.items():
        group = seeds[seeds["problem"] == problem]
        (va, fa), (vb, fb) = _per_seed(group, a), _per_seed(group, b)
        made[problem, a, b] = compare(va, vb, higher_is_better[problem], failed_a=fa, failed_b=fb,
                                      confidence=confidence, family_size=sizes[family],
                                      paired=False if {a, b} & theirs else None)
    for family in sizes:
        keys = [k for k, f in fams.items() if f == family]
        made.update(zip(keys, decide_family([made[k] for k in keys])))
    rows = []
    for (problem, a, b), c in made.items():
        rows.append(_row(problem, a, b, fams[problem, a, b], c, confidence))
        mirrored = dataclasses.replace(c, verdict=MIRROR[c.verdict], centre=-c.centre, low=-c.high, high=-c.low,
                                       wins=c.losses, losses=c.wins, failed_a=c.failed_b, failed_b=c.failed_a)
        rows.append(_row(problem, b, a, fams[problem, a, b], mirrored, confidence))
    return pd.DataFrame(rows, columns=COMPARISON_COLUMNS)


def lookup(comparisons: pd.DataFrame, problem: str, a: str, b: str) -> pd.Series:
    """The row stating a against b on a problem (KeyError naming the pair when the table has none)."""
    row = comparisons[(comparisons["problem"] == problem) & (comparisons["a"] == a) & (comparisons["b"] == b)]
    if row.empty:
        raise KeyError(f"no comparison of {a} against {b} on {problem}")
    return row.iloc[0]


def beats(comparisons: pd.DataFrame, problem: str) -> Callable[[str, str], bool]:
    """separates(x, y) for `places`: x decided better than y on `problem`."""
    mine = comparisons[comparisons["problem"] == problem]
    better = set(zip(mine.loc[mine["verdict"] == BETTER, "a"], mine.loc[mine["verdict"] == BETTER, "b"]))
    return lambda x, y: (x, y) in better
