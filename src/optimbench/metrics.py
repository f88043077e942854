"""A metric as every table, figure and sentence reads it: its name, its direction and its range.

A metric column is `{split}_{name}` (optimbench.problems: train_loss, test_acc, test_neg_elbo, ...). The
direction decides "best", ranks, targets and separation; the range clips intervals and gives the value a
diverged run scores (`worst`). `diverged` is the one rule that decides, for training and descent alike,
when a run has blown up.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

INF = math.inf
DIVERGENCE_FACTOR = 1e6  # a run diverged once |value| exceeds this many times max(|its start value|, 1)


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
