"""A metric as every table, figure and sentence reads it: its name, its direction and its range.

A metric column is `{split}_{name}` (optimbench.problems: train_loss, test_acc, test_neg_elbo, ...). The
direction decides "best", ranks, targets and separation; the range clips intervals and gives the value a
diverged run scores (`worst`). `diverged` is the one rule that decides, for training and descent alike,
when a run has blown up (and stops it early); `failed` the one rule that decides, after a run, that its
result is a failure to be named rather than averaged (optimbench.compare).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

INF = math.inf
DIVERGENCE_FACTOR = 1e6  # a run diverged once |value| exceeds this many times max(|its start value|, 1)
FAILED_FACTOR = 4.0  # a run failed when it ends this many times worse than its own best epoch (rule: `failed`)


def diverged(value: float, start: float) -> bool:
    """The divergence rule (training's loss, a descent's value f and its point's coordinates alike): a value
    diverged when it is not finite (NaN, ±inf) or when |value| > DIVERGENCE_FACTOR · max(|start|, 1), where
    `start` is the same quantity at the run's start (the loss of the first batch at the initial weights; f and
    max |x|, |y| at the start point).

    Why relative and why 10⁶: a blow-up in float64 can stay finite for its whole budget (the descent's x = 1e28,
    f = 1e114, where finite differences vanish and the step looks converged; a training loss of 4.6e35) and
    the loss scales differ by orders of magnitude across problems (cross-entropy ≈ ln C, a VAE's negative ELBO
    in the hundreds), so a fixed bound cannot serve all. A converging run's transient rise (an overshoot, a
    loss spike) stays within a few orders of magnitude of its start; 10⁶ leaves room for it and still flags
    a blow-up long before float32 overflows (3.4e38). The floor of 1 keeps a start at 0 (a point at the
    origin, a tiny initial loss) from making every later value "diverged".

    Args:
        value: the value now (a float; NaN allowed).
        start: the value at the run's start (finite).
    Returns:
        True when the value diverged.
    """
    value = float(value)
    return not math.isfinite(value) or abs(value) > DIVERGENCE_FACTOR * max(abs(float(start)), 1.0)


def failed(final: float, best: float, higher_is_better: bool, diverged: bool = False) -> bool:
    """The failed-run rule: a run failed when it diverged (the divergence rule stopped it), when its final value
    is not finite, or when it ends more than FAILED_FACTOR times worse than its own best epoch: final >
    4 · best for a lower-is-better metric (a loss, a negative ELBO, a perplexity), final < best / 4 for a
    higher-is-better one (an accuracy).

    Reference and factor from the field's practice for "this run has blown up": the learning-rate range test
    stops once the loss exceeds 4× the best seen (fastai's `lr_find`, `stop_div`; torch-lr-finder uses 5×).
    The reference is the run's own best epoch, not its value at initialisation: the trainer records no epoch
    before the first step in metrics.csv (it keeps the first batch's training loss only in its checkpoint), and
    the best epoch is at least as good as the start for any run that learned, so a run 4× worse than its best is
    at least that far from where training took it. A run that plateaus or overshoots by a factor 2-3 is a bad
    run, not a failed one; the quoted blow-up (a VAE's KL to 2.7·10⁸ nats from a few hundred) is 10⁵× and
    more. A failed run is scored as the metric's worst, listed by seed and never averaged (optimbench.compare).

    Args: final, best: the run's last and best values of its primary metric (NaN/±inf allowed);
        higher_is_better: the metric's direction; diverged: the divergence rule fired during the run.
    Returns: True when the run failed.
    """
    final, best = float(final), float(best)
    if diverged or not math.isfinite(final):
        return True
    if not math.isfinite(best):
        return False
    if higher_is_better:
        return best > 0 and final < best / FAILED_FACTOR
    return final > FAILED_FACTOR * best if best > 0 else final - best > FAILED_FACTOR * max(abs(best), 1.0)


@dataclass(frozen=True)
class Metric:
    """A metric of a problem: its name in tables, its direction and its range (intervals are clipped to
    the range; a diverged run scores `worst`)."""

    name: str
    higher_is_better: bool
    low: float = 0.0
    high: float = INF

    @property
    def worst(self) -> float:
        return self.low if self.higher_is_better else self.high

    def better(self, a: float, b: float) -> bool:
        """Whether value a is strictly better than value b."""
        return a > b if self.higher_is_better else a < b

    def reaches(self, value: float, target: float) -> bool:
        """Whether value meets target in this metric's direction (a NaN never does)."""
        return bool(value >= target) if self.higher_is_better else bool(value <= target)
