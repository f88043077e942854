"""A metric as every table, figure and sentence reads it: its name, its direction and its range.

A metric column is `{split}_{name}` (optimbench.problems: train_loss, test_acc, test_neg_elbo, ...). The
direction decides "best", ranks, targets and separation; the range clips intervals and gives the value a
diverged run scores (`worst`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

INF = math.inf


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
